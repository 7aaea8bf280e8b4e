"""The coordinator's part of the store contract (`CoordinatorTx`), one suite run against every backend."""

import dataclasses
import threading
from pathlib import Path

import pytest

from aicf.core.assignment import POOL_TAG, Candidate, pool_map
from aicf.core.chain import Claim, Job, ProofInclusion
from aicf.core.encoding import canonical_cbor, tagged_hash
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import TREASURY, requester_account, stake_account
from aicf.core.outages import Outage
from aicf.core.records import (
    BatchRecord,
    DecisionRecord,
    LeaseRecord,
    ProofRecord,
    Provider,
    ResultRecord,
    SlashRecord,
)
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import Payout
from aicf.core.types import MicroAnm, MilliUnits
from aicf.service.audit import verify_snapshot
from aicf.service.state_digest import digest_of
from aicf.store.coord_interface import QosRange
from aicf.store.interface import ConcurrentUpdateError, Store, Tx
from store.backends import memory_store, open_test_store
from store.test_contract import ALICE, block, digest, job, mint
from store.test_contract_traps import trap
from store.tx_helpers import ready_jobs

T = 1_700_000_000


def tid(n: int) -> bytes:
    return bytes([n]) * 32


def pid(n: int) -> bytes:
    return bytes([0x50 + n]) * 32


def provider(n: int, **changes: object) -> Provider:
    p = Provider(
        provider_id=pid(n),
        public_key=bytes([n]) * 32,
        status=ProviderStatus.ACTIVE,
        registered_at=T,
        kinds=("ai", "quantum"),
        models=("llama3-8b",),
        devices=("h100",),
        regions=("eu",),
        tee_classes=("sev-snp",),
        max_leases=3,
        bonded=700,
        unbonding=50,
        unbonding_until=T + 99,
        jailed_until=None,
        last_heartbeat_at=T + 5,
        bucket_tokens_mu=1234,
        bucket_at=T + 6,
        strikes=1,
        updated_at=T + 7,
        unit_burst_mu=7_000,
        unit_rate_mu_per_day=86_400_000,
    )
    return dataclasses.replace(p, **changes)  # type: ignore[arg-type]


def lease(task: int, prov: int, attempt: int = 0, granted: int = T, ttl: int = 60) -> LeaseRecord:
    return LeaseRecord(
        lease_id=bytes([task, prov, attempt]) + bytes(29),
        task_id=tid(task),
        provider_id=pid(prov),
        attempt=attempt,
        granted_at=granted,
        expires_at=granted + ttl,
        status=LeaseStatus.LIVE,
        epoch=3,
        grant_sig=b"s" * 64,
    )


def proof(n: int, task: int, prov: int, received: int, verdict: str = "ACCEPT") -> ProofRecord:
    return ProofRecord(
        proof_id=bytes([0xF0, n]) * 16,
        task_id=tid(task),
        lease_id=lease(task, prov).lease_id,
        provider_id=pid(prov),
        kind="ai",
        envelope=b"\xa1\x61k\x01",
        received_at=received,
        latency_ms=250 + n,
        verdict=verdict,
        message="" if verdict == "ACCEPT" else "digest differs",
        acceptance=b"acc" if verdict == "ACCEPT" else b"",
        acceptance_sig=b"g" * 64 if verdict == "ACCEPT" else b"",
        units_mu=1200,
        output_digest=b"o" * 32,
        qos={"runtime_ms": 900, "tokens": 64},
    )


def result(task: int, height: int, tx_index: int = 0) -> ResultRecord:
    return ResultRecord(
        task_id=tid(task),
        proof_id=bytes([0xF0, task]) * 16,
        kind="ai",
        output_digest=b"o" * 32,
        units_mu=1200,
        qos={"runtime_ms": 900},
        height=height,
        tx_index=tx_index,
        miner_id=b"m" * 32,
        provider_id=pid(1),
    )


def payout(task: int, epoch: int, reward: int = 100) -> Payout:
    provider_cut, miner_cut = reward * 7 // 10, reward // 10
    return Payout(
        payout_id=bytes([0xAA, task, epoch]) + bytes(29),
        epoch=epoch,
        task_id=tid(task),
        provider_id=pid(1),
        miner_id=b"m" * 32,
        proof_id=bytes([0xF0, task]) * 16,
        units_mu=1200,
        base_rate=50,
        price_bps=10000,
        reward=reward,
        provider=provider_cut,
        miner=miner_cut,
        fund=reward - provider_cut - miner_cut,
        charged=reward,
        params_hash=b"h" * 32,
    )


def batch(epoch: int, payouts: list[Payout]) -> BatchRecord:
    return BatchRecord(
        epoch=epoch,
        finalized_height=10 * epoch,
        params_hash=b"h" * 32,
        price_bps=10000,
        next_price_bps=9000,
        root=b"r" * 32,
        batch=b"\xa0",
        payouts=len(payouts),
        carried=0,
        reward=sum(p.reward for p in payouts),
        units_mu=sum(p.units_mu for p in payouts),
        treasury_before=10_000,
        trap_seed=b"t" * 32,
        time=T + epoch,
    )


def slash(subject: int, prov: int, time: int) -> SlashRecord:
    return SlashRecord(
        evidence_hash=bytes([0xEE, subject]) * 16,
        provider_id=pid(prov),
        reason="MISSED_LEASE",
        subject=bytes([0x5B, subject]) * 16,
        task_id=tid(subject),
        amount=7,
        evidence=b"\xa0",
        time=time,
        jailed_until=None if subject % 2 else T + 3600,
    )


def queued(tx: Tx, *jobs: Job) -> None:
    """Insert jobs and make them QUEUED (as finality does)."""
    tx.insert_jobs(list(jobs))
    assert tx.move_jobs([j.task_id for j in jobs], JobStatus.PENDING, JobStatus.QUEUED, "final", 0, 0) == len(jobs)


# -- providers ---------------------------------------------------------------------------------------------


def test_a_provider_round_trips_and_registers_once(store: Store) -> None:
    bare = provider(2, models=(), devices=(), regions=(), tee_classes=(), last_heartbeat_at=None, jailed_until=0,
                    unit_burst_mu=0, unit_rate_mu_per_day=0)  # fmt: skip
    with store.transaction() as tx:
        assert tx.get_provider(pid(1)) is None
        assert tx.insert_provider(provider(1))
        assert tx.insert_provider(bare)
        assert not tx.insert_provider(provider(1, bonded=1))
        tx.record_provider_move(pid(1), None, ProviderStatus.ACTIVE, "registered", T)
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_provider(pid(1)) == provider(1)
        assert tx.get_provider(pid(2)) == bare
        assert tx.providers() == [provider(1), bare]
        moves = tx.snapshot().provider_moves
        assert [(m.provider_id, m.frm, m.to, m.reason, m.time) for m in moves] == [
            (pid(1), None, ProviderStatus.ACTIVE, "registered", T)
        ]


def test_a_providers_declared_unit_rate_limits_round_trip_through_every_read(store: Store) -> None:
    declared = provider(1, unit_burst_mu=1, unit_rate_mu_per_day=2**62, unbonding_until=T)
    with store.transaction() as tx:
        assert tx.insert_provider(declared)
        assert tx.insert_provider(provider(2, unit_burst_mu=0, unit_rate_mu_per_day=0))
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_provider(pid(1)) == declared
        assert tx.lock_provider(pid(1)) == declared
        assert tx.providers_due(T + 1) == [declared]
        assert [p for p in tx.snapshot().providers if p.provider_id == pid(1)] == [declared]
        changed = dataclasses.replace(declared, unit_burst_mu=5, unit_rate_mu_per_day=6, bucket_tokens_mu=-3)
        assert tx.update_provider(changed, ProviderStatus.ACTIVE)
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_provider(pid(1)) == changed
        assert (tx.get_provider(pid(2)) or provider(9)).unit_burst_mu == 0


