"""`aicf provider run …`: a reference provider agent against a coordinator's JSON-RPC endpoint.

Exit 0 after a clean stop (Ctrl-C, or `--exit-after` leases served), 1 when the coordinator, the key file or a
model refuses at start-up, 2 on bad usage. One line per lease: task, what ran, verdict, units.
"""

import os
import signal
import threading
import time
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from aicf.client import RpcClient, RpcError, RpcTransportError
from aicf.client.backoff import Reconnect, is_outage
from aicf.client.clock import WallClock
from aicf.core.backoff import BackoffPolicy
from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.provider.agent import AgentConfig, LeaseReport, ProviderAgent, load_or_create_key
from aicf.provider.models import MODELS
from aicf.provider.work_common import Mode, Work

if TYPE_CHECKING:
    from aicf.provider.work_quantum import DeviceKey
from aicf.transports.secret_files import RETIRED_TOKEN_FLAG, TOKEN_HOWTO, SecretFileError, operator_token_for_client

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

provider_app = typer.Typer(help="Reference provider agents.", no_args_is_help=True, add_completion=False)


class Kind(StrEnum):
    AI = "ai"
    QUANTUM = "quantum"


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted({n.strip() for n in text.split(",") if n.strip()}))


def rpc_url(url: str) -> str:
    """The /rpc endpoint of a coordinator given by its base URL (an URL already ending in /rpc is kept)."""
    trimmed = url.rstrip("/")
    return trimmed if trimmed.endswith("/rpc") else trimmed + "/rpc"


