"""The in-memory store: a real backend (service tests, local runs), not a mock.

A transaction works on a copy of the state and swaps it in on commit; one lock serializes transactions,
so the semantics match SQLite's single writer. Records are frozen, so copying the dicts is enough.
"""

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
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
from aicf.core.ledger import EXTERNAL, LedgerEntry, NegativeBalanceError, Posting, deltas_of
from aicf.store.interface import (
    ConcurrentUpdateError,
    IdempotencyConflictError,
    IdempotencyRecord,
    Snapshot,
)


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
        )


class MemoryTx:
    def __init__(self, state: _State) -> None:
        self._s = state
        self.committed = False

    def _seq(self) -> int:
        seq = self._s.next_seq
        self._s.next_seq += 1
        return seq

    def lock_ingest(self) -> None:
        return None  # the store lock already serializes every transaction

    def get_meta(self, key: str) -> int | None:
        return self._s.meta.get(key)

    def set_meta(self, key: str, value: int) -> None:
        self._s.meta[key] = value

    def head_block(self) -> IngestedBlock | None:
        return self._s.blocks[max(self._s.blocks)] if self._s.blocks else None

    def block_at(self, height: int) -> IngestedBlock | None:
        return self._s.blocks.get(height)

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
        for account, delta in deltas.items():
            self._s.balances[account] = self._s.balances.get(account, 0) + delta
        for p in postings:
            self._s.entries.append(LedgerEntry(posting=p, block_height=block_height, time=time, seq=self._seq()))

    def insert_proof_inclusion(self, inclusion: ProofInclusion) -> bool:
        if inclusion.task_id in self._s.inclusions:
            return False
        self._s.inclusions[inclusion.task_id] = inclusion
        return True

    def proof_inclusion(self, task_id: bytes) -> ProofInclusion | None:
        return self._s.inclusions.get(task_id)

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
        )

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

    def close(self) -> None:
        return None
