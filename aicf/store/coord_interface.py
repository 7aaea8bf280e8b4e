"""The coordinator's part of the store contract (issue 5): providers, heartbeats, leases and their decision
records, proofs, results, settlement batches and payouts, slashes, events and RPC nonces.

`aicf.store.interface.Tx` extends this Protocol, so every backend implements it and the one contract suite
(tests/store/) pins it down. Every guarded write returns False (and writes nothing) when the row it expects
has moved: the caller's transaction then rolls back or retries. Rows written with a `block_height` are
chain-derived and `rollback_above` undoes them; the rest are off-chain and never rolled back.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aicf.core.chain import Claim, IngestedBlock, Job
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
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


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofContext:
    """What a proof submission reads before it decides, fetched together (one round trip on PostgreSQL)."""

    provider: Provider | None
    lease: LeaseRecord | None
    job: Job | None
    seen: bool  # a proof with this proof_id is already stored
    head: IngestedBlock | None
    trap: TrapRecord | None  # the trap whose caller enqueued the job, if it is one
    trust_version: int  # `trust_version()`: whether the verifier's cached roots and policy are current
    latencies: list[int]  # `accepted_latencies_since(provider_id, since)`: the provider's QoS window
    slots: list[int]  # `heartbeat_slots(provider_id, first_slot, last_slot)`


@dataclass(frozen=True)
class QosRange:
    """What of a provider's QoS history a proof submission reads: accepted latencies received at or after
    `since`, heartbeat slots from `first_slot` to `last_slot` inclusive."""

    since: int
    first_slot: int
    last_slot: int


class CoordinatorTx(Protocol):
    # -- providers (SPEC §6, §9) ---------------------------------------------------------------------------
    def get_provider(self, provider_id: bytes) -> Provider | None: ...
    def insert_provider(self, provider: Provider) -> bool:
        """False (nothing written) if the provider id is already registered."""

    def update_provider(self, provider: Provider, expected_status: ProviderStatus) -> bool:
        """Replace the row; guarded: False unless the stored status is `expected_status`."""

    def providers(self) -> list[Provider]:
        """Every provider, ordered by provider_id."""

    def providers_due(self, now: int) -> list[Provider]:
        """The providers a sweep at `now` has work for, ordered by provider_id: JAILED with a jail that ended
        (0 < jailed_until <= now; 0 is permanent), or holding unbonding stake whose period is over
        (unbonding > 0 and unbonding_until <= now)."""

    def active_provider_ids(self, registered_by: int) -> list[bytes]:
        """The ACTIVE providers registered at or before `registered_by`, ordered by provider_id."""

    def record_provider_move(
        self, provider_id: bytes, frm: ProviderStatus | None, to: ProviderStatus, reason: str, time: int
    ) -> None:
        """A row of the provider transition table (registration is None → ACTIVE)."""

    def record_heartbeat(self, provider_id: bytes, slot: int, now: int, expires_at: int) -> list[LeaseRecord] | None:
        """A heartbeat at `now`: mark the slot live (idempotent), set the provider's last_heartbeat_at and
        updated_at to `now` (nothing else of its row: the registry version does not move, no transition is
        recorded), extend its LIVE leases with now < expires_at (< the new value) to `expires_at` (never shortens
        one nor revives a dead one), and return its LIVE leases as `live_leases_of` does. None, and nothing
        written, if the provider is unknown. One round trip on PostgreSQL."""

    def heartbeat_slots(self, provider_id: bytes, first: int, last: int) -> list[int]:
        """Live slots between `first` and `last` inclusive, ascending."""

    def heartbeat_slots_of(self, provider_ids: Sequence[bytes], first: int, last: int) -> dict[bytes, list[int]]:
        """`heartbeat_slots` for many providers (one round trip on PostgreSQL): every given id is a key, mapped
        to its live slots between `first` and `last` inclusive, ascending ([] if none)."""

    # -- coordinator outages (aicf.core.outages) -----------------------------------------------------------
    def outages_since(self, since: int) -> list[Outage]:
        """The credited outages that ended after `since`, oldest first."""

    def record_outage(self, outage: Outage) -> int | None:
        """Record a credited outage and extend every LIVE lease with expires_at > outage.started_at by its gap;
        returns how many leases were extended. None, and nothing written, if an outage with the same start is
        recorded already (another transaction credited it first)."""

    # -- matching and leases (SPEC §5, §6, §7) -------------------------------------------------------------
    def lease_job(self, lease: LeaseRecord, time: int) -> bool:
        """Guarded QUEUED → LEASED with the lease row and the transition; False if the job is not QUEUED or
        not ready. On PostgreSQL the job row is claimed with FOR UPDATE SKIP LOCKED so replicas never wait
        on each other's candidates."""

    def put_decisions(self, decisions: Sequence[DecisionRecord]) -> None:
        """Store each decision for its (task, attempt), replacing an earlier one of the same attempt (one round
        trip on PostgreSQL)."""

    def leases_of_tasks(self, task_ids: Sequence[bytes]) -> dict[bytes, list[LeaseRecord]]:
        """`leases_of_task` for many tasks (one round trip on PostgreSQL); a task without leases is absent."""

    def accepted_proofs_not_included(self, received_by: int, limit: int) -> list[ProofRecord]:
        """Accepted proofs received at or before `received_by` whose job is SUBMITTED and has no proof inclusion
        (its inclusion never reached the chain), oldest first."""

    def live_leases_granted_by(self, time: int, limit: int) -> list[LeaseRecord]:
        """LIVE leases granted at or before `time`, oldest first (the sweep's runtime-budget candidates)."""

    def proof_context(
        self, provider_id: bytes, lease_id: bytes, task_id: bytes, proof_id: bytes, qos: QosRange
    ) -> ProofContext:
        """The provider, the lease, the job, whether the proof is stored, the head block, the job's trap and
        the provider's accepted latencies and heartbeat slots in the `qos` range."""

    def oldest_queued_height(self) -> int | None:
        """The lowest enqueue height of a QUEUED job (ready or backing off), None if none is queued."""

    def claim_ready_jobs(self, now: int, limit: int) -> list[Job]:
        """Up to `limit` QUEUED jobs with not_before <= now, in matcher order: tier descending, then
        (fee_per_unit − max_units_mu // 1000 − 10 × enqueue_height) descending (SPEC §5's score less the
        head, which is the same for every job in a pass), enqueue height, task_id. Each row is held until this
        transaction ends: on PostgreSQL a row another transaction holds is skipped, so concurrent replicas'
        passes take disjoint jobs."""

    def lock_provider(self, provider_id: bytes) -> Provider | None:
        """The provider's row, held until this transaction ends, so two replicas cannot both grant its last
        lease slot or spend the same bucket tokens. None if there is no such provider or, on PostgreSQL,
        another transaction holds the row (skipped, not waited on: passes that lock providers in draw order
        would otherwise deadlock)."""

    def put_pool(self, pool_id: bytes, record: bytes) -> None:
        """Store a candidate pool (content-addressed: putting a stored id again changes nothing)."""

    def get_pool(self, pool_id: bytes) -> bytes | None: ...
    def registry_version(self) -> int:
        """A counter that moves whenever a provider is added or its profile changes (status, capabilities,
        max_leases, bonded stake); heartbeats, token buckets and strikes do not move it. A cache of the
        registry's profiles is current while the counter stays the same."""

    def decisions_of(self, task_id: bytes) -> list[DecisionRecord]:
        """By attempt."""

    def get_lease(self, lease_id: bytes) -> LeaseRecord | None: ...
    def leases_of_task(self, task_id: bytes) -> list[LeaseRecord]:
        """Every lease of the task, by attempt."""

    def live_leases_of(self, provider_id: bytes) -> list[LeaseRecord]:
        """The provider's LIVE leases (whatever their expires_at), by granted_at, then lease_id."""

    def live_lease_counts(self) -> dict[bytes, int]:
        """Live leases per provider (providers with none are absent)."""

    def expired_leases(self, now: int, limit: int) -> list[LeaseRecord]:
        """LIVE leases with expires_at <= now, oldest expiry first."""

    def end_lease(self, lease_id: bytes, to: LeaseStatus, ended_at: int) -> bool:
        """Guarded LIVE → `to`; False if the lease is not LIVE."""

    def set_job_schedule(self, task_id: bytes, attempts: int, not_before: int) -> None: ...

    # -- proofs and results (SPEC §8) ----------------------------------------------------------------------
    def insert_proof(self, proof: ProofRecord) -> bool:
        """False (nothing written) if the proof id was seen before."""

    def accept_proof(self, proof: ProofRecord, time: int) -> bool:
        """An accepted proof's writes together (one round trip on PostgreSQL): the job LEASED → SUBMITTED with
        its transition ("proof submitted"), the proof row, and the lease LIVE → PROVED ended at `time`. False
        when the job was not LEASED, the proof id was taken or the lease was not LIVE (another replica got there
        first): the caller must then roll back, as part of it may be written."""

    def proof_seen(self, proof_id: bytes) -> bool: ...
    def get_proof(self, proof_id: bytes) -> ProofRecord | None: ...
    def accepted_proof_of(self, task_id: bytes) -> ProofRecord | None:
        """The task's proof with verdict ACCEPT (the earliest received, should there be several)."""

    def accepted_proofs_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofRecord]:
        """`accepted_proof_of` for many tasks (one round trip on PostgreSQL); a task without one is absent."""

    def accepted_latencies_since(self, provider_id: bytes, since: int) -> list[int]:
        """latency_ms of the provider's accepted proofs received at or after `since` (its QoS window), oldest
        first (by received_at, then proof_id)."""

    def insert_results(self, results: Sequence[ResultRecord]) -> set[bytes]:
        """Chain-derived (rolled back above their heights). Write each result whose task has none yet (the first
        one wins, also within `results`); returns the task ids written (one round trip on PostgreSQL)."""

    def get_result(self, task_id: bytes) -> ResultRecord | None: ...
    def unsettled_results_through(self, height: int) -> list[ResultRecord]:
        """Results included at or below `height` that no payout names yet (whatever the local job status:
        results are chain-derived, so every node settles the same ones), by (height, tx_index, task_id)."""

    # -- settlement (SPEC §5) ------------------------------------------------------------------------------
    def balance_through(self, account: str, height: int) -> int:
        """The account's balance counting off-chain entries and chain entries at or below `height`."""

    def insert_batch(self, batch: BatchRecord, payouts: Sequence[Payout]) -> bool:
        """The batch and its payouts (kept in the given, admission, order); False (nothing written) if the
        epoch has a batch. A task_id is paid at most once (unique), across all batches: a payout of a task
        already paid (or paid twice in `payouts`) raises ConcurrentUpdateError, after which the transaction
        must be abandoned (rolled back); nothing of it is ever committed."""

    def get_batch(self, epoch: int) -> BatchRecord | None: ...
    def last_batch_epoch(self) -> int | None: ...
    def payouts_of_epoch(self, epoch: int) -> list[Payout]:
        """In admission order (the order given to insert_batch)."""

    def payout_of_task(self, task_id: bytes) -> Payout | None: ...
    def add_carried(self, task_ids: Sequence[bytes]) -> None:
        """carried_batches += 1 for each job (unknown task ids are ignored)."""

    # -- slashing (SPEC §9) --------------------------------------------------------------------------------
    def insert_slash(self, slash: SlashRecord) -> bool:
        """False (nothing written) if the subject (lease or proof) was already slashed."""

    def slashes_of(self, provider_id: bytes) -> list[SlashRecord]:
        """Oldest first (time, then the order they were stored)."""

    def recent_slashes(self, limit: int) -> list[SlashRecord]:
        """Newest first (time descending, then the reverse of the order they were stored)."""

    # -- reads for the API (SPEC §12) ----------------------------------------------------------------------
    def list_jobs(self, statuses: Sequence[JobStatus], after: bytes | None, limit: int) -> list[Job]:
        """Jobs in the given statuses (all when empty) with task_id > after, ordered by task_id."""

    def job_counts(self) -> dict[JobStatus, int]:
        """How many jobs are in each status (statuses with none may be absent)."""

    def lease_counts(self) -> dict[LeaseStatus, int]:
        """How many leases were ever granted, by their status now (statuses with none may be absent)."""

    def slash_totals(self) -> dict[str, tuple[int, int]]:
        """Every slash ever made, by reason: (how many, µANM taken)."""

    def proof_verdict_counts(self) -> dict[str, int]:
        """Stored proofs by verdict ("ACCEPT" or a reject code); drops are never stored."""

    # -- claims (SPEC §11) --------------------------------------------------------------------------------
    def get_claim(self, claim_id: bytes) -> Claim | None: ...

    # -- events (SPEC §12) and nonces ----------------------------------------------------------------------
    def append_event(self, topic: str, data: bytes, time: int) -> int:
        """The event's gapless sequence number (1, 2, …), taken in this transaction: a rolled-back
        transaction's number is reused by the next commit. On PostgreSQL the counter row stays locked until
        the transaction ends, so concurrent replicas append one at a time: append events last."""

    def append_events(self, events: Sequence[tuple[str, bytes]], time: int) -> list[int]:
        """`append_event` for each (topic, data) in order, all at `time` (one round trip on PostgreSQL)."""

    def events_since(self, seq: int, topics: Sequence[str], limit: int) -> list[Event]:
        """Events with sequence > seq whose topic is in `topics` (all when empty), ascending."""

    def latest_event_seq(self) -> int:
        """0 when no event was appended."""

    def use_nonce(self, provider_id: bytes, nonce: bytes, expires_at: int, now: int) -> bool:
        """False if the nonce was used by this provider and has not expired (its expires_at > now); otherwise
        remember it until `expires_at`. The provider's expired nonces are forgotten on the way."""

    def forget_nonce(self, provider_id: bytes, nonce: bytes) -> None:
        """Forget a recorded (provider_id, nonce): the call it signed was refused and changed nothing."""

    def nonce_in_use(self, provider_id: bytes, nonce: bytes, now: int) -> bool:
        """Whether (provider_id, nonce) is recorded and not expired at `now` (a read: nothing is written)."""

    # -- traps (SPEC §8) -----------------------------------------------------------------------------------

    def insert_trap_seed(self, seed: TrapSeedRecord) -> bool:
        """The commitment of an epoch's trap seed; False (nothing written) if the epoch has one."""

    def reveal_trap_seed(self, epoch: int, seed: bytes, time: int) -> bool:
        """Set the revealed seed; guarded: False unless the epoch is committed and not yet revealed."""

    def get_trap_seed(self, epoch: int) -> TrapSeedRecord | None: ...
    def insert_trap(self, trap: TrapRecord) -> bool:
        """False (nothing written) if the caller or the trap number is taken."""

    def update_trap(self, trap: TrapRecord) -> bool:
        """Replace the trap row of `trap.caller`; False if there is none."""

    def get_trap(self, caller: bytes) -> TrapRecord | None: ...
    def open_traps(self, limit: int) -> list[TrapRecord]:
        """Traps whose answer is not revealed yet, by n."""

    def trap_counts(self) -> dict[str, int]:
        """Traps per model (all time; models with none are absent)."""

    # -- grants (issue 14 item 2) ----------------------------------------------------------------------
    def insert_grant(self, grant: GrantRecord) -> bool:
        """False (nothing written) if the caller, the grant number or the request hash is taken."""

    def update_grant(self, grant: GrantRecord) -> bool:
        """Set sent_at, task_id, reclaimed and closed_at of the grant row of `grant.caller`; False if none."""

    def get_grant(self, caller: bytes) -> GrantRecord | None: ...
    def grant_of_request(self, request_hash: bytes) -> GrantRecord | None: ...
    def open_grants(self, limit: int) -> list[GrantRecord]:
        """Grants not closed yet, by m."""

    def grant_used(self, requester: bytes) -> int:
        """Σ funded − reclaimed over the requester's grants: what its allowance has paid for."""

    def next_grant_number(self) -> int: ...

    def ai_job_counts(self) -> dict[str, int]:
        """AI jobs per model, whatever their status (models with none are absent)."""

    def jobs_of_caller(self, caller: bytes) -> list[Job]:
        """Every job the caller enqueued, by enqueue height, then tx index."""
