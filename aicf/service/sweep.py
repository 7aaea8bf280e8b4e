"""Sweeps (SPEC §7, §9): expire leases past their TTL or runtime budget (strike, MISSED_LEASE slash, requeue or
fail), slash chronic QoS, end jails that are over, release unbonded stake, and resend stranded inclusions."""

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace

from aicf.core.chain import Job
from aicf.core.encoding import tagged_hash
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseEnd, LeaseStatus
from aicf.core.ledger import Posting, provider_account, stake_account
from aicf.core.merkle import merkle_root
from aicf.core.outages import Outage, credited_s, excluded_slots, live_share_bps
from aicf.core.params import Params
from aicf.core.qos import qos_chronic
from aicf.core.records import LeaseRecord, ProofRecord
from aicf.core.registry import ProviderStatus, check_provider_move
from aicf.core.slashing import SlashReason, slash_evidence
from aicf.core.types import MicroAnm
from aicf.service.context import Context, Work, unit_of_work
from aicf.service.outages import credit_outage
from aicf.service.slashing import slash
from aicf.service.steps import (
    decode_request,
    end_lease_attempt,
    heartbeat_root,
    require_provider,
    send_inclusion,
    update_provider,
)
from aicf.store.interface import META_EVM_MONEY, META_GENESIS_TIME

log = logging.getLogger("aicf.coordinator")

QOS_WINDOW_TAG = "aicf/qoswindow/v1"  # names the window that ends a QOS_CHRONIC run: one slash per such window


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepReport:
    expired: int = 0
    unjailed: int = 0
    released_stake: int = 0
    resent: int = 0  # accepted proofs sent to the chain again (see `resend_inclusions`)


def sweep(ctx: Context, limit: int = 500) -> SweepReport:
    """Expire leases past their TTL (strike, MISSED_LEASE slash, requeue or fail), end jails that are
    over, and release unbonded stake whose unbonding period has passed."""
    expired = unjailed = released = 0
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        credit_outage(w, record_pass=True)  # before any lease is judged: an outage is nobody's fault (issue 15)
        head = tx.head_block()
        height = head.height if head is not None else 0
        for listed, ended_at in _leases_to_expire(w, limit):
            # Read again: a slash earlier in this loop jails its provider, which revokes its other leases.
            lease, job = tx.get_lease(listed.lease_id), tx.get_job(listed.task_id)
            if lease is None or lease.status is not LeaseStatus.LIVE or job is None:
                continue
            if job.status is not JobStatus.LEASED:
                continue
            end_lease_attempt(w, job, lease, LeaseEnd.EXPIRED, ended_at)
            provider = require_provider(tx, lease.provider_id)
            update_provider(tx, replace(provider, strikes=provider.strikes + 1, updated_at=now), provider.status)
            provider = require_provider(tx, lease.provider_id)
            evidence = slash_evidence(
                reason=SlashReason.MISSED_LEASE,
                task_id=lease.task_id,
                subject_kind="lease_id",
                subject_id=lease.lease_id,
                record={**lease.grant_map(), "grant_sig": lease.grant_sig},
                height=height,
                heartbeat_root=heartbeat_root(tx, provider, now, ctx.params),
            )
            slash(w, provider, SlashReason.MISSED_LEASE, lease.task_id, lease.lease_id, evidence)
            expired += 1
        genesis = _genesis_time(w)
        evaluated = _qos_chronic_pass(w, genesis, height) if genesis is not None else {}
        mirrored = tx.get_meta(META_EVM_MONEY) == 1  # an EVM contract releases unbonding stake (its Withdrawn)
        for provider in tx.providers_due(now):
            changed = provider
            if provider.status is ProviderStatus.JAILED and provider.jailed_until and provider.jailed_until <= now:
                to = ProviderStatus.ACTIVE if provider.bonded > 0 else ProviderStatus.UNBONDING
                changed = replace(changed, status=check_provider_move(provider.provider_id, provider.status, to))
                changed = replace(changed, jailed_until=None)
                tx.record_provider_move(provider.provider_id, provider.status, to, "jail ended", now)
                unjailed += 1
            if changed.unbonding > 0 and changed.unbonding_until <= now and not mirrored:
                amount = changed.unbonding
                tx.post(
                    [
                        Posting(
                            debit=stake_account(provider.provider_id),
                            credit=provider_account(provider.provider_id),
                            amount=MicroAnm(amount),
                            ref_kind="unbonded",
                            ref=provider.provider_id,
                        )
                    ],
                    None,
                    now,
                )
                changed = replace(changed, unbonding=0)
                released += amount
            if changed != provider:
                update_provider(tx, replace(changed, updated_at=now), provider.status)
        # read in the pass's transaction (one transaction per pass, issue 18); sent once it has committed
        stranded = tx.accepted_proofs_not_included(now - ctx.params.lease_ttl_s, limit)
        w.commit()
    ctx.caches.qos_evaluated.update(evaluated)  # only once committed: a pass rolled back is evaluated again
    resent = resend_inclusions(ctx, stranded)
    return SweepReport(expired=expired, unjailed=unjailed, released_stake=released, resent=resent)


def _genesis_time(w: Work) -> int | None:
    """The chain's genesis time: read until ingest has recorded it, then kept (it never changes once set)."""
    caches = w.ctx.caches
    if caches.genesis_time is None:
        caches.genesis_time = w.tx.get_meta(META_GENESIS_TIME)
    return caches.genesis_time


