"""The coordinator's lifecycle on SQLite :memory: with a fake clock and the devnet (issue 5).

Each test drives the real use-cases: enqueue on chain → ingest → QUEUED at depth 6 → match (stake-weighted
beacon draw) → lease → proof (or silence) → verify → inclusion on chain → VERIFIED → epoch settlement.
"""

import contextlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from store.backends import memory_store, open_test_store
from store.tx_helpers import ready_jobs

from aicf.bootstrap.coordinator import CoordinatorConfig, build_coordinator
from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.chain.devnet_writer import DevnetWriter as ChainDevnetWriter
from aicf.core.assignment import Exclusion
from aicf.core.chain import TxKind
from aicf.core.clock import Clock, FakeClock
from aicf.core.ids import input_digest, output_digest, provider_id
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import FUND, provider_account, requester_account, stake_account
from aicf.core.params import Params, params_from_mapping
from aicf.core.registry import ProviderStatus
from aicf.core.txs import address_of
from aicf.proofs.envelope import ProofEnvelope, sign_envelope
from aicf.service.audit import verify
from aicf.service.coordinator import Capabilities, ChainWriter, Coordinator
from aicf.service.errors import (
    InvalidRegistrationError,
    LeaseNotFoundError,
    NotLeaseHolderError,
    ProviderBannedError,
    StakeError,
    UnknownProviderError,
)
from aicf.service.ingest import ingest_available
from aicf.service.reads import job_story
from aicf.service.state_digest import state_digest
from aicf.store.interface import ConcurrentUpdateError, Store, Tx

