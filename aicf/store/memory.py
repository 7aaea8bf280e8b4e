"""The in-memory store: a real backend (service tests, local runs), not a mock.

A transaction works on a copy of the state and swaps it in on commit; one lock serializes transactions,
so the semantics match SQLite's single writer. Records are frozen, so copying the dicts is enough.
"""

import dataclasses
import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from aicf.core.chain import (
    CancelOutcome,
    CancelRequest,
    Claim,
    IngestedBlock,
    Job,
    ProofInclusion,
    RefusedTx,
    Transition,
)
from aicf.core.jobs import FINAL_STATUSES, JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import EXTERNAL, LedgerEntry, NegativeBalanceError, Posting, check_balances_fit, deltas_of
from aicf.core.records import (
    BatchRecord,
    DecisionRecord,
    Event,
    LeaseRecord,
    ProofRecord,
    Provider,
    ResultRecord,
    SlashRecord,
    TrapRecord,
    TrapSeedRecord,
)
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import Payout
from aicf.store.coord_interface import ProofContext, QosRange
from aicf.store.interface import (
    ConcurrentUpdateError,
    IdempotencyConflictError,
    IdempotencyRecord,
    NonceRecord,
    ProviderMove,
    Snapshot,
)
from aicf.store.memory_trust import MemoryTrustTx, TrustState

ACCEPT = "ACCEPT"


@dataclass(slots=True)
class _State:
    meta: dict[str, int] = field(default_factory=dict)
    blocks: dict[int, IngestedBlock] = field(default_factory=dict)
    jobs: dict[bytes, Job] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)
    inclusions: dict[bytes, ProofInclusion] = field(default_factory=dict)
    refused: dict[tuple[int, int], RefusedTx] = field(default_factory=dict)
    cancels: dict[tuple[int, int], CancelRequest] = field(default_factory=dict)
    claims: dict[bytes, Claim] = field(default_factory=dict)
    idempotency: dict[bytes, IdempotencyRecord] = field(default_factory=dict)
    tiers: dict[bytes, int] = field(default_factory=dict)
    next_seq: int = 1
    providers: dict[bytes, Provider] = field(default_factory=dict)
    provider_moves: list[ProviderMove] = field(default_factory=list)
    heartbeats: set[tuple[bytes, int]] = field(default_factory=set)
    decisions: dict[tuple[bytes, int], DecisionRecord] = field(default_factory=dict)
    pools: dict[bytes, bytes] = field(default_factory=dict)
    registry_version: int = 0
    leases: dict[bytes, LeaseRecord] = field(default_factory=dict)
    proofs: dict[bytes, ProofRecord] = field(default_factory=dict)
    results: dict[bytes, ResultRecord] = field(default_factory=dict)
    batches: dict[int, BatchRecord] = field(default_factory=dict)
    payouts: dict[int, tuple[Payout, ...]] = field(default_factory=dict)  # by epoch, in admission order
    paid: dict[bytes, Payout] = field(default_factory=dict)  # by task_id
    slashes: dict[bytes, SlashRecord] = field(default_factory=dict)  # by subject, in the order stored
    events: list[Event] = field(default_factory=list)
    nonces: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    trap_seeds: dict[int, TrapSeedRecord] = field(default_factory=dict)
    traps: dict[bytes, TrapRecord] = field(default_factory=dict)  # by caller
    trust: TrustState = field(default_factory=TrustState)
    devnet_meta: dict[str, int] = field(default_factory=dict)
    devnet_blocks: dict[int, bytes] = field(default_factory=dict)
    devnet_mempool: dict[int, bytes] = field(default_factory=dict)

    def copy(self) -> "_State":
        return _State(
            meta=dict(self.meta),
            blocks=dict(self.blocks),
            jobs=dict(self.jobs),
            transitions=list(self.transitions),
            entries=list(self.entries),
            balances=dict(self.balances),
            inclusions=dict(self.inclusions),
            refused=dict(self.refused),
            cancels=dict(self.cancels),
            claims=dict(self.claims),
            idempotency=dict(self.idempotency),
            tiers=dict(self.tiers),
            next_seq=self.next_seq,
            providers=dict(self.providers),
            provider_moves=list(self.provider_moves),
            heartbeats=set(self.heartbeats),
            decisions=dict(self.decisions),
            pools=dict(self.pools),
            registry_version=self.registry_version,
            leases=dict(self.leases),
            proofs=dict(self.proofs),
            results=dict(self.results),
            batches=dict(self.batches),
            payouts=dict(self.payouts),
            paid=dict(self.paid),
            slashes=dict(self.slashes),
            events=list(self.events),
            nonces=dict(self.nonces),
            trap_seeds=dict(self.trap_seeds),
            traps=dict(self.traps),
            trust=self.trust.copy(),
            devnet_meta=dict(self.devnet_meta),
            devnet_blocks=dict(self.devnet_blocks),
            devnet_mempool=dict(self.devnet_mempool),
        )