def _bonded(view: object, default: int) -> int:
    value = view.get("bonded_stake") if isinstance(view, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _works(
    kinds: tuple[str, ...],
    models: tuple[str, ...],
    echo: bool,
    public_jobs: tuple[bytes, ...] = (),
    device: "DeviceKey | None" = None,
) -> list[Work]:
    """The work runners; real models are loaded now, so a missing package fails at start-up, not on a lease."""
    works: list[Work] = []
    if Kind.AI in kinds:
        from aicf.provider.work_ai import AiWork, EchoAiWork  # numpy and the model runtimes only when asked

        ai: AiWork | EchoAiWork = EchoAiWork(models) if echo else AiWork(models)
        ai.load()
        works.append(ai)
    if Kind.QUANTUM in kinds:
        from aicf.provider.work_quantum import QuantumWork  # stim only when asked

        works.append(QuantumWork(public_jobs=public_jobs, device=device))
    return works


def _usage(message: str) -> typer.Exit:
    err.print(f"usage error: {message}", markup=False)
    return typer.Exit(2)


UrlOption = typer.Option("http://127.0.0.1:8000", "--url", help="The coordinator (its /rpc endpoint is used).")
KindOption = typer.Option(..., "--kind", help="ai or quantum; repeat to serve both.")
ModelsOption = typer.Option(
    ",".join(sorted(MODELS)), "--models", help="AI models to serve, comma-separated (default: every one)."
)
KeyFileOption = typer.Option(..., "--key-file", help="The Ed25519 seed as hex; created (mode 0600) if missing.")
StakeOption = typer.Option(0, "--stake", min=0, help="Top the bonded stake up to this many µANM.")
TokenFileOption = typer.Option(
    None,
    "--operator-token-file",
    dir_okay=False,
    help="A file (mode 0600) holding the operator token, needed by --fund; or set AICF_OPERATOR_TOKEN.",
)
RetiredTokenOption = typer.Option(None, "--operator-token", hidden=True, help="Refused: see --operator-token-file.")
FundOption = typer.Option(0, "--fund", min=0, help="Devnet only: mint this much stake first (aicf.fundProvider).")
ModeOption = typer.Option(Mode.HONEST.value, "--mode", help="honest, or a cheat for tests and demos.")
EchoOption = typer.Option(
    False,
    "--echo",
    help="Answer AI leases with a deterministic echo instead of running a model (demos without the model "
    "packages; a coordinator pinning the real model digests rejects every such proof).",
)
RegionsOption = typer.Option("", "--regions", help="Regions served, comma-separated.")
DevicesOption = typer.Option("", "--devices", help="Device classes, comma-separated.")
MaxLeasesOption = typer.Option(2, "--max-leases", min=1, help="Live leases the coordinator may give us at once.")
UnitBurstOption = typer.Option(
    0, "--unit-burst-mu", min=0, help="Our unit-rate bucket's burst in mu (0: the protocol's; at most it)."
)
UnitRateOption = typer.Option(
    0, "--unit-rate-mu-per-day", min=0, help="Our sustained unit rate in mu per day (0: the protocol's; at most it)."
)
HeartbeatOption = typer.Option(20, "--heartbeat-s", min=1, help="Heartbeat interval in seconds (SPEC §7: 20).")
PollOption = typer.Option(2.0, "--poll-s", min=0.01, help="Seconds between lease polls when idle.")
ExitAfterOption = typer.Option(None, "--exit-after", min=1, help="Stop after this many leases.")
StartWaitOption = typer.Option(
    300, "--start-wait-s", min=0, help="Keep retrying an unreachable coordinator at start this long (0: fail at once)."
)
START_BACKOFF = BackoffPolicy(base_ms=500, cap_ms=10_000)  # the start-up's waits (the agent's loop has its own)
PublicCircuitOption = typer.Option(
    [],
    "--public-circuit",
    help="skip_traps / fake_job: a request circuit (OpenQASM file) this cheater read on chain; the batch circuit "
    "running it is taken for the job. Repeatable.",
)
QUANTUM_CHEATS = (Mode.SKIP_TRAPS, Mode.FAKE_JOB)
AI_CHEATS = (Mode.INFLATE_RUNTIME, Mode.SPARE_TRAP_SHAPES)


DeviceKeyFileOption = typer.Option(
    None,
    "--device-key-file",
    help="quantum: the device's Ed25519 key (hex seed; created 0600 when missing). Its proofs carry the device's "
    "certificate, which the coordinator checks against the key the operator pinned (aicf devices pin).",
)
DeviceNameOption = typer.Option("", "--device-name", help="quantum: the device's name (default qpu-<key prefix>).")
PinDeviceOption = typer.Option(
    "", "--pin-device", help="Devnet: pin the device key under this device class with the operator token."
)


def _device(key_file: Path | None, name: str) -> "DeviceKey | None":
    """The quantum device's signing key, or None without --device-key-file (its proofs are then refused)."""
    if key_file is None:
        return None
    from aicf.provider.work_quantum import DeviceKey

    key = load_or_create_key(key_file)
    public = key.public_key().public_bytes_raw()
    return DeviceKey(name or f"qpu-{public[:4].hex()}", key)


@provider_app.command("run")
def run_command(
    url: str = UrlOption,
    kind: list[Kind] = KindOption,
    models: str = ModelsOption,
    key_file: Path = KeyFileOption,
    stake: int = StakeOption,
    operator_token_file: Path | None = TokenFileOption,
    retired_token: str | None = RetiredTokenOption,
    fund: int = FundOption,
    mode: Mode = ModeOption,
    echo: bool = EchoOption,
    regions: str = RegionsOption,
    devices: str = DevicesOption,
    max_leases: int = MaxLeasesOption,
    unit_burst_mu: int = UnitBurstOption,
    unit_rate_mu_per_day: int = UnitRateOption,
    heartbeat_s: int = HeartbeatOption,
    poll_s: float = PollOption,
    exit_after: int | None = ExitAfterOption,
    start_wait_s: int = StartWaitOption,
    public_circuit: list[Path] = PublicCircuitOption,
    device_key_file: Path | None = DeviceKeyFileOption,
    device_name: str = DeviceNameOption,
    pin_device: str = PinDeviceOption,
) -> None:
    """Register, stake, then heartbeat, take leases, run them and submit signed proofs until Ctrl-C."""
    kinds = tuple(sorted({k.value for k in kind}))
    served = _names(models) if Kind.AI in kinds else ()
    if Kind.AI in kinds and not served:
        raise _usage("--kind ai needs at least one model in --models")
    unknown = [m for m in served if m not in MODELS]
    if unknown:
        raise _usage(f"unknown model {unknown[0]!r}; served models: {', '.join(sorted(MODELS))}")
    if mode in QUANTUM_CHEATS and Kind.QUANTUM not in kinds:
        raise _usage(f"--mode {mode.value} applies to quantum providers only (AI traps look like any job)")
    if mode in AI_CHEATS and Kind.AI not in kinds:
        raise _usage(f"--mode {mode.value} applies to AI providers only")
    try:
        public_jobs = tuple(path.read_bytes() for path in public_circuit)
    except OSError as exc:
        raise _usage(f"--public-circuit: {exc}") from None
    if retired_token is not None:
        raise _usage(RETIRED_TOKEN_FLAG)
    try:
        operator_token = operator_token_for_client(operator_token_file, os.environ)
    except SecretFileError as exc:
        err.print(f"error: operator token file {exc}", markup=False)
        raise typer.Exit(1) from None
    if fund and operator_token is None:
        raise _usage(f"--fund needs the operator token: {TOKEN_HOWTO}")
    if (device_key_file is not None or pin_device) and Kind.QUANTUM not in kinds:
        raise _usage("--device-key-file and --pin-device apply to quantum providers only")
    if pin_device and (device_key_file is None or operator_token is None):
        raise _usage(f"--pin-device needs --device-key-file and the operator token: {TOKEN_HOWTO}")
    config = AgentConfig(
        kinds=kinds,
        models=served,
        devices=_names(devices),
        regions=_names(regions),
        max_leases=max_leases,
        unit_burst_mu=unit_burst_mu,
        unit_rate_mu_per_day=unit_rate_mu_per_day,
        heartbeat_interval_s=heartbeat_s,
        poll_interval_s=poll_s,
        mode=mode,
    )
    clock = WallClock()
    stop = threading.Event()
    try:
        key = load_or_create_key(key_file)
        device = _device(device_key_file, device_name)
        works = _works(kinds, served, echo, public_jobs, device)
        client = RpcClient(rpc_url(url), operator_token=operator_token, provider_key=key, clock=clock)
        agent = ProviderAgent(client, key, config, works, on_report=_print_report)
        if device is not None:
            out.print(f"quantum device {device.name}: public key {to_hex(device.public_bytes())}", markup=False)
    except (AicfError, RpcError, RpcTransportError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    retry, done = Reconnect(START_BACKOFF), set[str]()  # the coordinator down at start: growing waits, each step once
    give_up_at = time.monotonic() + start_wait_s
    while True:
        try:
            if device is not None and pin_device and "pin" not in done:
                pin = {"device": device.name, "device_class": pin_device, "public_key": to_hex(device.public_bytes())}
                client.call_operator("aicf.pinDeviceKey", pin)
                done.add("pin")
            if fund and "fund" not in done:  # first: a new provider's registration bonds the minted balance
                agent.fund(fund)
                done.add("fund")
            bonded = _bonded(agent.register(), 0)
            if stake > bonded:
                bonded = _bonded(agent.stake(stake - bonded), stake)
            break
        except (AicfError, RpcError, RpcTransportError) as exc:
            wait_s = retry.failed()
            if not is_outage(exc) or time.monotonic() + wait_s > give_up_at:
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1) from None
            err.print(f"coordinator unreachable, retrying in {wait_s:.1f} s: {exc}", markup=False)
            stop.wait(wait_s)
    out.print(
        f"provider {to_hex(agent.provider_id)} ({', '.join(kinds)}; mode {mode.value}) at {client.url}: "
        f"bonded stake {bonded} µANM. Ctrl-C stops.",
        markup=False,
    )

    def on_sigint(_: int, __: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the running job
        stop.set()
        err.print("stopping (Ctrl-C again to abandon the running job)…", markup=False)

    in_main = threading.current_thread() is threading.main_thread()  # signals can only be caught there
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        stats = agent.run(clock, stop.wait, stop.is_set, max_leases=exit_after)
    except KeyboardInterrupt:
        stats = agent.stats
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGINT, previous)
        client.close()
    out.print(
        f"{stats.leases} leases: {stats.accepted} accepted ({stats.units_mu} units_mu), {stats.rejected} rejected, "
        f"{stats.released} released, {stats.silent} dropped; {stats.heartbeats} heartbeats",
        markup=False,
    )


def _print_report(report: LeaseReport) -> None:
    out.print(report.line(), markup=False)
