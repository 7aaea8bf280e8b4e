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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.testclient import TestClient
from typer.testing import CliRunner

from aicf.bootstrap.cli import app as cli_app
from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client.requester import Requester
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.encoding import to_hex
from aicf.core.operator import OP_TIER
from aicf.core.txs import SignedTx, address_of, encode_signed_tx, tx_signing_digest
from aicf.store.sqlite import SqliteStore

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


def test_cli_grant_set_refuses_a_bad_address_or_allowance_before_connecting() -> None:
    env = {"AICF_OPERATOR_TOKEN": TOKEN}
    bad = CliRunner().invoke(cli_app, ["grant", "set", "0x33", "5", "--url", "http://127.0.0.1:9"], env=env)
    assert bad.exit_code == 2
    assert "expected a 20-byte address" in bad.output
    over = CliRunner().invoke(cli_app, ["grant", "set", "0x" + "33" * 20, str(10**12 + 1), "--url", "http://127.0.0.1:9"],
                              env=env)  # fmt: skip
    assert over.exit_code == 2


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


def test_a_grant_is_set_by_the_operator_and_requested_by_the_requester_over_rpc(world: World) -> None:
    """aicf.setGrant puts the requester's allowance on chain; aicf.requestGrant takes the requester's signed
    ai_enqueue (never sent to the chain by the requester) and answers with the fresh caller; after the trap pass
    sends it, the same request answers with the task id."""
    key = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    requester = address_of(pub)
    assert world.call("aicf.setGrant", {"address": to_hex(requester), "allowance": 10**6}, token=None)["error"]
    world.call("aicf.setGrant", {"address": to_hex(requester), "allowance": 10**6})
    world.call("aicf.fundTraps", {"amount": 10**8})  # the top-up is trap budget: grants and traps share it
    world.block(2)
    body = {"model": "minilm-l6-v2", "prompt": b"granted", "max_tokens": 0, "max_runtime_ms": 2000,
            "fee_per_unit": 20_000, "tier": 0}  # fmt: skip
    chain_id = world.system.devnet.chain_id
    sig = key.sign(tx_signing_digest(chain_id, pub, TxKind.AI_ENQUEUE, 0, body))
    raw = encode_signed_tx(SignedTx(chain_id=chain_id, public_key=pub, nonce=0, kind=TxKind.AI_ENQUEUE, body=body,
                                    sig=sig))  # fmt: skip
    first = world.call("aicf.requestGrant", {"tx": to_hex(raw)})["result"]
    assert (first["state"], first["task_id"]) == ("requested", None)
    world.block(3)
    later = world.call("aicf.requestGrant", {"tx": to_hex(raw)})["result"]
    assert later["caller"] == first["caller"]
    assert later["state"] == "sent"
    assert later["task_id"] is not None
    job = world.call("aicf.getJob", {"id": later["task_id"]})["result"]
    assert job["caller"] == first["caller"]  # the job is the fresh caller's: nothing names the requester
    refused = world.call("aicf.requestGrant", {"tx": to_hex(raw[:-1] + bytes([raw[-1] ^ 1]))})["error"]
    assert "signature" in refused["message"]


class AppRpc:
    """The requester client's RPC seam, answered by the world's app (the same System `aicf up` builds)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        answer = self.world.call(method, params or {}, token=None)
        assert "result" in answer, answer
        return answer["result"]

    def close(self) -> None:
        return None


def test_the_requester_client_asks_for_a_grant_and_follows_it_to_its_result(world: World) -> None:
    key = Ed25519PrivateKey.from_private_bytes(b"\x0a" * 32)
    requester = Requester("http://app", key, client=AppRpc(world))  # type: ignore[arg-type]
    world.call("aicf.setGrant", {"address": to_hex(requester.address), "allowance": 10**6})
    world.call("aicf.fundTraps", {"amount": 10**8})
    world.block(2)
    raw, first = requester.request_grant("minilm-l6-v2", b"sponsored", nonce=1, max_tokens=0, max_runtime_ms=2000)
    assert first["state"] == "requested"
    world.block(3)
    sent = requester.grant_status(raw)
    assert sent["state"] == "sent"
    assert sent["task_id"] is not None
    assert requester.result(sent["task_id"])["status"] in ("PENDING", "QUEUED")
    assert requester.account()["open_jobs"] == 0  # the job is the fresh caller's, not the requester's
