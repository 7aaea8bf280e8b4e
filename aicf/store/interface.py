"""The store contract every backend (SQLite, PostgreSQL) meets, in core types only.

A `Store` hands out transactions; a `Tx` is the unit of work: leaving `with store.transaction() as tx:`
without `tx.commit()` (by return or by exception) rolls everything back. Rows, cursors and SQL never leak
out of a backend. Behaviour the contract suite (tests/store/test_contract.py) does not pin down is
behaviour the backends are free to disagree on.

StoreError (an AicfError)
 ├── StoreUnavailableError   the database cannot be reached, is read-only or is locked: nothing was written
 ├── ConcurrentUpdateError   a guarded write found the row moved by another writer: retry the use-case
 ├── IdempotencyConflictError  a key replayed with a different request
 ├── SchemaError             the database is newer than this code, or a migration failed
 └── CorruptValueError       a stored value of the wrong type (a float where an integer belongs)
"""

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

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
from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus
from aicf.core.ledger import LedgerEntry, Posting
from aicf.core.operator import OperatorChange
from aicf.core.records import (
    BatchRecord,
    DecisionRecord,
    Event,
    LeaseRecord,
    ProofRecord,
    Provider,
    ResultRecord,
    SlashRecord,
)
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import Payout
from aicf.store.coord_interface import CoordinatorTx
from aicf.store.coord_interface import ProofContext as ProofContext  # re-exported for aicf.service
from aicf.store.coord_interface import QosRange as QosRange
from aicf.store.devnet_interface import DevnetTx
from aicf.store.trust_interface import TrustTx


class StoreError(AicfError):
    """A failure of the store itself, as opposed to a rule of the core."""


class StoreUnavailableError(StoreError):
    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what}; {hint}")
        self.what, self.hint = what, hint


class ConcurrentUpdateError(StoreError):
    def __init__(self, what: str) -> None:
        super().__init__(f"concurrent update: {what}; the transaction was rolled back, retry it")
        self.what = what


class IdempotencyConflictError(StoreError):
    def __init__(self, key: bytes) -> None:
        super().__init__(f"idempotency key 0x{key.hex()} was already used for a different request")
        self.key = key


class SchemaError(StoreError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"database schema: {reason}")
        self.reason = reason


class CorruptValueError(StoreError, TypeError):
    """A stored value that is not of its column's type, e.g. a balance SQLite turned into a float after an
    integer overflow: reported (aicf db verify, -32031), never a bare TypeError."""

    def __init__(self, expected: str, value: object) -> None:
        super().__init__(f"a stored value is not {expected}: got {type(value).__name__} {str(value)[:40]}")
        self.expected, self.value = expected, value


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotencyRecord:
    key: bytes
    fingerprint: bytes
    result: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderMove:
    """A row of the provider transition table (`CoordinatorTx.record_provider_move`)."""

    provider_id: bytes
    frm: ProviderStatus | None  # None: registration
    to: ProviderStatus
    reason: str
    time: int
    seq: int = 0  # the store's order; 0 until stored