PARAMS = params_from_mapping({"epoch_seconds": 120, "gamma_units": 1000})
MODEL_DIGEST = b"\x5a" * 32
GENESIS = 1_700_000_000
REQUESTER = b"\x42" * 20


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _pub(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _no_circuits(_: bytes) -> int:
    return 1


def signed_ai_envelope(key: Ed25519PrivateKey, task: bytes, lease_id: bytes, body: dict[str, Any]) -> dict[str, Any]:
    """The wire map of an AI_V1 envelope from `key`'s provider, signed over its proof_id."""
    env = ProofEnvelope(
        version=1, kind="AI_V1", task_id=task, lease_id=lease_id, provider_id=provider_id(_pub(key)), body=body,
        sig=bytes(64),
    )  # fmt: skip
    return {**env.to_map(), "sig": sign_envelope(key, env)}


class DevnetWriter(ChainDevnetWriter):
    """The devnet's chain writer (aicf.chain.devnet_writer) from the coordinator's test address."""

    def __init__(self, devnet: Devnet, sender: bytes = b"\x0c" * 20, operator: int = 99) -> None:
        """Operator transactions are signed with _key(operator), the World's operator key by default."""
        key = _key(operator)
        if devnet.operator is None:
            devnet.operator = address_of(_pub(key))
        super().__init__(devnet, threading.Lock(), sender, key)


def coordinator_for(
    store: Store, clock: Clock, params: Params, operator: Ed25519PrivateKey, chain_writer: ChainWriter, **config: Any
) -> Coordinator:
    """The bootstrap's coordinator for a test world: llama3-8b pinned, quantum trap seeds fixed at zero."""
    base: dict[str, Any] = {
        "model_digests": {"llama3-8b": MODEL_DIGEST},
        "trap_secret": b"test-secret",
        "trap_seed": lambda e: b"\x00" * 32,
    }
    return build_coordinator(
        CoordinatorConfig(params=params, operator_key=operator, **{**base, **config}),
        store=store,
        clock=clock,
        chain_writer=chain_writer,
    )


@dataclass
class World:
    params: Params = PARAMS
    devnet: Devnet = field(default_factory=lambda: Devnet(DevnetConfig(genesis_time=GENESIS, interval_s=10)))
    store: Store = field(default_factory=memory_store)
    clock: FakeClock = field(default_factory=lambda: FakeClock(GENESIS))
    operator: Ed25519PrivateKey = field(default_factory=lambda: _key(99))
    coord: Coordinator = field(init=False)
    live: list[bytes] = field(default_factory=list)  # providers that heartbeat as blocks go by

    def __post_init__(self) -> None:
        self.coord = coordinator_for(self.store, self.clock, self.params, self.operator, DevnetWriter(self.devnet))

    def mine(self, n: int = 1) -> None:
        """Mine n blocks one by one: move the clock to each block's time, let live providers heartbeat, ingest."""
        for _ in range(n):
            (block,) = self.devnet.mine(1)
            self.clock.set(block.time)
            for pid in self.live:
                with contextlib.suppress(ProviderBannedError):  # a ban ends a provider's heartbeats (issue 15)
                    self.coord.heartbeat(pid)
            ingest_available(self.store, self.devnet, self.params, _no_circuits, operator_key=_pub(self.operator))

    def provider(self, seed: int, stake: int = 1_000_000) -> tuple[Ed25519PrivateKey, bytes]:
        key = _key(seed)
        p = self.coord.register(_pub(key), Capabilities(kinds=("ai",), models=("llama3-8b",)))
        if stake:
            self.coord.deposit_stake(p.provider_id, stake, source="external")
        self.coord.heartbeat(p.provider_id)
        self.live.append(p.provider_id)
        return key, p.provider_id

    def enqueue(self, n: int = 1, fee: int = 20_000, runtime_ms: int = 2000) -> None:
        self.devnet.submit(REQUESTER, TxKind.DEPOSIT, {"to": REQUESTER, "amount": 10**9})
        for i in range(n):
            body = {
                "model": "llama3-8b",
                "prompt": b"prompt-%d" % i,
                "max_tokens": 64,
                "max_runtime_ms": runtime_ms,
                "fee_per_unit": fee,
                "tier": 0,
            }
            self.devnet.submit(REQUESTER, TxKind.AI_ENQUEUE, body)

    def queued(self) -> list[bytes]:
        with self.store.transaction() as tx:
            return [j.task_id for j in ready_jobs(tx, self.clock.now(), 1000)]

    def job_status(self, task: bytes) -> JobStatus:
        with self.store.transaction() as tx:
            job = tx.get_job(task)
            assert job is not None
            return job.status

    def balance(self, account: str) -> int:
        with self.store.transaction() as tx:
            return tx.balances([account])[account]

    def envelope(
        self, key: Ed25519PrivateKey, lease_id: bytes, task: bytes, output: bytes = b"answer"
    ) -> dict[str, Any]:
        with self.store.transaction() as tx:
            job = tx.get_job(task)
            assert job is not None
        from aicf.service.coordinator import decode_request

        prompt = decode_request(job)["prompt"]
        assert isinstance(prompt, bytes)
        body = {
            "model_id": "llama3-8b",
            "model_digest": MODEL_DIGEST,
            "input_digest": input_digest(prompt),
            "output_digest": output_digest(output),
            "output": output,
            "qos": {"runtime_ms": 1500, "tokens": 3},
        }
        return signed_ai_envelope(key, task, lease_id, body)


@pytest.fixture
def world() -> World:
    w = World()
    w.mine(2)  # treasury income so the budget throttle is off
    return w


def _lease_of(world: World, pid: bytes) -> tuple[bytes, bytes]:
    leases = world.coord.heartbeat(pid)
    assert leases, "the provider holds no lease"
    return leases[0].lease_id, leases[0].task_id


def _one_leased(world: World) -> tuple[Ed25519PrivateKey, bytes, bytes, bytes]:
    """One staked provider and one job, matched: the provider's key and id, its lease and the task."""
    key, pid = world.provider(1)
    world.enqueue(1)
    world.mine(7)
    world.coord.match()
    lid, task = _lease_of(world, pid)
    return key, pid, lid, task


def test_register_is_idempotent_and_refuses_unknown_models(world: World) -> None:
    key = _key(1)
    first = world.coord.register(_pub(key), Capabilities(kinds=("ai",), models=("llama3-8b",)))
    again = world.coord.register(_pub(key), Capabilities(kinds=("ai",), models=("llama3-8b",)))
    assert first == again
    assert first.status is ProviderStatus.ACTIVE
    with pytest.raises(InvalidRegistrationError, match="unknown model 'gpt-9'"):
        world.coord.register(_pub(_key(2)), Capabilities(kinds=("ai",), models=("gpt-9",)))
    with pytest.raises(InvalidRegistrationError, match="max_leases"):
        world.coord.register(_pub(_key(3)), Capabilities(kinds=("ai",), models=("llama3-8b",), max_leases=9))


def test_unknown_provider_and_bad_stake_are_refused_without_change(world: World) -> None:
    with pytest.raises(UnknownProviderError):
        world.coord.heartbeat(b"\x01" * 32)
    _, pid = world.provider(1, stake=0)
    digest = state_digest(world.store)
    with pytest.raises(StakeError, match="must be > 0"):
        world.coord.deposit_stake(pid, 0)
    with pytest.raises(Exception, match="balance"):
        world.coord.deposit_stake(pid, 5)  # provider:<id> holds nothing yet
    with pytest.raises(StakeError, match="can withdraw"):
        world.coord.withdraw_stake(pid, 1)
    assert state_digest(world.store) == digest


def test_job_is_queued_only_once_its_enqueue_block_is_final(world: World) -> None:
    world.enqueue(1)
    world.mine(1)
    assert world.queued() == []
    world.mine(5)
    assert world.queued() == []
    world.mine(1)
    assert len(world.queued()) == 1


def test_matcher_leases_to_a_staked_provider_and_stores_the_decision(world: World) -> None:
    _, pid = world.provider(1)
    _, unstaked = world.provider(2, stake=0)
    world.enqueue(1)
    world.mine(7)
    decisions = world.coord.match()
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.winner == pid
    assert [(e.provider_id, e.reason.value) for e in decision.excluded] == [(unstaked, "STAKE_BELOW_MIN")]
    with world.store.transaction() as tx:
        stored = tx.decisions_of(decision.task_id)
        assert [d.winner for d in stored] == [pid]
        assert tx.get_job(decision.task_id).status is JobStatus.LEASED  # type: ignore[union-attr]


def test_a_stored_decision_names_its_pool_and_reads_back_whole(world: World) -> None:
    _, pid = world.provider(1)
    _, unstaked = world.provider(2, stake=0)
    world.enqueue(3)
    world.mine(7)
    decisions = world.coord.match()
    assert len(decisions) == 3
    with world.store.transaction() as tx:
        compact = [cbor2.loads(tx.decisions_of(d.task_id)[0].decision) for d in decisions]
        pools = tx.snapshot().pools
    assert len(pools) == 1, "the three jobs have the same needs: one pool"
    ((pool_id, record),) = pools
    assert all(c["pool"] == pool_id and "candidates" not in c and "excluded" not in c for c in compact)
    assert cbor2.loads(record) == {
        "candidates": [{"provider_id": pid, "stake": 1_000_000}],
        "excluded": [{"provider_id": unstaked, "reason": "STAKE_BELOW_MIN"}],
    }
    story = job_story(world.store, decisions[0].task_id)
    assert story is not None
    assert cbor2.loads(story.decisions[0].decision) == {**decisions[0].to_map(), "pool": pool_id}


def test_the_matcher_sees_a_registry_change_made_between_passes(world: World) -> None:
    _, p1 = world.provider(1)
    _, p2 = world.provider(2)
    world.enqueue(1)
    world.mine(7)
    (first,) = world.coord.match()  # the matcher now holds the registry's profiles
    assert first.winner is not None
    other = ({p1, p2} - {first.winner}).pop()
    world.coord.withdraw_stake(other, 1_000_000)  # UNBONDING from now on
    world.enqueue(1)
    world.mine(7)
    (second,) = world.coord.match()
    assert [(e.provider_id, e.reason.value) for e in second.excluded] == [(other, "NOT_ACTIVE")]
    assert {d.provider_id for d in second.draws} == {first.winner}


def test_expired_lease_requeues_with_backoff_and_slashes_missed_lease(world: World) -> None:
    _, pid = world.provider(1)
    world.enqueue(1)
    world.mine(7)
    (decision,) = world.coord.match()
    task = decision.task_id
    world.clock.advance(PARAMS.lease_ttl_s)  # no heartbeat: the lease dies at its expiry instant
    report = world.coord.sweep()
    assert report.expired == 1
    assert world.job_status(task) is JobStatus.QUEUED
    with world.store.transaction() as tx:
        job = tx.get_job(task)
        assert job is not None
        assert job.attempts == 1
        lease = tx.leases_of_task(task)[0]
        assert lease.status is LeaseStatus.EXPIRED
        assert job.not_before == lease.expires_at + 5  # min(5 × 2^0, 300)
        provider = tx.get_provider(pid)
        assert provider is not None
        assert provider.status is ProviderStatus.JAILED
        assert provider.strikes == 1
        (slash,) = tx.slashes_of(pid)
        assert slash.reason == "MISSED_LEASE"
        assert slash.amount == 1_000_000 * 100 // 10_000
    assert world.balance(FUND) >= slash.amount
    assert world.balance(stake_account(pid)) == 1_000_000 - slash.amount
    assert world.coord.sweep().expired == 0  # at most one slash per lease
    assert verify(world.store).ok


def test_third_missed_attempt_fails_the_job_and_refunds_the_escrow(world: World) -> None:
    world.enqueue(1)
    world.mine(7)
    (task,) = world.queued()
    before = world.balance(requester_account(REQUESTER))
    for seed in (1, 2, 3):
        _, pid = world.provider(seed)
        decisions = world.coord.match()
        assert decisions[0].winner == pid
        for _ in range((PARAMS.lease_ttl_s + 300) // 10):  # the coordinator keeps passing: no outage to credit
            world.clock.advance(10)
            world.coord.sweep()
    assert world.job_status(task) is JobStatus.FAILED
    with world.store.transaction() as tx:
        job = tx.get_job(task)
    assert job is not None
    assert world.balance(requester_account(REQUESTER)) == before + job.escrow
    assert verify(world.store).ok


def test_heartbeat_keeps_a_lease_alive_past_its_first_ttl(world: World) -> None:
    _, pid = world.provider(1)
    world.enqueue(1, runtime_ms=60_000)  # a runtime budget of 60 s + two TTLs
    world.mine(7)
    world.coord.match()
    for _ in range(5):  # 100 s: past the first TTL, within the budget
        world.clock.advance(PARAMS.heartbeat_interval_s)
        world.coord.heartbeat(pid)
    assert world.coord.sweep().expired == 0
    assert len(world.coord.leases_for(pid)) == 1


def test_heartbeats_do_not_keep_an_unanswered_lease_past_the_jobs_runtime_budget(world: World) -> None:
    _, pid = world.provider(1)
    world.enqueue(1, runtime_ms=2000)
    world.mine(7)
    (decision,) = world.coord.match()
    with world.store.transaction() as tx:
        job = tx.get_job(decision.task_id)
    assert job is not None
    budget = world.coord.runtime_budget_s(job)
    assert budget == 2 + 2 * PARAMS.lease_ttl_s
    for _ in range(budget // PARAMS.heartbeat_interval_s):  # heartbeating on time, never answering
        world.clock.advance(PARAMS.heartbeat_interval_s)
        world.coord.heartbeat(pid)
    world.clock.advance(budget - budget // PARAMS.heartbeat_interval_s * PARAMS.heartbeat_interval_s - 1)
    world.coord.heartbeat(pid)
    assert world.coord.sweep().expired == 0  # one second before the budget ends
    world.clock.advance(1)
    world.coord.heartbeat(pid)
    assert world.coord.sweep().expired == 1
    assert world.job_status(decision.task_id) is JobStatus.QUEUED
    with world.store.transaction() as tx:
        assert [s.reason for s in tx.slashes_of(pid)] == ["MISSED_LEASE"]


def test_proof_from_someone_who_does_not_hold_the_lease_changes_nothing(world: World) -> None:
    keys = dict([world.provider(1), world.provider(2)][::1])
    world.enqueue(1)
    world.mine(7)
    (decision,) = world.coord.match()
    holder = decision.winner
    assert holder is not None
    thief_key = next(k for k, pid in keys.items() if pid != holder)
    lid, task = _lease_of(world, holder)
    digest = state_digest(world.store)
    outcome = world.coord.submit_proof(world.envelope(thief_key, lid, task))
    assert outcome.dropped
    assert outcome.code == "UNKNOWN_LEASE"
    assert state_digest(world.store) == digest
    with pytest.raises(NotLeaseHolderError):
        world.coord.release(provider_id(_pub(thief_key)), lid)


def test_heartbeat_naming_a_lease_it_does_not_hold_is_refused_and_changes_nothing(world: World) -> None:
    keys = dict([world.provider(1), world.provider(2)])
    world.enqueue(1)
    world.mine(7)
    (decision,) = world.coord.match()
    holder = decision.winner
    assert holder is not None
    other = next(pid for pid in keys.values() if pid != holder)
    lid, _ = _lease_of(world, holder)
    digest = state_digest(world.store)
    with pytest.raises(NotLeaseHolderError, match="is not held by provider"):
        world.coord.heartbeat(other, [lid])
    with pytest.raises(LeaseNotFoundError, match="is unknown"):
        world.coord.heartbeat(holder, [bytes(32)])
    assert state_digest(world.store) == digest  # no slot marked, no lease extended


def test_heartbeat_naming_an_expired_lease_is_refused_and_extends_nothing(world: World) -> None:
    _, pid, lid, _ = _one_leased(world)
    world.clock.advance(PARAMS.lease_ttl_s)  # expired at this instant; the sweep has not run yet
    digest = state_digest(world.store)
    with pytest.raises(LeaseNotFoundError, match="expired at"):
        world.coord.heartbeat(pid, [lid])
    assert state_digest(world.store) == digest
    world.coord.sweep()
    with pytest.raises(LeaseNotFoundError, match="is EXPIRED, not live"):
        world.coord.heartbeat(pid, [lid])


def test_heartbeat_naming_its_own_live_lease_extends_it(world: World) -> None:
    _, pid, lid, _ = _one_leased(world)
    world.clock.advance(PARAMS.heartbeat_interval_s)
    (lease,) = world.coord.heartbeat(pid, [lid])
    assert lease.lease_id == lid
    assert lease.expires_at == world.clock.now() + PARAMS.lease_ttl_s


class _RacedStore:
    """A SQLite :memory: store whose first `races` accept_proof calls find the job moved (as when another replica
    accepted it between this submission's read and its write): they write nothing and report the race."""

    def __init__(self, races: int) -> None:
        self.inner, self.races = memory_store(), races

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            yield _RacedTx(tx, self)


class _RacedTx:
    def __init__(self, tx: Tx, store: _RacedStore) -> None:
        self._tx, self._store = tx, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def accept_proof(self, proof: Any, time: int) -> bool:
        if self._store.races > 0:
            self._store.races -= 1
            return False
        return self._tx.accept_proof(proof, time)


@pytest.mark.parametrize("races", [1, 2])
def test_a_proof_whose_job_moved_mid_check_is_looked_at_again(races: int) -> None:
    world = World(store=cast(Store, _RacedStore(races)))
    world.mine(2)
    key, _, lid, task = _one_leased(world)
    outcome = world.coord.submit_proof(world.envelope(key, lid, task))
    assert outcome.accepted, "the second look found the job still LEASED and accepted the proof"
    with world.store.transaction() as tx:
        job = tx.get_job(task)
        assert job is not None
        assert job.status is JobStatus.SUBMITTED
        assert [t.to for t in tx.transitions_of(task)].count(JobStatus.SUBMITTED) == 1


def test_a_proof_whose_job_keeps_moving_is_refused_with_a_retryable_error_and_writes_nothing() -> None:
    world = World(store=cast(Store, _RacedStore(3)))
    world.mine(2)
    key, _, lid, task = _one_leased(world)
    digest = state_digest(world.store)
    with pytest.raises(ConcurrentUpdateError, match="kept moving"):
        world.coord.submit_proof(world.envelope(key, lid, task))
    assert state_digest(world.store) == digest


def test_honest_proof_is_included_verified_settled_and_paid_once(world: World) -> None:
    key, pid = world.provider(1)
    world.enqueue(1)
    world.mine(7)
    world.coord.match()
    lid, task = _lease_of(world, pid)
    world.clock.advance(ms=250)
    outcome = world.coord.submit_proof(world.envelope(key, lid, task))
    assert outcome.accepted, outcome
    assert outcome.units_mu > 0
    assert world.job_status(task) is JobStatus.SUBMITTED
    again = world.coord.submit_proof(world.envelope(key, lid, task))
    assert again.accepted  # a replay returns the first answer
    assert again.proof_id == outcome.proof_id
    world.mine(1)  # the proof transaction lands
    assert world.job_status(task) is JobStatus.VERIFIED
    world.mine(12 + 7)  # past the epoch boundary, and that boundary final
    assert world.job_status(task) is JobStatus.SETTLED
    with world.store.transaction() as tx:
        payout = tx.payout_of_task(task)
        assert payout is not None
        batch = tx.get_batch(payout.epoch)
        assert batch is not None
        assert payout.provider_id == pid
        assert payout.units_mu == outcome.units_mu
        assert payout.provider + payout.miner + payout.fund == payout.reward
    assert world.balance(provider_account(pid)) == payout.provider
    world.mine(20)  # later epochs never pay the task again
    with world.store.transaction() as tx:
        assert tx.payout_of_task(task) == payout
    claim = world.coord.claim_payout(pid, nonce=7)
    assert claim.amount == payout.provider
    assert world.coord.claim_payout(pid, nonce=7) == claim
    assert world.balance(provider_account(pid)) == 0
    report = verify(world.store)
    assert report.ok, report


class _LosesFirstInclusion(DevnetWriter):
    """A chain writer whose first proof transaction is lost (the coordinator stopped after the acceptance
    committed, or the node dropped the transaction)."""

    lost: int = 0

    def include_proof(self, body: Mapping[str, object]) -> None:
        if not self.lost:
            self.lost += 1
            return
        super().include_proof(body)


def test_an_accepted_proof_that_never_reached_the_chain_is_sent_again_by_the_sweep(world: World) -> None:
    world.coord.chain_writer = _LosesFirstInclusion(world.devnet)
    key, pid = world.provider(1)
    world.enqueue(1)
    world.mine(7)
    world.coord.match()
    lid, task = _lease_of(world, pid)
    outcome = world.coord.submit_proof(world.envelope(key, lid, task))
    assert outcome.accepted, outcome
    world.mine(1)
    assert world.job_status(task) is JobStatus.SUBMITTED, "the inclusion was lost"
    assert world.coord.sweep().resent == 0, "not before a lease TTL has passed"
    world.clock.advance(world.params.lease_ttl_s)
    assert world.coord.sweep().resent == 1
    world.mine(1)
    assert world.job_status(task) is JobStatus.VERIFIED
    with world.store.transaction() as tx:
        inclusion = tx.proof_inclusions_of([task]).get(task)
    assert inclusion is not None
    assert inclusion.proof_id == outcome.proof_id
    assert world.coord.sweep().resent == 0, "included: nothing to send"


def test_wrong_output_digest_is_rejected_requeued_and_slashed_as_fraud(world: World) -> None:
    key, pid = world.provider(1)
    world.enqueue(1)
    world.mine(7)
    world.coord.match()
    lid, task = _lease_of(world, pid)
    env = world.envelope(key, lid, task)
    env = signed_ai_envelope(key, task, lid, {**env["body"], "output": b"something else"})
    outcome = world.coord.submit_proof(env)
    assert not outcome.accepted
    assert outcome.code == "DIGEST_MISMATCH"
    assert outcome.slashed == 1_000_000 * 5000 // 10_000
    assert world.job_status(task) is JobStatus.QUEUED
    with world.store.transaction() as tx:
        provider = tx.get_provider(pid)
    assert provider is not None
    assert provider.status is ProviderStatus.BANNED  # FRAUD jails permanently
    assert verify(world.store).ok


def test_release_hands_the_job_to_another_provider(world: World) -> None:
    _, p1 = world.provider(1)
    _, p2 = world.provider(2)
    world.enqueue(1)
    world.mine(7)
    (decision,) = world.coord.match()
    first = decision.winner
    assert first is not None
    lid, task = _lease_of(world, first)
    world.coord.release(first, lid)
    assert world.job_status(task) is JobStatus.QUEUED
    world.clock.advance(10)
    world.coord.heartbeat(p1)
    world.coord.heartbeat(p2)
    (second,) = world.coord.match()
    assert second.winner == ({p1, p2} - {first}).pop()
    assert any(e.reason.value == "RELEASED_TASK" for e in second.excluded)


def test_two_coordinators_fed_the_same_chain_write_identical_batches(world: World) -> None:
    key, pid = world.provider(1)
    world.enqueue(3)
    world.mine(7)
    accepted = 0
    for _ in range(100):  # the unit-rate bucket lets one job through, then refills (SPEC §6)
        world.coord.match()
        for lease in world.coord.leases_for(pid):
            outcome = world.coord.submit_proof(world.envelope(key, lease.lease.lease_id, lease.job.task_id))
            accepted += outcome.accepted
        if accepted == 3:
            break
        world.mine(1)
    assert accepted == 3
    world.mine(30)
    replica = memory_store()
    ingest_available(replica, world.devnet, PARAMS, _no_circuits, operator_key=_pub(world.operator))
    with world.store.transaction() as a, replica.transaction() as b:
        last = a.last_batch_epoch()
        assert last is not None
        assert last == b.last_batch_epoch()
        for epoch in range(last + 1):
            ours, theirs = a.get_batch(epoch), b.get_batch(epoch)
            assert ours is not None
            assert theirs is not None
            assert ours.batch == theirs.batch
            assert ours.root == theirs.root
        assert sum(x.payouts for x in (a.get_batch(e) for e in range(last + 1)) if x) == 3


def test_three_windows_of_low_availability_slash_qos_chronic_once_per_window(world: World) -> None:
    _, pid = world.provider(1)
    world.live.remove(pid)  # it stays registered and staked but mostly stops heartbeating
    window = PARAMS.qos_window_s
    for _ in range(3 * window // PARAMS.heartbeat_interval_s + window // PARAMS.heartbeat_interval_s):
        world.clock.advance(PARAMS.heartbeat_interval_s)
        if world.clock.now() % 600 == 0:  # one slot in thirty: availability ≈ 333 bps
            world.coord.heartbeat(pid)
    world.coord.sweep()
    with world.store.transaction() as tx:
        slashes = tx.slashes_of(pid)
        provider = tx.get_provider(pid)
    assert [s.reason for s in slashes] == ["QOS_CHRONIC"]
    assert slashes[0].amount == 1_000_000 * 200 // 10_000
    assert provider is not None
    assert provider.status is ProviderStatus.JAILED
    world.coord.sweep()  # the same window never slashes twice
    with world.store.transaction() as tx:
        assert len(tx.slashes_of(pid)) == 1
    assert verify(world.store).ok


class _CountsReadTogether:
    """A store whose transactions hold each matcher pass right after it read the live lease counts until the
    other pass has read them too: both passes start from the same counts, as two replicas can."""

    def __init__(self, store: Store, barrier: threading.Barrier) -> None:
        self._store, self._barrier = store, barrier

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._store.transaction() as tx:
            yield cast(Tx, _GatedTx(tx, self._barrier))

    def close(self) -> None:
        return None


class _GatedTx:
    def __init__(self, tx: Tx, barrier: threading.Barrier) -> None:
        self._tx, self._barrier = tx, barrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def live_lease_counts(self) -> dict[bytes, int]:
        counts = self._tx.live_lease_counts()
        self._barrier.wait(30)
        return counts


@pytest.mark.postgres
def test_two_replicas_matching_at_once_never_exceed_a_providers_max_leases(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as store:
        # as in the replica harness: Γ and issuance high enough that neither the bucket nor the budget throttle stops a
        # provider's four leases, so only its slots limit them
        world = World(
            store=store,
            params=params_from_mapping({"epoch_seconds": 120, "gamma_units": 1_000_000}),
            devnet=Devnet(DevnetConfig(genesis_time=GENESIS, interval_s=10, issuance=10**12)),
        )
        world.mine(2)
        _, pid = world.provider(1)
        world.enqueue(8, runtime_ms=100)
        world.mine(7)
        barrier = threading.Barrier(2)
        replicas = [
            coordinator_for(
                _CountsReadTogether(store, barrier),
                world.clock,
                world.params,
                world.operator,
                DevnetWriter(world.devnet),
            )
            for _ in range(2)
        ]
        won: list[int] = []
        threads = [
            threading.Thread(target=lambda c=c: won.append(sum(d.winner is not None for d in c.match(limit=4))))
            for c in replicas
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) == 2, "a pass did not finish"
        with store.transaction() as tx:
            live = tx.live_leases_of(pid)
        assert len(live) == sum(won)
        assert len(live) == world.params.max_leases, "two passes filled the same provider's slots (or none did)"


def _register_with_unit_rate(world: World, seed: int, burst_mu: int, rate_mu_per_day: int) -> bytes:
    caps = Capabilities(
        kinds=("ai",), models=("llama3-8b",), unit_burst_mu=burst_mu, unit_rate_mu_per_day=rate_mu_per_day
    )
    p = world.coord.register(_pub(_key(seed)), caps)
    world.coord.deposit_stake(p.provider_id, 1_000_000, source="external")
    world.coord.heartbeat(p.provider_id)
    world.live.append(p.provider_id)
    return p.provider_id


def test_register_stores_declared_unit_rate_limits_and_refuses_bad_ones_without_change(world: World) -> None:
    # PARAMS: Γ = 1000, so SPEC §6's bucket is a burst of 10 mu and a refill of 1_000_000 mu per day
    caps = Capabilities(kinds=("ai",), models=("llama3-8b",), unit_burst_mu=4, unit_rate_mu_per_day=86_400)
    registered = world.coord.register(_pub(_key(1)), caps)
    assert (registered.unit_burst_mu, registered.unit_rate_mu_per_day) == (4, 86_400)
    assert registered.bucket_tokens_mu == 4, "a new bucket starts full at the provider's own burst"
    with world.store.transaction() as tx:
        assert tx.get_provider(registered.provider_id) == registered
    plain = world.coord.register(_pub(_key(2)), Capabilities(kinds=("ai",), models=("llama3-8b",)))
    assert (plain.unit_burst_mu, plain.unit_rate_mu_per_day, plain.bucket_tokens_mu) == (0, 0, 10)
    digest = state_digest(world.store)
    bad: list[tuple[str, object, str]] = [
        ("unit_burst_mu", -1, "0..10 "),
        ("unit_burst_mu", 11, "0..10 "),
        ("unit_burst_mu", True, "0..10 "),
        ("unit_burst_mu", "5", "0..10 "),
        ("unit_rate_mu_per_day", -1, "0..1000000 "),
        ("unit_rate_mu_per_day", 1_000_001, "0..1000000 "),
        ("unit_rate_mu_per_day", False, "0..1000000 "),
    ]
    for i, (name, value, allowed) in enumerate(bad):
        changes: dict[str, Any] = {name: value}  # some values are not ints on purpose
        wrong = replace(Capabilities(kinds=("ai",), models=("llama3-8b",)), **changes)
        with pytest.raises(InvalidRegistrationError, match=f"{name}: must be an integer {allowed}") as raised:
            world.coord.register(_pub(_key(10 + i)), wrong)
        assert raised.value.field == name
    assert state_digest(world.store) == digest, "a refused registration stored nothing"


def test_a_provider_with_a_small_declared_bucket_is_rate_limited_until_its_own_slower_refill(world: World) -> None:
    world.enqueue(2, runtime_ms=4)
    world.mine(7)
    with world.store.transaction() as tx:
        sizes = {j.max_units_mu for j in ready_jobs(tx, world.clock.now(), 10)}
    (size,) = sizes
    # SPEC's bucket (burst 10 mu, ≈ 11.6 mu/s) would grant both jobs at once, and a second later again; this
    # provider's bucket holds one job and refills one mu a second slower than the job's size.
    assert 2 <= size <= 10
    pid = _register_with_unit_rate(world, 1, burst_mu=size, rate_mu_per_day=(size - 1) * 86_400)
    first, second = world.coord.match()
    assert first.winner == pid
    assert second.winner is None
    assert {d.refused for d in second.draws} == {Exclusion.RATE_LIMITED}
    with world.store.transaction() as tx:
        (stored,) = tx.decisions_of(second.task_id)
    assert stored.winner is None
    assert {d["refused"] for d in cbor2.loads(stored.decision)["draws"]} == {"RATE_LIMITED"}
    world.clock.advance(1)  # refilled size - 1 mu: still short (SPEC's rate would have refilled 11)
    world.coord.heartbeat(pid)
    (again,) = world.coord.match()
    assert again.task_id == second.task_id
    assert again.winner is None
    assert {d.refused for d in again.draws} == {Exclusion.RATE_LIMITED}
    world.clock.advance(1)  # refilled to the full burst of `size`
    world.coord.heartbeat(pid)
    (granted,) = world.coord.match()
    assert granted.task_id == second.task_id
    assert granted.winner == pid
