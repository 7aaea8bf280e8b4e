"""What the SQL backends share: every `Tx` method written once over five primitives that a backend supplies
(run one named query, fetch one or all rows, run a named query for many parameter sets).

The queries themselves live in `sql/<backend>/queries.sql`; a backend overrides a method only where its
database offers a faster bulk path (PostgreSQL's COPY and arrays).
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence

from aicf.core.chain import CancelOutcome, CancelRequest, Claim, IngestedBlock, Job, ProofInclusion, RefusedTx
from aicf.core.chain import Transition as JobTransition
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, NegativeBalanceError, Posting, deltas_of
from aicf.store import rows
from aicf.store.interface import IdempotencyConflictError, IdempotencyRecord, Snapshot

Params = Mapping[str, object]


class SqlTx(ABC):
    """A unit of work over one connection; the backend's transaction() begins and ends it."""

    def __init__(self) -> None:
        self.committed = False

    # -- primitives ------------------------------------------------------------------------------------
    @abstractmethod
    def _one(self, name: str, params: Params) -> rows.Row | None: ...
    @abstractmethod
    def _all(self, name: str, params: Params) -> list[rows.Row]: ...
    @abstractmethod
    def _exec(self, name: str, params: Params) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abstractmethod
    def _many(self, name: str, params: Sequence[Params]) -> None: ...
    @abstractmethod
    def commit(self) -> None: ...

    def lock_ingest(self) -> None:
        return None

    # -- meta ------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> int | None:
        row = self._one("get_meta", {"key": key})
        return None if row is None else rows.as_int(row[0])

    def set_meta(self, key: str, value: int) -> None:
        self._exec("set_meta", {"key": key, "value": value})

    # -- blocks ----------------------------------------------------------------------------------------
    def head_block(self) -> IngestedBlock | None:
        row = self._one("head_block", {})
        return None if row is None else rows.block_of(row)

    def block_at(self, height: int) -> IngestedBlock | None:
        row = self._one("block_at", {"height": height})
        return None if row is None else rows.block_of(row)

    def insert_block(self, block: IngestedBlock) -> None:
        self._exec("insert_block", rows.block_params(block))

    def finalize_blocks_through(self, height: int) -> None:
        self._exec("finalize_blocks_through", {"height": height})

    # -- jobs ------------------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[Job]) -> None:
        self._many("insert_job", [rows.job_params(j) for j in jobs])

    def get_job(self, task_id: bytes) -> Job | None:
        row = self._one("get_job", {"task_id": task_id})
        return None if row is None else rows.job_of(row)

    def move_job(
        self, task_id: bytes, frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> bool:
        if self._exec("move_job", {"task_id": task_id, "from_status": frm.value, "to_status": to.value}) != 1:
            return False
        self._exec(
            "insert_transition",
            rows.transition_params(
                JobTransition(task_id=task_id, frm=frm, to=to, reason=reason, height=height, time=time)
            ),
        )
        return True

    def move_jobs(
        self, task_ids: Sequence[bytes], frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> int:
        return sum(1 for t in task_ids if self.move_job(t, frm, to, reason, height, time))

    def pending_jobs_through(self, height: int) -> list[bytes]:
        return [rows.as_bytes(r[0]) for r in self._all("pending_jobs_through", {"height": height})]

    def queued_jobs_at_deadline(self, height: int) -> list[Job]:
        return [rows.job_of(r) for r in self._all("queued_jobs_at_deadline", {"height": height})]

    def open_job_count(self, caller: bytes) -> int:
        row = self._one("open_job_count", {"caller": caller})
        return 0 if row is None else rows.as_int(row[0])

    def open_job_counts(self, callers: Iterable[bytes]) -> dict[bytes, int]:
        return {c: self.open_job_count(c) for c in dict.fromkeys(callers)}

    def set_cancel_requested(self, task_id: bytes) -> None:
        self._exec("set_cancel_requested", {"task_id": task_id})

    def transitions_of(self, task_id: bytes) -> list[JobTransition]:
        return [rows.transition_of(r) for r in self._all("transitions_of", {"task_id": task_id})]

    # -- ledger ----------------------------------------------------------------------------------------
    def balances(self, accounts: Iterable[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for account in accounts:
            row = self._one("balance_of", {"account": account})
            out[account] = 0 if row is None else rows.as_int(row[0])
        return out

    def post(self, postings: Sequence[Posting], block_height: int | None, time: int) -> None:
        deltas = deltas_of(postings)
        # Name the account before the database's CHECK would refuse it anonymously.
        debited = [a for a, d in deltas.items() if d < 0 and a != EXTERNAL]
        for account, have in self.balances(debited).items():
            if have + deltas[account] < 0:
                raise NegativeBalanceError(account, have, -deltas[account])
        self._write_entries(postings, block_height, time)
        self._add_balances(deltas)

    def _write_entries(self, postings: Sequence[Posting], block_height: int | None, time: int) -> None:
        self._many("insert_entry", [rows.entry_params(p, block_height, time) for p in postings])

    def _add_balances(self, deltas: dict[str, int]) -> None:
        """Credits upsert; debits update an existing row (a debited account other than external has one), so
        the CHECK never sees a new row with a negative amount."""
        up = [{"account": a, "delta": d} for a, d in deltas.items() if d > 0 or a == EXTERNAL]
        down = [{"account": a, "delta": d} for a, d in deltas.items() if d < 0 and a != EXTERNAL]
        self._many("add_balance", up)
        self._many("sub_balance", down)

    # -- chain records ---------------------------------------------------------------------------------
    def insert_proof_inclusion(self, inclusion: ProofInclusion) -> bool:
        return self._exec("insert_proof_inclusion", rows.inclusion_params(inclusion)) == 1

    def proof_inclusion(self, task_id: bytes) -> ProofInclusion | None:
        row = self._one("proof_inclusion", {"task_id": task_id})
        return None if row is None else rows.inclusion_of(row)

    def insert_refused(self, refused: Sequence[RefusedTx]) -> None:
        self._many("insert_refused", [rows.refused_params(r) for r in refused])

    def insert_cancel(self, cancel: CancelRequest) -> None:
        self._exec("insert_cancel", rows.cancel_params(cancel))

    def waiting_cancels_through(self, height: int) -> list[CancelRequest]:
        return [rows.cancel_of(r) for r in self._all("waiting_cancels_through", {"height": height})]

    def set_cancel_outcome(self, height: int, tx_index: int, outcome: CancelOutcome) -> None:
        self._exec("set_cancel_outcome", {"height": height, "tx_index": tx_index, "outcome": outcome.value})

    def requester_tier(self, caller: bytes) -> int:
        row = self._one("requester_tier", {"caller": caller})
        return 0 if row is None else rows.as_int(row[0])

    def set_requester_tier(self, caller: bytes, tier: int) -> None:
        self._exec("set_requester_tier", {"caller": caller, "tier": tier})

    def rollback_above(self, height: int) -> None:
        h = {"height": height}
        reverse = [(rows.as_str(r[0]), rows.as_int(r[1])) for r in self._all("entry_deltas_above", h)]
        self._exec("delete_entries_above", h)
        self._add_balances({account: -delta for account, delta in reverse if delta != 0})
        self._exec("delete_transitions_above", h)
        self._exec("delete_jobs_above", h)
        self._exec("delete_blocks_above", h)
        self._exec("delete_inclusions_above", h)
        self._exec("delete_refused_above", h)
        self._exec("delete_cancels_above", h)

    # -- claims and idempotency ------------------------------------------------------------------------
    def insert_claim(self, claim: Claim) -> bool:
        return self._exec("insert_claim", rows.claim_params(claim)) == 1

    def replayed(self, key: bytes, fingerprint: bytes) -> bytes | None:
        row = self._one("get_idempotency", {"key": key})
        if row is None:
            return None
        if rows.as_bytes(row[0]) != fingerprint:
            raise IdempotencyConflictError(key)
        return rows.as_bytes(row[1])

    def remember(self, key: bytes, fingerprint: bytes, result: bytes) -> None:
        if self._one("get_idempotency", {"key": key}) is not None:
            raise IdempotencyConflictError(key)
        self._exec("insert_idempotency", {"key": key, "fingerprint": fingerprint, "result": result})

    # -- audit -----------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(
            meta=tuple((rows.as_str(r[0]), rows.as_int(r[1])) for r in self._all("all_meta", {})),
            blocks=tuple(rows.block_of(r) for r in self._all("all_blocks", {})),
            jobs=tuple(rows.job_of(r) for r in self._all("all_jobs", {})),
            transitions=tuple(rows.transition_of(r) for r in self._all("all_transitions", {})),
            entries=tuple(rows.entry_of(r) for r in self._all("all_entries", {})),
            balances=tuple((rows.as_str(r[0]), rows.as_int(r[1])) for r in self._all("all_balances", {})),
            proof_inclusions=tuple(rows.inclusion_of(r) for r in self._all("all_inclusions", {})),
            refused=tuple(rows.refused_of(r) for r in self._all("all_refused", {})),
            cancels=tuple(rows.cancel_of(r) for r in self._all("all_cancels", {})),
            claims=tuple(rows.claim_of(r) for r in self._all("all_claims", {})),
            idempotency=tuple(
                IdempotencyRecord(key=rows.as_bytes(r[0]), fingerprint=rows.as_bytes(r[1]), result=rows.as_bytes(r[2]))
                for r in self._all("all_idempotency", {})
            ),
            requester_tiers=tuple((rows.as_bytes(r[0]), rows.as_int(r[1])) for r in self._all("all_tiers", {})),
            # the coordinator's tables: read once migration 0003 lands in the SQL backends
            providers=(),
            provider_moves=(),
            heartbeats=(),
            decisions=(),
            leases=(),
            proofs=(),
            results=(),
            batches=(),
            payouts=(),
            slashes=(),
            events=(),
            nonces=(),
        )
