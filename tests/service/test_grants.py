"""Grants (issue 14 item 2, docs/TRAPS.md "Grants"): the fund sponsors a real requester's AI job exactly the way
it funds a trap, so the callers the fund pays are a mix of traps and real jobs.

Node A (TrapWorld's coordinator, traps on) takes a grant request signed by the requester, enqueues it from a fresh
fund-funded caller, serves, settles and reclaims it; node B follows only the chain and writes the same batches.
"""

from collections.abc import Mapping
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.core.chain import TxKind
from aicf.core.encoding import tagged_hash
from aicf.core.errors import RequestError
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND, requester_account
from aicf.core.operator import OP_GRANT, OP_TRAP_FUND, OP_TRAP_RECLAIM
from aicf.core.txs import BadTxSignatureError, SignedTx, TxError, WrongChainError, address_of, tx_signing_digest
from aicf.service.operator_ops import grant_allowance
from aicf.service.requesters import request_outcome
from aicf.service.traps import grant_caller, trap_caller
from service.test_coordinator import MODEL_DIGEST, DevnetWriter, _key, _pub, coordinator_for
from service.test_operator_chain import TwoNodes
from service.test_traps import MODEL, embed

REQUESTER_KEY = _key(77)
REQUESTER = address_of(_pub(REQUESTER_KEY))
BODY = {"model": MODEL, "prompt": b"a real question", "max_tokens": 0, "max_runtime_ms": 2000,
        "fee_per_unit": 20_000, "tier": 0}  # fmt: skip


def signed(nodes: TwoNodes, body: Mapping[str, object], key: Ed25519PrivateKey = REQUESTER_KEY, nonce: int = 0,
           chain_id: int | None = None) -> SignedTx:  # fmt: skip
    chain = nodes.devnet.chain_id if chain_id is None else chain_id
    pub = _pub(key)
    sig = key.sign(tx_signing_digest(chain, pub, TxKind.AI_ENQUEUE, nonce, body))
    return SignedTx(chain_id=chain, public_key=pub, nonce=nonce, kind=TxKind.AI_ENQUEUE, body=body, sig=sig)


@pytest.fixture
def nodes() -> TwoNodes:
    w = TwoNodes()
    w.mine(1)
    w.operator_tx({"op": "fund_topup", "amount": 10**9})
    w.operator_tx({"op": OP_GRANT, "requester": REQUESTER, "allowance": 20_000})
    w.mine(1)
    return w


def test_the_allowance_is_an_operator_transaction_on_chain(nodes: TwoNodes) -> None:
    nodes.follow()
    with nodes.store.transaction() as a, nodes.replica.transaction() as b:
        assert grant_allowance(a, REQUESTER) == grant_allowance(b, REQUESTER) == 20_000
        assert grant_allowance(a, b"\x01" * 20) == 0


def test_a_grant_request_is_refused_with_nothing_stored_when(nodes: TwoNodes) -> None:
    chain = nodes.devnet.chain_id
    with pytest.raises(RequestError, match="grant allowance of 0 µANM"):
        nodes.coord.request_grant(signed(nodes, BODY, key=_key(78)), chain)
    with pytest.raises(RequestError, match="grant allowance of 20000 µANM, 0 used; this job's escrow is 50600"):
        nodes.coord.request_grant(signed(nodes, {**BODY, "max_runtime_ms": 20_000}), chain)
    with pytest.raises(TxError, match="no allowlist or tee"):
        nodes.coord.request_grant(signed(nodes, {**BODY, "allowlist": [b"\x01" * 32]}), chain)
    with pytest.raises(TxError, match="whose tier is 0"):
        nodes.coord.request_grant(signed(nodes, {**BODY, "tier": 1}), chain)
    with pytest.raises(WrongChainError):
        nodes.coord.request_grant(signed(nodes, BODY, chain_id=chain + 1), chain)
    forged = signed(nodes, BODY)
    with pytest.raises(BadTxSignatureError):
        nodes.coord.request_grant(replace(forged, body={**BODY, "fee_per_unit": 30_000}), chain)
    with pytest.raises(RequestError, match="fee_per_unit"):
        nodes.coord.request_grant(signed(nodes, {**BODY, "fee_per_unit": 1}), chain)
    with nodes.store.transaction() as tx:
        assert tx.open_grants(10) == []