@dataclass(frozen=True, slots=True, kw_only=True)
class NonceRecord:
    provider_id: bytes
    nonce: bytes
    expires_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Every row of the store as core records, for `verify` and `state_digest`.

    Order: tables with a store seq (transitions, entries, provider moves, events) by seq; payouts by epoch and
    admission order; every other table by its key (slashes by subject).
    """

    meta: tuple[tuple[str, int], ...]
    blocks: tuple[IngestedBlock, ...]
    jobs: tuple[Job, ...]
    transitions: tuple[Transition, ...]
    entries: tuple[LedgerEntry, ...]
    balances: tuple[tuple[str, int], ...]
    proof_inclusions: tuple[ProofInclusion, ...]
    refused: tuple[RefusedTx, ...]
    cancels: tuple[CancelRequest, ...]
    claims: tuple[Claim, ...]
    idempotency: tuple[IdempotencyRecord, ...]
    requester_tiers: tuple[tuple[bytes, int], ...]
    # the coordinator's tables (migration 0003)
    providers: tuple[Provider, ...]
    provider_moves: tuple[ProviderMove, ...]
    heartbeats: tuple[tuple[bytes, int], ...]  # (provider_id, slot)
    decisions: tuple[DecisionRecord, ...]
    pools: tuple[tuple[bytes, bytes], ...]  # (pool_id, record), by pool_id
    leases: tuple[LeaseRecord, ...]
    proofs: tuple[ProofRecord, ...]
    results: tuple[ResultRecord, ...]
    batches: tuple[BatchRecord, ...]
    payouts: tuple[Payout, ...]
    slashes: tuple[SlashRecord, ...]
    events: tuple[Event, ...]
    nonces: tuple[NonceRecord, ...]
    operator_changes: tuple[OperatorChange, ...] = ()  # migration 0010, by (height, tx_index)


class Tx(CoordinatorTx, TrustTx, DevnetTx, Protocol):
    """One unit of work. Every method may raise StoreUnavailableError; writes are visible only after commit."""

    def lock_ingest(self, *, wait: bool = True) -> bool:
        """Serialize chain ingestion across coordinator replicas until this transaction ends. With wait=False
        it returns False at once, holding nothing, while another replica's transaction holds the lock."""

    # -- meta ------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> int | None: ...
    def set_meta(self, key: str, value: int) -> None: ...

    # -- blocks ----------------------------------------------------------------------------------------
    def head_block(self) -> IngestedBlock | None: ...
    def block_at(self, height: int) -> IngestedBlock | None: ...
    def insert_block(self, block: IngestedBlock) -> None:
        """Raises ConcurrentUpdateError if a block at that height is already stored."""

    def finalize_blocks_through(self, height: int) -> None: ...

    # -- jobs ------------------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[Job]) -> None:
        """New jobs (PENDING, born with their enqueue block). Raises ConcurrentUpdateError on a known task id."""

    def get_job(self, task_id: bytes) -> Job | None: ...
    def get_jobs(self, task_ids: Sequence[bytes]) -> dict[bytes, Job]:
        """`get_job` for many tasks (one round trip on PostgreSQL); an unknown task is absent."""

    def move_job(
        self, task_id: bytes, frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> bool:
        """Guarded move: False (and nothing written) unless the job is in `frm`. The caller checks the move
        against aicf.core.jobs first; the store only makes it durable and records the transition."""

    def move_jobs(
        self, task_ids: Sequence[bytes], frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> int:
        """`move_job` for many jobs; returns how many moved."""

    def pending_jobs_through(self, height: int) -> list[bytes]:
        """Task ids of PENDING jobs enqueued at or below `height`, in (height, tx index) order."""

    def queued_jobs_at_deadline(self, height: int) -> list[Job]:
        """QUEUED jobs whose deadline height is `height`, in (height, tx index) order. Ingestion applies the
        finality of every height in turn, so asking height by height misses none (and needs no scan)."""

    def open_job_count(self, caller: bytes) -> int:
        """Jobs of `caller` that are not in a final status."""

    def open_job_counts(self, callers: Iterable[bytes]) -> dict[bytes, int]:
        """`open_job_count` for many callers at once (one round trip where the backend allows)."""

    def set_cancel_requested(self, task_id: bytes) -> None: ...
    def transitions_of(self, task_id: bytes) -> list[Transition]: ...

    # -- ledger ----------------------------------------------------------------------------------------
    def balances(self, accounts: Iterable[str]) -> dict[str, int]:
        """Balances of `accounts`; an account never touched has 0."""

    def post(self, postings: Sequence[Posting], block_height: int | None, time: int) -> None:
        """Write the entries and move the balances. Raises NegativeBalanceError (and writes nothing of
        this call) if an account other than external would go below zero."""

    def positive_balances_through(self, prefix: str, height: int) -> dict[str, int]:
        """Every account named `prefix` + anything (e.g. "requester:") whose balance counting off-chain entries
        and chain entries at or below `height` is above 0, each capped at its balance now (entries above
        `height` may have drawn on it). Two round trips: the prefix's balances and the entries above `height`."""

    def entries_with_ref(self, ref_kind: str, ref: bytes) -> list[Posting]:
        """The entries of kind `ref_kind` with reference `ref`, in the order they were written. No index backs
        it: for the rare reads of a batch's refund claims (docs/EVM.md), not for a pass's hot path."""

    # -- chain records ---------------------------------------------------------------------------------
    def insert_proof_inclusions(self, inclusions: Sequence[ProofInclusion]) -> int:
        """Write each inclusion whose task has none yet (the first one wins, also within `inclusions`); returns
        how many were written (one round trip on PostgreSQL)."""

    def proof_inclusions_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofInclusion]:
        """The stored inclusion of each task (one round trip on PostgreSQL); a task without one is absent."""

    def insert_refused(self, refused: Sequence[RefusedTx]) -> None: ...
    def insert_cancel(self, cancel: CancelRequest) -> None: ...
    def waiting_cancels_through(self, height: int) -> list[CancelRequest]: ...
    def set_cancel_outcome(self, height: int, tx_index: int, outcome: CancelOutcome) -> None: ...
    def requester_tier(self, caller: bytes) -> int:
        """The tier the last `tier` operator change set for `caller` (else the legacy requester_tiers row, else 0)."""

    def insert_operator_changes(self, changes: Sequence[OperatorChange]) -> None: ...
    def operator_changes_of(self, op: str, subject: bytes | None = None) -> list[OperatorChange]:
        """The applied operator transactions of one sub-kind (about one subject), oldest first."""

    def recent_operator_changes(self, limit: int) -> list[OperatorChange]:
        """The newest applied operator transactions but trap fundings, newest first."""

    def max_unsettled_units(self) -> int:
        """The largest max_units_mu of a job not yet SETTLED, CANCELLED, FAILED or REJECTED (0 when none)."""

    def rollback_above(self, height: int) -> None:
        """Undo every effect recorded at a height above `height`: blocks, the jobs they enqueued with their
        transitions, their ledger entries (balances reversed), proof inclusions, refused txs, cancels and
        results. A surviving job's status moves recorded above `height` (say SUBMITTED → VERIFIED at the
        inclusion height of a proof whose block is orphaned) are reverted newest first: the job goes back to
        the move's `frm` and the transition row is deleted. Off-chain moves (height None) are never undone.
        The caller guarantees `height` is at or above the finalized height, so every job enqueued above it is
        still PENDING and has no transition yet (the backends' indexes rely on this)."""

    # -- claims ----------------------------------------------------------------------------------------
    def insert_claim(self, claim: Claim) -> bool:
        """False (nothing written) if the claim id is already stored."""

    # -- audit -----------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot: ...

    def commit(self) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Tx]: ...
    def close(self) -> None: ...


