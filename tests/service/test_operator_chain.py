"""Operator transactions on chain (issue 17 item 7, issue 14 item 1): params, tiers, the allowlist, trap funding and
trap seed commitments/reveals are chain data, so a node that follows the same blocks derives the same batches.

Node A is TrapWorld's coordinator (AI traps, sampled re-execution on) writing the devnet; node B is a bare SQLite
:memory: store that only ingests the same blocks with the operator's public key.
"""

from dataclasses import dataclass, field

import pytest
from store.backends import memory_store

from aicf.core.chain import TxKind
from aicf.core.encoding import decode_canonical
from aicf.core.ids import trap_seed_commitment
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND, requester_account
from aicf.core.operator import (
    OP_GRANT,
    OP_PARAMS,
    OP_TIER,
    OP_TRAP_COMMIT,
    OP_TRAP_FUND,
    OP_TRAP_RECLAIM,
    OP_TRAP_REVEAL,
    epoch_subject,
)
from aicf.core.params import params_from_mapping, params_hash
from aicf.core.txs import SignedTx, TxError, address_of, tx_signing_digest
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from aicf.service.operator_calls import operator_status
from aicf.service.operator_ops import params_version, trap_budget
from aicf.store.interface import Store
from service.test_coordinator import DevnetWriter, _key, _pub
from service.test_traps import MODEL, TrapWorld, embed

BASE = params_from_mapping(
    {"epoch_seconds": 120, "gamma_units": 1000, "model_weights": {MODEL: 100}, "audit_bps": 5000}
)
TIERED = b"\x77" * 20
GRANTEE_KEY = _key(66)
GRANTEE = address_of(_pub(GRANTEE_KEY))


def grant_request(nodes: "TwoNodes") -> SignedTx:
    """The grantee's signed ai_enqueue, sent to the coordinator (aicf.requestGrant), never to the chain."""
    body = {"model": MODEL, "prompt": b"sponsored", "max_tokens": 0, "max_runtime_ms": 2000, "fee_per_unit": 20_000,
            "tier": 0}  # fmt: skip
    pub, chain = _pub(GRANTEE_KEY), nodes.devnet.chain_id
    sig = GRANTEE_KEY.sign(tx_signing_digest(chain, pub, TxKind.AI_ENQUEUE, 0, body))
    return SignedTx(chain_id=chain, public_key=pub, nonce=0, kind=TxKind.AI_ENQUEUE, body=body, sig=sig)


def _no_circuits(_: bytes) -> int:
    return 1


@dataclass
class TwoNodes(TrapWorld):
    replica: Store = field(default_factory=memory_store)

    def __post_init__(self) -> None:
        self.start(BASE, DevnetWriter(self.devnet))

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            super().mine(1)
            self.coord.follow_chain()

    def operator_tx(self, body: dict[str, object]) -> bytes:
        return self.writer.send_operator(body)

    def follow(self) -> None:
        """Node B: the chain, the params file and the operator's public key; nothing else."""
        ingest_available(self.replica, self.devnet, BASE, _no_circuits, operator_key=_pub(self.operator))

    def serve_all(self, pid: bytes, seed: int, rounds: int = 300) -> int:
        """Answer every lease of `pid` honestly (traps and sampled jobs included) until nothing is open."""
        served = 0
        for _ in range(rounds):
            self.coord.match()
            for work in self.coord.leases_for(pid):
                prompt = work.request["prompt"]
                assert isinstance(prompt, bytes)
                self.clock.advance(ms=1500)
                outcome = self.coord.submit_proof(
                    self.proof(seed, work.lease.lease_id, work.job.task_id, embed(prompt))
                )
                assert outcome.accepted, outcome
                served += 1
            with self.store.transaction() as tx:
                open_jobs = tx.list_jobs([JobStatus.PENDING, JobStatus.QUEUED, JobStatus.LEASED], None, 10)
            if not open_jobs and served:
                return served
            self.mine(1)
        raise AssertionError(f"jobs still open after {rounds} rounds ({served} served)")

    def enqueue_tiered(self, tier: int) -> None:
        self.devnet.submit(TIERED, TxKind.DEPOSIT, {"to": TIERED, "amount": 10**9})
        body = {"model": MODEL, "prompt": b"tiered", "max_tokens": 0, "max_runtime_ms": 2000,
                "fee_per_unit": 20_000, "tier": tier}  # fmt: skip
        self.devnet.submit(TIERED, TxKind.AI_ENQUEUE, body)


@pytest.fixture
def nodes() -> TwoNodes:
    w = TwoNodes()
    w.mine(1)
    return w


