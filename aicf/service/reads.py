"""Read-side use-cases for the API and the CLI (SPEC §12, §13): views assembled from one store transaction.

Nothing here writes. Every figure is computed from stored records with the same core rules the coordinator
uses (QoS windows, p95), so what an operator reads is what the matcher and the verifier see.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from aicf.core.chain import Job, Transition
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import FUND, TREASURY
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
from aicf.core.settlement import Payout
from aicf.service.decisions import whole_decision
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
    slash_totals: dict[str, tuple[int, int]]  # every slash by reason: (count, µANM)


def provider_view(tx: Tx, provider: Provider, now: int, params: Params, live: int) -> ProviderView:
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
        availability_bps=availability_bps((s * interval for s in slots), now, provider.registered_at, params),
    )


def list_providers(store: Store, now: int, params: Params, after: bytes | None, limit: int) -> list[ProviderView]:
    with read_transaction(store) as tx:
        counts = tx.live_lease_counts()
        rows = [p for p in tx.providers() if after is None or p.provider_id > after][:limit]
        return [provider_view(tx, p, now, params, counts.get(p.provider_id, 0)) for p in rows]


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


def get_payout(store: Store, payout_id: bytes) -> tuple[Payout, BatchRecord] | None:
    """The payout with this id (scans its epoch's payouts: payout ids are H(epoch, task_id))."""
    with read_transaction(store) as tx:
        last = tx.last_batch_epoch()
        for epoch in range(last if last is not None else -1, -1, -1):
            for payout in tx.payouts_of_epoch(epoch):
                if payout.payout_id == payout_id:
                    batch = tx.get_batch(epoch)
                    return (payout, batch) if batch is not None else None
        return None


def status(store: Store, now: int, params: Params) -> Status:
    with read_transaction(store) as tx:
        head = tx.head_block()
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
        )