def test_a_requester_has_at_most_max_open_jobs_open_grants(nodes: TwoNodes) -> None:
    nodes.operator_tx({"op": OP_GRANT, "requester": REQUESTER, "allowance": 10**9})
    nodes.mine(1)
    limit = nodes.params.max_open_jobs
    for nonce in range(limit):
        nodes.coord.request_grant(signed(nodes, BODY, nonce=nonce), nodes.devnet.chain_id)
    with pytest.raises(RequestError, match=f"has {limit} open grants, the most allowed"):
        nodes.coord.request_grant(signed(nodes, BODY, nonce=limit), nodes.devnet.chain_id)


def test_a_granted_job_is_funded_enqueued_settled_and_reclaimed_like_a_trap_on_both_nodes(nodes: TwoNodes) -> None:
    pid = nodes.provider_for(1)
    request = signed(nodes, BODY)
    grant = nodes.coord.request_grant(request, nodes.devnet.chain_id)
    assert nodes.coord.request_grant(request, nodes.devnet.chain_id) == grant  # the same request: the same answer
    assert grant.caller == grant_caller(nodes.coord.trap_seed(grant.epoch), 0)
    assert grant.caller != trap_caller(nodes.coord.trap_seed(grant.epoch), 0)
    nodes.mine(2)  # the pass funds the fresh caller and sends the requester's body from it; the next block has both
    linked = nodes.coord.request_grant(request, nodes.devnet.chain_id)
    assert linked.task_id  # the requester learns its task id from the same request
    with nodes.store.transaction() as tx:
        (job,) = tx.jobs_of_caller(grant.caller)
        assert job.task_id == linked.task_id
        assert tx.jobs_of_caller(REQUESTER) == []  # nothing on chain names the requester
        assert [c.subject for c in tx.operator_changes_of(OP_TRAP_FUND)] == [grant.caller]
    nodes.mine(7)
    assert nodes.serve_all(pid, 1) == 1
    for _ in range(60):  # settled in its epoch's batch, then the refund reclaimed and the grant closed
        nodes.mine(1)
        with nodes.store.transaction() as tx:
            (closed,) = [g for g in [tx.get_grant(grant.caller)] if g is not None]
        if closed.closed_at is not None:
            break
    outcome = request_outcome(nodes.store, linked.task_id)
    assert outcome is not None
    assert outcome.job.status is JobStatus.SETTLED
    assert outcome.output == embed(BODY["prompt"])  # type: ignore[arg-type]  # the requester's answer
    nodes.follow()
    with nodes.store.transaction() as a, nodes.replica.transaction() as b:
        # on chain the grant's caller did what a trap's does: funded by the fund, one enqueue, its refund reclaimed
        (reclaim,) = a.operator_changes_of(OP_TRAP_RECLAIM, grant.caller)
        assert b.operator_changes_of(OP_TRAP_RECLAIM, grant.caller) == [reclaim]
        assert b.balances([requester_account(grant.caller)]) == {requester_account(grant.caller): 0}
        payout = a.payout_of_task(linked.task_id)
        assert payout is not None
        assert b.payout_of_task(linked.task_id) == payout
        assert a.grant_used(REQUESTER) == payout.charged  # the allowance paid the job's charge, no more
        assert b.balances([FUND]) == a.balances([FUND])
        last = a.last_batch_epoch()
        assert last is not None
        for epoch in range(last + 1):
            ours, theirs = a.get_batch(epoch), b.get_batch(epoch)
            assert ours is not None
            assert theirs is not None
            assert ours.batch == theirs.batch