class MemoryTx(MemoryTrustTx):
    def __init__(self, state: _State) -> None:
        self._s = state
        self.committed = False

    @property
    def _trust(self) -> TrustState:
        return self._s.trust

    def _seq(self) -> int:
        seq = self._s.next_seq
        self._s.next_seq += 1
        return seq

    def lock_ingest(self, *, wait: bool = True) -> bool:
        return True  # the store lock already serializes every transaction

    def get_meta(self, key: str) -> int | None:
        return self._s.meta.get(key)

    def set_meta(self, key: str, value: int) -> None:
        self._s.meta[key] = value

    def head_block(self) -> IngestedBlock | None:
        return self._s.blocks[max(self._s.blocks)] if self._s.blocks else None

    def block_at(self, height: int) -> IngestedBlock | None:
        return self._s.blocks.get(height)

    # -- the embedded devnet ---------------------------------------------------------------------------------
    def devnet_meta(self) -> dict[str, int]:
        return dict(self._s.devnet_meta)

    def set_devnet_meta(self, values: Mapping[str, int]) -> None:
        self._s.devnet_meta.update(values)

    def devnet_blocks(self) -> list[bytes]:
        return [self._s.devnet_blocks[h] for h in sorted(self._s.devnet_blocks)]

    def put_devnet_blocks(self, blocks: Sequence[tuple[int, bytes]]) -> None:
        for height, data in blocks:
            if height in self._s.devnet_blocks:
                raise ConcurrentUpdateError(f"devnet block {height} is already kept")
            self._s.devnet_blocks[height] = data

    def drop_devnet_blocks_above(self, height: int) -> None:
        self._s.devnet_blocks = {h: d for h, d in self._s.devnet_blocks.items() if h <= height}

    def devnet_mempool(self) -> list[tuple[int, bytes]]:
        return sorted(self._s.devnet_mempool.items())

    def put_devnet_pending(self, pending: Sequence[tuple[int, bytes]]) -> None:
        self._s.devnet_mempool.update(pending)

    def drop_devnet_pending_through(self, seq: int) -> None:
        self._s.devnet_mempool = {s: d for s, d in self._s.devnet_mempool.items() if s > seq}

    def clear_devnet_mempool(self) -> None:
        self._s.devnet_mempool = {}

    def jobs_by_tx_hash(self, tx_hash: bytes) -> list[Job]:
        found = [j for j in self._s.jobs.values() if j.tx_hash == tx_hash]
        return sorted(found, key=lambda j: -j.enqueue_height)

    def refused_by_tx_hash(self, tx_hash: bytes) -> list[RefusedTx]:
        return sorted((r for r in self._s.refused.values() if r.tx_hash == tx_hash), key=lambda r: -r.height)

    def cancels_by_tx_hash(self, tx_hash: bytes) -> list[CancelRequest]:
        return sorted((c for c in self._s.cancels.values() if c.tx_hash == tx_hash), key=lambda c: -c.height)

    def insert_block(self, block: IngestedBlock) -> None:
        if block.height in self._s.blocks:
            raise ConcurrentUpdateError(f"block {block.height} is already stored")
        if any(b.hash == block.hash for b in self._s.blocks.values()):
            raise ConcurrentUpdateError(f"block 0x{block.hash.hex()} is already stored")
        self._s.blocks[block.height] = block

    def finalize_blocks_through(self, height: int) -> None:
        for h, b in self._s.blocks.items():
            if h <= height and not b.final:
                self._s.blocks[h] = dataclasses.replace(b, final=True)

    def insert_jobs(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.task_id in self._s.jobs:
                raise ConcurrentUpdateError(f"job 0x{job.task_id.hex()} is already stored")
        for job in jobs:
            self._s.jobs[job.task_id] = job

    def get_job(self, task_id: bytes) -> Job | None:
        return self._s.jobs.get(task_id)

    def get_jobs(self, task_ids: Sequence[bytes]) -> dict[bytes, Job]:
        return {t: self._s.jobs[t] for t in task_ids if t in self._s.jobs}

    def move_job(
        self, task_id: bytes, frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> bool:
        job = self._s.jobs.get(task_id)
        if job is None or job.status != frm:
            return False
        self._s.jobs[task_id] = dataclasses.replace(job, status=to)
        self._s.transitions.append(
            Transition(task_id=task_id, frm=frm, to=to, reason=reason, height=height, time=time, seq=self._seq())
        )
        return True

    def move_jobs(
        self, task_ids: Sequence[bytes], frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> int:
        return sum(1 for t in task_ids if self.move_job(t, frm, to, reason, height, time))

    def _in_enqueue_order(self, jobs: Iterable[Job]) -> list[Job]:
        return sorted(jobs, key=lambda j: (j.enqueue_height, j.enqueue_tx_index, j.task_id))

    def pending_jobs_through(self, height: int) -> list[bytes]:
        found = (j for j in self._s.jobs.values() if j.status == JobStatus.PENDING and j.enqueue_height <= height)
        return [j.task_id for j in self._in_enqueue_order(found)]

    def queued_jobs_at_deadline(self, height: int) -> list[Job]:
        found = (j for j in self._s.jobs.values() if j.status == JobStatus.QUEUED and j.deadline_height == height)
        return self._in_enqueue_order(found)

    def open_job_count(self, caller: bytes) -> int:
        return sum(1 for j in self._s.jobs.values() if j.caller == caller and j.status not in FINAL_STATUSES)

    def open_job_counts(self, callers: Iterable[bytes]) -> dict[bytes, int]:
        out = dict.fromkeys(callers, 0)
        for j in self._s.jobs.values():
            if j.caller in out and j.status not in FINAL_STATUSES:
                out[j.caller] += 1
        return out

    def set_cancel_requested(self, task_id: bytes) -> None:
        job = self._s.jobs.get(task_id)
        if job is not None:
            self._s.jobs[task_id] = dataclasses.replace(job, cancel_requested=True)

    def transitions_of(self, task_id: bytes) -> list[Transition]:
        return [t for t in self._s.transitions if t.task_id == task_id]

    def balances(self, accounts: Iterable[str]) -> dict[str, int]:
        return {a: self._s.balances.get(a, 0) for a in accounts}

    def post(self, postings: Sequence[Posting], block_height: int | None, time: int) -> None:
        deltas = deltas_of(postings)
        for account, delta in deltas.items():
            have = self._s.balances.get(account, 0)
            if account != EXTERNAL and have + delta < 0:
                raise NegativeBalanceError(account, have, -delta)
        check_balances_fit(self._s.balances, deltas)
        for account, delta in deltas.items():
            self._s.balances[account] = self._s.balances.get(account, 0) + delta
        for p in postings:
            self._s.entries.append(LedgerEntry(posting=p, block_height=block_height, time=time, seq=self._seq()))

    def insert_proof_inclusions(self, inclusions: Sequence[ProofInclusion]) -> int:
        written = 0
        for inclusion in inclusions:
            if inclusion.task_id not in self._s.inclusions:
                self._s.inclusions[inclusion.task_id] = inclusion
                written += 1
        return written

    def proof_inclusions_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofInclusion]:
        return {t: self._s.inclusions[t] for t in task_ids if t in self._s.inclusions}

    def insert_refused(self, refused: Sequence[RefusedTx]) -> None:
        for r in refused:
            self._s.refused[(r.height, r.tx_index)] = r

    def insert_cancel(self, cancel: CancelRequest) -> None:
        self._s.cancels[(cancel.height, cancel.tx_index)] = cancel

    def waiting_cancels_through(self, height: int) -> list[CancelRequest]:
        return [
            c for key, c in sorted(self._s.cancels.items()) if key[0] <= height and c.outcome == CancelOutcome.WAITING
        ]

    def set_cancel_outcome(self, height: int, tx_index: int, outcome: CancelOutcome) -> None:
        c = self._s.cancels.get((height, tx_index))
        if c is not None:
            self._s.cancels[(height, tx_index)] = dataclasses.replace(c, outcome=outcome)

    def requester_tier(self, caller: bytes) -> int:
        return self._s.tiers.get(caller, 0)

    def set_requester_tier(self, caller: bytes, tier: int) -> None:
        self._s.tiers[caller] = tier

    def rollback_above(self, height: int) -> None:
        s = self._s
        s.blocks = {h: b for h, b in s.blocks.items() if h <= height}
        gone = {t for t, j in s.jobs.items() if j.status == JobStatus.PENDING and j.enqueue_height > height}
        s.jobs = {t: j for t, j in s.jobs.items() if t not in gone}
        s.transitions = [t for t in s.transitions if t.task_id not in gone]
        undone = [e for e in s.entries if e.block_height is not None and e.block_height > height]
        for account, delta in deltas_of(e.posting for e in undone).items():
            s.balances[account] = s.balances.get(account, 0) - delta
        s.entries = [e for e in s.entries if e.block_height is None or e.block_height <= height]
        s.inclusions = {t: i for t, i in s.inclusions.items() if i.height <= height}
        s.refused = {k: r for k, r in s.refused.items() if k[0] <= height}
        s.cancels = {k: c for k, c in s.cancels.items() if k[0] <= height}
        s.results = {t: r for t, r in s.results.items() if r.height <= height}
        # a surviving job's chain-recorded moves above the fork point, newest first: back to where each began
        kept: list[Transition] = []
        for t in reversed(s.transitions):
            if t.height is not None and t.height > height:
                s.jobs[t.task_id] = dataclasses.replace(s.jobs[t.task_id], status=t.frm)
            else:
                kept.append(t)
        s.transitions = kept[::-1]

    def insert_claim(self, claim: Claim) -> bool:
        if claim.claim_id in self._s.claims:
            return False
        self._s.claims[claim.claim_id] = claim
        return True

    def replayed(self, key: bytes, fingerprint: bytes) -> bytes | None:
        rec = self._s.idempotency.get(key)
        if rec is None:
            return None
        if rec.fingerprint != fingerprint:
            raise IdempotencyConflictError(key)
        return rec.result

    def remember(self, key: bytes, fingerprint: bytes, result: bytes) -> None:
        if key in self._s.idempotency:
            raise IdempotencyConflictError(key)
        self._s.idempotency[key] = IdempotencyRecord(key=key, fingerprint=fingerprint, result=result)

    def snapshot(self) -> Snapshot:
        s = self._s
        return Snapshot(
            meta=tuple(sorted(s.meta.items())),
            blocks=tuple(s.blocks[h] for h in sorted(s.blocks)),
            jobs=tuple(s.jobs[t] for t in sorted(s.jobs)),
            transitions=tuple(s.transitions),
            entries=tuple(s.entries),
            balances=tuple(sorted(s.balances.items())),
            proof_inclusions=tuple(s.inclusions[t] for t in sorted(s.inclusions)),
            refused=tuple(s.refused[k] for k in sorted(s.refused)),
            cancels=tuple(s.cancels[k] for k in sorted(s.cancels)),
            claims=tuple(s.claims[k] for k in sorted(s.claims)),
            idempotency=tuple(s.idempotency[k] for k in sorted(s.idempotency)),
            requester_tiers=tuple(sorted(s.tiers.items())),
            providers=tuple(s.providers[k] for k in sorted(s.providers)),
            provider_moves=tuple(s.provider_moves),
            heartbeats=tuple(sorted(s.heartbeats)),
            decisions=tuple(s.decisions[k] for k in sorted(s.decisions)),
            pools=tuple(sorted(s.pools.items())),
            leases=tuple(s.leases[k] for k in sorted(s.leases)),
            proofs=tuple(s.proofs[k] for k in sorted(s.proofs)),
            results=tuple(s.results[k] for k in sorted(s.results)),
            batches=tuple(s.batches[k] for k in sorted(s.batches)),
            payouts=tuple(p for e in sorted(s.payouts) for p in s.payouts[e]),
            slashes=tuple(s.slashes[k] for k in sorted(s.slashes)),
            events=tuple(s.events),
            nonces=tuple(NonceRecord(provider_id=k[0], nonce=k[1], expires_at=v) for k, v in sorted(s.nonces.items())),
        )

    # -- providers -------------------------------------------------------------------------------------
    def get_provider(self, provider_id: bytes) -> Provider | None:
        return self._s.providers.get(provider_id)

    def insert_provider(self, provider: Provider) -> bool:
        if provider.provider_id in self._s.providers:
            return False
        self._s.providers[provider.provider_id] = provider
        self._s.registry_version += 1
        return True

    def update_provider(self, provider: Provider, expected_status: ProviderStatus) -> bool:
        have = self._s.providers.get(provider.provider_id)
        if have is None or have.status != expected_status:
            return False
        self._s.providers[provider.provider_id] = provider
        if _profile_fields(have) != _profile_fields(provider):
            self._s.registry_version += 1
        return True

    def leases_of_tasks(self, task_ids: Sequence[bytes]) -> dict[bytes, list[LeaseRecord]]:
        found = {t: self.leases_of_task(t) for t in dict.fromkeys(task_ids)}
        return {t: leases for t, leases in found.items() if leases}

    def accepted_proofs_not_included(self, received_by: int, limit: int) -> list[ProofRecord]:
        found = (
            p
            for p in self._s.proofs.values()
            if p.verdict == ACCEPT
            and p.received_at <= received_by
            and p.task_id not in self._s.inclusions
            and (job := self._s.jobs.get(p.task_id)) is not None
            and job.status is JobStatus.SUBMITTED
        )
        return sorted(found, key=lambda p: (p.received_at, p.proof_id))[: max(limit, 0)]

    def live_leases_granted_by(self, time: int, limit: int) -> list[LeaseRecord]:
        found = (x for x in self._s.leases.values() if x.status is LeaseStatus.LIVE and x.granted_at <= time)
        return sorted(found, key=lambda x: (x.granted_at, x.lease_id))[: max(limit, 0)]

    def proof_context(
        self, provider_id: bytes, lease_id: bytes, task_id: bytes, proof_id: bytes, qos: QosRange
    ) -> ProofContext:
        job = self._s.jobs.get(task_id)
        return ProofContext(
            provider=self._s.providers.get(provider_id),
            lease=self._s.leases.get(lease_id),
            job=job,
            seen=proof_id in self._s.proofs,
            head=self.head_block(),
            trap=None if job is None else self._s.traps.get(job.caller),
            trust_version=self.trust_version(),
            latencies=self.accepted_latencies_since(provider_id, qos.since),
            slots=self.heartbeat_slots(provider_id, qos.first_slot, qos.last_slot),
        )

    def oldest_queued_height(self) -> int | None:
        return min((j.enqueue_height for j in self._s.jobs.values() if j.status is JobStatus.QUEUED), default=None)

    def claim_ready_jobs(self, now: int, limit: int) -> list[Job]:
        return self.ready_jobs(now, limit)  # the store lock serializes every transaction

    def lock_provider(self, provider_id: bytes) -> Provider | None:
        return self._s.providers.get(provider_id)

    def registry_version(self) -> int:
        return self._s.registry_version

    def put_pool(self, pool_id: bytes, record: bytes) -> None:
        self._s.pools.setdefault(pool_id, record)

    def get_pool(self, pool_id: bytes) -> bytes | None:
        return self._s.pools.get(pool_id)

    def providers(self) -> list[Provider]:
        return [self._s.providers[k] for k in sorted(self._s.providers)]

    def providers_due(self, now: int) -> list[Provider]:
        return [
            p
            for p in self.providers()
            if (p.status is ProviderStatus.JAILED and p.jailed_until and p.jailed_until <= now)
            or (p.unbonding > 0 and p.unbonding_until <= now)
        ]

    def active_provider_ids(self, registered_by: int) -> list[bytes]:
        return [
            p.provider_id
            for p in self.providers()
            if p.status is ProviderStatus.ACTIVE and p.registered_at <= registered_by
        ]

    def record_provider_move(
        self, provider_id: bytes, frm: ProviderStatus | None, to: ProviderStatus, reason: str, time: int
    ) -> None:
        self._s.provider_moves.append(
            ProviderMove(provider_id=provider_id, frm=frm, to=to, reason=reason, time=time, seq=self._seq())
        )

    def record_heartbeat(self, provider_id: bytes, slot: int, now: int, expires_at: int) -> list[LeaseRecord] | None:
        provider = self._s.providers.get(provider_id)
        if provider is None:
            return None
        self._s.heartbeats.add((provider_id, slot))
        self._s.providers[provider_id] = dataclasses.replace(provider, last_heartbeat_at=now, updated_at=now)
        for lid, x in list(self._s.leases.items()):
            if x.provider_id == provider_id and x.status == LeaseStatus.LIVE and now < x.expires_at < expires_at:
                self._s.leases[lid] = dataclasses.replace(x, expires_at=expires_at)
        return self.live_leases_of(provider_id)

    def heartbeat_slots(self, provider_id: bytes, first: int, last: int) -> list[int]:
        return sorted(s for p, s in self._s.heartbeats if p == provider_id and first <= s <= last)

    def heartbeat_slots_of(self, provider_ids: Sequence[bytes], first: int, last: int) -> dict[bytes, list[int]]:
        out: dict[bytes, list[int]] = {p: [] for p in provider_ids}
        for p, s in self._s.heartbeats:
            if p in out and first <= s <= last:
                out[p].append(s)
        for slots in out.values():
            slots.sort()
        return out

    # -- matching and leases ---------------------------------------------------------------------------
    def ready_jobs(self, now: int, limit: int) -> list[Job]:
        ready = (j for j in self._s.jobs.values() if j.status == JobStatus.QUEUED and j.not_before <= now)
        return sorted(
            ready,
            key=lambda j: (
                -j.tier,
                -(j.fee_per_unit - j.max_units_mu // 1000 - 10 * j.enqueue_height),
                j.enqueue_height,
                j.task_id,
            ),
        )[: max(limit, 0)]

    def lease_job(self, lease: LeaseRecord, time: int) -> bool:
        job = self._s.jobs.get(lease.task_id)
        if job is None or job.status != JobStatus.QUEUED or job.not_before > time:
            return False
        if lease.lease_id in self._s.leases:
            raise ConcurrentUpdateError(f"lease 0x{lease.lease_id.hex()} is already stored")
        self.move_job(lease.task_id, JobStatus.QUEUED, JobStatus.LEASED, "assigned", None, time)
        self._s.leases[lease.lease_id] = lease
        return True

    def put_decisions(self, decisions: Sequence[DecisionRecord]) -> None:
        for decision in decisions:
            self._s.decisions[(decision.task_id, decision.attempt)] = decision

    def decisions_of(self, task_id: bytes) -> list[DecisionRecord]:
        return sorted((d for (t, _), d in self._s.decisions.items() if t == task_id), key=lambda d: d.attempt)

    def get_lease(self, lease_id: bytes) -> LeaseRecord | None:
        return self._s.leases.get(lease_id)

    def leases_of_task(self, task_id: bytes) -> list[LeaseRecord]:
        return sorted(
            (x for x in self._s.leases.values() if x.task_id == task_id), key=lambda x: (x.attempt, x.lease_id)
        )

    def live_leases_of(self, provider_id: bytes) -> list[LeaseRecord]:
        return sorted(
            (x for x in self._s.leases.values() if x.provider_id == provider_id and x.status == LeaseStatus.LIVE),
            key=lambda x: (x.granted_at, x.lease_id),
        )

    def live_lease_counts(self) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for x in self._s.leases.values():
            if x.status == LeaseStatus.LIVE:
                out[x.provider_id] = out.get(x.provider_id, 0) + 1
        return out

    def expired_leases(self, now: int, limit: int) -> list[LeaseRecord]:
        found = (x for x in self._s.leases.values() if x.status == LeaseStatus.LIVE and x.expires_at <= now)
        return sorted(found, key=lambda x: (x.expires_at, x.lease_id))[: max(limit, 0)]

    def end_lease(self, lease_id: bytes, to: LeaseStatus, ended_at: int) -> bool:
        lease = self._s.leases.get(lease_id)
        if lease is None or lease.status != LeaseStatus.LIVE:
            return False
        self._s.leases[lease_id] = dataclasses.replace(lease, status=to, ended_at=ended_at)
        return True

    def set_job_schedule(self, task_id: bytes, attempts: int, not_before: int) -> None:
        job = self._s.jobs.get(task_id)
        if job is not None:
            self._s.jobs[task_id] = dataclasses.replace(job, attempts=attempts, not_before=not_before)

    # -- proofs and results ----------------------------------------------------------------------------
    def insert_proof(self, proof: ProofRecord) -> bool:
        if proof.proof_id in self._s.proofs:
            return False
        self._s.proofs[proof.proof_id] = proof
        return True

    def accept_proof(self, proof: ProofRecord, time: int) -> bool:
        if not self.move_job(proof.task_id, JobStatus.LEASED, JobStatus.SUBMITTED, "proof submitted", None, time):
            return False
        return self.insert_proof(proof) and self.end_lease(proof.lease_id, LeaseStatus.PROVED, time)

    def proof_seen(self, proof_id: bytes) -> bool:
        return proof_id in self._s.proofs

    def get_proof(self, proof_id: bytes) -> ProofRecord | None:
        return self._s.proofs.get(proof_id)

    def accepted_proof_of(self, task_id: bytes) -> ProofRecord | None:
        found = [p for p in self._s.proofs.values() if p.task_id == task_id and p.verdict == ACCEPT]
        return min(found, key=lambda p: (p.received_at, p.proof_id)) if found else None

    def accepted_proofs_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofRecord]:
        wanted = set(task_ids)
        out: dict[bytes, ProofRecord] = {}
        for p in self._s.proofs.values():
            if p.task_id in wanted and p.verdict == ACCEPT:
                have = out.get(p.task_id)
                if have is None or (p.received_at, p.proof_id) < (have.received_at, have.proof_id):
                    out[p.task_id] = p
        return out

    def accepted_latencies_since(self, provider_id: bytes, since: int) -> list[int]:
        found = (
            p
            for p in self._s.proofs.values()
            if p.provider_id == provider_id and p.verdict == ACCEPT and p.received_at >= since
        )
        return [p.latency_ms for p in sorted(found, key=lambda p: (p.received_at, p.proof_id))]

    def insert_results(self, results: Sequence[ResultRecord]) -> set[bytes]:
        written: set[bytes] = set()
        for result in results:
            if result.task_id not in self._s.results:
                self._s.results[result.task_id] = result
                written.add(result.task_id)
        return written

    def get_result(self, task_id: bytes) -> ResultRecord | None:
        return self._s.results.get(task_id)

    def unsettled_results_through(self, height: int) -> list[ResultRecord]:
        found = (r for r in self._s.results.values() if r.height <= height and r.task_id not in self._s.paid)
        return sorted(found, key=lambda r: (r.height, r.tx_index, r.task_id))

    # -- settlement ------------------------------------------------------------------------------------
    def balance_through(self, account: str, height: int) -> int:
        total = 0
        for e in self._s.entries:
            if e.block_height is None or e.block_height <= height:
                if e.posting.credit == account:
                    total += e.posting.amount
                if e.posting.debit == account:
                    total -= e.posting.amount
        return total

    def insert_batch(self, batch: BatchRecord, payouts: Sequence[Payout]) -> bool:
        if batch.epoch in self._s.batches:
            return False
        seen: set[bytes] = set()
        for p in payouts:
            if p.task_id in self._s.paid or p.task_id in seen:
                raise ConcurrentUpdateError(f"task 0x{p.task_id.hex()} is already paid")
            seen.add(p.task_id)
        self._s.batches[batch.epoch] = batch
        for p in payouts:
            self._s.payouts[p.epoch] = (*self._s.payouts.get(p.epoch, ()), p)
            self._s.paid[p.task_id] = p
        return True

    def get_batch(self, epoch: int) -> BatchRecord | None:
        return self._s.batches.get(epoch)

    def last_batch_epoch(self) -> int | None:
        return max(self._s.batches) if self._s.batches else None

    def payouts_of_epoch(self, epoch: int) -> list[Payout]:
        return list(self._s.payouts.get(epoch, ()))

    def payout_of_task(self, task_id: bytes) -> Payout | None:
        return self._s.paid.get(task_id)

    def add_carried(self, task_ids: Sequence[bytes]) -> None:
        for t in task_ids:
            job = self._s.jobs.get(t)
            if job is not None:
                self._s.jobs[t] = dataclasses.replace(job, carried_batches=job.carried_batches + 1)

    # -- slashing --------------------------------------------------------------------------------------
    def insert_slash(self, slash: SlashRecord) -> bool:
        if slash.subject in self._s.slashes:
            return False
        self._s.slashes[slash.subject] = slash
        return True

    def _slashes_in_order(self) -> list[SlashRecord]:
        stored = list(self._s.slashes.values())  # insertion order
        return [x for _, x in sorted(enumerate(stored), key=lambda ix: (ix[1].time, ix[0]))]

    def slashes_of(self, provider_id: bytes) -> list[SlashRecord]:
        return [x for x in self._slashes_in_order() if x.provider_id == provider_id]

    def recent_slashes(self, limit: int) -> list[SlashRecord]:
        return self._slashes_in_order()[::-1][: max(limit, 0)]

    # -- claims ----------------------------------------------------------------------------------------
    def get_claim(self, claim_id: bytes) -> Claim | None:
        return self._s.claims.get(claim_id)

    # -- reads for the API -----------------------------------------------------------------------------
    def list_jobs(self, statuses: Sequence[JobStatus], after: bytes | None, limit: int) -> list[Job]:
        wanted = set(statuses)
        rows = (
            j
            for j in self._s.jobs.values()
            if (not wanted or j.status in wanted) and (after is None or j.task_id > after)
        )
        return sorted(rows, key=lambda j: j.task_id)[:limit]

    def job_counts(self) -> dict[JobStatus, int]:
        out: dict[JobStatus, int] = {}
        for j in self._s.jobs.values():
            out[j.status] = out.get(j.status, 0) + 1
        return out

    def slash_totals(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for slash in self._s.slashes.values():
            count, amount = out.get(slash.reason, (0, 0))
            out[slash.reason] = (count + 1, amount + slash.amount)
        return out

    def proof_verdict_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for proof in self._s.proofs.values():
            out[proof.verdict] = out.get(proof.verdict, 0) + 1
        return out

    def lease_counts(self) -> dict[LeaseStatus, int]:
        out: dict[LeaseStatus, int] = {}
        for lease in self._s.leases.values():
            out[lease.status] = out.get(lease.status, 0) + 1
        return out

    # -- events and nonces -----------------------------------------------------------------------------
    def append_event(self, topic: str, data: bytes, time: int) -> int:
        seq = len(self._s.events) + 1
        self._s.events.append(Event(seq=seq, topic=topic, data=data, time=time))
        return seq

    def append_events(self, events: Sequence[tuple[str, bytes]], time: int) -> list[int]:
        return [self.append_event(topic, data, time) for topic, data in events]

    def events_since(self, seq: int, topics: Sequence[str], limit: int) -> list[Event]:
        wanted = set(topics)
        found = (e for e in self._s.events[max(seq, 0) :] if not wanted or e.topic in wanted)
        return list(itertools.islice(found, max(limit, 0)))

    def latest_event_seq(self) -> int:
        return len(self._s.events)

    def use_nonce(self, provider_id: bytes, nonce: bytes, expires_at: int, now: int) -> bool:
        n = self._s.nonces
        for key in [k for k, exp in n.items() if k[0] == provider_id and exp <= now]:
            del n[key]
        if (provider_id, nonce) in n:
            return False
        n[(provider_id, nonce)] = expires_at
        return True

    def forget_nonce(self, provider_id: bytes, nonce: bytes) -> None:
        self._s.nonces.pop((provider_id, nonce), None)

    # -- traps ----------------------------------------------------------------------------------------
    def insert_trap_seed(self, seed: TrapSeedRecord) -> bool:
        if seed.epoch in self._s.trap_seeds:
            return False
        self._s.trap_seeds[seed.epoch] = seed
        return True

    def reveal_trap_seed(self, epoch: int, seed: bytes, time: int) -> bool:
        found = self._s.trap_seeds.get(epoch)
        if found is None or found.revealed_at is not None:
            return False
        self._s.trap_seeds[epoch] = dataclasses.replace(found, seed=seed, revealed_at=time)
        return True

    def get_trap_seed(self, epoch: int) -> TrapSeedRecord | None:
        return self._s.trap_seeds.get(epoch)

    def insert_trap(self, trap: TrapRecord) -> bool:
        if trap.caller in self._s.traps or any(t.n == trap.n for t in self._s.traps.values()):
            return False
        self._s.traps[trap.caller] = trap
        return True

    def update_trap(self, trap: TrapRecord) -> bool:
        if trap.caller not in self._s.traps:
            return False
        self._s.traps[trap.caller] = trap
        return True

    def get_trap(self, caller: bytes) -> TrapRecord | None:
        return self._s.traps.get(caller)

    def open_traps(self, limit: int) -> list[TrapRecord]:
        found = sorted((t for t in self._s.traps.values() if t.revealed_at is None), key=lambda t: t.n)
        return found[: max(limit, 0)]

    def trap_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self._s.traps.values():
            counts[t.model] = counts.get(t.model, 0) + 1
        return counts

    def ai_job_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self._s.jobs.values():
            if job.kind == "ai":
                counts[job.model] = counts.get(job.model, 0) + 1
        return counts

    def jobs_of_caller(self, caller: bytes) -> list[Job]:
        found = [j for j in self._s.jobs.values() if j.caller == caller]
        return sorted(found, key=lambda j: (j.enqueue_height, j.enqueue_tx_index))

    def commit(self) -> None:
        self.committed = True

    @property
    def state(self) -> _State:
        return self._s


class MemoryStore:
    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[MemoryTx]:
        with self._lock:
            tx = MemoryTx(self._state.copy())
            yield tx
            if tx.committed:
                self._state = tx.state

    @contextmanager
    def read_transaction(self) -> Iterator[MemoryTx]:
        """A copy that is never committed: writes in it are lost, as a read-only transaction's would fail."""
        with self._lock:
            yield MemoryTx(self._state.copy())

    def close(self) -> None:
        return None


def _profile_fields(p: Provider) -> tuple[object, ...]:
    """What static eligibility reads of a provider (the SQL backends' registry_version triggers list the same)."""
    return (p.public_key, p.status, p.kinds, p.models, p.devices, p.regions, p.tee_classes, p.max_leases, p.bonded)
