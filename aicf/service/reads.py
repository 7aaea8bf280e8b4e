"""Read-side use-cases for the API and the CLI (SPEC §12, §13): views assembled from one store transaction.

Nothing here writes. Every figure is computed from stored records with the same core rules the coordinator
uses (QoS windows, p95), so what an operator reads is what the matcher and the verifier see.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cbor2

from aicf.core.assignment import effective_unit_rate
from aicf.core.capacity import QueueLimits, job_budget_ms, queue_limits
from aicf.core.chain import Job, Transition
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import FUND, TREASURY
from aicf.core.outages import Outage
from aicf.core.params import Params
from aicf.core.pricing import budget_throttled
from aicf.core.qos import availability_bps, p95_ms, window_slots
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
from aicf.service.decisions import whole_decision
from aicf.service.operator_ops import params_for_epoch
from aicf.store.interface import META_FINAL_HEIGHT, META_PRICE_BPS, Store, Tx, read_transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderView:
    provider: Provider
    live_leases: int
    proofs_accepted: int  # in the QoS window
    slashes: int
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    availability_bps: int


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStory:
    """A job's whole story (aicf job ID): receipt, decisions, lease attempts, proofs, result, payout."""

    job: Job
    transitions: tuple[Transition, ...]
    decisions: tuple[DecisionRecord, ...]
    leases: tuple[LeaseRecord, ...]
    proofs: tuple[ProofRecord, ...]
    result: ResultRecord | None
    payout: Payout | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    now: int
    head_height: int
    finalized_height: int
    current_epoch: int
    last_settled_epoch: int | None
    job_counts: dict[JobStatus, int]
    oldest_queued_age_s: int
    treasury: int
    fund: int
    price_bps: int
    throttled: bool
    cap_use_bps: int
    recent_slashes: tuple[SlashRecord, ...]
    latest_seq: int
    assignments_total: int  # leases ever granted
    retries_total: int  # leases that ended without an accepted proof (the job went back to the queue or failed)
    verdicts: dict[str, int]  # stored proofs by verdict
    outages: tuple[Outage, ...] = ()  # every credited coordinator outage, oldest first (aicf.core.outages)
    slash_totals: dict[str, tuple[int, int]]  # every slash by reason: (count, µANM)
    params: Params  # in force in the head's epoch (the params file with the on-chain changes applied so far)


