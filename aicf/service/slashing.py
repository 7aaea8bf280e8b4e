"""Slashing (SPEC §9): the one step every misbehaviour ends in, whoever found it (a rejected proof, an expired
lease, a chronic QoS run)."""

import logging
from collections.abc import Mapping
from dataclasses import replace

from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseEnd
from aicf.core.ledger import FUND, Posting, stake_account
from aicf.core.records import Provider, SlashRecord
from aicf.core.slashing import SlashReason, StakeState, evidence_ref, slash_outcome
from aicf.core.types import MicroAnm
from aicf.service.context import Work
from aicf.service.steps import end_lease_attempt, event, update_provider

log = logging.getLogger("aicf.coordinator")


def slash(
    w: Work,
    provider: Provider,
    reason: SlashReason,
    task_id: bytes,
    subject: bytes,
    evidence: Mapping[str, object],
) -> int:
    """Slash at most once per lease or proof; jail or ban; revoke the provider's live leases."""
    tx, now, params = w.tx, w.now, w.params
    before = StakeState(
        status=provider.status,
        bonded=provider.bonded,
        unbonding=provider.unbonding,
        jailed_until=provider.jailed_until,
        unbonding_until=provider.unbonding_until,
    )
    earlier = [s.time for s in tx.slashes_of(provider.provider_id)]
    outcome = slash_outcome(provider.provider_id, before, reason, now, earlier, params)
    amount, after = outcome.amount, outcome.state
    ref = evidence_ref(evidence)
    record = SlashRecord(
        evidence_hash=ref,
        provider_id=provider.provider_id,
        reason=reason.value,
        subject=subject,
        task_id=task_id,
        amount=amount.total,
        evidence=canonical_cbor(dict(evidence)),
        time=now,
        jailed_until=outcome.jailed_until,
    )
    if not tx.insert_slash(record):
        return 0
    if amount.total > 0:
        posting = Posting(
            debit=stake_account(provider.provider_id),
            credit=FUND,
            amount=MicroAnm(amount.total),
            ref_kind="slash",
            ref=ref,
        )
        tx.post([posting], None, now)
    if after.status is not provider.status:
        tx.record_provider_move(provider.provider_id, provider.status, after.status, f"slashed: {reason.value}", now)
    updated = replace(
        provider,
        status=after.status,
        bonded=after.bonded,
        unbonding=after.unbonding,
        jailed_until=after.jailed_until,
        unbonding_until=after.unbonding_until,
        updated_at=now,
    )
    update_provider(tx, updated, provider.status)
    for lease in tx.live_leases_of(provider.provider_id):
        job = tx.get_job(lease.task_id)
        if job is not None and job.status is JobStatus.LEASED:
            end_lease_attempt(w, job, lease, LeaseEnd.REVOKED, now)
    event(
        tx,
        "providerSlashed",
        {
            "provider_id": provider.provider_id,
            "reason": reason.value,
            "amount": amount.total,
            "task_id": task_id,
            "evidence_hash": ref,
            "status": updated.status.value,
        },
        now,
    )
    log.warning("provider 0x%s slashed %d µANM for %s", provider.provider_id.hex()[:12], amount.total, reason)
    return amount.total
