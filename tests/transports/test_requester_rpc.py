"""Issue 12, bad input from outside: a requester's transaction that is forged, replayed, signed for another chain,
malformed, or a cancel of someone else's job gets a specific JSON-RPC error over HTTP, and nothing is stored.

One `build_system` (SQLite in memory, a fixed clock the devnet mines on) behind its real app; requests go through
starlette's TestClient like any HTTP client's.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client.signing import public_key_bytes
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.encoding import canonical_cbor, to_hex
from aicf.core.txs import SignedTx, address_of, encode_signed_tx, tx_signing_digest
from aicf.store.sqlite import SqliteStore

START = 1_800_000_000
ALICE = Ed25519PrivateKey.from_private_bytes(b"\x0a" * 32)
BOB = Ed25519PrivateKey.from_private_bytes(b"\x0b" * 32)


@dataclass
class World:
    system: System
    http: TestClient
    clock: FakeClock

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "method": method, "params": dict(params), "id": 1}
        answer: dict[str, Any] = self.http.post("/rpc", json=body).json()
        return answer

    def tx(
        self, key: Ed25519PrivateKey, kind: TxKind, body: Mapping[str, object], nonce: int | None = None
    ) -> SignedTx:
        pub = public_key_bytes(key)
        if nonce is None:
            nonce = self.call("aicf.getAccount", {"address": to_hex(address_of(pub))})["result"]["next_nonce"]
        chain_id = self.system.devnet.chain_id
        sig = key.sign(tx_signing_digest(chain_id, pub, kind, nonce, body))
        return SignedTx(chain_id=chain_id, public_key=pub, nonce=nonce, kind=kind, body=body, sig=sig)

    def send(self, tx: SignedTx | bytes) -> dict[str, Any]:
        raw = tx if isinstance(tx, bytes) else encode_signed_tx(tx)
        return self.call("aicf.sendTransaction", {"tx": to_hex(raw)})

    def block(self) -> None:
        self.clock.advance(10)
        self.system.tick()

    def state(self) -> tuple[object, ...]:
        with self.system.store.transaction() as tx:
            snapshot = tx.snapshot()
        return snapshot, [p.tx_hash for p in self.system.devnet.mempool], dict(self.system.devnet.account_nonces)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(START)
    config = SystemConfig(var=tmp_path / "var", model_digests={}, devnet_interval_s=10, operator_token="t" * 32)
    system = build_system(SqliteStore(":memory:"), devnet_params(), config, clock=clock)
    with TestClient(system.app) as http:
        w = World(system=system, http=http, clock=clock)
        for key in (ALICE, BOB):
            pub = public_key_bytes(key)
            assert "result" in w.send(w.tx(key, TxKind.DEPOSIT, {"to": address_of(pub), "amount": 10**10}))
        w.block()
        yield w


def ai_body() -> dict[str, object]:
    return {"model": "minilm-l6-v2", "prompt": b"hi", "max_tokens": 4, "max_runtime_ms": 1000,
            "fee_per_unit": 40_000, "tier": 0}  # fmt: skip


def refused(w: World, raw: SignedTx | bytes, code: int, says: str) -> None:
    before = w.state()
    answer = w.send(raw)
    assert "error" in answer, answer
    assert answer["error"]["code"] == code, answer
    assert says in answer["error"]["message"], answer
    assert w.state() == before


def test_a_forged_signature_is_refused_and_stores_nothing(world: World) -> None:
    tx = world.tx(ALICE, TxKind.AI_ENQUEUE, ai_body())
    refused(world, replace(tx, sig=bytes([tx.sig[0] ^ 1]) + tx.sig[1:]), -32041, "signature does not verify")
    refused(world, replace(tx, body={**tx.body, "fee_per_unit": 40_001}), -32041, "signature does not verify")


def test_a_replayed_transaction_is_refused(world: World) -> None:
    tx = world.tx(ALICE, TxKind.AI_ENQUEUE, ai_body())
    assert "result" in world.send(tx)
    refused(world, tx, -32042, "already used")
    world.block()
    refused(world, tx, -32042, "already used")  # included or not, a nonce is used once


def test_a_transaction_signed_for_another_chain_is_refused(world: World) -> None:
    tx = world.tx(ALICE, TxKind.AI_ENQUEUE, ai_body())
    pub = public_key_bytes(ALICE)
    other = replace(tx, chain_id=99, sig=ALICE.sign(tx_signing_digest(99, pub, tx.kind, tx.nonce, tx.body)))
    refused(world, other, -32043, "signed for 99")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xd8\x1c\x81\x01", "tags are not allowed"),  # a shared reference (tag 28)
        (b"\xa0", "exactly the keys"),
        (canonical_cbor([1, 2]), "exactly the keys"),
        (b"\xbf\xff", "indefinite lengths"),
        (canonical_cbor({"chain_id": 1, "public_key": b"", "nonce": 0, "kind": "mint", "body": {}, "sig": b""}),
         "unknown transaction kind"),
    ],
)  # fmt: skip
def test_malformed_transaction_bytes_are_refused_naming_what_is_wrong(world: World, raw: bytes, says: str) -> None:
    refused(world, raw, -32040, says)


def test_a_cancel_of_another_requesters_job_is_refused(world: World) -> None:
    sent = world.send(world.tx(ALICE, TxKind.AI_ENQUEUE, ai_body()))["result"]
    world.block()
    status = world.call("aicf.getTransaction", {"tx_hash": sent["tx_hash"]})["result"]
    assert status["state"] == "included"
    task = bytes.fromhex(status["task_id"][2:])
    refused(world, world.tx(BOB, TxKind.CANCEL, {"task_id": task}), -32040, "belongs to another requester")
    assert "result" in world.send(world.tx(ALICE, TxKind.CANCEL, {"task_id": task}))


def test_a_deposit_over_the_faucet_cap_is_refused(world: World) -> None:
    to = address_of(public_key_bytes(ALICE))
    refused(world, world.tx(ALICE, TxKind.DEPOSIT, {"to": to, "amount": 10**12 + 1}), -32040, "amount")


def test_bad_params_are_invalid_params(world: World) -> None:
    answer = world.call("aicf.sendTransaction", {"tx": "0xzz"})
    assert answer["error"]["code"] == -32602
    answer = world.call("aicf.getAccount", {"address": "0x" + "00" * 19})
    assert answer["error"]["code"] == -32602
    assert "20 bytes" in answer["error"]["message"]