def provider_view(
    tx: Tx, provider: Provider, now: int, params: Params, live: int, outages: Sequence[Outage] | None = None
) -> ProviderView:
    """The provider's row with its QoS; heartbeat slots that overlap a coordinator outage are not judged
    (`outages`: those of the QoS window, read here when not given)."""
    if outages is None:
        outages = tx.outages_since(now - params.qos_window_s)
    since = now - params.qos_window_s
    latencies = sorted(tx.accepted_latencies_since(provider.provider_id, since))
    first, last = window_slots(now, provider.registered_at, params)
    slots = tx.heartbeat_slots(provider.provider_id, first, last)
    interval = params.heartbeat_interval_s
    return ProviderView(
        provider=provider,
        live_leases=live,
        proofs_accepted=len(latencies),
        slashes=len(tx.slashes_of(provider.provider_id)),
        latency_p50_ms=latencies[(len(latencies) - 1) // 2] if latencies else None,
        latency_p95_ms=p95_ms(latencies) if latencies else None,
        availability_bps=availability_bps((s * interval for s in slots), now, provider.registered_at, params, outages),
    )


def list_providers(store: Store, now: int, params: Params, after: bytes | None, limit: int) -> list[ProviderView]:
    with read_transaction(store) as tx:
        counts = tx.live_lease_counts()
        rows = [p for p in tx.providers() if after is None or p.provider_id > after][:limit]
        outages = tx.outages_since(now - params.qos_window_s)
        return [provider_view(tx, p, now, params, counts.get(p.provider_id, 0), outages) for p in rows]


def get_provider(store: Store, pid: bytes, now: int, params: Params) -> ProviderView | None:
    with read_transaction(store) as tx:
        provider = tx.get_provider(pid)
        if provider is None:
            return None
        return provider_view(tx, provider, now, params, tx.live_lease_counts().get(pid, 0))


def get_provider_record(store: Store, pid: bytes) -> Provider | None:
    with read_transaction(store) as tx:
        return tx.get_provider(pid)


def list_jobs(store: Store, statuses: Sequence[JobStatus], after: bytes | None, limit: int) -> list[Job]:
    with read_transaction(store) as tx:
        return tx.list_jobs(statuses, after, limit)


def list_jobs_with_providers(
    store: Store, statuses: Sequence[JobStatus], after: bytes | None, limit: int
) -> list[tuple[Job, bytes | None]]:
    """Jobs, each with the provider of its latest lease (the one working on it, or the one that proved it);
    None while the job waits for a lease (PENDING, QUEUED) or was never leased. One lease lookup per page."""
    with store.transaction() as tx:
        jobs = tx.list_jobs(statuses, after, limit)
        leases = tx.leases_of_tasks([j.task_id for j in jobs if j.status not in UNHELD])
    return [(job, latest_provider(leases.get(job.task_id, []))) for job in jobs]


UNHELD: Final = frozenset({JobStatus.PENDING, JobStatus.QUEUED})  # no provider holds these jobs


def latest_provider(leases: Sequence[LeaseRecord]) -> bytes | None:
    return max(leases, key=lambda lease: lease.attempt).provider_id if leases else None


def job_story(store: Store, task_id: bytes) -> JobStory | None:
    with read_transaction(store) as tx:
        job = tx.get_job(task_id)
        if job is None:
            return None
        leases = tuple(tx.leases_of_task(task_id))
        accepted = tx.accepted_proof_of(task_id)
        return JobStory(
            job=job,
            transitions=tuple(tx.transitions_of(task_id)),
            decisions=tuple(whole_decision(tx, d) for d in tx.decisions_of(task_id)),
            leases=leases,
            proofs=(accepted,) if accepted is not None else (),
            result=tx.get_result(task_id),
            payout=tx.payout_of_task(task_id),
        )


def get_result(store: Store, task_id: bytes) -> ResultRecord | None:
    with read_transaction(store) as tx:
        return tx.get_result(task_id)


def get_balances(store: Store, accounts: Sequence[str]) -> dict[str, int]:
    with read_transaction(store) as tx:
        return tx.balances(accounts)


def get_epoch(store: Store, epoch: int) -> tuple[BatchRecord, list[Payout]] | None:
    with read_transaction(store) as tx:
        batch = tx.get_batch(epoch)
        if batch is None:
            return None
        return batch, tx.payouts_of_epoch(epoch)


def status(store: Store, now: int, base: Params) -> Status:
    """The coordinator's state at the stored head, judged by the params in force in the head's epoch: `base` (the
    node's params file) with the on-chain params changes effective by then, as settlement and matching use them."""
    with read_transaction(store) as tx:
        head = tx.head_block()
        params = params_for_epoch(tx, base, head.epoch if head is not None else 0)
        counts = tx.job_counts()
        first = tx.oldest_queued_height()
        oldest = 0
        if first is not None and head is not None:
            block = tx.block_at(first)
            oldest = max(0, now - block.time) if block is not None else 0
        leases = tx.lease_counts()
        balances = tx.balances([TREASURY, FUND])
        price = tx.get_meta(META_PRICE_BPS) or params.price_initial_bps
        last = tx.last_batch_epoch()
        final = tx.get_meta(META_FINAL_HEIGHT)
        units_open = sum(r.units_mu for r in tx.unsettled_results_through(head.height if head is not None else -1))
        return Status(
            now=now,
            head_height=head.height if head is not None else -1,
            finalized_height=-1 if final is None else final,
            current_epoch=head.epoch if head is not None else 0,
            last_settled_epoch=last,
            job_counts=counts,
            oldest_queued_age_s=oldest,
            treasury=balances[TREASURY],
            fund=balances[FUND],
            price_bps=price,
            throttled=budget_throttled(balances[TREASURY], price, params),
            cap_use_bps=units_open * 10_000 // params.gamma_mu,
            recent_slashes=tuple(tx.recent_slashes(20)),
            latest_seq=tx.latest_event_seq(),
            verdicts=tx.proof_verdict_counts(),
            slash_totals=tx.slash_totals(),
            assignments_total=sum(leases.values()),
            retries_total=sum(n for st, n in leases.items() if st not in (LeaseStatus.LIVE, LeaseStatus.PROVED)),
            outages=tuple(tx.outages_since(-1)),
            params=params,
        )


# -- operator alarms (issue 17): queues against the declared capacity, providers against their job budget ------
ALARM_KINDS: Final = ("ai", "quantum")  # always reported, zero until used
OPEN_SCAN: Final = 1000  # open jobs read per status check: a queue deeper than this alarms anyway


@dataclass(frozen=True, slots=True, kw_only=True)
class KindQueue:
    kind: str
    depth: int  # QUEUED jobs of the kind (counted up to OPEN_SCAN)
    oldest_age_s: int  # now minus the enqueue block time of the oldest QUEUED job of the kind; 0 if none
    capacity_mu_per_day: int  # Σ unit rates of the ACTIVE providers serving the kind
    limits: QueueLimits


def queues_by_kind(store: Store, now: int, params: Params) -> list[KindQueue]:
    """Each kind's queue depth and oldest age beside the limits its providers' declared capacity sets."""
    with store.transaction() as tx:
        queued = tx.list_jobs([JobStatus.QUEUED], None, OPEN_SCAN)
        providers = [p for p in tx.providers() if p.status is ProviderStatus.ACTIVE]
        kinds = sorted(set(ALARM_KINDS) | {j.kind for j in queued})
        firsts = {k: min((j.enqueue_height for j in queued if j.kind == k), default=None) for k in kinds}
        times = {k: block.time for k, h in firsts.items() if h is not None and (block := tx.block_at(h)) is not None}
    out: list[KindQueue] = []
    for kind in kinds:
        jobs = [j for j in queued if j.kind == kind]
        capacity = sum(
            effective_unit_rate(p.unit_burst_mu, p.unit_rate_mu_per_day, params).rate_mu_per_day
            for p in providers
            if kind in p.kinds
        )
        mean = sum(j.max_units_mu for j in jobs) // len(jobs) if jobs else 0
        out.append(
            KindQueue(
                kind=kind,
                depth=len(jobs),
                oldest_age_s=max(0, now - times[kind]) if kind in times else 0,
                capacity_mu_per_day=capacity,
                limits=queue_limits(capacity, mean),
            )
        )
    return out


def runtime_budget_ms(job: Job, params: Params) -> int:
    """An AI job's max_runtime_ms; a quantum job, which names none, has its lease's lifetime."""
    if job.kind != "ai":
        return params.lease_ttl_s * 1000
    request = cbor2.loads(job.payload) if job.payload else None
    value = request.get("max_runtime_ms") if isinstance(request, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else params.max_runtime_ms


def provider_job_budgets(store: Store, params: Params) -> dict[bytes, int]:
    """Each provider's job budget (aicf.core.capacity.job_budget_ms) over the open jobs it could serve."""
    with store.transaction() as tx:
        open_jobs = tx.list_jobs([JobStatus.QUEUED, JobStatus.LEASED, JobStatus.SUBMITTED], None, OPEN_SCAN)
        providers = tx.providers()
    budgets = [(j, runtime_budget_ms(j, params)) for j in open_jobs]
    return {
        p.provider_id: job_budget_ms(
            [b for j, b in budgets if j.kind in p.kinds and (j.kind != "ai" or not p.models or j.model in p.models)],
            params.max_runtime_ms,
        )
        for p in providers
    }