@pytest.mark.slow  # about 2-7 s: two epochs of traffic, 41 proofs re-executed in part
def test_two_nodes_fed_the_same_chain_write_byte_identical_batches_across_traps_and_a_params_change(
    nodes: TwoNodes,
) -> None:
    nodes.operator_tx({"op": "fund_topup", "amount": 10**9})  # the devnet faucet for the fund, on chain
    nodes.operator_tx({"op": OP_TIER, "address": TIERED, "tier": 2})
    nodes.operator_tx({"op": OP_GRANT, "requester": GRANTEE, "allowance": 10**6})
    pid = nodes.provider_for(1)
    nodes.mine(1)
    nodes.enqueue_model(19)
    nodes.enqueue_tiered(2)
    grant = nodes.coord.request_grant(grant_request(nodes), nodes.devnet.chain_id)  # a job the fund sponsors
    nodes.mine(2)  # the enqueues ingested: one trap due, funded by a trap_fund transaction, then its enqueue
    with nodes.store.transaction() as tx:
        (trap,) = tx.open_traps(10)
        funded = tx.operator_changes_of(OP_TRAP_FUND)
    assert [c.subject for c in funded] == [trap.caller, grant.caller]  # a trap and a grant, funded alike
    nodes.mine(7)
    assert nodes.serve_all(pid, 1) == 22  # 19 ordinary, the tiered one, the trap, the grant
    # A params change in epoch e applies from e + 1: provider share down, fund share up.
    nodes.operator_tx({"op": OP_PARAMS, "changes": {"provider_bps": 7000, "fund_bps": 1500}})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        head = tx.head_block()
        assert head is not None
        changed_in = head.epoch
        (change,) = tx.operator_changes_of(OP_PARAMS)
    assert change.effective_epoch == changed_in + 1
    nodes.enqueue_model(19)
    nodes.mine(8)
    assert nodes.serve_all(pid, 1) >= 19
    nodes.mine(12 * 3 + 8)
    nodes.follow()
    with nodes.store.transaction() as a, nodes.replica.transaction() as b:
        last = a.last_batch_epoch()
        assert last is not None
        assert last > changed_in + 1
        assert b.last_batch_epoch() == last
        hashes = set()
        payouts = 0
        for epoch in range(last + 1):
            ours, theirs = a.get_batch(epoch), b.get_batch(epoch)
            assert ours is not None
            assert theirs is not None
            assert ours.batch == theirs.batch, f"epoch {epoch}"
            assert ours.root == theirs.root
            hashes.add(ours.params_hash)
            payouts += ours.payouts
            expected = params_hash(BASE if epoch <= changed_in else params_version(a, BASE, epoch).params)
            assert ours.params_hash == expected
        assert hashes == {params_hash(BASE), params_version(a, BASE, changed_in + 1).params_hash}
        assert payouts >= 41  # every job, the trap and the tiered one included, on both nodes
        (trap_job,) = b.jobs_of_caller(trap.caller)  # B took the trap enqueue: its escrow was funded on chain
        assert b.payout_of_task(trap_job.task_id) == a.payout_of_task(trap_job.task_id) is not None
        (grant_job,) = b.jobs_of_caller(grant.caller)  # and the grant's, funded the same way
        assert b.payout_of_task(grant_job.task_id) == a.payout_of_task(grant_job.task_id) is not None
        assert b.requester_tier(TIERED) == 2
        assert b.balances([FUND]) == a.balances([FUND])
        assert b.operator_changes_of(OP_TRAP_COMMIT) == a.operator_changes_of(OP_TRAP_COMMIT)
        # the trap budget and the reclaimed refunds (issue 14) are chain data: B derives the same ones
        reclaims = a.operator_changes_of(OP_TRAP_RECLAIM)
        assert sorted(c.subject for c in reclaims) == sorted(c.subject for c in a.operator_changes_of(OP_TRAP_FUND))
        assert b.operator_changes_of(OP_TRAP_RECLAIM) == reclaims
        assert trap_budget(b, BASE) == trap_budget(a, BASE)
        assert trap_budget(a, BASE).income > 0
        for c in reclaims:  # every trap's refund went back to the fund: it cost its charge
            assert b.balances([requester_account(c.subject)]) == {requester_account(c.subject): 0}
        revealed = b.operator_changes_of(OP_TRAP_REVEAL, epoch_subject(0))
    assert [r.after for r in revealed] == [nodes.coord.trap_seed(0)]
    assert verify(nodes.replica).ok
    assert verify(nodes.store).ok
    assert len(nodes.oracle.calls) > 5  # the trap and a sample of the ordinary jobs were re-executed on A


def test_a_params_change_applies_from_the_next_epoch_and_shows_pending_until_then(nodes: TwoNodes) -> None:
    nodes.operator_tx({"op": OP_PARAMS, "changes": {"max_open_jobs": 5}})
    nodes.mine(1)
    status = operator_status(nodes.store, BASE)
    assert status["params_version"] == 0
    assert status["next_params_version"] == 1
    pending = status["pending"]
    assert isinstance(pending, list)
    assert [(c["op"], c["before"], c["after"]) for c in pending if c["op"] == "params"] == [
        ("params", {"max_open_jobs": 100}, {"max_open_jobs": 5})
    ]
    assert nodes.coord.params.max_open_jobs == 100
    nodes.mine(12)  # into the next epoch
    assert nodes.coord.params.max_open_jobs == 5
    status = operator_status(nodes.store, BASE)
    assert status["params_version"] == 1
    pending = status["pending"]
    assert isinstance(pending, list)
    assert [c for c in pending if c["op"] == "params"] == []