def test_grants_wait_while_a_due_trap_is_held_back_by_the_budget() -> None:
    """Grants take only what the due traps leave: sponsorship never lowers the trap rate."""
    nodes = TwoNodes()
    nodes.mine(1)
    nodes.operator_tx({"op": OP_GRANT, "requester": REQUESTER, "allowance": 10**6})
    nodes.enqueue_model(19)  # one trap due, and the trap budget is 0
    nodes.mine(2)
    grant = nodes.coord.request_grant(signed(nodes, BODY), nodes.devnet.chain_id)
    nodes.mine(2)
    with nodes.store.transaction() as tx:
        assert tx.open_traps(10) == []
        held = tx.get_grant(grant.caller)
    assert held is not None
    assert held.sent_at is None
    nodes.operator_tx({"op": "fund_topup", "amount": 10**9})
    nodes.mine(3)
    with nodes.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
        sent = tx.get_grant(grant.caller)
        funded = [c.subject for c in tx.operator_changes_of(OP_TRAP_FUND)]
    assert sent is not None
    assert sent.sent_at is not None
    assert funded == [trap.caller, grant.caller]  # the trap first, then the grant


class KeyedWriter(DevnetWriter):
    """A chain whose callers sign their own enqueues (as on an EVM node, aicf.bootstrap.evm.grant_account): grant
    m's caller is the address of a key the writer derives, and what it holds for trap escrow bounds the pass."""

    def __init__(self, nodes: TwoNodes) -> None:
        super().__init__(nodes.devnet)
        self.key_tag, self.held = "test/grantkey", 10**9

    def grant_caller(self, seed: bytes, m: int) -> bytes:
        return tagged_hash(self.key_tag, seed, m)[:20]

    def trap_fund_held(self) -> int:
        return self.held


def keyed(nodes: TwoNodes) -> KeyedWriter:
    writer = KeyedWriter(nodes)
    nodes.writer = writer
    nodes.coord = coordinator_for(nodes.store, nodes.clock, nodes.params, nodes.operator, writer,
                                  model_digests={MODEL: MODEL_DIGEST})  # fmt: skip
    return writer


def test_on_a_keyed_chain_a_grant_is_sent_from_the_writers_key_once_the_chain_holds_its_escrow(
    nodes: TwoNodes,
) -> None:
    writer = keyed(nodes)
    chain = nodes.devnet.chain_id
    with pytest.raises(TxError, match=r"^transaction refused: deadline_blocks: an EVM aiEnqueue carries only model"):
        nodes.coord.request_grant(signed(nodes, {**BODY, "deadline_blocks": 50}), chain)
    writer.held = 100  # the contract's trap fund cannot pay the escrow yet
    grant = nodes.coord.request_grant(signed(nodes, BODY), chain)
    seed = nodes.coord.trap_seed(grant.epoch)
    assert grant.caller == writer.grant_caller(seed, grant.m) != grant_caller(seed, grant.m)
    nodes.mine(2)
    with nodes.store.transaction() as tx:
        waiting = tx.get_grant(grant.caller)
        assert tx.operator_changes_of(OP_TRAP_FUND) == []
    assert waiting is not None
    assert waiting.sent_at is None
    writer.held = 10**9
    nodes.mine(2)
    with nodes.store.transaction() as tx:
        (job,) = tx.jobs_of_caller(grant.caller)
        assert [c.subject for c in tx.operator_changes_of(OP_TRAP_FUND)] == [grant.caller]
        assert tx.jobs_of_caller(REQUESTER) == []
    assert nodes.coord.request_grant(signed(nodes, BODY), chain).task_id == job.task_id


def test_on_a_keyed_chain_a_grant_whose_caller_has_no_key_is_closed_with_nothing_spent(nodes: TwoNodes) -> None:
    writer = keyed(nodes)
    grant = nodes.coord.request_grant(signed(nodes, BODY), nodes.devnet.chain_id)
    writer.key_tag = "test/another"  # the key derived at sending is not the recorded caller's (say an old record)
    nodes.mine(2)
    with nodes.store.transaction() as tx:
        closed = tx.get_grant(grant.caller)
        assert tx.operator_changes_of(OP_TRAP_FUND) == []
        assert tx.jobs_of_caller(grant.caller) == []
        assert tx.grant_used(REQUESTER) == 0  # the allowance paid nothing
    assert closed is not None
    assert closed.closed_at is not None
