"""The operator CLI (`aicf providers|jobs|job|epoch|audit payout|devnet reorg`) against a real coordinator API.

One module-wide history: `build_system` on SQLite :memory: with a fake clock (the devnet mines on it), served by
uvicorn on 127.0.0.1 and a free port; an in-process honest provider (the reference agent with echo work)
registers, heartbeats and answers its leases over JSON-RPC while the test ticks the coordinator through
enough blocks to settle a few epochs. Each command runs through typer's CliRunner against that URL.
"""

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from store.backends import memory_store
from threaded_server import serve_in_thread
from typer.testing import CliRunner, Result

from aicf.bootstrap.cli import app as cli_app
from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client import RpcClient, RpcError
from aicf.client.clock import WallClock
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.encoding import tagged_hash, to_hex
from aicf.core.params import params_hash
from aicf.provider.agent import AgentConfig, ProviderAgent
from aicf.provider.work_ai import EchoAiWork, echo_model_digest
from aicf.service import reads
from aicf.service.audit import verify
from aicf.transports import fmt
from aicf.transports.history import CHARTS
from transports.helpers import scrape

START = 1_767_225_600  # 2026-01-01T00:00:00Z
TOKEN = "cli-ops-operator-token"  # noqa: S105 - a test fixture
MODEL = "llama3-8b"
ECHO_MS = 500  # how long the echo work takes on the fake clock
REQUESTER = tagged_hash("aicf/test/requester/v1", 1)[:20]
ENV = {"COLUMNS": "220", "AICF_URL": "", "AICF_OPERATOR_TOKEN": ""}


class SteppedClock(WallClock):
    """The system's clock, told what time it is (the devnet mines a block per 10 s of it)."""

    def __init__(self, now: int) -> None:
        self.fixed = FakeClock(now)

    def now(self) -> int:
        return self.fixed.now()

    def now_ms(self) -> int:
        return self.fixed.now_ms()


@dataclass
class Running:
    system: System
    url: str
    clock: SteppedClock
    agent: ProviderAgent
    enqueues: list[bytes]  # the enqueue transactions' hashes

    def step(self) -> None:
        """10 s pass: the devnet mines, the coordinator ingests, settles, sweeps and matches; the provider works."""
        self.clock.fixed.advance(ms=10_000 - ECHO_MS)
        self.system.tick()
        self.agent.heartbeat()
        self.clock.fixed.advance(ms=ECHO_MS)  # the echo work's runtime: AI pay follows the time the coordinator saw
        for offer in self.agent.take_leases():
            self.agent.serve(offer, self.clock)

    def enqueue(self, n: int) -> None:
        with self.system.chain_lock:
            for _ in range(n):
                body = {"model": MODEL, "prompt": b"prompt %d" % len(self.enqueues), "max_tokens": 8,
                        "max_runtime_ms": 20_000, "fee_per_unit": 40_000, "tier": 0}  # fmt: skip
                self.enqueues.append(self.system.devnet.submit(REQUESTER, TxKind.AI_ENQUEUE, body))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    clock = SteppedClock(START)
    system = build_system(
        memory_store(),
        devnet_params(),
        SystemConfig(
            var=tmp_path_factory.mktemp("var"),
            model_digests={MODEL: echo_model_digest(MODEL)},
            devnet_interval_s=10,
            operator_token=TOKEN,
        ),
        clock=clock,
    )
    with serve_in_thread(system.app, name="cli-ops-api", lifespan="on") as listening:
        yield from _history(system, clock, listening.url)


def _history(system: System, clock: SteppedClock, url: str) -> Iterator[Running]:
    key = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    client = RpcClient(url + "/rpc", provider_key=key, operator_token=TOKEN, clock=clock)
    agent = ProviderAgent(
        client,
        key,
        AgentConfig(kinds=("ai",), models=(MODEL,), max_leases=4),
        [EchoAiWork((MODEL,), runtime_ms=ECHO_MS)],
    )
    run = Running(system=system, url=url, clock=clock, agent=agent, enqueues=[])
    try:
        with system.chain_lock:
            system.devnet.submit(REQUESTER, TxKind.DEPOSIT, {"to": REQUESTER, "amount": 10**12})
        agent.fund(10_000_000_000)  # minted into its account: registration bonds it (issue 15)
        agent.register()
        run.enqueue(5)
        for n in range(66):  # 660 s: epochs 0..5 on 120-s epochs, 0..4 settled
            if n == 3:  # an operator params change in epoch 0: epoch 1's batches pay base_rate_ai 16000
                sent = cli("params", "set", "base_rate_ai=16000", "--url", url, AICF_OPERATOR_TOKEN=TOKEN)
                assert sent.exit_code == 0, sent.output
            if n == 6:
                run.enqueue(4)
            run.step()
        yield run
    finally:
        client.close()


