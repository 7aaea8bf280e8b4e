"""`aicf request …`: a requester submits AI and quantum jobs and gets the result back (issue 12).

    aicf request deposit 1000000000          # devnet faucet: fund the requester's own address
    aicf request ai --model minilm-l6-v2 --prompt "The capital of France is" --wait
    aicf request quantum --qasm bell.qasm --shots 100 --wait
    aicf request balance | status TX_HASH | result TASK_ID | cancel TASK_ID

Each talks to `--url` (or $AICF_URL) and signs with the requester key in `--key` (or $AICF_REQUESTER_KEY,
default ~/.aicf/requester.key, created 0600 on first use). With `--wait` the command follows the job through
its states with a progress line and prints the final record: output, digests, the provider, what was charged
and refunded. `--json` prints that record as one JSON object with its `task_id`. Exit 0 on success, 1 when the
coordinator refuses or cannot be reached or the job does not end well, 2 on bad usage.
"""

import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aicf.client import RpcClient, RpcError, RpcTransportError
from aicf.client.backoff import Reconnect, is_outage
from aicf.client.requester import Progress, Requester, RequestFailedError, load_or_create_requester_key
from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.transports.cli_ops import DEFAULT_URL, JsonOption, UrlOption, parse_id, reporting

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_KEY = Path.home() / ".aicf" / "requester.key"
KeyOption = Annotated[
    Path,
    typer.Option("--key", envvar="AICF_REQUESTER_KEY", help="The requester's key file (created 0600 if missing)."),
]
WaitOption = Annotated[bool, typer.Option("--wait", help="Follow the job until it is settled or refunded.")]
UntilOption = Annotated[
    str, typer.Option("--until", help="With --wait: 'final' (settled or refunded) or 'verified' (result in).")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="With --wait: give up after this many seconds.")]
FeeOption = Annotated[
    int | None, typer.Option("--fee-per-unit", min=0, help="µANM per unit (default: the suggested fee)")
]
TierOption = Annotated[
    int, typer.Option("--tier", min=0, max=3, help="Priority class; above 0 needs a registered tier")
]

request_app = typer.Typer(help="Submit jobs as a requester and follow them.", no_args_is_help=True)

EvmOp = Callable[..., dict[str, Any]]
_EVM_OPS: dict[str, EvmOp] = {}
FINAL = ("SETTLED", "FAILED", "REJECTED", "CANCELLED")


def register_evm_ops(ops: Mapping[str, EvmOp]) -> None:
    """The composition root (aicf/bootstrap/cli.py, through `build_app` of aicf/transports/cli.py) hands in the
    EVM requester's operations (`enqueue`, `deposit`, `balance`; web3 lives in aicf.chain): used when the
    coordinator says it follows an EVM node."""
    _EVM_OPS.update(ops)


def _evm(url: str) -> bool:
    """Whether the coordinator at `url` follows an EVM node (aicf.getRequestTerms `chain.kind`), so requests are
    the requester's own Ethereum transactions, signed with the secp256k1 key in --key."""
    if not _EVM_OPS:
        return False
    try:
        with RpcClient(url.rstrip("/") + "/rpc", timeout_s=30.0) as client:
            chain = client.call("aicf.getRequestTerms").get("chain") or {}
    except (RpcError, AicfError, OSError):
        return False  # the devnet path reports the coordinator's error
    return bool(chain.get("kind") == "evm")