def test_gamma_below_the_largest_unsettled_job_is_refused_on_chain(nodes: TwoNodes) -> None:
    nodes.devnet.submit(TIERED, TxKind.DEPOSIT, {"to": TIERED, "amount": 10**9})
    body = {"model": MODEL, "prompt": b"big", "max_tokens": 0, "max_runtime_ms": 20_000, "fee_per_unit": 20_000,
            "tier": 0}  # fmt: skip
    nodes.devnet.submit(TIERED, TxKind.AI_ENQUEUE, body)  # max_units_mu 20000 × 100 × 11500 × 11000 // 10^11 = 2530
    nodes.mine(1)
    nodes.operator_tx({"op": OP_PARAMS, "changes": {"gamma_units": 2}})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        refused = [r for r in tx.snapshot().refused if r.kind == "operator"]
        assert tx.operator_changes_of(OP_PARAMS) == []
    assert [r.field for r in refused] == ["changes.gamma_units"]
    assert "below the largest max_units_mu of an unsettled job (2530)" in refused[0].reason


def test_a_reveal_that_does_not_match_its_commitment_is_refused(nodes: TwoNodes) -> None:
    nodes.mine(13)  # epoch 1: epoch 0's seed may be revealed
    nodes.operator_tx({"op": OP_TRAP_REVEAL, "epoch": 0, "seed": b"\x01" * 32})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        refused = [r for r in tx.snapshot().refused if r.kind == "operator"]
        commit = tx.operator_changes_of(OP_TRAP_COMMIT, epoch_subject(0))
    assert [(r.field, r.reason) for r in refused] == [("seed", "does not match epoch 0's commitment")]
    assert [c.after for c in commit] == [trap_seed_commitment(nodes.coord.trap_seed(0))]


def test_an_operator_transaction_from_another_key_is_refused_by_the_devnet(nodes: TwoNodes) -> None:
    stranger = DevnetWriter(nodes.devnet, operator=7)  # signs with _key(7); the devnet's operator is _key(99)
    with pytest.raises(TxError, match="is not the operator"):
        stranger.send_operator({"op": OP_TIER, "address": TIERED, "tier": 1})
    with pytest.raises(TxError, match="must be signed"):
        nodes.devnet.submit(b"\x01" * 20, TxKind.OPERATOR, {"op": OP_TIER, "address": TIERED, "tier": 1})


def test_ingestion_refuses_an_operator_transaction_whose_sender_is_not_the_operator(nodes: TwoNodes) -> None:
    other = address_of(_pub(_key(7)))
    nodes.devnet.operator = other  # a chain that lets _key(7) send; this node's operator key is _key(99)
    DevnetWriter(nodes.devnet, operator=7).send_operator({"op": OP_TIER, "address": TIERED, "tier": 3})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        refused = [r for r in tx.snapshot().refused if r.kind == "operator"]
        assert tx.requester_tier(TIERED) == 0
    assert [(r.sender, r.field) for r in refused] == [(other, "sender")]
    assert "is not the operator" in refused[0].reason


def test_a_reorg_undoes_an_operator_change_with_its_block(nodes: TwoNodes) -> None:
    nodes.operator_tx({"op": OP_TIER, "address": TIERED, "tier": 2})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        assert tx.requester_tier(TIERED) == 2
        height = tx.operator_changes_of(OP_TIER)[0].height
        tx.rollback_above(height - 1)
        assert tx.requester_tier(TIERED) == 0
        assert tx.operator_changes_of(OP_TIER) == []


def test_a_trap_fund_above_the_fund_is_refused_and_moves_nothing(nodes: TwoNodes) -> None:
    nodes.operator_tx({"op": OP_TRAP_FUND, "to": TIERED, "amount": 5})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        refused = [r for r in tx.snapshot().refused if r.kind == "operator"]
        assert tx.balances([requester_account(TIERED)])[requester_account(TIERED)] == 0
    assert [(r.field, r.reason) for r in refused] == [
        (
            "amount",
            "the trap budget has 0 µANM left, below 5 µANM (income share 0 + top-ups 0 + reclaimed 0 − funded 0)",
        )
    ]


def test_params_version_counts_the_changes_in_force(nodes: TwoNodes) -> None:
    with nodes.store.transaction() as tx:
        assert params_version(tx, BASE, 5).version == 0
    nodes.operator_tx({"op": OP_PARAMS, "changes": {"trap_bps": 100}})
    nodes.mine(1)
    with nodes.store.transaction() as tx:
        v1 = params_version(tx, BASE, 1)
        (change,) = tx.operator_changes_of(OP_PARAMS)
    assert v1.version == 1
    assert v1.params.trap_bps == 100
    assert v1.tx_hash == change.tx_hash
    assert decode_canonical(change.before) == {"trap_bps": 500}
    assert decode_canonical(change.after) == {"trap_bps": 100}
