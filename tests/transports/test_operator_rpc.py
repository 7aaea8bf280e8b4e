"""Operator transactions over JSON-RPC and the CLI (issue 17 item 7): aicf.setParams / setTier / setAllowlist /
fundTraps build, sign and send an operator transaction and return its hash; getStatus shows it pending, then
applied; bad input gets a specific error and nothing is sent.

One `build_system` (SQLite in memory, a fake clock the devnet mines on) behind its real app, through starlette's
TestClient; the CLI's refusals before sending are checked with typer's CliRunner (no server needed).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.encoding import to_hex
from aicf.core.operator import OP_TIER
from aicf.store.sqlite import SqliteStore
from aicf.transports.cli import app as cli_app

START = 1_800_000_000
TOKEN = "t" * 32
ADDRESS = b"\x33" * 20


@dataclass
class World:
    system: System
    http: TestClient
    clock: FakeClock

    def call(self, method: str, params: Mapping[str, Any], token: str | None = TOKEN) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "method": method, "params": dict(params), "id": 1}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer: dict[str, Any] = self.http.post("/rpc", json=body, headers=headers).json()
        return answer

    def block(self, n: int = 1) -> None:
        for _ in range(n):
            self.clock.advance(10)
            self.system.tick()

    def mempool(self) -> list[bytes]:
        return [p.tx_hash for p in self.system.devnet.mempool]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(START)
    config = SystemConfig(var=tmp_path / "var", model_digests={}, devnet_interval_s=10, operator_token=TOKEN,
                          trap_corpus=())  # fmt: skip
    system = build_system(SqliteStore(":memory:"), devnet_params(), config, clock=clock)
    with TestClient(system.app) as http:
        w = World(system=system, http=http, clock=clock)
        w.block()
        yield w


def test_set_tier_sends_an_operator_transaction_that_sets_the_tier_once_included(world: World) -> None:
    answer = world.call("aicf.setTier", {"address": to_hex(ADDRESS), "tier": 2})
    sent = answer["result"]
    assert sent["op"] == OP_TIER
    assert bytes.fromhex(sent["tx_hash"][2:]) in world.mempool()
    world.block(2)
    with world.system.store.transaction() as tx:
        assert tx.requester_tier(ADDRESS) == 2
    status = world.call("aicf.getTransaction", {"tx_hash": sent["tx_hash"]})["result"]
    assert status["state"] == "included"
    applied = world.call("aicf.getStatus", {})["result"]["operator"]["applied"]
    tiers = [c for c in applied if c["op"] == "tier"]
    assert [(c["subject"], c["before"], c["after"]) for c in tiers] == [(to_hex(ADDRESS), 0, 2)]


def test_set_params_is_pending_until_the_next_epoch(world: World) -> None:
    sent = world.call("aicf.setParams", {"changes": {"trap_bps": 250}})["result"]
    world.block(2)
    operator = world.call("aicf.getStatus", {})["result"]["operator"]
    assert operator["params_version"] == 0
    assert operator["next_params_version"] == 1
    (pending,) = [c for c in operator["pending"] if c["op"] == "params"]
    assert pending["tx_hash"] == sent["tx_hash"]
    assert pending["after"] == {"trap_bps": 250}
    assert pending["effective_epoch"] == operator["epoch"] + 1


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("aicf.setParams", {"changes": {"gamma_unit": 5}}, "changes.gamma_unit"),
        ("aicf.setParams", {"changes": {"trap_bps": "high"}}, "changes.trap_bps"),
        ("aicf.setParams", {"changes": {"epoch_seconds": 10}}, "changes.epoch_seconds"),
        ("aicf.setParams", {"changes": {"provider_bps": 9000}}, "changes.provider_bps"),
        ("aicf.fundTraps", {"amount": 5, "to": to_hex(ADDRESS)}, "amount"),
    ],
)
def test_bad_operator_input_is_refused_with_the_field_and_nothing_is_sent(
    world: World, method: str, params: dict[str, Any], field: str
) -> None:
    before = world.mempool()
    error = world.call(method, params)["error"]
    assert error["code"] == -32013
    assert error["message"].startswith(f"request rejected: {field}: "), error
    assert world.mempool() == before


def test_operator_methods_need_the_operator_token(world: World) -> None:
    before = world.mempool()
    error = world.call("aicf.setTier", {"address": to_hex(ADDRESS), "tier": 1}, token=None)["error"]
    assert "operator" in error["message"].lower()
    assert world.mempool() == before


def test_gamma_below_the_largest_unsettled_job_is_refused_before_sending(world: World) -> None:
    world.system.devnet.submit(ADDRESS, TxKind.DEPOSIT, {"to": ADDRESS, "amount": 10**12})
    body = {"model": "minilm-l6-v2", "prompt": b"x", "max_tokens": 0, "max_runtime_ms": 600_000,
            "fee_per_unit": 100_000, "tier": 0}  # fmt: skip
    world.system.devnet.submit(ADDRESS, TxKind.AI_ENQUEUE, body)
    world.block(2)
    with world.system.store.transaction() as tx:
        largest = tx.max_unsettled_units()
    assert largest > 1000
    before = world.mempool()
    error = world.call("aicf.setParams", {"changes": {"gamma_units": 1}})["error"]
    assert error["message"] == (
        f"request rejected: changes.gamma_units: Γ × 1000 = 1000 is below the largest max_units_mu of an unsettled "
        f"job ({largest}); SPEC §5 refuses it"
    )
    assert world.mempool() == before
    assert "result" in world.call("aicf.setParams", {"changes": {"gamma_units": largest // 1000 + 1}})


def test_cli_params_set_refuses_an_unknown_key_before_connecting() -> None:
    result = CliRunner().invoke(
        cli_app, ["params", "set", "gamma_unit=5", "--url", "http://127.0.0.1:9"], env={"AICF_OPERATOR_TOKEN": TOKEN}
    )
    assert result.exit_code == 2
    assert "gamma_unit: unknown key (did you mean 'gamma_units'?)" in result.output


def test_cli_params_set_refuses_an_ill_typed_value_before_connecting() -> None:
    result = CliRunner().invoke(
        cli_app, ["params", "set", "trap_bps=true", "--url", "http://127.0.0.1:9"], env={"AICF_OPERATOR_TOKEN": TOKEN}
    )
    assert result.exit_code == 2
    assert "trap_bps: expected an integer" in result.output


def test_cli_tier_set_without_a_token_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli_app, ["tier", "set", "0x" + "33" * 20, "2", "--url", "http://127.0.0.1:9"], env={})
    assert result.exit_code == 2
    assert "needs the operator token" in result.output


def test_on_a_chain_without_operator_transactions_the_senders_say_why_and_getparams_still_answers() -> None:
    """A registry without an operator writer: aicf.getParams serves the params of an epoch (audit payout needs it); the
    senders answer why they cannot send instead of 'method not found'."""
    from aicf.transports.methods_operator import OperatorTxUnsupportedError, operator_methods
    from aicf.transports.rpc import CallContext

    methods = {m.name: m for m in operator_methods(None, lambda epoch: {"epoch": epoch, "version": 0})}
    ctx = CallContext(method="aicf.setParams")
    get = methods["aicf.getParams"]
    assert get.handler(get.params_model.model_validate({"epoch": 3}), ctx) == {"epoch": 3, "version": 0}
    send = methods["aicf.setParams"]
    with pytest.raises(OperatorTxUnsupportedError, match=r"^params: this node's chain takes no operator"):
        send.handler(send.params_model.model_validate({"changes": {"trap_bps": 400}}), ctx)
