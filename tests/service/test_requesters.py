"""Issue 12: a requester's transaction is checked before it reaches the mempool as ingestion would check it at the
next block; every refusal names the field and stores nothing, and a transaction is followed to its job."""

from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.client.signing import public_key_bytes
from aicf.core.chain import TxKind
from aicf.core.errors import RequestError
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.txs import SignedTx, TxError, address_of, tx_signing_digest
from aicf.service import requesters
from aicf.service.ingest import ingest_available
from aicf.store.sqlite import SqliteStore

P = Params.default()
ALICE = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
BOB = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
BELL = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'


class World:
    def __init__(self) -> None:
        self.store = SqliteStore(":memory:")
        self.net = Devnet(DevnetConfig())

    def tx(self, key: Ed25519PrivateKey, kind: TxKind, body: Mapping[str, object]) -> SignedTx:
        pub = public_key_bytes(key)
        nonce = self.net.next_nonce(address_of(pub))
        sig = key.sign(tx_signing_digest(self.net.chain_id, pub, kind, nonce, body))
        return SignedTx(chain_id=self.net.chain_id, public_key=pub, nonce=nonce, kind=kind, body=body, sig=sig)

    def send(self, key: Ed25519PrivateKey, kind: TxKind, body: Mapping[str, object]) -> bytes:
        return requesters.send_transaction(self.store, self.net, P, self.tx(key, kind, body), circuit_depth)

    def block(self) -> None:
        self.net.mine(1)
        ingest_available(self.store, self.net, P, circuit_depth)

    def fund(self, key: Ed25519PrivateKey, amount: int) -> None:
        self.send(key, TxKind.DEPOSIT, {"to": address_of(public_key_bytes(key)), "amount": amount})
        self.block()

    def snapshot(self) -> tuple[object, ...]:
        with self.store.transaction() as tx:
            snap = tx.snapshot()
        return (snap, [p.tx_hash for p in self.net.mempool], dict(self.net.account_nonces))


def ai(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "llama3-8b",
        "prompt": b"hello",
        "max_tokens": 8,
        "max_runtime_ms": 1000,
        "fee_per_unit": 20_000,
        "tier": 0,
    }
    body.update(over)
    return body


def test_an_enqueue_is_followed_from_pending_to_its_job() -> None:
    w = World()
    w.fund(ALICE, 10**9)
    tx_hash = w.send(ALICE, TxKind.AI_ENQUEUE, ai())
    assert requesters.transaction_status(w.store, w.net, tx_hash).state == "pending"
    w.block()
    status = requesters.transaction_status(w.store, w.net, tx_hash)
    assert status.state == "included"
    assert len(status.jobs) == 1
    assert status.jobs[0].caller == address_of(public_key_bytes(ALICE))
    outcome = requesters.request_outcome(w.store, status.jobs[0].task_id)
    assert outcome is not None
    assert (outcome.final, outcome.charged, outcome.result) == (False, None, None)
    assert requesters.transaction_status(w.store, w.net, b"\x09" * 32).state == "unknown"


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        (TxKind.AI_ENQUEUE, ai(model="gpt-9"), "model"),
        (TxKind.AI_ENQUEUE, ai(prompt=b"x" * (64 * 1024 + 1)), "prompt"),
        (TxKind.AI_ENQUEUE, ai(max_runtime_ms=0), "max_runtime_ms"),
        (TxKind.AI_ENQUEUE, ai(fee_per_unit=1), "fee_per_unit"),
        (TxKind.AI_ENQUEUE, ai(tier=2), "tier"),
        (TxKind.AI_ENQUEUE, ai(max_runtime_ms=600_000, fee_per_unit=10**9), "escrow"),  # too little balance
        (
            TxKind.QUANTUM_ENQUEUE,
            {"circuit": b"OPENQASM 2.0; nonsense", "shots": 10, "fee_per_unit": 10**5, "tier": 0},
            "circuit",
        ),
        (TxKind.QUANTUM_ENQUEUE, {"circuit": BELL, "shots": 0, "fee_per_unit": 10**5, "tier": 0}, "shots"),
        (TxKind.CANCEL, {"task_id": b"\x07" * 32}, "task_id"),  # no such job
        (TxKind.DEPOSIT, {"to": b"\x01" * 20, "amount": 10**12 + 1}, "amount"),
        (TxKind.DEPOSIT, {"to": b"\x01" * 5, "amount": 1}, "to"),
    ],
)
def test_a_refused_transaction_names_the_field_and_stores_nothing(
    kind: TxKind, body: dict[str, object], field: str
) -> None:
    w = World()
    w.fund(ALICE, 10**9)
    before = w.snapshot()
    with pytest.raises((RequestError, TxError)) as caught:
        w.send(ALICE, kind, body)
    assert getattr(caught.value, "field", None) == field
    assert w.snapshot() == before


def test_waiting_enqueues_reserve_their_escrow_before_the_next_block() -> None:
    w = World()
    w.fund(ALICE, 60_000)  # one 1000 ms llama3-8b job at 20,000 µANM/unit holds 25,300 µANM in escrow
    w.send(ALICE, TxKind.AI_ENQUEUE, ai(prompt=b"one"))
    w.send(ALICE, TxKind.AI_ENQUEUE, ai(prompt=b"two"))
    with pytest.raises(RequestError, match="reserved by waiting enqueues"):
        w.send(ALICE, TxKind.AI_ENQUEUE, ai(prompt=b"three"))


def test_a_requester_cannot_cancel_another_requesters_job() -> None:
    w = World()
    w.fund(ALICE, 10**9)
    w.fund(BOB, 10**9)
    tx_hash = w.send(ALICE, TxKind.AI_ENQUEUE, ai())
    w.block()
    task_id = requesters.transaction_status(w.store, w.net, tx_hash).jobs[0].task_id
    before = w.snapshot()
    with pytest.raises(TxError, match="belongs to another requester"):
        w.send(BOB, TxKind.CANCEL, {"task_id": task_id})
    assert w.snapshot() == before
    w.send(ALICE, TxKind.CANCEL, {"task_id": task_id})  # its owner may


def test_an_account_shows_balance_nonce_and_waiting_transactions() -> None:
    w = World()
    w.fund(ALICE, 10**6)
    w.send(ALICE, TxKind.AI_ENQUEUE, ai())
    acct = requesters.account(w.store, w.net, address_of(public_key_bytes(ALICE)))
    assert (acct.balance, acct.next_nonce, acct.pending, acct.open_jobs) == (10**6, 2, 1, 0)
    terms = requesters.request_terms(w.store, P, w.net.chain_id)
    assert terms["chain_id"] == w.net.chain_id
    suggested = terms["suggested_fee_per_unit"]
    assert isinstance(suggested, dict)
    assert suggested["ai"] == P.base_rate_ai * P.price_max_bps * P.min_fee_bps // 10**8
