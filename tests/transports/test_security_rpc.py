"""Issue 15, part A: the security review's findings against the real methods, each refused with a specific error
and nothing stored. One system per test: `build_system` on a memory store with a stepped clock."""

import time
from pathlib import Path
from typing import Any

import pytest
from proofs.test_untrusted_cbor import shared_reference_bomb
from starlette.testclient import TestClient

from aicf.client.signing import public_key_bytes
from aicf.core.encoding import canonical_cbor, to_hex
from aicf.service.coordinator import Capabilities
from aicf.store.memory import MemoryStore
from aicf.system import System, build_system, devnet_params
from transports.helpers import key, pid, signed
from transports.test_cli_ops import SteppedClock

T = 1_700_000_000
MAX = 2**63 - 1
TOKEN = "sec-rpc-operator-token"  # noqa: S105 - a test fixture


@pytest.fixture
def system(tmp_path: Path) -> System:
    return build_system(
        MemoryStore(), devnet_params(), var=tmp_path, model_digests={}, clock=SteppedClock(T), operator_token=TOKEN
    )


def rpc(system: System, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(system.app) as client:
        answer: dict[str, Any] = client.post("/rpc", json=body, headers=headers).json()
    return answer


def call(system: System, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return rpc(system, {"jsonrpc": "2.0", "method": method, "params": params, "id": 1})


def operator(system: System, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return rpc(system, {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}, token=TOKEN)


def provider(system: System, method: str, params: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    return rpc(system, signed(method, params, signer=key(seed), ts=system.clock.now()))


def enroll(system: System, seed: int = 1, stake: int = 10_000) -> bytes:
    """A provider registered in-process, with `stake` bonded by the operator."""
    system.coord.register(public_key_bytes(key(seed)), Capabilities(kinds=("quantum",), devices=("stim",)))
    system.coord.deposit_stake(pid(key(seed)), stake, source="external")
    return pid(key(seed))


def fields(answer: dict[str, Any]) -> list[str]:
    return [e["field"] for e in answer["error"].get("data", {}).get("errors", [])]


# -- 1. CBOR shared-reference bomb --------------------------------------------------------------------------------
def test_submit_proof_refuses_a_shared_reference_bomb_quickly_as_invalid_params(system: System) -> None:
    me = enroll(system)
    head = canonical_cbor({"provider_id": me})  # {provider_id: …}; the bomb goes in as a second key, "body"
    envelope = b"\xa2" + head[1:] + canonical_cbor("body")[0:] + shared_reference_bomb(18)
    started = time.perf_counter()
    answer = provider(system, "aicf.submitProof", {"envelope": to_hex(envelope)})
    assert time.perf_counter() - started < 1.0
    assert answer["error"]["code"] == -32602
    assert fields(answer) == ["envelope"]
    assert "CBOR tag 28 is not allowed" in answer["error"]["data"]["errors"][0]["reason"]


# -- 2. integer overflow into the ledger ---------------------------------------------------------------------------
def test_fund_provider_that_would_pass_2_63_is_refused_and_balances_stay_readable(system: System) -> None:
    me = enroll(system, stake=1)
    first = operator(system, "aicf.fundProvider", {"provider_id": to_hex(me), "amount": MAX - 1})
    assert first["result"]["bonded_stake"] == MAX
    again = operator(system, "aicf.fundProvider", {"provider_id": to_hex(me), "amount": MAX})
    assert again["error"]["code"] == -32017
    assert "would leave the range" in again["error"]["message"]
    balance = call(system, "aicf.getBalance", {"account": "stake:" + to_hex(me)})
    assert balance["result"]["balance"] == MAX
    shown = call(system, "aicf.getProvider", {"id": to_hex(me)})["result"]
    assert shown["bonded_stake"] == MAX