def resend_inclusions(ctx: Context, stranded: Sequence[ProofRecord]) -> int:
    """Send again the accepted proofs of SUBMITTED jobs that are still not on chain a lease TTL later
    (`stranded`: what the sweep's transaction read of them).

    The inclusion is sent after the acceptance commits, so a coordinator that stops between the two (or a
    chain that drops the transaction) would leave the job SUBMITTED for ever. Sending it twice is harmless:
    the first inclusion of a task wins and ingest refuses a second one."""
    for record in stranded:
        log.info("proof 0x%s of job 0x%s is not on chain yet: sending it again", record.proof_id.hex()[:12],
                 record.task_id.hex()[:12])  # fmt: skip
        send_inclusion(ctx, record)
    return len(stranded)


def _qos_chronic_pass(w: Work, genesis: int, height: int) -> dict[bytes, int]:
    """QOS_CHRONIC for the ACTIVE providers not yet evaluated in the window `now` is in; returns those
    evaluated, with that window, for the cache once the sweep commits.

    A verdict changes only when a window completes: the slots of complete windows are fixed (a late
    heartbeat from a replica whose clock lags could only add a slot, which never makes a run chronic), and
    the slash names its window, so `slash` refuses a second one. A provider that is not ACTIVE now is not
    remembered: it is evaluated when it becomes ACTIVE again in the same window (a jail that ends)."""
    p, window, tx = w.params, w.params.qos_window_s, w.tx
    current = (w.now - genesis) // window  # the window `now` is in, not complete yet
    first = current - p.qos_chronic_windows
    if first < 0:
        return {}
    evaluated = w.ctx.caches.qos_evaluated
    # a provider registered after the first window began is not judged on it (SPEC §9: all after registration)
    due = [pid for pid in tx.active_provider_ids(genesis + first * window) if evaluated.get(pid) != current]
    if not due:
        return {}
    interval = p.heartbeat_interval_s
    live = tx.heartbeat_slots_of(
        due, (genesis + first * window) // interval, (genesis + current * window - 1) // interval
    )
    outages = tx.outages_since(genesis + first * window)
    for pid in due:
        _qos_chronic(w, pid, live[pid], first, current, genesis, height, outages)
    return dict.fromkeys(due, current)


def _qos_chronic(
    w: Work,
    pid: bytes,
    live: Sequence[int],
    first: int,
    current: int,
    genesis: int,
    height: int,
    outages: Sequence[Outage] = (),
) -> bool:
    """QOS_CHRONIC (SPEC §9): availability below the minimum in the complete windows `first` .. `current` − 1
    aligned to genesis, all after registration (`_qos_chronic_pass` picks the providers, the windows, and reads
    `live`, their live slots in those windows, ascending). Slashed at most once per window that ends the run.
    Slots that overlap a coordinator outage are not judged (aicf.core.outages)."""
    p, interval, window = w.params, w.params.heartbeat_interval_s, w.params.qos_window_s
    values: list[int] = []
    slots: list[int] = []
    for index in range(first, current):
        lo, hi = (genesis + index * window) // interval, (genesis + (index + 1) * window - 1) // interval
        in_window = live[bisect_left(live, lo) : bisect_right(live, hi)]
        slots.extend(in_window)
        values.append(live_share_bps(in_window, lo, hi, excluded_slots(lo, hi, interval, outages)))
    if not qos_chronic(values, p):
        return False
    provider = require_provider(w.tx, pid)
    subject = tagged_hash(QOS_WINDOW_TAG, provider.provider_id, current - 1)
    evidence = slash_evidence(
        reason=SlashReason.QOS_CHRONIC,
        task_id=bytes(32),
        subject_kind="window_id",
        subject_id=subject,
        record={"provider_id": provider.provider_id, "first_window": first, "availability_bps": values},
        height=height,
        heartbeat_root=merkle_root(slot.to_bytes(8, "big") for slot in slots),
    )
    return slash(w, provider, SlashReason.QOS_CHRONIC, bytes(32), subject, evidence) > 0


def runtime_budget_s(params: Params, job: Job) -> int:
    """How long a lease may be kept alive by heartbeats: the job's own runtime cap (quantum: SPEC's largest
    max_runtime_ms) plus two TTLs of slack (a provider may queue its leases, or wait on a cancel).

    SPEC §7 has heartbeats extend every live lease; without this bound a holder that never answers (or
    answers with a drop, e.g. a replayed envelope) but keeps heartbeating would hold the job for ever and
    never be slashed."""
    runtime_ms = decode_request(job).get("max_runtime_ms")
    if not isinstance(runtime_ms, int) or isinstance(runtime_ms, bool):
        runtime_ms = params.max_runtime_ms
    return -(-runtime_ms // 1000) + 2 * params.lease_ttl_s


def _leases_to_expire(w: Work, limit: int) -> list[tuple[LeaseRecord, int]]:
    """LIVE leases past their expiry, then LIVE leases past their runtime budget, with when each ended."""
    tx, now = w.tx, w.now
    out: list[tuple[LeaseRecord, int]] = []
    seen: set[bytes] = set()
    for lease in tx.expired_leases(now, limit):
        job = tx.get_job(lease.task_id)
        if job is not None and job.status is JobStatus.LEASED and tx.get_provider(lease.provider_id) is not None:
            out.append((lease, lease.expires_at))
            seen.add(lease.lease_id)
    # a runtime budget is at least two TTLs: only leases granted that long ago can be overdue
    candidates = tx.live_leases_granted_by(now - 2 * w.params.lease_ttl_s, limit)
    outages = tx.outages_since(min(lease.granted_at for lease in candidates)) if candidates else []
    for lease in candidates:
        if lease.lease_id in seen:
            continue
        job = tx.get_job(lease.task_id)
        if job is None or job.status is not JobStatus.LEASED:
            continue
        # time the coordinator could not act is not charged to the budget (aicf.core.outages)
        overdue_at = lease.granted_at + runtime_budget_s(w.params, job) + credited_s(outages, lease.granted_at, now)
        if now >= overdue_at:
            out.append((lease, overdue_at))
    return out
