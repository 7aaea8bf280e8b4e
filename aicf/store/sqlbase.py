"""What the SQL backends share: every `Tx` method written once over five primitives that a backend supplies
(run one named query, fetch one or all rows, run a named query for many parameter sets).

The queries themselves live in `sql/<backend>/queries.sql`; a backend overrides a method only where its
database offers a faster bulk path (PostgreSQL's COPY and arrays).
"""

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence

from aicf.core.chain import CancelOutcome, CancelRequest, Claim, IngestedBlock, Job, ProofInclusion, RefusedTx
from aicf.core.chain import Transition as JobTransition
from aicf.core.encoding import decode_canonical
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import EXTERNAL, NegativeBalanceError, Posting, check_balances_fit, deltas_of
from aicf.core.operator import OP_TIER, OperatorChange
from aicf.core.outages import Outage
from aicf.core.records import (
    BatchRecord,
    DecisionRecord,
    Event,
    GrantRecord,
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
from aicf.store import rows, tables
from aicf.store.coord_interface import ProofContext, QosRange
from aicf.store.interface import OUTAGE_PREFIX, Snapshot
from aicf.store.sqltrust import SqlTrustTx

Params = Mapping[str, object]


class SqlTx(SqlTrustTx, ABC):
    """A unit of work over one connection; the backend's transaction() begins and ends it."""

    # SQLite serializes writers (BEGIN IMMEDIATE): the plain reads already hold what PostgreSQL must lock
    _claim_ready_query = "ready_jobs"
    _lock_provider_query = "get_provider"

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

    def lock_ingest(self, *, wait: bool = True) -> bool:
        return True  # SQLite: one writer at a time already

    def lock_devnet(self) -> None:
        return None  # SQLite: one writer at a time already (BEGIN IMMEDIATE)

    # -- meta ------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> int | None:
        row = self._one("get_meta", {"key": key})
        return None if row is None else rows.as_int(row[0])

    def set_meta(self, key: str, value: int) -> None:
        self._exec("set_meta", {"key": key, "value": value})

    # -- coordinator outages (aicf.core.outages) -------------------------------------------------------
    def outages_since(self, since: int) -> list[Outage]:
        found = self._all("outages_since", {"since": since})
        return [
            Outage(started_at=int(rows.as_str(r[0]).removeprefix(OUTAGE_PREFIX)), ended_at=rows.as_int(r[1]))
            for r in found
        ]

    def record_outage(self, outage: Outage) -> int | None:
        key = f"{OUTAGE_PREFIX}{outage.started_at:020d}"
        if self._exec("insert_outage", {"key": key, "value": outage.ended_at}) != 1:
            return None
        return self._exec("credit_live_leases", {"gap": outage.gap_s, "started_at": outage.started_at})

    # -- blocks ----------------------------------------------------------------------------------------
    def head_block(self) -> IngestedBlock | None:
        row = self._one("head_block", {})
        return None if row is None else rows.block_of(row)

    # -- the embedded devnet (aicf.store.devnet_interface) ---------------------------------------------------
    def devnet_meta(self) -> dict[str, int]:
        return {rows._s(r[0]): rows._i(r[1]) for r in self._all("devnet_meta", {})}

    def set_devnet_meta(self, values: Mapping[str, int]) -> None:
        self._many("set_devnet_meta", [{"key": k, "value": v} for k, v in sorted(values.items())])

    def devnet_blocks(self) -> list[bytes]:
        return [rows._b(r[0]) for r in self._all("devnet_blocks", {})]

    def devnet_blocks_above(self, height: int) -> list[bytes]:
        return [rows._b(r[0]) for r in self._all("devnet_blocks_above", {"height": height})]

    def put_devnet_blocks(self, blocks: Sequence[tuple[int, bytes]]) -> None:
        self._many("put_devnet_block", [{"height": h, "data": d} for h, d in blocks])

    def drop_devnet_blocks_above(self, height: int) -> None:
        self._exec("drop_devnet_blocks_above", {"height": height})

    def devnet_mempool(self) -> list[tuple[int, bytes]]:
        return [(rows._i(r[0]), rows._b(r[1])) for r in self._all("devnet_mempool", {})]

    def put_devnet_pending(self, pending: Sequence[tuple[int, bytes]]) -> None:
        self._many("put_devnet_pending", [{"seq": s, "data": d} for s, d in pending])

    def drop_devnet_pending_through(self, seq: int) -> None:
        self._exec("drop_devnet_pending_through", {"seq": seq})

    def clear_devnet_mempool(self) -> None:
        self._exec("clear_devnet_mempool", {})

    def jobs_by_tx_hash(self, tx_hash: bytes) -> list[Job]:
        return [rows.job_of(r) for r in self._all("jobs_by_tx_hash", {"tx_hash": tx_hash})]

    def refused_by_tx_hash(self, tx_hash: bytes) -> list[RefusedTx]:
        return [rows.refused_of(r) for r in self._all("refused_by_tx_hash", {"tx_hash": tx_hash})]

    def cancels_by_tx_hash(self, tx_hash: bytes) -> list[CancelRequest]:
        return [rows.cancel_of(r) for r in self._all("cancels_by_tx_hash", {"tx_hash": tx_hash})]

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

    def get_jobs(self, task_ids: Sequence[bytes]) -> dict[bytes, Job]:
        found = ((t, self.get_job(t)) for t in dict.fromkeys(task_ids))  # SQLite: cheap one by one
        return {t: job for t, job in found if job is not None}

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
        # Name the account before the database's CHECK would refuse it anonymously; refuse a balance that would
        # leave 64 bits (SQLite would store it as a float).
        touched = self.balances(deltas)
        for account, have in touched.items():
            if account != EXTERNAL and have + deltas[account] < 0:
                raise NegativeBalanceError(account, have, -deltas[account])
        check_balances_fit(touched, deltas)
        self._write_entries(postings, block_height, time)
        self._add_balances(deltas)

    def positive_balances_through(self, prefix: str, height: int) -> dict[str, int]:
        now = {
            rows.as_str(r[0]): rows.as_int(r[1]) for r in self._all("positive_balances_with_prefix", {"prefix": prefix})
        }
        above = {rows.as_str(r[0]): rows.as_int(r[1]) for r in self._all("entry_deltas_above", {"height": height})}
        through = {account: min(amount, amount - above.get(account, 0)) for account, amount in now.items()}
        return {account: amount for account, amount in sorted(through.items()) if amount > 0}

    def entries_with_ref(self, ref_kind: str, ref: bytes) -> list[Posting]:
        return [rows.entry_of(r).posting for r in self._all("entries_with_ref", {"ref_kind": ref_kind, "ref": ref})]

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
    def insert_proof_inclusions(self, inclusions: Sequence[ProofInclusion]) -> int:
        return sum(self._exec("insert_proof_inclusion", rows.inclusion_params(i)) for i in inclusions)

    def proof_inclusions_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofInclusion]:
        found = ((t, self._one("proof_inclusion", {"task_id": t})) for t in dict.fromkeys(task_ids))
        return {t: rows.inclusion_of(row) for t, row in found if row is not None}

    def insert_refused(self, refused: Sequence[RefusedTx]) -> None:
        self._many("insert_refused", [rows.refused_params(r) for r in refused])

    def insert_cancel(self, cancel: CancelRequest) -> None:
        self._exec("insert_cancel", rows.cancel_params(cancel))

    def waiting_cancels_through(self, height: int) -> list[CancelRequest]:
        return [rows.cancel_of(r) for r in self._all("waiting_cancels_through", {"height": height})]

    def set_cancel_outcome(self, height: int, tx_index: int, outcome: CancelOutcome) -> None:
        self._exec("set_cancel_outcome", {"height": height, "tx_index": tx_index, "outcome": outcome.value})

    def requester_tier(self, caller: bytes) -> int:
        changes = self.operator_changes_of(OP_TIER, caller)
        if changes:
            return rows.as_int(decode_canonical(changes[-1].after))
        row = self._one("requester_tier", {"caller": caller})
        return 0 if row is None else rows.as_int(row[0])

    def insert_operator_changes(self, changes: Sequence[OperatorChange]) -> None:
        for change in changes:
            self._exec("insert_operator_change", rows.operator_change_params(change))

    def operator_changes_of(self, op: str, subject: bytes | None = None) -> list[OperatorChange]:
        if subject is None:
            found = self._all("operator_changes_of", {"op": op})
        else:
            found = self._all("operator_changes_about", {"op": op, "subject": subject})
        return [rows.operator_change_of(r) for r in found]

    def recent_operator_changes(self, limit: int) -> list[OperatorChange]:
        return [rows.operator_change_of(r) for r in self._all("recent_operator_changes", {"limit": limit})]

    def max_unsettled_units(self) -> int:
        row = self._one("max_unsettled_units", {})
        return 0 if row is None else rows.as_int(row[0])

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
        self._exec("delete_operator_changes_above", h)
        self._exec("delete_results_above", h)
        self._exec("revert_job_moves_above", h)
        self._exec("delete_job_moves_above", h)

    # -- claims ----------------------------------------------------------------------------------------
    def insert_claim(self, claim: Claim) -> bool:
        return self._exec("insert_claim", rows.claim_params(claim)) == 1

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
            idempotency=tuple(tables.IDEMPOTENCY_KEYS.decode(r) for r in self._all("all_idempotency", {})),
            requester_tiers=tuple((rows.as_bytes(r[0]), rows.as_int(r[1])) for r in self._all("all_tiers", {})),
            providers=tuple(rows.provider_of(r) for r in self._all("all_providers", {})),
            provider_moves=tuple(tables.PROVIDER_TRANSITIONS.decode(r) for r in self._all("all_provider_moves", {})),
            heartbeats=tuple((rows.as_bytes(r[0]), rows.as_int(r[1])) for r in self._all("all_heartbeats", {})),
            decisions=tuple(rows.decision_of(r) for r in self._all("all_decisions", {})),
            pools=tuple((rows.as_bytes(r[0]), rows.as_bytes(r[1])) for r in self._all("all_pools", {})),
            leases=tuple(rows.lease_of(r) for r in self._all("all_leases", {})),
            proofs=tuple(rows.proof_of(r) for r in self._all("all_proofs", {})),
            results=tuple(rows.result_of(r) for r in self._all("all_results", {})),
            batches=tuple(rows.batch_of(r) for r in self._all("all_batches", {})),
            payouts=tuple(rows.payout_of(r) for r in self._all("all_payouts", {})),
            slashes=tuple(rows.slash_of(r) for r in self._all("all_slashes", {})),
            events=tuple(rows.event_of(r) for r in self._all("all_events", {})),
            nonces=tuple(tables.RPC_NONCES.decode(r) for r in self._all("all_nonces", {})),
            operator_changes=tuple(rows.operator_change_of(r) for r in self._all("all_operator_changes", {})),
        )

    # -- providers -------------------------------------------------------------------------------------
    def get_provider(self, provider_id: bytes) -> Provider | None:
        row = self._one("get_provider", {"provider_id": provider_id})
        return None if row is None else rows.provider_of(row)

    def insert_provider(self, provider: Provider) -> bool:
        return self._exec("insert_provider", rows.provider_params(provider)) == 1

    def update_provider(self, provider: Provider, expected_status: ProviderStatus) -> bool:
        params = {**rows.provider_params(provider), "expected_status": expected_status.value}
        return self._exec("update_provider", params) == 1

    def providers(self) -> list[Provider]:
        return [rows.provider_of(r) for r in self._all("all_providers", {})]

    def providers_due(self, now: int) -> list[Provider]:
        return [rows.provider_of(r) for r in self._all("providers_due", {"now": now})]

    def active_provider_ids(self, registered_by: int) -> list[bytes]:
        return [rows.as_bytes(r[0]) for r in self._all("active_provider_ids", {"registered_by": registered_by})]

    def record_provider_move(
        self, provider_id: bytes, frm: ProviderStatus | None, to: ProviderStatus, reason: str, time: int
    ) -> None:
        self._exec(
            "insert_provider_move",
            {
                "provider_id": provider_id,
                "from_status": None if frm is None else frm.value,
                "to_status": to.value,
                "reason": reason,
                "time": time,
            },
        )

    def record_heartbeat(self, provider_id: bytes, slot: int, now: int, expires_at: int) -> list[LeaseRecord] | None:
        params = {"provider_id": provider_id, "slot": slot, "now": now, "expires_at": expires_at}
        if self._exec("touch_provider", params) != 1:
            return None
        self._exec("add_heartbeat", params)
        self._exec("extend_leases", params)
        return self.live_leases_of(provider_id)

    def heartbeat_slots(self, provider_id: bytes, first: int, last: int) -> list[int]:
        found = self._all("heartbeat_slots", {"provider_id": provider_id, "first": first, "last": last})
        return [rows.as_int(r[0]) for r in found]

    def heartbeat_slots_of(self, provider_ids: Sequence[bytes], first: int, last: int) -> dict[bytes, list[int]]:
        return {p: self.heartbeat_slots(p, first, last) for p in provider_ids}  # SQLite: cheap one by one

    # -- matching and leases ---------------------------------------------------------------------------
    def list_jobs(self, statuses: Sequence[JobStatus], after: bytes | None, limit: int) -> list[Job]:
        start = after if after is not None else b""
        if not statuses:
            return [rows.job_of(r) for r in self._all("list_jobs", {"after": start, "limit": max(limit, 0)})]
        found: list[Job] = []
        for status in dict.fromkeys(statuses):  # one indexed query per status, merged by task_id
            params = {"status": status.value, "after": start, "limit": max(limit, 0)}
            found.extend(rows.job_of(r) for r in self._all("list_jobs_in_status", params))
        return sorted(found, key=lambda j: j.task_id)[: max(limit, 0)]

    def job_counts(self) -> dict[JobStatus, int]:
        return {JobStatus(str(r[0])): rows.as_int(r[1]) for r in self._all("job_counts", {})}

    def slash_totals(self) -> dict[str, tuple[int, int]]:
        return {str(r[0]): (rows.as_int(r[1]), rows.as_int(r[2])) for r in self._all("slash_totals", {})}

    def proof_verdict_counts(self) -> dict[str, int]:
        return {str(r[0]): rows.as_int(r[1]) for r in self._all("proof_verdict_counts", {})}

    def lease_counts(self) -> dict[LeaseStatus, int]:
        return {LeaseStatus(str(r[0])): rows.as_int(r[1]) for r in self._all("lease_counts", {})}

    def lease_job(self, lease: LeaseRecord, time: int) -> bool:
        if self._exec("lease_job", {"task_id": lease.task_id, "time": time}) != 1:
            return False
        self._exec("insert_lease", rows.lease_params(lease))
        self._exec(
            "insert_transition",
            rows.transition_params(
                JobTransition(
                    task_id=lease.task_id,
                    frm=JobStatus.QUEUED,
                    to=JobStatus.LEASED,
                    reason="assigned",
                    height=None,
                    time=time,
                )
            ),
        )
        return True

    def put_decisions(self, decisions: Sequence[DecisionRecord]) -> None:
        self._many("put_decision", [rows.decision_params(d) for d in decisions])

    def leases_of_tasks(self, task_ids: Sequence[bytes]) -> dict[bytes, list[LeaseRecord]]:
        found = {t: self.leases_of_task(t) for t in dict.fromkeys(task_ids)}  # SQLite: cheap one by one
        return {t: leases for t, leases in found.items() if leases}

    def accepted_proofs_not_included(self, received_by: int, limit: int) -> list[ProofRecord]:
        params = {"received_by": received_by, "limit": limit}
        return [rows.proof_of(r) for r in self._all("accepted_proofs_not_included", params)]

    def live_leases_granted_by(self, time: int, limit: int) -> list[LeaseRecord]:
        return [rows.lease_of(r) for r in self._all("live_leases_granted_by", {"time": time, "limit": limit})]

    def proof_context(
        self, provider_id: bytes, lease_id: bytes, task_id: bytes, proof_id: bytes, qos: QosRange
    ) -> ProofContext:
        found = self._alls(
            [
                ("get_provider", {"provider_id": provider_id}),
                ("get_lease", {"lease_id": lease_id}),
                ("get_job", {"task_id": task_id}),
                ("proof_seen", {"proof_id": proof_id}),
                ("head_block", {}),
                ("trap_of_task", {"task_id": task_id}),
                ("trust_version", {}),
                ("accepted_latencies_since", {"provider_id": provider_id, "since": qos.since}),
                ("heartbeat_slots", {"provider_id": provider_id, "first": qos.first_slot, "last": qos.last_slot}),
            ]
        )
        provider, lease, job, seen, head, trap, trust = (rs[0] if rs else None for rs in found[:7])
        return ProofContext(
            provider=None if provider is None else rows.provider_of(provider),
            lease=None if lease is None else rows.lease_of(lease),
            job=None if job is None else rows.job_of(job),
            seen=seen is not None,
            head=None if head is None else rows.block_of(head),
            trap=None if trap is None else rows.trap_of(trap),
            trust_version=0 if trust is None else rows.as_int(trust[0]),
            latencies=[rows.as_int(r[0]) for r in found[7]],
            slots=[rows.as_int(r[0]) for r in found[8]],
        )

    def _alls(self, calls: Sequence[tuple[str, Params]]) -> list[list[rows.Row]]:
        """`_all` for each call, in order (PostgreSQL sends them in one pipeline)."""
        return [self._all(name, params) for name, params in calls]

    def _execs(self, calls: Sequence[tuple[str, Params]]) -> list[int]:
        """`_exec` for each call, in order (PostgreSQL sends them in one pipeline): the row counts."""
        return [self._exec(name, params) for name, params in calls]

    def oldest_queued_height(self) -> int | None:
        row = self._one("oldest_queued_height", {})
        return None if row is None or row[0] is None else rows.as_int(row[0])

    def claim_ready_jobs(self, now: int, limit: int) -> list[Job]:
        return [rows.job_of(r) for r in self._all(self._claim_ready_query, {"now": now, "limit": limit})]

    def lock_provider(self, provider_id: bytes) -> Provider | None:
        row = self._one(self._lock_provider_query, {"provider_id": provider_id})
        return None if row is None else rows.provider_of(row)

    def put_pool(self, pool_id: bytes, record: bytes) -> None:
        self._exec("put_pool", {"pool_id": pool_id, "record": record})

    def get_pool(self, pool_id: bytes) -> bytes | None:
        row = self._one("get_pool", {"pool_id": pool_id})
        return None if row is None else rows.as_bytes(row[0])

    def registry_version(self) -> int:
        row = self._one("registry_version", {})
        return 0 if row is None else rows.as_int(row[0])

    def decisions_of(self, task_id: bytes) -> list[DecisionRecord]:
        return [rows.decision_of(r) for r in self._all("decisions_of", {"task_id": task_id})]

    def get_lease(self, lease_id: bytes) -> LeaseRecord | None:
        row = self._one("get_lease", {"lease_id": lease_id})
        return None if row is None else rows.lease_of(row)

    def leases_of_task(self, task_id: bytes) -> list[LeaseRecord]:
        return [rows.lease_of(r) for r in self._all("leases_of_task", {"task_id": task_id})]

    def live_leases_of(self, provider_id: bytes) -> list[LeaseRecord]:
        return [rows.lease_of(r) for r in self._all("live_leases_of", {"provider_id": provider_id})]

    def live_lease_counts(self) -> dict[bytes, int]:
        return {rows.as_bytes(r[0]): rows.as_int(r[1]) for r in self._all("live_lease_counts", {})}

    def expired_leases(self, now: int, limit: int) -> list[LeaseRecord]:
        return [rows.lease_of(r) for r in self._all("expired_leases", {"now": now, "limit": max(limit, 0)})]

    def end_lease(self, lease_id: bytes, to: LeaseStatus, ended_at: int) -> bool:
        params = {"lease_id": lease_id, "to_status": to.value, "ended_at": ended_at}
        return self._exec("end_lease", params) == 1

    def set_job_schedule(self, task_id: bytes, attempts: int, not_before: int) -> None:
        self._exec("set_job_schedule", {"task_id": task_id, "attempts": attempts, "not_before": not_before})

    # -- proofs and results ----------------------------------------------------------------------------
    def insert_proof(self, proof: ProofRecord) -> bool:
        return self._exec("insert_proof", rows.proof_params(proof)) == 1

    def accept_proof(self, proof: ProofRecord, time: int) -> bool:
        moved, writes = acceptance_writes(proof, time)
        if not self.move_job(moved.task_id, moved.frm, moved.to, moved.reason, moved.height, moved.time):
            return False
        return self._execs(writes) == [1, 1]

    def proof_seen(self, proof_id: bytes) -> bool:
        return self._one("proof_seen", {"proof_id": proof_id}) is not None

    def get_proof(self, proof_id: bytes) -> ProofRecord | None:
        row = self._one("get_proof", {"proof_id": proof_id})
        return None if row is None else rows.proof_of(row)

    def accepted_proof_of(self, task_id: bytes) -> ProofRecord | None:
        row = self._one("accepted_proof_of", {"task_id": task_id})
        return None if row is None else rows.proof_of(row)

    def accepted_proofs_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofRecord]:
        found = ((t, self.accepted_proof_of(t)) for t in dict.fromkeys(task_ids))
        return {t: proof for t, proof in found if proof is not None}

    def accepted_latencies_since(self, provider_id: bytes, since: int) -> list[int]:
        found = self._all("accepted_latencies_since", {"provider_id": provider_id, "since": since})
        return [rows.as_int(r[0]) for r in found]

    def insert_results(self, results: Sequence[ResultRecord]) -> set[bytes]:
        return {r.task_id for r in results if self._exec("insert_result", rows.result_params(r)) == 1}

    def get_result(self, task_id: bytes) -> ResultRecord | None:
        row = self._one("get_result", {"task_id": task_id})
        return None if row is None else rows.result_of(row)

    def unsettled_results_through(self, height: int) -> list[ResultRecord]:
        return [rows.result_of(r) for r in self._all("unsettled_results_through", {"height": height})]

    # -- settlement ------------------------------------------------------------------------------------
    def balance_through(self, account: str, height: int) -> int:
        """The balance less what the (few, unfinalized) entries above `height` added: an index range, no scan."""
        above = self._one("entry_delta_above", {"account": account, "height": height})
        return self.balances([account])[account] - (0 if above is None else rows.as_int(above[0]))

    def insert_batch(self, batch: BatchRecord, payouts: Sequence[Payout]) -> bool:
        if self._exec("insert_batch", rows.batch_params(batch)) != 1:
            return False
        self._write_payouts(payouts)
        return True

    def _write_payouts(self, payouts: Sequence[Payout]) -> None:
        self._many("insert_payout", [rows.payout_params(p, i) for i, p in enumerate(payouts)])

    def get_batch(self, epoch: int) -> BatchRecord | None:
        row = self._one("get_batch", {"epoch": epoch})
        return None if row is None else rows.batch_of(row)

    def last_batch_epoch(self) -> int | None:
        row = self._one("last_batch_epoch", {})
        return None if row is None or row[0] is None else rows.as_int(row[0])

    def payouts_of_epoch(self, epoch: int) -> list[Payout]:
        return [rows.payout_of(r) for r in self._all("payouts_of_epoch", {"epoch": epoch})]

    def payout_of_task(self, task_id: bytes) -> Payout | None:
        row = self._one("payout_of_task", {"task_id": task_id})
        return None if row is None else rows.payout_of(row)

    def add_carried(self, task_ids: Sequence[bytes]) -> None:
        self._many("add_carried", [{"task_id": t} for t in task_ids])

    # -- slashing --------------------------------------------------------------------------------------
    def insert_slash(self, slash: SlashRecord) -> bool:
        return self._exec("insert_slash", rows.slash_params(slash)) == 1

    def slashes_of(self, provider_id: bytes) -> list[SlashRecord]:
        return [rows.slash_of(r) for r in self._all("slashes_of", {"provider_id": provider_id})]

    def recent_slashes(self, limit: int) -> list[SlashRecord]:
        return [rows.slash_of(r) for r in self._all("recent_slashes", {"limit": max(limit, 0)})]

    # -- claims ----------------------------------------------------------------------------------------
    def get_claim(self, claim_id: bytes) -> Claim | None:
        row = self._one("get_claim", {"claim_id": claim_id})
        return None if row is None else rows.claim_of(row)

    # -- events and nonces -----------------------------------------------------------------------------
    def append_event(self, topic: str, data: bytes, time: int) -> int:
        got = self._all("next_event_seq", {})
        seq = rows.as_int(got[0][0])
        self._exec("insert_event", {"seq": seq, "topic": topic, "data": data, "time": time})
        return seq

    def append_events(self, events: Sequence[tuple[str, bytes]], time: int) -> list[int]:
        return [self.append_event(topic, data, time) for topic, data in events]

    def events_since(self, seq: int, topics: Sequence[str], limit: int) -> list[Event]:
        params: dict[str, object] = {"seq": seq, "limit": max(limit, 0)}
        if not topics:
            return [rows.event_of(r) for r in self._all("events_since", params)]
        return [rows.event_of(r) for r in self._all("events_since_topics", {**params, "topics": self._topics(topics)})]

    def _topics(self, topics: Sequence[str]) -> object:
        """The topic list as the backend binds it (SQLite: a JSON array for json_each)."""
        return json.dumps(list(topics))

    def latest_event_seq(self) -> int:
        row = self._one("latest_event_seq", {})
        return 0 if row is None else rows.as_int(row[0])

    def use_nonce(self, provider_id: bytes, nonce: bytes, expires_at: int, now: int) -> bool:
        self._exec("delete_expired_nonces", {"provider_id": provider_id, "now": now})
        return self._exec("insert_nonce", {"provider_id": provider_id, "nonce": nonce, "expires_at": expires_at}) == 1

    def forget_nonce(self, provider_id: bytes, nonce: bytes) -> None:
        self._exec("delete_nonce", {"provider_id": provider_id, "nonce": nonce})

    def nonce_in_use(self, provider_id: bytes, nonce: bytes, now: int) -> bool:
        return self._one("nonce_in_use", {"provider_id": provider_id, "nonce": nonce, "now": now}) is not None

    # -- traps (SPEC §8) ---------------------------------------------------------------------------------
    def insert_trap_seed(self, seed: TrapSeedRecord) -> bool:
        return self._exec("insert_trap_seed", rows.trap_seed_params(seed)) == 1

    def reveal_trap_seed(self, epoch: int, seed: bytes, time: int) -> bool:
        return self._exec("reveal_trap_seed", {"epoch": epoch, "seed": seed, "time": time}) == 1

    def get_trap_seed(self, epoch: int) -> TrapSeedRecord | None:
        row = self._one("get_trap_seed", {"epoch": epoch})
        return None if row is None else rows.trap_seed_of(row)

    def insert_trap(self, trap: TrapRecord) -> bool:
        return self._exec("insert_trap", rows.trap_params(trap)) == 1

    def update_trap(self, trap: TrapRecord) -> bool:
        return self._exec("update_trap", rows.trap_params(trap)) == 1

    def get_trap(self, caller: bytes) -> TrapRecord | None:
        row = self._one("get_trap", {"caller": caller})
        return None if row is None else rows.trap_of(row)

    def open_traps(self, limit: int) -> list[TrapRecord]:
        return [rows.trap_of(r) for r in self._all("open_traps", {"limit": max(limit, 0)})]

    def trap_counts(self) -> dict[str, int]:
        return {rows.as_str(r[0]): rows.as_int(r[1]) for r in self._all("trap_counts", {})}

    # -- grants (issue 14 item 2) --------------------------------------------------------------------------
    def insert_grant(self, grant: GrantRecord) -> bool:
        return self._exec("insert_grant", rows.grant_params(grant)) == 1

    def update_grant(self, grant: GrantRecord) -> bool:
        return self._exec("update_grant", rows.grant_params(grant)) == 1

    def get_grant(self, caller: bytes) -> GrantRecord | None:
        row = self._one("get_grant", {"caller": caller})
        return None if row is None else rows.grant_of(row)

    def grant_of_request(self, request_hash: bytes) -> GrantRecord | None:
        row = self._one("grant_of_request", {"request_hash": request_hash})
        return None if row is None else rows.grant_of(row)

    def open_grants(self, limit: int) -> list[GrantRecord]:
        return [rows.grant_of(r) for r in self._all("open_grants", {"limit": max(limit, 0)})]

    def grant_used(self, requester: bytes) -> int:
        row = self._one("grant_used", {"requester": requester})
        return 0 if row is None else rows.as_int(row[0])

    def next_grant_number(self) -> int:
        row = self._one("next_grant_number", {})
        return 0 if row is None else rows.as_int(row[0])

    def ai_job_counts(self) -> dict[str, int]:
        return {rows.as_str(r[0]): rows.as_int(r[1]) for r in self._all("ai_job_counts", {})}

    def jobs_of_caller(self, caller: bytes) -> list[Job]:
        return [rows.job_of(r) for r in self._all("jobs_of_caller", {"caller": caller})]


def acceptance_writes(proof: ProofRecord, time: int) -> tuple[JobTransition, list[tuple[str, Params]]]:
    """`accept_proof`'s job move, and its proof insert and lease end as named statements."""
    moved = JobTransition(
        task_id=proof.task_id, frm=JobStatus.LEASED, to=JobStatus.SUBMITTED, reason="proof submitted", height=None,
        time=time,
    )  # fmt: skip
    ended = {"lease_id": proof.lease_id, "to_status": LeaseStatus.PROVED.value, "ended_at": time}
    return moved, [("insert_proof", rows.proof_params(proof)), ("end_lease", ended)]