class ReadableStore(Store, Protocol):
    def read_transaction(self) -> AbstractContextManager[Tx]:
        """A transaction that only reads: it takes no write lock (SQLite: a deferred BEGIN on a query-only
        connection; PostgreSQL: READ ONLY, REPEATABLE READ) and never commits; a write in it fails."""
        ...


def read_transaction(store: Store) -> AbstractContextManager[Tx]:
    """The store's read-only transaction (issue 15: reads never take the write lock); a store without one
    (a test double) reads in an ordinary transaction that it never commits."""
    opener = getattr(store, "read_transaction", None)
    return opener() if callable(opener) else store.transaction()


class WriterLock(Protocol):
    """Which of the processes on one store sends the coordinator's transactions to an EVM node (docs/EVM.md)."""

    def held(self) -> bool:
        """True if this process holds the lock now: checks it, takes it if it is free, and after a lost
        connection connects again and tries to take it. Never waits for another holder."""
        ...

    def close(self) -> None:
        """Release the lock (another process may take it at once)."""
        ...


class SoleWriter:
    """The writer lock of a store only one process opens (SQLite: `aicf serve` refuses it): always held."""

    def held(self) -> bool:
        return True

    def close(self) -> None:
        return None


def writer_lock(store: Store) -> WriterLock:
    """The store's writer lock (PostgreSQL: a session advisory lock on a connection of its own); a store only
    one process opens has the `SoleWriter`."""
    opener = getattr(store, "writer_lock", None)
    lock: WriterLock = opener() if callable(opener) else SoleWriter()
    return lock


META_FINAL_HEIGHT = "final_height"  # the highest height whose finality effects were applied
META_CHAIN_ID = "chain_id"
META_GENESIS_TIME = "genesis_time"
META_PRICE_BPS = "price_bps"
META_EVM_MONEY = "evm_money"  # 1: an EVM contract holds escrow and stake: refunds are claimed, stake mirrored (EVM.md)
META_ACTED_AT = "coordinator_acted_at"  # the last pass (or credited outage): aicf.core.outages
OUTAGE_PREFIX = "outage:"  # meta 'outage:<started_at, 20 digits>' -> ended_at: one row per credited outage