def cli(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli_app, list(args), env={**ENV, **env})


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def settled_payouts(run: Running) -> list[dict[str, Any]]:
    out = []
    last = reads.status(run.system.store, run.clock.now(), run.system.params).last_settled_epoch
    for epoch in range((last or 0) + 1):
        out.extend(as_json(cli("epoch", str(epoch), "--url", run.url, "--json"))["payouts"])
    return out


@pytest.mark.slow
def test_the_history_settled_payouts(running: Running) -> None:
    status = reads.status(running.system.store, running.clock.now(), running.system.params)
    assert status.last_settled_epoch is not None
    assert status.last_settled_epoch >= 3
    assert len(settled_payouts(running)) == len(running.enqueues) == 9


@pytest.mark.slow
def test_providers_lists_the_provider_with_stake_and_qos(running: Running) -> None:
    items = as_json(cli("providers", "--url", running.url, "--json"))
    assert [p["provider_id"] for p in items] == [to_hex(running.agent.provider_id)]
    assert items[0]["status"] == "ACTIVE"
    assert items[0]["bonded_stake"] == 10_000_000_000
    human = cli("providers", "--url", running.url)
    assert human.exit_code == 0, human.output
    assert to_hex(running.agent.provider_id) in human.stdout
    assert fmt.anm(10_000_000_000) in human.stdout  # "10,000 ANM", as the dashboard shows it


@pytest.mark.slow
def test_jobs_pages_through_every_job_and_filters_by_status(running: Running) -> None:
    every = as_json(cli("jobs", "--url", running.url, "--json", "--page-size", "2"))
    assert len(every) == 9
    assert len({j["task_id"] for j in every}) == 9
    assert as_json(cli("jobs", "--url", running.url, "--json")) == every
    settled = as_json(cli("jobs", "-s", "settled", "--status", "SETTLED", "--url", running.url, "--json"))
    assert settled == [j for j in every if j["status"] == "SETTLED"]
    assert settled
    assert as_json(cli("jobs", "--status", "CANCELLED", "--url", running.url, "--json")) == []
    assert len(as_json(cli("jobs", "--limit", "3", "--page-size", "2", "--url", running.url, "--json"))) == 3
    human = cli("jobs", "--url", running.url)
    assert human.exit_code == 0
    assert f"settled {len(settled)}" in human.stdout


@pytest.mark.slow
def test_job_tells_the_whole_story(running: Running) -> None:
    job = as_json(cli("jobs", "-s", "SETTLED", "--limit", "1", "--url", running.url, "--json"))[0]
    story = as_json(cli("job", job["task_id"], "--url", running.url, "--json"))
    assert [t["to"] for t in story["transitions"]][-4:] == ["LEASED", "SUBMITTED", "VERIFIED", "SETTLED"]
    assert story["decisions"][0]["winner"] == to_hex(running.agent.provider_id)
    assert story["leases"]
    assert story["proofs"][0]["verdict"] == "ACCEPT"
    assert story["result"]["units_mu"] == story["payout"]["units_mu"] > 0
    human = cli("job", job["task_id"], "--url", running.url)
    assert human.exit_code == 0, human.output
    for heading in ("receipt", "transitions", "assignment decision, attempt 0", "WINNER", "lease attempts",
                    "proof verdicts", "result", "payout", story["payout"]["payout_id"]):  # fmt: skip
        assert heading in human.stdout, heading


@pytest.mark.slow
def test_epoch_shows_the_batch_with_split_totals(running: Running) -> None:
    batch = as_json(cli("epoch", "0", "--url", running.url, "--json"))
    payouts = batch["payouts"]
    for key in ("reward", "provider", "miner", "fund", "units_mu", "charged"):
        assert batch["totals"][key] == sum(p[key] for p in payouts)
    human = cli("epoch", "0", "--url", running.url)
    assert human.exit_code == 0, human.output
    assert batch["root"] in human.stdout
    assert "split totals" in human.stdout
    assert fmt.anm(batch["totals"]["reward"]) in human.stdout