def _evm_call(op: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return _EVM_OPS[op](**kwargs)
    except AicfError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


def _evm_finish(url: str, sent: dict[str, Any], wait: bool, until: str, timeout: float, as_json: bool) -> None:
    """Print the enqueue, or with --wait follow the job through aicf.readResult until it is done."""
    if until not in ("final", "verified"):
        err.print("error: --until must be 'final' or 'verified'", markup=False)
        raise typer.Exit(2)
    task = str(sent["task_id"])
    if not wait:
        if as_json:
            typer.echo(json.dumps(sent, sort_keys=True))
        else:
            out.print(f"sent {sent['tx_hash']} (escrow {sent['escrow']:,} µANM); task {task}", markup=False)
        return
    err.print(f"sent {sent['tx_hash']}; task {task}", markup=False)
    deadline, last = time.monotonic() + timeout, ""
    retry = Reconnect()  # the coordinator (or its database) down: growing waits, not a poll a second
    with RpcClient(url.rstrip("/") + "/rpc", timeout_s=30.0) as client:
        while True:
            wait_s = 1.0
            try:
                record: dict[str, Any] = client.call("aicf.readResult", {"id": task})
                retry.succeeded()
            except (RpcError, RpcTransportError) as exc:
                record = {"status": last or "sent"} if is_outage(exc) else {"status": "sent"}  # else: not ingested yet
                if is_outage(exc):
                    wait_s = retry.failed()
                    err.print(f"… coordinator unreachable, retrying in {wait_s:.1f} s: {exc}", markup=False)
            if record["status"] != last:
                last = str(record["status"])
                err.print(f"… {last} task {task}", markup=False)
            done = record["status"] in FINAL or (until == "verified" and record.get("result") is not None)
            if done:
                break
            if time.monotonic() > deadline:
                err.print(f"error: task {task} is still {last} after {timeout} s", markup=False)
                raise typer.Exit(1)
            time.sleep(min(wait_s, max(0.0, deadline - time.monotonic()) + 0.1))
    _show_record(record, as_json)
    if record["status"] in ("FAILED", "REJECTED", "CANCELLED"):
        raise typer.Exit(1)


def _requester(url: str, key: Path) -> Requester:
    try:
        signing_key = load_or_create_requester_key(key)
    except (OSError, ValueError) as exc:
        err.print(f"error: requester key {key}: {exc}", markup=False)
        raise typer.Exit(2) from None
    return Requester(url, signing_key)


def _say_progress(p: Progress) -> None:
    where = f" task {p.task_id}" if p.task_id else ""
    height = p.detail.get("height")
    at = f" at height {height}" if height is not None and p.state in ("included", "QUEUED", "PENDING") else ""
    err.print(f"… {p.state}{where}{at}", markup=False)


def _show_record(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(record, sort_keys=True))
        return
    out.print(f"task {record['task_id']}  {record['kind']} {record.get('model') or ''}  status {record['status']}")
    result = record.get("result")
    if result is not None:
        out.print(f"provider   {result['provider_id']}", markup=False)
        out.print(f"proof      {result['proof_id']}  included at height {result['height']}", markup=False)
        out.print(f"output     digest {result['output_digest']}", markup=False)
        if "output" in result:
            raw = bytes.fromhex(result["output"][2:])
            text = raw.decode("utf-8", errors="replace") if _printable(raw) else f"{len(raw)} bytes (binary)"
            out.print(f"           {text}", markup=False)
        if "results" in result:
            out.print(f"results    {json.dumps(result['results'], sort_keys=True)[:2000]}", markup=False)
        out.print(f"units      {result['units_mu'] / 1000:,.3f}  qos {json.dumps(result['qos'], sort_keys=True)}")
    escrow = record["escrow"]
    if record["charged"] is None:
        out.print(f"escrow     {escrow:,} µANM held; charged and refunded at settlement")
    else:
        out.print(f"charged    {record['charged']:,} µANM   refunded {record['refunded']:,} µANM (escrow {escrow:,})")


def _printable(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\t" for ch in text)


def _finish(r: Requester, tx_hash: str, wait: bool, until: str, timeout: float, as_json: bool) -> None:
    if until not in ("final", "verified"):
        err.print("error: --until must be 'final' or 'verified'", markup=False)
        raise typer.Exit(2)
    if not wait:
        if as_json:
            typer.echo(json.dumps({"tx_hash": tx_hash}))
        else:
            out.print(f"sent {tx_hash}; follow it with: aicf request status {tx_hash}", markup=False)
        return
    err.print(f"sent {tx_hash}", markup=False)
    try:
        record = r.wait(tx_hash, timeout_s=timeout, until=until, on_progress=_say_progress)
    except RequestFailedError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    _show_record(record, as_json)
    if record["status"] in ("FAILED", "REJECTED", "CANCELLED"):
        raise typer.Exit(1)


@request_app.command("ai")
def ai_command(
    model: Annotated[str, typer.Option("--model", help="A model the coordinator serves, e.g. minilm-l6-v2.")],
    prompt: Annotated[str, typer.Option("--prompt", help="The prompt text (UTF-8).")],
    max_units: Annotated[int | None, typer.Option("--max-units", min=1, help="Cap the charge at N units.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=0, help="Tokens to generate.")] = 16,
    max_runtime_ms: Annotated[int | None, typer.Option("--max-runtime-ms", min=1)] = None,
    fee_per_unit: FeeOption = None,
    tier: TierOption = 0,
    wait: WaitOption = False,
    until: UntilOption = "final",
    timeout: TimeoutOption = 600.0,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = DEFAULT_KEY,
    as_json: JsonOption = False,
) -> None:
    """Enqueue an AI job; prints its transaction, then with --wait its states and the result record."""
    if max_units is not None and max_runtime_ms is not None:
        err.print("error: give --max-units or --max-runtime-ms, not both", markup=False)
        raise typer.Exit(2)
    if _evm(url):
        if max_units is not None:
            err.print("error: --max-units is not taken on an EVM chain; give --max-runtime-ms", markup=False)
            raise typer.Exit(2)
        with RpcClient(url.rstrip("/") + "/rpc", timeout_s=30.0) as client:
            terms = client.call("aicf.getRequestTerms")
        fee = fee_per_unit if fee_per_unit is not None else terms["suggested_fee_per_unit"]["ai"]
        body = {"model": model, "prompt": prompt.encode("utf-8"), "max_tokens": max_tokens,
                "max_runtime_ms": max_runtime_ms or 20_000, "tier": tier, "fee_per_unit": fee}  # fmt: skip
        sent = _evm_call("enqueue", url=url, key_file=key, kind="ai", body=body)
        _evm_finish(url, sent, wait, until, timeout, as_json)
        return
    with _requester(url, key) as r, reporting(url):
        try:
            tx_hash = r.submit_ai(
                model,
                prompt.encode("utf-8"),
                max_tokens=max_tokens,
                max_runtime_ms=max_runtime_ms,
                max_units=max_units,
                fee_per_unit=fee_per_unit,
                tier=tier,
            )
        except ValueError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(2) from None
        _finish(r, tx_hash, wait, until, timeout, as_json)


@request_app.command("quantum")
def quantum_command(
    qasm: Annotated[Path, typer.Option("--qasm", help="An OpenQASM 2.0 file (qelib1.inc gates).")],
    shots: Annotated[int, typer.Option("--shots", min=1, help="Shots to run.")],
    fee_per_unit: FeeOption = None,
    tier: TierOption = 0,
    wait: WaitOption = False,
    until: UntilOption = "final",
    timeout: TimeoutOption = 600.0,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = DEFAULT_KEY,
    as_json: JsonOption = False,
) -> None:
    """Enqueue a quantum job from a QASM file."""
    try:
        circuit = sys.stdin.buffer.read() if str(qasm) == "-" else qasm.read_bytes()
    except OSError as exc:
        err.print(f"error: cannot read {qasm}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(2) from None
    if _evm(url):
        with RpcClient(url.rstrip("/") + "/rpc", timeout_s=30.0) as client:
            terms = client.call("aicf.getRequestTerms")
        fee = fee_per_unit if fee_per_unit is not None else terms["suggested_fee_per_unit"]["quantum"]
        body = {"circuit": circuit, "shots": shots, "fee_per_unit": fee, "tier": tier}
        sent = _evm_call("enqueue", url=url, key_file=key, kind="quantum", body=body)
        _evm_finish(url, sent, wait, until, timeout, as_json)
        return
    with _requester(url, key) as r, reporting(url):
        tx_hash = r.submit_quantum(circuit, shots, fee_per_unit=fee_per_unit, tier=tier)
        _finish(r, tx_hash, wait, until, timeout, as_json)


@request_app.command("deposit")
def deposit_command(
    amount: Annotated[int, typer.Argument(min=1, help="µANM to credit (devnet faucet, at most 10^12).")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the deposit is included.")] = True,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = DEFAULT_KEY,
    as_json: JsonOption = False,
) -> None:
    """Credit the requester's own account from the devnet faucet (on an EVM dev chain: the test token's)."""
    if _evm(url):
        done = _evm_call("deposit", url=url, key_file=key, amount=amount)
        if as_json:
            typer.echo(json.dumps(done, sort_keys=True))
        else:
            out.print(f"deposit {done['tx_hash']} {done['state']}; balance {done['balance']:,} µANM", markup=False)
        return
    with _requester(url, key) as r, reporting(url):
        tx_hash = r.deposit(amount)
        state = "sent"
        if wait:
            try:
                state = r.wait_included(tx_hash)
            except RequestFailedError as exc:
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1) from None
        balance = r.balance()
        if as_json:
            typer.echo(json.dumps({"tx_hash": tx_hash, "state": state, "balance": balance}))
        else:
            out.print(f"deposit {tx_hash} {state}; balance {balance:,} µANM", markup=False)


@request_app.command("balance")
def balance_command(url: UrlOption = DEFAULT_URL, key: KeyOption = DEFAULT_KEY, as_json: JsonOption = False) -> None:
    """The requester's address, balance, next nonce and open jobs (on an EVM chain: address, token balance,
    ether and the contract's allowance)."""
    if _evm(url):
        acct = _evm_call("balance", url=url, key_file=key)
        if as_json:
            typer.echo(json.dumps(acct, sort_keys=True))
            return
        out.print(f"address   {acct['address']}  (chain {acct['chain_id']})", markup=False)
        out.print(f"balance   {acct['balance']:,} µANM  ether {acct['wei'] / 10**18:.4f}", markup=False)
        out.print(f"allowance {acct['allowance']:,} µANM for the Aicf contract", markup=False)
        return
    with _requester(url, key) as r, reporting(url):
        acct = r.account()
    if as_json:
        typer.echo(json.dumps(acct, sort_keys=True))
        return
    out.print(f"address   {acct['address']}  (chain {acct['chain_id']})", markup=False)
    out.print(f"balance   {acct['balance']:,} µANM", markup=False)
    out.print(f"open jobs {acct['open_jobs']}  waiting transactions {acct['pending']}  next nonce {acct['next_nonce']}")


@request_app.command("cancel")
def cancel_command(
    task_id: Annotated[str, typer.Argument(help="The task id (0x…) of one of your jobs.")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = DEFAULT_KEY,
    as_json: JsonOption = False,
) -> None:
    """Cancel one of your jobs (refunded in full once the cancel is final; a leased job only if its lease
    ends without a proof)."""
    raw = parse_id(task_id)
    with _requester(url, key) as r, reporting(url):
        tx_hash = r.cancel(to_hex(raw))
    if as_json:
        typer.echo(json.dumps({"tx_hash": tx_hash, "task_id": to_hex(raw)}))
    else:
        out.print(f"cancel {tx_hash} sent for {to_hex(raw)}", markup=False)


@request_app.command("status")
def status_command(
    tx_hash: Annotated[str, typer.Argument(help="A transaction hash (0x…).")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = DEFAULT_KEY,
) -> None:
    """Where a transaction is: pending, included (with its task id and job status) or refused (why)."""
    raw = parse_id(tx_hash)
    with _requester(url, key) as r, reporting(url):
        typer.echo(json.dumps(r.transaction(to_hex(raw)), sort_keys=True))


@request_app.command("result")
def result_command(
    task_id: Annotated[str, typer.Argument(help="A task id (0x…).")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = DEFAULT_KEY,
    as_json: JsonOption = False,
) -> None:
    """A job's status, result record, output and money."""
    raw = parse_id(task_id)
    with _requester(url, key) as r, reporting(url):
        _show_record(r.result(to_hex(raw)), as_json)
