"""What the node's /metrics serves (docs/METRICS.md): one snapshot of the store's reads, the coordinator's trap
counters, the trap budget, the epochs settled last and the collateral near expiry, judged by the params in force."""

from collections.abc import Callable

from aicf.core.clock import Clock
from aicf.core.params import Params
from aicf.core.slashing import SlashReason
from aicf.service import operator_ops, reads
from aicf.service.collateral import CollateralWatch
from aicf.service.coordinator import Coordinator
from aicf.service.operator_ops import params_in_force
from aicf.store.interface import Store
from aicf.transports.health import Readiness
from aicf.transports.metrics import (
    CollateralExpiry,
    EpochMetrics,
    KindQueueMetrics,
    MetricsSnapshot,
    ProviderMetrics,
    TrapShortfallMetrics,
)


def metrics_snapshot(
    store: Store,
    params: Params,
    clock: Clock,
    coord: Coordinator,
    collateral: CollateralWatch,
    readiness: Callable[[], Readiness],
) -> MetricsSnapshot:
    """The snapshot at `clock`'s now; `readiness` (what /readyz answers) is read after the store's reads."""
    now = clock.now()
    status = reads.status(store, now, params)  # judged by the params in force at its head
    providers = reads.list_providers(store, now, status.params, None, 1000)
    budgets = reads.provider_job_budgets(store, status.params)
    queues = reads.queues_by_kind(store, now, status.params)
    epochs: list[EpochMetrics] = []
    last = status.last_settled_epoch
    for epoch in range(last if last is not None else -1, max(-1, (last or 0) - 8), -1):
        found = reads.get_epoch(store, epoch)
        if found is None:
            continue
        batch, payouts = found
        epochs.append(
            EpochMetrics(
                epoch=epoch,
                units_mu=batch.units_mu,
                payouts=batch.payouts,
                carried=batch.carried,
                provider=sum(p.provider for p in payouts),
                miner=sum(p.miner for p in payouts),
                fund=sum(p.fund for p in payouts),
                cap_use_bps=batch.units_mu * 10_000 // params_in_force(store, params, epoch).gamma_mu,
                price_bps=batch.price_bps,
            )
        )
    return MetricsSnapshot(
        readiness=readiness(),
        jobs_by_status=status.job_counts,
        oldest_queued_age_s=status.oldest_queued_age_s,
        assignments_total=status.assignments_total,
        retries_total=status.retries_total,
        budget_throttle_active=status.throttled,
        providers=[
            ProviderMetrics(
                provider_id=v.provider.provider_id,
                status=v.provider.status,
                live_leases=v.live_leases,
                proofs_accepted=v.proofs_accepted,
                proofs_rejected=v.slashes,
                latency_p50_ms=v.latency_p50_ms or 0,
                latency_p95_ms=v.latency_p95_ms or 0,
                availability_bps=v.availability_bps,
                bonded_stake=v.provider.bonded,
                job_budget_ms=budgets.get(v.provider.provider_id, 0),
            )
            for v in providers
        ],
        queues_by_kind=[
            KindQueueMetrics(
                kind=q.kind,
                depth=q.depth,
                depth_limit=q.limits.depth,
                oldest_age_s=q.oldest_age_s,
                age_limit_s=q.limits.age_s,
            )
            for q in queues
        ],
        trap_shortfalls=[
            TrapShortfallMetrics(model=m, count=t.count, escrow=t.escrow)
            for m, t in sorted(coord.trap_shortfalls.items())
        ],
        trap_throttles=[
            TrapShortfallMetrics(model=m, count=t.count, escrow=t.escrow)
            for m, t in sorted(coord.trap_throttles.items())
        ],
        trap_budget_available=operator_ops.trap_budget_left(store, params),
        rejections_by_code={code: n for code, n in status.verdicts.items() if code != "ACCEPT"},
        slashes_by_reason={SlashReason(r): n for r, (n, _) in status.slash_totals.items()},
        slashed_by_reason={SlashReason(r): amount for r, (_, amount) in status.slash_totals.items()},
        current_epoch=status.current_epoch,
        last_settled_epoch=last if last is not None else -1,
        cap_use_bps=status.cap_use_bps,
        epochs=epochs,
        outages_total=len(status.outages),
        outage_credited_s=sum(o.gap_s for o in status.outages),
        treasury_balance=status.treasury,
        fund_balance=status.fund,
        collateral=[  # SPEC §13 collateral near expiry: seconds left at this scrape's `now`
            CollateralExpiry(kind="vendor_root", item=e.what, expires_in_s=e.not_after - now)
            for e in coord.trust.root_expiries()
        ]
        + [  # and the TEE collateral and certificates the latest accepted evidence of each kind relied on
            CollateralExpiry(kind="tee_collateral", item=e.what, expires_in_s=e.not_after - now)
            for e in collateral.expiries()
        ],
    )