@pytest.mark.slow
def test_audit_passes_on_a_real_payout_by_payout_or_task_id(running: Running) -> None:
    payout = settled_payouts(running)[-1]
    report = as_json(cli("audit", "payout", payout["payout_id"], "--url", running.url, "--json"))
    assert report["ok"] is True
    assert report["failed"] == []
    assert {c["name"] for c in report["checks"]} >= {"payout_id", "params_hash", "reward", "root", "in batch"}
    assert report["params_version"] == 1  # the devnet.toml plus the operator's on-chain change of epoch 0
    (change,) = report["params_changes"]
    assert change.startswith("0x")
    assert payout["base_rate"] == 16000
    assert payout["params_hash"] != to_hex(params_hash(devnet_params()))
    by_task = cli("audit", "payout", payout["task_id"], "--url", running.url)
    assert by_task.exit_code == 0, by_task.output
    assert "checks pass" in by_task.stdout


@pytest.mark.slow
def test_audit_fails_naming_the_field_when_the_params_differ(running: Running, tmp_path: Path) -> None:
    payout = settled_payouts(running)[0]
    devnet_toml = (Path(__file__).resolve().parents[2] / "aicf" / "devnet.toml").read_text(encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text("base_rate_ai = 16000\n" + devnet_toml, encoding="utf-8")
    result = cli("audit", "payout", payout["payout_id"], "--params", str(other), "--url", running.url, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {"params_hash", "batch params_hash", "base_rate", "reward"} <= set(report["failed"])
    assert "aicf/devnet.toml" in report["hint"]
    base = next(c for c in report["checks"] if c["name"] == "base_rate")
    assert (base["expected"], base["actual"]) == (16000, 15000)
    human = cli("audit", "payout", payout["payout_id"], "--params", str(other), "--url", running.url)
    assert human.exit_code == 1
    assert "MISMATCH" in human.stdout
    assert "base_rate" in human.stdout


@pytest.mark.slow
def test_audit_of_an_unknown_payout_fails(running: Running) -> None:
    result = cli("audit", "payout", "0x" + "ab" * 32, "--url", running.url)
    assert result.exit_code == 1
    assert "no payout 0x" + "ab" * 32 in result.stderr


def private_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.slow
def test_devnet_reorg_replaces_blocks_and_the_coordinator_follows(running: Running, tmp_path: Path) -> None:
    before = running.system.devnet.head_height()
    token_file = str(private_file(tmp_path / "operator.token", TOKEN))
    result = cli("devnet", "reorg", "--depth", "3", "--url", running.url, "--operator-token-file", token_file, "--json")
    outcome = as_json(result)
    assert outcome["head_height"] == before
    assert len(outcome["orphaned"]) == len(outcome["branch"]) == 3
    assert outcome["orphaned"][-1] != outcome["head_hash"]
    running.step()  # the coordinator ingests the new branch
    with running.system.store.transaction() as tx:
        head = tx.head_block()
    devnet_head = running.system.devnet.head_height()
    assert head is not None
    assert (head.height, to_hex(head.hash)) == (devnet_head, devnet_head_hash(running))
    assert to_hex(head.hash) not in outcome["orphaned"]
    assert verify(running.system.store).ok
    human = cli("devnet", "reorg", "--depth", "1", "--url", running.url, AICF_OPERATOR_TOKEN=TOKEN)
    assert human.exit_code == 0, human.output
    assert f"new head #{devnet_head} {devnet_head_hash(running)}" in human.stdout
    wrong_file = str(private_file(tmp_path / "wrong.token", "wrong"))
    wrong = cli("devnet", "reorg", "--depth", "1", "--url", running.url, "--operator-token-file", wrong_file)
    assert wrong.exit_code == 1
    assert "operator" in wrong.stderr.lower()


def devnet_head_hash(run: Running) -> str:
    block = run.system.devnet.block_at(run.system.devnet.head_height())
    assert block is not None
    return to_hex(block.hash)


@pytest.mark.slow
def test_heartbeat_naming_a_lease_checks_it_over_rpc(running: Running) -> None:
    client = running.agent.client
    before = client.call_provider("aicf.heartbeat", {})
    with pytest.raises(RpcError) as refused:
        client.call_provider("aicf.heartbeat", {"lease_ids": ["0x" + "00" * 32]})
    assert refused.value.code == -32011
    assert f"lease 0x{'00' * 32} is unknown" in refused.value.message
    with pytest.raises(RpcError) as malformed:
        client.call_provider("aicf.heartbeat", {"lease_ids": ["0x12"]})
    assert malformed.value.code == -32602  # invalid params, naming the field
    assert "lease_ids" in malformed.value.message
    assert before["leases"] == []  # the history's leases are all proved
    running.enqueue(1)
    held: list[str] = []
    for _ in range(12):  # the job becomes QUEUED at finality and is leased; the agent does not serve it yet
        running.clock.fixed.advance(10)
        running.system.tick()
        held = client.call_provider("aicf.heartbeat", {})["leases"]
        if held:
            break
    assert len(held) == 1, "the enqueued job was leased to the only provider"
    assert client.call_provider("aicf.heartbeat", {"lease_ids": held})["leases"] == held  # its own live lease
    running.step()  # served and proved: the history ends with no live lease again


@pytest.mark.parametrize(
    "args",
    [
        ("job", "0x1234"),
        ("job", "not-hex"),
        ("jobs", "--status", "DONE"),
        ("epoch", "-1"),
        ("epoch", "one"),
        ("devnet", "reorg", "--depth", "7"),
        ("devnet", "reorg", "--depth", "0"),
        ("devnet", "reorg", "--depth", "2"),
        ("devnet", "reorg", "--depth", "2", "--token", "t"),
        ("devnet", "reorg", "--depth", "2", "--operator-token", "t"),
        ("audit", "payout"),
        ("audit", "payout", "0x" + "00" * 32, "--params", "/nonexistent/params.toml"),
        ("providers", "--bogus"),
    ],
)
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    result = cli(*args, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output


def test_an_unreachable_coordinator_exits_1_saying_what_to_do() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: the connection is refused
        for args in (("providers",), ("jobs",), ("epoch", "0"), ("audit", "payout", "0x" + "11" * 32)):
            result = cli(*args, "--url", f"http://127.0.0.1:{port}")
            assert result.exit_code == 1, result.output
            assert "cannot reach the coordinator" in result.stderr
            assert "aicf up" in result.stderr


@pytest.mark.slow
def test_an_epoch_not_settled_yet_exits_1(running: Running) -> None:
    result = cli("epoch", "99", "--url", running.url)
    assert result.exit_code == 1
    assert "epoch 99 is not settled" in result.stderr
    assert "last settled epoch is" in result.stderr
    missing = cli("job", "0x" + "cd" * 32, "--url", running.url)
    assert missing.exit_code == 1
    assert "aicf jobs" in missing.stderr


# ---- what the dashboard reads (issue 17) ---------------------------------------------------------------------


def test_list_jobs_names_the_provider_of_each_leased_job(running: Running) -> None:
    """docs/DASHBOARD.md: Live jobs' Provider column is listJobs' provider_id (the latest lease's provider)."""
    every = as_json(cli("jobs", "--url", running.url, "--json"))
    assert every
    assert {j["provider_id"] for j in every} == {to_hex(running.agent.provider_id)}
    story = as_json(cli("job", every[0]["task_id"], "--url", running.url, "--json"))
    assert story["provider_id"] == story["leases"][-1]["provider_id"]


def test_get_epoch_reports_the_cap_use_metrics_reports(running: Running) -> None:
    metrics = httpx.get(running.url + "/metrics").text
    for epoch in range(2):
        batch = as_json(cli("epoch", str(epoch), "--url", running.url, "--json"))
        expected = batch["totals"]["units_mu"] * 10_000 // running.system.params.gamma_mu
        assert batch["cap_use_bps"] == expected
        assert scrape(metrics, "aicf_epoch_cap_use_bps")[(("epoch", str(epoch)),)] == expected


# ---- tables that fit the terminal (issue 17) -----------------------------------------------------------------


def table_lines(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("columns", [80, 200])
def test_providers_fit_the_terminal_and_show_each_kept_cell_whole(running: Running, columns: int) -> None:
    p = as_json(cli("providers", "--url", running.url, "--json"))[0]
    lines = table_lines(cli("providers", "--url", running.url, COLUMNS=str(columns)))
    assert max(len(line) for line in lines) <= columns
    body = "\n".join(lines)
    for cell in ("ACTIVE", fmt.anm(p["bonded_stake"]), fmt.pct(p["availability_bps"]), "status", "bonded"):
        assert cell in body, f"{cell!r} cut or dropped at {columns} columns:\n{body}"
    assert "…" not in body.replace(short_id(p["provider_id"]), "")  # no cell cut, only the id shortened
    if columns == 200:
        assert p["provider_id"] in body
        for header in ("serves", "leases", "accepted", "slashes", "p50/p95 ms", "avail", "last heartbeat"):
            assert header in body, header


def test_providers_wide_shows_every_column_and_json_the_machine_form(running: Running) -> None:
    p = as_json(cli("providers", "--url", running.url, "--json"))[0]
    wide = cli("providers", "--url", running.url, "--wide", COLUMNS="80")
    body = "\n".join(table_lines(wide))
    for header in ("provider", "status", "serves", "bonded", "leases", "accepted", "slashes", "avail", "heartbeat"):
        assert header in body, header
    assert p["provider_id"] in body
    narrow = cli("providers", "--url", running.url, COLUMNS="80")
    assert "--wide" in narrow.stderr  # says which columns were left out and how to see them


@pytest.mark.parametrize("columns", [80, 200])
def test_jobs_fit_the_terminal_with_provider_and_units(running: Running, columns: int) -> None:
    jobs = as_json(cli("jobs", "--url", running.url, "--json"))
    lines = table_lines(cli("jobs", "--url", running.url, COLUMNS=str(columns)))
    assert max(len(line) for line in lines) <= columns
    body = "\n".join(lines)
    for j in jobs:
        assert (j["task_id"] if columns == 200 else short_id(j["task_id"])) in body
        assert j["status"] in body
    if columns == 200:
        assert fmt.units(jobs[0]["max_units_mu"]) in body
        assert jobs[0]["provider_id"] in body


@pytest.mark.parametrize("command", [["providers"], ["jobs"], ["epoch", "0"]])
def test_a_list_table_says_its_ids_are_shortened_only_when_they_are(running: Running, command: list[str]) -> None:
    narrow = cli(*command, "--url", running.url, COLUMNS="80")
    wide = cli(*command, "--url", running.url, "--wide", COLUMNS="80")
    assert (narrow.exit_code, wide.exit_code) == (0, 0)
    assert "ids shortened" in narrow.stderr
    assert "ids shortened" not in wide.stderr  # --wide prints whole ids


@pytest.mark.parametrize("columns", [80, 200])
def test_epoch_fits_the_terminal_with_units_and_anm_as_the_dashboard_shows(running: Running, columns: int) -> None:
    batch = as_json(cli("epoch", "0", "--url", running.url, "--json"))
    lines = table_lines(cli("epoch", "0", "--url", running.url, COLUMNS=str(columns)))
    assert max(len(line) for line in lines) <= columns
    body = "\n".join(lines)
    assert fmt.units(batch["totals"]["units_mu"]) in body
    assert fmt.anm(batch["totals"]["reward"]) in body
    assert fmt.pct(batch["cap_use_bps"]) in body


def short_id(value: str) -> str:
    return f"{value[:14]}…{value[-4:]}"


# ---- charts (issue 17) ---------------------------------------------------------------------------------------


def test_report_writes_the_charts_the_dashboard_shows(running: Running, tmp_path: Path) -> None:
    result = cli("report", "--out", str(tmp_path / "report"), "--url", running.url)
    assert result.exit_code == 0, result.output
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "report").iterdir()}
    assert set(written) == {f"{name}.svg" for name in CHARTS}
    for name, svg in written.items():
        assert svg == httpx.get(f"{running.url}/charts/{name}").text  # the same figure (the clock stands still)
    jobs = ET.fromstring(written["jobs.svg"])  # noqa: S314 - our own output
    series = {el.attrib["data-series"]: el.attrib["points"] for el in jobs.iter("{http://www.w3.org/2000/svg}polyline")}
    assert {"enqueued", "leased", "verified", "settled"} <= set(series)
    assert len(series["leased"].split()) > 10  # one point per 10-s pass of the history
    payouts = written["payouts.svg"]
    assert 'data-bar="0"' in payouts
    assert 'data-part="provider"' in payouts


def test_report_without_a_coordinator_exits_1(tmp_path: Path) -> None:
    result = cli("report", "--out", str(tmp_path / "r"), "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "cannot read the charts" in result.stderr


@pytest.mark.slow
def test_status_shows_the_params_version_and_the_operator_change_applied(running: Running) -> None:
    status = as_json(cli("status", "--url", running.url, "--json"))
    operator = status["operator"]
    assert operator["params_version"] == 1
    (change,) = [c for c in operator["applied"] if c["op"] == "params"]
    assert (change["before"], change["after"], change["effective_epoch"]) == (
        {"base_rate_ai": 15000},
        {"base_rate_ai": 16000},
        1,
    )
    human = cli("status", "--url", running.url)
    assert human.exit_code == 0, human.output
    assert f"params version 1 {operator['params_hash']}" in human.stdout
    assert "base_rate_ai=15000" in human.stdout
    assert "base_rate_ai=16000" in human.stdout