def test_update_provider_is_guarded_by_the_stored_status(store: Store) -> None:
    jailed = provider(1, status=ProviderStatus.JAILED, jailed_until=T + 3600, strikes=2)
    with store.transaction() as tx:
        tx.insert_provider(provider(1))
        assert not tx.update_provider(jailed, ProviderStatus.JAILED)  # stored: ACTIVE
        assert tx.get_provider(pid(1)) == provider(1)
        assert tx.update_provider(jailed, ProviderStatus.ACTIVE)
        assert not tx.update_provider(provider(1), ProviderStatus.ACTIVE)  # it moved
        assert not tx.update_provider(provider(9), ProviderStatus.ACTIVE)  # unknown
        tx.record_provider_move(pid(1), ProviderStatus.ACTIVE, ProviderStatus.JAILED, "slashed", T + 1)
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_provider(pid(1)) == jailed
        assert tx.get_provider(pid(9)) is None


def test_providers_due_are_the_jails_that_ended_and_the_unbonding_that_is_over(store: Store) -> None:
    jail_ends = provider(2, status=ProviderStatus.JAILED, jailed_until=T + 100, unbonding=0)
    unbonded = provider(4)  # 50 unbonding until T + 99
    jailed_unbonding = provider(6, status=ProviderStatus.JAILED, jailed_until=T + 500, unbonding_until=T + 200)
    with store.transaction() as tx:
        tx.insert_provider(provider(1, unbonding=0))
        tx.insert_provider(jail_ends)
        tx.insert_provider(provider(3, status=ProviderStatus.BANNED, jailed_until=0, unbonding=0))  # for ever
        tx.insert_provider(provider(5, status=ProviderStatus.JAILED, jailed_until=0, unbonding=0))  # for ever
        tx.insert_provider(unbonded)
        tx.insert_provider(jailed_unbonding)
        tx.commit()
    with store.transaction() as tx:
        assert tx.providers_due(T + 98) == []
        assert tx.providers_due(T + 99) == [unbonded]
        assert tx.providers_due(T + 100) == [jail_ends, unbonded]
        assert tx.providers_due(T + 200) == [jail_ends, unbonded, jailed_unbonding]  # its unbonding, not its jail
        assert tx.providers_due(T + 10**6) == [jail_ends, unbonded, jailed_unbonding]


def test_active_provider_ids_are_the_active_providers_registered_by_a_time(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_provider(provider(3, registered_at=T + 50))
        tx.insert_provider(provider(1))
        tx.insert_provider(provider(2, status=ProviderStatus.JAILED, jailed_until=T + 10))
        tx.insert_provider(provider(4, status=ProviderStatus.UNBONDING, bonded=0))
        tx.insert_provider(provider(5, status=ProviderStatus.BANNED, jailed_until=0))
        tx.commit()
    with store.transaction() as tx:
        assert tx.active_provider_ids(T - 1) == []
        assert tx.active_provider_ids(T + 49) == [pid(1)]
        assert tx.active_provider_ids(T + 50) == [pid(1), pid(3)]


def test_heartbeats_are_idempotent_and_read_by_range(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_provider(provider(1))
        tx.insert_provider(provider(2))
        for slot in (5, 3, 7, 3, 9):
            assert tx.record_heartbeat(pid(1), slot, T + 20 * slot, T + 20 * slot + 60) == []
        assert tx.record_heartbeat(pid(2), 4, T + 80, T + 140) == []
        assert tx.heartbeat_slots(pid(1), 3, 7) == [3, 5, 7]
        assert tx.heartbeat_slots(pid(1), 4, 8) == [5, 7]
        assert tx.heartbeat_slots(pid(1), 10, 20) == []
        assert tx.heartbeat_slots(pid(2), 0, 100) == [4]
        tx.commit()
    with store.transaction() as tx:
        assert tx.snapshot().heartbeats == ((pid(1), 3), (pid(1), 5), (pid(1), 7), (pid(1), 9), (pid(2), 4))


def test_heartbeat_slots_of_reads_the_range_of_many_providers_with_every_one_present(store: Store) -> None:
    with store.transaction() as tx:
        for n, slots in ((1, (5, 3, 7, 9)), (2, (4,)), (3, (1, 20))):
            tx.insert_provider(provider(n))
            for slot in slots:
                tx.record_heartbeat(pid(n), slot, T + 20 * slot, T + 20 * slot + 60)
        tx.commit()
    with store.transaction() as tx:
        assert tx.heartbeat_slots_of([pid(2), pid(1), pid(3), pid(9)], 3, 7) == {
            pid(1): [3, 5, 7],
            pid(2): [4],
            pid(3): [],
            pid(9): [],
        }
        assert tx.heartbeat_slots_of([pid(1)], 8, 9) == {pid(1): [9]}
        assert tx.heartbeat_slots_of([], 0, 100) == {}


def test_record_heartbeat_touches_only_the_heartbeat_time_and_extends_live_leases(store: Store) -> None:
    jailed = provider(2, status=ProviderStatus.JAILED, jailed_until=T + 3600)
    with store.transaction() as tx:
        tx.insert_provider(provider(1))
        tx.insert_provider(jailed)
        queued(tx, job(1, 0), job(2, 0, 1), job(3, 0, 2))
        assert tx.lease_job(lease(1, 1, granted=T), T)  # expires T + 60
        assert tx.lease_job(lease(2, 1, granted=T + 1, ttl=10), T + 1)  # expires T + 11
        assert tx.lease_job(lease(3, 1, granted=T + 2), T + 2)
        assert tx.end_lease(lease(3, 1).lease_id, LeaseStatus.RELEASED, T + 3)
        tx.commit()
    with store.transaction() as tx:
        version, moves = tx.registry_version(), tx.snapshot().provider_moves
        live = tx.record_heartbeat(pid(1), 1, T + 30, T + 90)
        # the unexpired live lease is extended; the one that expired at T + 11 and the released one are not
        assert live == [lease(1, 1, granted=T, ttl=90), lease(2, 1, granted=T + 1, ttl=10)]
        assert live == tx.live_leases_of(pid(1))
        assert tx.record_heartbeat(pid(1), 1, T + 31, T + 80) == live  # never shortens; the slot is marked once
        assert tx.get_provider(pid(1)) == provider(1, last_heartbeat_at=T + 31, updated_at=T + 31)
        assert tx.record_heartbeat(pid(2), 1, T + 32, T + 92) == []  # any status: a jailed provider heartbeats too
        assert tx.get_provider(pid(2)) == dataclasses.replace(jailed, last_heartbeat_at=T + 32, updated_at=T + 32)
        assert tx.heartbeat_slots_of([pid(1), pid(2)], 0, 10) == {pid(1): [1], pid(2): [1]}
        assert tx.registry_version() == version, "a heartbeat is not a profile change"
        assert tx.snapshot().provider_moves == moves, "nor a transition"
        tx.commit()


def test_record_heartbeat_of_an_unknown_provider_writes_nothing(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_provider(provider(1))
        tx.commit()
    with store.transaction() as tx:
        before = tx.snapshot()
        assert tx.record_heartbeat(pid(9), 1, T + 30, T + 90) is None
        assert tx.snapshot() == before
        tx.commit()
    with store.transaction() as tx:
        assert tx.heartbeat_slots(pid(9), 0, 10) == []


# -- matching and leases -----------------------------------------------------------------------------------


def _j(n: int, height: int, *, tier: int, fee: int, mu: int, not_before: int = 0) -> Job:
    return dataclasses.replace(
        job(n, height), tier=tier, fee_per_unit=fee, max_units_mu=MilliUnits(mu), not_before=not_before
    )


def test_ready_jobs_come_in_matcher_order(store: Store) -> None:
    with store.transaction() as tx:
        queued(
            tx,
            _j(1, 0, tier=1, fee=15000, mu=1265),  # key 15000 - 1 - 0 = 14999
            _j(2, 0, tier=1, fee=15000, mu=1999),  # 14999 too (1999 // 1000 = 1): tie, then task_id
            _j(3, 1, tier=1, fee=15010, mu=1265),  # 15010 - 1 - 10 = 14999: tie, later enqueue height
            _j(4, 0, tier=1, fee=15000, mu=2000),  # 14998
            _j(5, 0, tier=2, fee=1, mu=900_000),  # the higher tier first, whatever its key
            _j(6, 3, tier=0, fee=0, mu=5000),  # 0 - 5 - 30 = -35
            _j(7, 4, tier=0, fee=0, mu=0),  # 0 - 0 - 40 = -40
            _j(8, 0, tier=3, fee=99_999, mu=0, not_before=T + 1),  # not ready yet
        )
        tx.insert_jobs([_j(9, 0, tier=3, fee=99_999, mu=0)])  # PENDING
        queued(tx, _j(10, 0, tier=3, fee=99_999, mu=0))
        tx.move_job(tid(10), JobStatus.QUEUED, JobStatus.CANCELLED, "cancel", 0, 0)
        order = [tid(n) for n in (5, 1, 2, 3, 4, 6, 7)]
        assert [j.task_id for j in ready_jobs(tx, T, 100)] == order
        assert [j.task_id for j in ready_jobs(tx, T, 3)] == order[:3]
        assert [j.task_id for j in ready_jobs(tx, T + 1, 1)] == [tid(8)]
        assert ready_jobs(tx, T, 0) == []
        assert ready_jobs(tx, T, 1)[0] == tx.get_job(tid(5))
        assert tx.claim_ready_jobs(T, 100) == ready_jobs(tx, T, 100), "a matcher pass claims in the same order"
        assert tx.oldest_queued_height() == 0, "job 8 backs off but is still queued; 10 left for CANCELLED"
        tx.move_jobs([tid(n) for n in (1, 2, 4, 5, 8)], JobStatus.QUEUED, JobStatus.CANCELLED, "cancel", 0, 0)
        assert tx.oldest_queued_height() == 1


def test_lease_job_refuses_a_job_already_leased(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, job(1, 0), dataclasses.replace(job(2, 0, 1), not_before=T + 10))
        tx.commit()
    with store.transaction() as tx:
        assert tx.lease_job(lease(1, 1), T)
        assert not tx.lease_job(lease(1, 2), T)  # the same job again, another provider
        assert not tx.lease_job(lease(2, 1), T + 9)  # not ready before not_before
        assert not tx.lease_job(lease(3, 1), T)  # unknown job
        tx.commit()
    with store.transaction() as tx:
        assert not tx.lease_job(lease(1, 3, attempt=1), T + 5)  # still LEASED in a later transaction
        got = tx.get_job(tid(1))
        assert got is not None
        assert got.status == JobStatus.LEASED
        assert tx.get_lease(lease(1, 1).lease_id) == lease(1, 1)
        assert tx.get_lease(lease(1, 2).lease_id) is None
        assert tx.get_lease(lease(2, 1).lease_id) is None
        assert [(t.frm, t.to, t.reason, t.height, t.time) for t in tx.transitions_of(tid(1))][-1] == (
            JobStatus.QUEUED,
            JobStatus.LEASED,
            "assigned",
            None,
            T,
        )
        assert len(tx.transitions_of(tid(2))) == 1  # only PENDING -> QUEUED
        assert tx.leases_of_task(tid(1)) == [lease(1, 1)]
        assert tx.lease_job(lease(2, 1), T + 10)


def test_decisions_are_kept_per_attempt_and_replaced(store: Store) -> None:
    def decision(attempt: int, winner: bytes | None, time: int) -> DecisionRecord:
        return DecisionRecord(
            task_id=tid(1), attempt=attempt, decision=bytes([attempt, time % 256]), winner=winner, time=time
        )

    with store.transaction() as tx:
        tx.put_decisions([decision(1, pid(2), T + 2), decision(0, None, T)])
        tx.put_decisions([decision(0, pid(1), T + 1)])  # a later pass for the same attempt
        tx.commit()
    with store.transaction() as tx:
        assert tx.decisions_of(tid(1)) == [decision(0, pid(1), T + 1), decision(1, pid(2), T + 2)]
        assert tx.decisions_of(tid(2)) == []


def test_registry_version_moves_with_profiles_not_with_heartbeats_or_buckets(store: Store) -> None:
    with store.transaction() as tx:
        start = tx.registry_version()
        assert tx.insert_provider(provider(1))
        tx.commit()
    with store.transaction() as tx:
        after_insert = tx.registry_version()
        assert after_insert > start
        live_only = provider(1, last_heartbeat_at=T + 50, bucket_tokens_mu=1, bucket_at=T + 50, strikes=2)
        assert tx.update_provider(live_only, ProviderStatus.ACTIVE)
        assert tx.update_provider(dataclasses.replace(live_only, updated_at=T + 51), ProviderStatus.ACTIVE)
        tx.commit()
    with store.transaction() as tx:
        assert tx.registry_version() == after_insert, "heartbeats, buckets and strikes are not the profile"
    for change in (
        {"status": ProviderStatus.JAILED},
        {"bonded": 10},
        {"models": ("llama3-8b", "minilm-l6-v2")},
        {"regions": ("us",)},
        {"tee_classes": ()},
        {"max_leases": 1},
    ):
        with store.transaction() as tx:
            before = tx.registry_version()
            current = tx.get_provider(pid(1))
            assert current is not None
            assert tx.update_provider(dataclasses.replace(current, **change), current.status)
            tx.commit()
        with store.transaction() as tx:
            assert tx.registry_version() > before, f"{change} is part of the profile"


def test_pools_are_stored_once_under_their_id(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.get_pool(b"p" * 32) is None
        tx.put_pool(b"p" * 32, b"first")
        tx.put_pool(b"p" * 32, b"second")  # content-addressed: a stored id keeps its record
        tx.put_pool(b"q" * 32, b"other")
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_pool(b"p" * 32) == b"first"
        assert tx.snapshot().pools == ((b"p" * 32, b"first"), (b"q" * 32, b"other"))


def test_live_leases_granted_by_lists_only_live_leases_that_old_oldest_first(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, job(1, 0), job(2, 0, 1), job(3, 0, 2))
        assert tx.lease_job(lease(1, 1, granted=T + 20), T + 20)
        assert tx.lease_job(lease(2, 1, granted=T + 5), T + 5)
        assert tx.lease_job(lease(3, 2, granted=T + 10), T + 10)
        assert tx.end_lease(lease(3, 2).lease_id, LeaseStatus.PROVED, T + 11)
        tx.commit()
    with store.transaction() as tx:
        assert [x.task_id for x in tx.live_leases_granted_by(T + 20, 10)] == [tid(2), tid(1)]
        assert [x.task_id for x in tx.live_leases_granted_by(T + 19, 10)] == [tid(2)]
        assert [x.task_id for x in tx.live_leases_granted_by(T + 20, 1)] == [tid(2)]
        assert tx.live_leases_granted_by(T + 4, 10) == []
        by_task = tx.leases_of_tasks([tid(3), tid(1), tid(9), tid(1)])
        assert by_task == {tid(1): tx.leases_of_task(tid(1)), tid(3): tx.leases_of_task(tid(3))}
        assert by_task[tid(3)][0].status is LeaseStatus.PROVED
        assert tx.leases_of_tasks([]) == {}


def test_leases_of_tasks_answers_alike_when_the_tasks_take_several_statements(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aicf.store.sqlite._IN_CHUNK", 2)  # SQLite binds the ids two per statement here
    with store.transaction() as tx:
        queued(tx, job(1, 0), job(2, 0, 1), job(3, 0, 2))
        assert tx.lease_job(lease(1, 1), T)
        assert tx.lease_job(lease(2, 1), T)
        assert tx.end_lease(lease(2, 1).lease_id, LeaseStatus.RELEASED, T + 1)
        tx.set_job_schedule(tid(2), 1, T)
        assert tx.move_job(tid(2), JobStatus.LEASED, JobStatus.QUEUED, "released", None, T + 1)
        assert tx.lease_job(lease(2, 2, attempt=1), T + 1)
        assert tx.lease_job(lease(3, 2), T)
        by_task = tx.leases_of_tasks([tid(3), tid(9), tid(2), tid(1), tid(3)])
        assert by_task == {t: tx.leases_of_task(t) for t in (tid(1), tid(2), tid(3))}
        assert [x.attempt for x in by_task[tid(2)]] == [0, 1]


def test_lease_queries_and_guards(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_provider(provider(1))
        tx.insert_provider(provider(2))
        queued(tx, job(1, 0), job(2, 0, 1), job(3, 0, 2), job(4, 0, 3))
        assert tx.lease_job(lease(1, 1, granted=T + 2), T + 2)  # expires T + 62
        assert tx.lease_job(lease(2, 1, granted=T), T)  # expires T + 60
        assert tx.lease_job(lease(3, 2, granted=T + 1, ttl=10), T + 1)  # expires T + 11
        assert tx.lease_job(lease(4, 1, granted=T + 3), T + 3)  # expires T + 63
        assert tx.end_lease(lease(4, 1).lease_id, LeaseStatus.RELEASED, T + 4)
        tx.commit()
    with store.transaction() as tx:
        assert tx.live_leases_of(pid(1)) == [lease(2, 1, granted=T), lease(1, 1, granted=T + 2)]
        assert tx.live_lease_counts() == {pid(1): 2, pid(2): 1}
        assert tx.expired_leases(T + 10, 10) == []
        assert tx.expired_leases(T + 11, 10) == [lease(3, 2, granted=T + 1, ttl=10)]  # expiry is inclusive
        assert [x.task_id for x in tx.expired_leases(T + 100, 10)] == [tid(3), tid(2), tid(1)]  # oldest first
        assert [x.task_id for x in tx.expired_leases(T + 100, 2)] == [tid(3), tid(2)]
        released = tx.get_lease(lease(4, 1).lease_id)
        assert released is not None
        assert (released.status, released.ended_at) == (LeaseStatus.RELEASED, T + 4)
        # end_lease is guarded LIVE -> to
        assert not tx.end_lease(lease(4, 1).lease_id, LeaseStatus.EXPIRED, T + 5)
        assert not tx.end_lease(b"\x00" * 32, LeaseStatus.EXPIRED, T + 5)
        # a heartbeat at T + 30 extends the live, unexpired leases of provider 1 (not the released one)
        extended = tx.record_heartbeat(pid(1), 1, T + 30, T + 90)
        assert extended is not None
        assert [x.expires_at for x in extended] == [T + 90, T + 90]
        assert tx.record_heartbeat(pid(1), 1, T + 30, T + 80) == extended  # never shortens
        assert tx.record_heartbeat(pid(2), 1, T + 30, T + 90) == [
            lease(3, 2, granted=T + 1, ttl=10)
        ]  # expired at T + 11
        assert [x.expires_at for x in tx.live_leases_of(pid(1))] == [T + 90, T + 90]
        assert tx.get_lease(lease(4, 1).lease_id) == released
        assert tx.get_lease(lease(3, 2).lease_id) == lease(3, 2, granted=T + 1, ttl=10)
        assert tx.end_lease(lease(3, 2).lease_id, LeaseStatus.EXPIRED, T + 31)
        assert tx.live_lease_counts() == {pid(1): 2}
        tx.commit()


def test_set_job_schedule_and_add_carried(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_jobs([job(1, 0), job(2, 0, 1)])
        tx.set_job_schedule(tid(1), 2, T + 20)
        tx.add_carried([tid(1), tid(2), tid(1), tid(9)])
        tx.commit()
    with store.transaction() as tx:
        one, two = tx.get_job(tid(1)), tx.get_job(tid(2))
        assert one is not None
        assert two is not None
        assert (one.attempts, one.not_before, one.carried_batches) == (2, T + 20, 2)
        assert (two.attempts, two.not_before, two.carried_batches) == (0, 0, 1)


# -- proofs and results ------------------------------------------------------------------------------------


def test_proofs_are_stored_once_and_queried_by_verdict(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_proof(proof(1, 1, 1, T + 10))
        assert not tx.insert_proof(dataclasses.replace(proof(1, 1, 1, T + 10), verdict="MALFORMED"))
        assert tx.insert_proof(proof(2, 2, 1, T + 30))
        assert tx.insert_proof(proof(3, 3, 1, T + 20, verdict="DIGEST_MISMATCH"))
        assert tx.insert_proof(proof(4, 4, 1, T + 5))
        assert tx.insert_proof(proof(5, 5, 2, T + 25))
        tx.commit()
    with store.transaction() as tx:
        assert tx.proof_seen(proof(1, 1, 1, 0).proof_id)
        assert not tx.proof_seen(b"\x00" * 32)
        assert tx.get_proof(proof(1, 1, 1, 0).proof_id) == proof(1, 1, 1, T + 10)
        assert tx.get_proof(b"\x00" * 32) is None
        assert tx.accepted_proof_of(tid(1)) == proof(1, 1, 1, T + 10)
        assert tx.accepted_proof_of(tid(3)) is None  # rejected
        latency = {n: proof(n, n, 1, 0).latency_ms for n in (1, 2, 4)}
        assert len(set(latency.values())) == 3, "the helper gives each proof its own latency"
        assert tx.accepted_latencies_since(pid(1), T + 10) == [latency[1], latency[2]]
        assert tx.accepted_latencies_since(pid(1), 0) == [latency[4], latency[1], latency[2]]
        assert tx.accepted_latencies_since(pid(1), T + 31) == []


def test_proof_context_reads_what_a_submission_needs_together(store: Store) -> None:
    trap_caller = bytes([0x71]) * 20
    with store.transaction() as tx:
        tx.insert_block(block(0))
        tx.insert_provider(provider(1))
        queued(tx, job(1, 0), job(2, 0, 1, caller=trap_caller))
        assert tx.lease_job(lease(1, 1), T)
        assert tx.insert_proof(proof(1, 1, 1, T + 10))
        assert tx.insert_trap(dataclasses.replace(trap(1), caller=trap_caller))
        for slot in (3, 5, 9):
            tx.record_heartbeat(pid(1), slot, T + 100, T + 160)  # the lease expired at T + 60: not extended
        tx.commit()
    qos = QosRange(since=T + 10, first_slot=4, last_slot=9)
    with store.transaction() as tx:
        ctx = tx.proof_context(pid(1), lease(1, 1).lease_id, tid(1), proof(1, 1, 1, 0).proof_id, qos)
        assert ctx.provider == tx.get_provider(pid(1))
        assert ctx.lease == lease(1, 1)
        assert ctx.job == tx.get_job(tid(1))
        assert ctx.seen
        assert ctx.head == block(0)
        assert ctx.trap is None
        assert ctx.trust_version == tx.trust_version()
        assert ctx.latencies == tx.accepted_latencies_since(pid(1), T + 10) == [proof(1, 1, 1, 0).latency_ms]
        assert ctx.slots == [5, 9]
        assert tx.proof_context(pid(1), b"", tid(1), b"", QosRange(since=T + 11, first_slot=0, last_slot=4)).slots == [
            3
        ]
        assert (
            tx.proof_context(pid(1), b"", tid(1), b"", QosRange(since=T + 11, first_slot=0, last_slot=4)).latencies
            == []
        )
        trapped = tx.proof_context(pid(2), b"\x00" * 32, tid(2), b"\x01" * 32, qos)
        assert (trapped.provider, trapped.lease, trapped.seen) == (None, None, False)
        assert trapped.trap == tx.get_trap(trap_caller)
        assert trapped.trap is not None
        nothing = tx.proof_context(pid(3), b"\x00" * 32, tid(9), b"\x01" * 32, qos)
        assert (nothing.job, nothing.trap, nothing.latencies, nothing.slots) == (None, None, [], [])


def test_accept_proof_moves_the_job_stores_the_proof_and_ends_the_lease_together(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, job(1, 0))
        assert tx.lease_job(lease(1, 1), T)
        tx.commit()
    with store.transaction() as tx:
        assert tx.accept_proof(proof(1, 1, 1, T + 10), T + 10)
        tx.commit()
    with store.transaction() as tx:
        job1 = tx.get_job(tid(1))
        assert job1 is not None
        assert job1.status is JobStatus.SUBMITTED
        assert tx.get_proof(proof(1, 1, 1, 0).proof_id) == proof(1, 1, 1, T + 10)
        ended = tx.get_lease(lease(1, 1).lease_id)
        assert ended is not None
        assert (ended.status, ended.ended_at) == (LeaseStatus.PROVED, T + 10)
        last = tx.transitions_of(tid(1))[-1]
        assert (last.frm, last.to, last.reason, last.height, last.time) == (
            JobStatus.LEASED, JobStatus.SUBMITTED, "proof submitted", None, T + 10,
        )  # fmt: skip


def test_accept_proof_of_a_job_no_longer_leased_reports_the_race(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, job(1, 0))
        assert tx.lease_job(lease(1, 1), T)
        assert tx.accept_proof(proof(1, 1, 1, T + 10), T + 10)
        tx.commit()
    with store.transaction() as tx:  # a second replica's copy of the same proof: the job is SUBMITTED already
        assert not tx.accept_proof(proof(1, 1, 1, T + 10), T + 11)
    with store.transaction() as tx:
        assert len([t for t in tx.transitions_of(tid(1)) if t.to is JobStatus.SUBMITTED]) == 1


def test_accepted_proofs_not_included_are_those_of_submitted_jobs_without_an_inclusion(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, job(1, 0), job(2, 0, 1), job(3, 0, 2))
        for n in (1, 2, 3):
            assert tx.lease_job(lease(n, 1), T)
            assert tx.move_job(tid(n), JobStatus.LEASED, JobStatus.SUBMITTED, "proof submitted", None, T)
        assert tx.insert_proof(proof(1, 1, 1, T + 10))
        assert tx.insert_proof(proof(2, 2, 1, T + 5))
        assert tx.insert_proof(proof(3, 3, 1, T + 7, verdict="DIGEST_MISMATCH"))
        tx.commit()
    with store.transaction() as tx:
        assert tx.accepted_proofs_not_included(T + 10, 10) == [proof(2, 2, 1, T + 5), proof(1, 1, 1, T + 10)]
        assert tx.accepted_proofs_not_included(T + 9, 10) == [proof(2, 2, 1, T + 5)]
        assert tx.accepted_proofs_not_included(T + 10, 1) == [proof(2, 2, 1, T + 5)]
        inclusion = ProofInclusion(
            task_id=tid(2), proof_id=proof(2, 2, 1, 0).proof_id, provider_id=pid(1), height=3, tx_index=0,
            tx_hash=b"h" * 32, producer=b"m" * 20,
        )  # fmt: skip
        assert tx.insert_proof_inclusions([inclusion]) == 1
        assert tx.accepted_proofs_not_included(T + 10, 10) == [proof(1, 1, 1, T + 10)]


def test_accepted_proofs_of_gives_each_task_its_earliest_accepted_proof(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_proof(proof(1, 1, 1, T + 10))
        assert tx.insert_proof(proof(2, 1, 2, T + 5))  # task 1's earliest
        assert tx.insert_proof(proof(3, 1, 3, T + 1, verdict="DIGEST_MISMATCH"))  # earlier, but rejected
        assert tx.insert_proof(proof(4, 2, 1, T + 7))
        assert tx.insert_proof(proof(5, 3, 1, T + 2, verdict="DIGEST_MISMATCH"))
        assert tx.insert_proof(proof(6, 4, 1, T + 9))
        assert tx.insert_proof(proof(7, 4, 2, T + 9))  # same time as 6: the lower proof id wins
        tx.commit()
    with store.transaction() as tx:
        found = tx.accepted_proofs_of([tid(1), tid(2), tid(3), tid(4), tid(9), tid(1)])
        assert found == {tid(1): proof(2, 1, 2, T + 5), tid(2): proof(4, 2, 1, T + 7), tid(4): proof(6, 4, 1, T + 9)}
        assert found == {t: p for t in (tid(n) for n in range(1, 10)) if (p := tx.accepted_proof_of(t)) is not None}
        assert tx.accepted_proofs_of([]) == {}


def test_results_are_unique_and_unsettled_until_paid(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_results([result(2, 5, 1), result(1, 5, 0), result(3, 4, 7)]) == {tid(2), tid(1), tid(3)}
        assert tx.insert_results([result(4, 9), result(1, 6)]) == {tid(4)}  # task 1 has its result
        assert tx.insert_results([]) == set()
        assert tx.get_result(tid(1)) == result(1, 5, 0)
        assert tx.get_result(tid(9)) is None
        assert tx.unsettled_results_through(5) == [result(3, 4, 7), result(1, 5, 0), result(2, 5, 1)]
        assert tx.insert_batch(batch(1, [payout(1, 1)]), [payout(1, 1)])
        assert [r.task_id for r in tx.unsettled_results_through(9)] == [tid(3), tid(2), tid(4)]


def test_rollback_deletes_results_and_reverts_chain_moves_above_the_fork(store: Store) -> None:
    """A proof included at height 9 (SUBMITTED -> VERIFIED, ResultRecord) is undone when block 9 is orphaned;
    moves recorded off chain (height None) are not, even when made after block 9."""
    with store.transaction() as tx:
        for h in range(9):
            tx.insert_block(block(h))
        queued(tx, job(1, 0), job(2, 0, 1))
        assert tx.lease_job(lease(1, 1), T)
        assert tx.move_job(tid(1), JobStatus.LEASED, JobStatus.SUBMITTED, "proof accepted", None, T + 1)
        assert tx.insert_results([result(3, 8)]) == {tid(3)}  # at the fork height: stays
        tx.commit()
    with store.transaction() as tx:
        tx.insert_block(block(9))
        assert tx.insert_results([result(1, 9)]) == {tid(1)}
        assert tx.move_job(tid(1), JobStatus.SUBMITTED, JobStatus.VERIFIED, "proof included", 9, 0)
        tx.commit()
    with store.transaction() as tx:
        assert tx.lease_job(lease(2, 1), T + 2)  # off chain, after block 9
        tx.commit()
    with store.transaction() as tx:
        tx.rollback_above(8)
        tx.commit()
    with store.transaction() as tx:
        one, two = tx.get_job(tid(1)), tx.get_job(tid(2))
        assert one is not None
        assert two is not None
        assert one.status == JobStatus.SUBMITTED
        assert [t.to for t in tx.transitions_of(tid(1))] == [JobStatus.QUEUED, JobStatus.LEASED, JobStatus.SUBMITTED]
        assert two.status == JobStatus.LEASED
        assert tx.get_result(tid(1)) is None
        assert tx.get_result(tid(3)) == result(3, 8)
        assert tx.head_block() == block(8)
        assert tx.get_lease(lease(2, 1).lease_id) == lease(2, 1)
        assert verify_snapshot(tx.snapshot()).ok


def test_rollback_reverts_several_chain_moves_of_one_job_newest_first(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_block(block(0))
        queued(tx, job(1, 0))
        assert tx.lease_job(lease(1, 1), T)
        assert tx.move_job(tid(1), JobStatus.LEASED, JobStatus.SUBMITTED, "proof accepted", None, T + 1)
        tx.commit()
    before = digest(store)
    with store.transaction() as tx:
        tx.insert_block(block(1))
        tx.insert_block(block(2))
        assert tx.move_job(tid(1), JobStatus.SUBMITTED, JobStatus.VERIFIED, "proof included", 1, 0)
        assert tx.move_job(tid(1), JobStatus.VERIFIED, JobStatus.SETTLED, "test", 2, 0)
        tx.commit()
    with store.transaction() as tx:
        tx.rollback_above(0)
        tx.commit()
    assert digest(store) == before


# -- settlement --------------------------------------------------------------------------------------------


def test_balance_through_counts_off_chain_entries_and_chain_entries_up_to_a_height(store: Store) -> None:
    alice = requester_account(ALICE)
    with store.transaction() as tx:
        tx.post([mint(alice, 100)], 1, T)
        tx.post([mint(alice, 20)], 2, T)
        tx.post([mint(alice, 3)], None, T)
        tx.post([mint(TREASURY, 5)], 3, T)
        assert tx.balance_through(alice, 0) == 3
        assert tx.balance_through(alice, 1) == 103
        assert tx.balance_through(alice, 2) == 123
        assert tx.balance_through(alice, 99) == 123
        assert tx.balance_through(TREASURY, 2) == 0
        assert tx.balance_through("fund", 9) == 0


def test_a_batch_is_stored_once_per_epoch_with_its_payouts_in_admission_order(store: Store) -> None:
    first = [payout(3, 1, 300), payout(1, 1, 100), payout(2, 1, 200)]
    with store.transaction() as tx:
        assert tx.last_batch_epoch() is None
        assert tx.insert_batch(batch(1, first), first)
        assert not tx.insert_batch(batch(1, [payout(4, 1)]), [payout(4, 1)])  # the epoch has its batch
        assert tx.insert_batch(batch(0, []), [])  # an empty batch
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_batch(1) == batch(1, first)
        assert tx.get_batch(0) == batch(0, [])
        assert tx.get_batch(2) is None
        assert tx.last_batch_epoch() == 1
        assert tx.payouts_of_epoch(1) == first
        assert tx.payouts_of_epoch(0) == []
        assert tx.payout_of_task(tid(1)) == payout(1, 1, 100)
        assert tx.payout_of_task(tid(4)) is None  # the refused batch wrote nothing
        assert verify_snapshot(tx.snapshot()).ok


def test_a_task_is_paid_at_most_once(store: Store) -> None:
    """insert_batch raises ConcurrentUpdateError for a task already paid (or paid twice in one batch); the
    transaction is abandoned and nothing of it is committed."""
    with store.transaction() as tx:
        assert tx.insert_batch(batch(1, [payout(1, 1)]), [payout(1, 1)])
        tx.commit()
    again = [payout(2, 2), payout(1, 2)]
    with pytest.raises(ConcurrentUpdateError), store.transaction() as tx:
        tx.insert_batch(batch(2, again), again)
    twice = [payout(5, 3), payout(5, 3)]
    with pytest.raises(ConcurrentUpdateError), store.transaction() as tx:
        tx.insert_batch(batch(3, twice), twice)
    with store.transaction() as tx:
        assert tx.get_batch(2) is None
        assert tx.get_batch(3) is None
        assert tx.payout_of_task(tid(2)) is None
        assert tx.payout_of_task(tid(1)) == payout(1, 1)
        assert tx.last_batch_epoch() == 1


# -- slashing, claims, events, nonces ----------------------------------------------------------------------


def test_a_subject_is_slashed_once(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.insert_slash(slash(1, 1, T + 10))
        assert not tx.insert_slash(dataclasses.replace(slash(1, 1, T + 10), amount=999, provider_id=pid(2)))
        assert tx.insert_slash(slash(2, 1, T + 5))
        assert tx.insert_slash(slash(3, 2, T + 10))
        assert tx.insert_slash(slash(4, 1, T + 10))
        tx.commit()
    with store.transaction() as tx:
        assert tx.slashes_of(pid(1)) == [slash(2, 1, T + 5), slash(1, 1, T + 10), slash(4, 1, T + 10)]
        assert tx.slashes_of(pid(3)) == []
        assert tx.recent_slashes(3) == [slash(4, 1, T + 10), slash(3, 2, T + 10), slash(1, 1, T + 10)]
        assert len(tx.recent_slashes(10)) == 4


def test_get_claim(store: Store) -> None:
    claim = Claim(claim_id=b"c" * 32, provider_id=pid(1), amount=MicroAnm(10), time=T)
    with store.transaction() as tx:
        assert tx.insert_claim(claim)
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_claim(b"c" * 32) == claim
        assert tx.get_claim(b"d" * 32) is None


def test_event_numbers_are_gapless_across_commits_and_rollbacks(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.latest_event_seq() == 0
        assert tx.append_event("jobAssigned", b"\x01", T) == 1
        assert tx.append_event("jobCompleted", b"\x02", T + 1) == 2
        tx.commit()
    with store.transaction() as tx:
        assert tx.append_event("jobAssigned", b"\xff", T + 2) == 3  # rolled back: 3 is taken again

    def failing() -> None:
        with store.transaction() as tx:
            assert tx.append_event("jobAssigned", b"\xfe", T + 2) == 3
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    with store.transaction() as tx:
        assert tx.latest_event_seq() == 2
        assert tx.append_event("providerSlashed", b"\x03", T + 3) == 3
        assert tx.append_event("jobAssigned", b"\x04", T + 4) == 4
        tx.commit()
    with store.transaction() as tx:
        assert tx.latest_event_seq() == 4
        assert [(e.seq, e.topic, e.data, e.time) for e in tx.events_since(0, [], 100)] == [
            (1, "jobAssigned", b"\x01", T),
            (2, "jobCompleted", b"\x02", T + 1),
            (3, "providerSlashed", b"\x03", T + 3),
            (4, "jobAssigned", b"\x04", T + 4),
        ]
        assert [e.seq for e in tx.events_since(1, [], 2)] == [2, 3]
        assert [e.seq for e in tx.events_since(0, ["jobAssigned"], 100)] == [1, 4]
        assert [e.seq for e in tx.events_since(1, ["jobAssigned", "providerSlashed"], 100)] == [3, 4]
        assert [e.seq for e in tx.events_since(0, ["jobAssigned", "providerSlashed"], 1)] == [1]
        assert tx.events_since(4, [], 100) == []
        assert tx.events_since(0, ["epochSettled"], 100) == []
        assert verify_snapshot(tx.snapshot()).ok


def test_a_nonce_is_refused_until_it_expires(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.use_nonce(pid(1), b"n" * 16, T + 120, T)
        tx.commit()
    with store.transaction() as tx:
        assert not tx.use_nonce(pid(1), b"n" * 16, T + 150, T + 30)
        assert not tx.use_nonce(pid(1), b"n" * 16, T + 239, T + 119)
        assert tx.use_nonce(pid(2), b"n" * 16, T + 150, T + 30)  # another provider's nonce
        assert tx.use_nonce(pid(1), b"m" * 16, T + 150, T + 30)
        assert tx.use_nonce(pid(1), b"n" * 16, T + 240, T + 120)  # expired at T + 120: usable again
        assert not tx.use_nonce(pid(1), b"n" * 16, T + 250, T + 130)
        tx.commit()


# -- audit -------------------------------------------------------------------------------------------------


POOL_RECORD = canonical_cbor(pool_map([Candidate(provider_id=pid(1), stake=700)], []))
POOL_ID = tagged_hash(POOL_TAG, POOL_RECORD)
DECISION = canonical_cbor({"task_id": tid(1), "attempt": 0, "pool": POOL_ID, "draws": [], "winner": pid(1)})


def _coordinator_work(store: Store) -> None:
    """A fixed sequence of writes touching every coordinator table."""
    with store.transaction() as tx:
        tx.insert_block(block(0))
        tx.insert_provider(provider(1))
        tx.post([mint(stake_account(pid(1)), 750)], None, T)
        tx.record_provider_move(pid(1), None, ProviderStatus.ACTIVE, "registered", T)
        tx.record_heartbeat(pid(1), 4, T + 80, T + 140)
        queued(tx, job(1, 0), job(2, 0, 1))
        tx.put_pool(POOL_ID, POOL_RECORD)
        tx.put_decisions([DecisionRecord(task_id=tid(1), attempt=0, decision=DECISION, winner=pid(1), time=T)])
        tx.lease_job(lease(1, 1), T)
        tx.insert_proof(proof(1, 1, 1, T + 3))
        tx.insert_results([result(1, 0)])
        tx.insert_batch(batch(1, [payout(1, 1)]), [payout(1, 1)])
        tx.insert_slash(slash(2, 1, T + 4))
        tx.append_event("jobAssigned", b"\x01", T)
        tx.use_nonce(pid(1), b"n" * 16, T + 120, T)
        tx.commit()


def test_the_coordinator_tables_give_the_same_digest_on_every_backend(store: Store) -> None:
    _coordinator_work(store)
    reference = memory_store()
    _coordinator_work(reference)
    assert digest(store) == digest(reference)
    with store.transaction() as tx:
        snap = tx.snapshot()
    report = verify_snapshot(snap)
    assert report.ok, report.problems
    assert len(snap.providers) == len(snap.leases) == len(snap.proofs) == len(snap.results) == 1
    assert len(snap.batches) == len(snap.payouts) == len(snap.slashes) == len(snap.events) == 1
    assert len(snap.decisions) == len(snap.heartbeats) == len(snap.nonces) == len(snap.provider_moves) == 1
    assert snap.pools == ((POOL_ID, POOL_RECORD),)


def test_verify_names_broken_coordinator_invariants(tmp_path: Path) -> None:
    with open_test_store("sqlite-memory", tmp_path) as store:
        _coordinator_work(store)
        with store.transaction() as tx:
            snap = tx.snapshot()
    bad_split = payout(1, 1)._replace(fund=payout(1, 1).fund + 1)
    broken = dataclasses.replace(
        snap,
        providers=(dataclasses.replace(snap.providers[0], bonded=701),),
        payouts=(bad_split, payout(1, 1)),
        events=(*snap.events, dataclasses.replace(snap.events[0], seq=3)),
    )
    problems = verify_snapshot(broken).problems
    assert any("stake:" in p and "bonded" in p for p in problems), problems
    assert any("paid twice" in p for p in problems), problems
    assert any("batch 1" in p for p in problems), problems
    assert any("without a gap" in p for p in problems), problems
    assert digest_of(broken) != digest_of(snap)


def test_verify_names_a_decision_whose_pool_is_missing_or_altered(tmp_path: Path) -> None:
    with open_test_store("sqlite-memory", tmp_path) as store:
        _coordinator_work(store)
        with store.transaction() as tx:
            snap = tx.snapshot()
    missing = verify_snapshot(dataclasses.replace(snap, pools=())).problems
    assert missing == (f"decision of job 0x{tid(1).hex()} attempt 0 names pool 0x{POOL_ID.hex()}, which is not stored",)
    altered = verify_snapshot(dataclasses.replace(snap, pools=((POOL_ID, POOL_RECORD + b"\x00"),))).problems
    assert altered == (f"pool 0x{POOL_ID.hex()} does not hash to its id",)


# -- PostgreSQL: two real connections ----------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_concurrent_matcher_passes_claim_disjoint_jobs(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as store:
        with store.transaction() as tx:
            queued(tx, *(job(n, 0, n) for n in range(1, 6)))
            tx.commit()
        with store.transaction() as first, store.transaction() as second:
            mine = [j.task_id for j in first.claim_ready_jobs(T, 3)]
            theirs = [j.task_id for j in second.claim_ready_jobs(T, 3)]  # no wait: the held rows are skipped
            assert len(mine) == 3
            assert theirs == [j for j in [tid(n) for n in range(1, 6)] if j not in mine]
            first.commit()
            second.commit()


@pytest.mark.postgres
def test_postgres_a_provider_row_held_by_another_pass_is_skipped_not_waited_on(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as store:
        with store.transaction() as tx:
            tx.insert_provider(provider(1))
            tx.commit()
        with store.transaction() as first, store.transaction() as second:
            assert first.lock_provider(pid(1)) == provider(1)
            assert second.lock_provider(pid(1)) is None  # held: no wait (passes lock in draw order)
            assert first.update_provider(provider(1, bucket_tokens_mu=1), ProviderStatus.ACTIVE)
            first.commit()
            second.commit()
        with store.transaction() as tx:
            seen = tx.lock_provider(pid(1))
            assert seen is not None
            assert seen.bucket_tokens_mu == 1


@pytest.mark.postgres
def test_postgres_skip_locked_leases_a_job_exactly_once(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as store:
        with store.transaction() as tx:
            queued(tx, job(1, 0), job(2, 0, 1))
            tx.commit()
        # two transactions on two pooled connections, interleaved by hand
        with store.transaction() as first, store.transaction() as second:
            assert first.lease_job(lease(1, 1), T)  # holds job 1's row lock until it ends
            assert not second.lease_job(lease(1, 2), T)  # SKIP LOCKED: no wait, no lease
            assert second.lease_job(lease(2, 2), T)  # the next candidate is free
            first.commit()
            second.commit()
        with store.transaction() as tx:
            assert tx.leases_of_task(tid(1)) == [lease(1, 1)]
            assert tx.leases_of_task(tid(2)) == [lease(2, 2)]
            assert not tx.lease_job(lease(1, 3), T)  # committed LEASED: refused by the guard


@pytest.mark.postgres
def test_postgres_racing_replicas_lease_a_job_once(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as store:
        with store.transaction() as tx:
            queued(tx, *(job(n, 0, n) for n in range(1, 9)))
            tx.commit()
        start = threading.Barrier(4)
        won: list[tuple[int, int]] = []
        lock = threading.Lock()

        def replica(prov: int) -> None:
            start.wait()
            for n in range(1, 9):
                with store.transaction() as tx:
                    if tx.lease_job(lease(n, prov), T):
                        tx.commit()
                        with lock:
                            won.append((n, prov))

        threads = [threading.Thread(target=replica, args=(p,)) for p in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(n for n, _ in won) == list(range(1, 9))
        with store.transaction() as tx:
            for n, prov in won:
                assert tx.leases_of_task(tid(n)) == [lease(n, prov)]
            assert verify_snapshot(tx.snapshot()).ok


def test_append_events_numbers_many_events_in_order_after_the_last(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.append_events([], T) == []
        assert tx.append_event("jobAssigned", b"\x01", T) == 1
        three = [("jobAssigned", b"\x02"), ("providerSlashed", b"\x03"), ("jobAssigned", b"")]
        assert tx.append_events(three, T + 1) == [2, 3, 4]
        assert tx.append_event("jobCompleted", b"\x05", T + 2) == 5
        tx.commit()
    with store.transaction() as tx:
        assert tx.append_events([("jobAssigned", b"\xff")], T + 3) == [6]  # rolled back: 6 is taken again
    with store.transaction() as tx:
        assert tx.latest_event_seq() == 5
        assert [(e.seq, e.topic, e.data, e.time) for e in tx.events_since(1, [], 100)] == [
            (2, "jobAssigned", b"\x02", T + 1),
            (3, "providerSlashed", b"\x03", T + 1),
            (4, "jobAssigned", b"", T + 1),
            (5, "jobCompleted", b"\x05", T + 2),
        ]


@pytest.mark.postgres
def test_postgres_events_stay_gapless_under_concurrent_writers(tmp_path: Path) -> None:
    with open_test_store("postgres", tmp_path) as store:
        start = threading.Barrier(4)
        committed: list[int] = []
        lock = threading.Lock()

        def writer(w: int) -> None:
            start.wait()
            for i in range(6):
                with store.transaction() as tx:
                    seq = tx.append_event("jobAssigned", bytes([w, i]), T + i)
                    if (w + i) % 3:
                        tx.commit()
                        with lock:
                            committed.append(seq)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(committed) == list(range(1, len(committed) + 1))
        with store.transaction() as tx:
            assert [e.seq for e in tx.events_since(0, [], 1000)] == sorted(committed)
            assert tx.latest_event_seq() == len(committed)


def test_list_jobs_pages_by_task_id_and_filters_by_status(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, *(_j(n, 0, tier=0, fee=20_000, mu=1000) for n in (3, 1, 4)))
        tx.insert_jobs([_j(2, 0, tier=0, fee=20_000, mu=1000)])  # PENDING
        tx.move_job(tid(4), JobStatus.QUEUED, JobStatus.CANCELLED, "cancel", 0, 0)
        assert [j.task_id for j in tx.list_jobs([], None, 10)] == [tid(n) for n in (1, 2, 3, 4)]
        assert [j.task_id for j in tx.list_jobs([], tid(2), 1)] == [tid(3)]
        both = [JobStatus.QUEUED, JobStatus.CANCELLED]
        assert [j.task_id for j in tx.list_jobs(both, None, 10)] == [tid(n) for n in (1, 3, 4)]
        assert [j.task_id for j in tx.list_jobs(both, tid(1), 2)] == [tid(3), tid(4)]
        assert tx.list_jobs([JobStatus.SETTLED], None, 10) == []
        counts = tx.job_counts()
        assert {s: counts.get(s, 0) for s in (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.CANCELLED)} == {
            JobStatus.PENDING: 1,
            JobStatus.QUEUED: 2,
            JobStatus.CANCELLED: 1,
        }


def test_lease_and_verdict_counts_cover_every_lease_and_stored_proof(store: Store) -> None:
    with store.transaction() as tx:
        queued(tx, *(_j(n, 0, tier=0, fee=20_000, mu=1000) for n in (1, 2)))
        assert tx.lease_job(lease(1, 1), T)
        assert tx.lease_job(lease(2, 1), T)
        assert tx.end_lease(lease(2, 1).lease_id, LeaseStatus.EXPIRED, T + 60)
        assert tx.insert_proof(proof(1, 1, 1, T + 5))
        assert tx.insert_proof(proof(2, 2, 1, T + 6, verdict="DIGEST_MISMATCH"))
        assert tx.lease_counts() == {LeaseStatus.LIVE: 1, LeaseStatus.EXPIRED: 1}
        assert tx.proof_verdict_counts() == {"ACCEPT": 1, "DIGEST_MISMATCH": 1}


def test_slash_totals_count_every_slash_by_reason(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.slash_totals() == {}
        for subject in (1, 2, 3):
            assert tx.insert_slash(slash(subject, 1, T + subject))
        want: dict[str, tuple[int, int]] = {}
        for s in (slash(1, 1, T + 1), slash(2, 1, T + 2), slash(3, 1, T + 3)):
            count, amount = want.get(s.reason, (0, 0))
            want[s.reason] = (count + 1, amount + s.amount)
        assert tx.slash_totals() == want


def test_record_outage_extends_the_leases_live_at_its_start_once_and_lists_it(store: Store) -> None:
    outage = Outage(T + 30, T + 330)
    with store.transaction() as tx:
        queued(tx, job(1, 0), job(2, 0, 1), job(3, 0, 2))
        assert tx.lease_job(lease(1, 1, granted=T), T)  # expires after the outage began: extended
        assert tx.lease_job(lease(2, 1, granted=T - 100), T - 100)  # had run out before it began: not
        assert tx.lease_job(lease(3, 2, granted=T), T)
        assert tx.end_lease(lease(3, 2).lease_id, LeaseStatus.PROVED, T + 11)  # ended: not
        before = {x.task_id: x.expires_at for x in tx.live_leases_granted_by(T + 1000, 10)}
        assert tx.record_outage(outage) == 1
        assert tx.record_outage(outage) is None  # the same outage again (a racing replica): nothing more
        tx.commit()
    with store.transaction() as tx:
        after = {x.task_id: x.expires_at for x in tx.live_leases_granted_by(T + 1000, 10)}
        assert after == {tid(1): before[tid(1)] + 300, tid(2): before[tid(2)]}
        assert tx.leases_of_task(tid(3))[0].status is LeaseStatus.PROVED
        assert tx.outages_since(T) == [outage]
        assert tx.outages_since(T + 330) == []
