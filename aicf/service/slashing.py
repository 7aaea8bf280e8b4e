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
from aicf.core.registry import ProviderStatus, check_provider_move
from aicf.core.slashing import SlashReason, evidence_ref, is_banned, jail_until, slash_amount
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
    amount = slash_amount(provider.bonded, provider.unbonding, reason, params)
    ref = evidence_ref(evidence)
    until = jail_until(reason, now, params)
    record = SlashRecord(
        evidence_hash=ref,
        provider_id=provider.provider_id,
        reason=reason.value,
        subject=subject,
        task_id=task_id,
        amount=amount.total,
        evidence=canonical_cbor(dict(evidence)),
        time=now,
        jailed_until=until,
    )
    if not tx.insert_slash(record):
        return 0
    if amount.total > 0:
        tx.post(
            [
                Posting(
                    debit=stake_account(provider.provider_id),
                    credit=FUND,
                    amount=MicroAnm(amount.total),
                    ref_kind="slash",
                    ref=ref,
                )
            ],
            None,
            now,
        )
    times = [s.time for s in tx.slashes_of(provider.provider_id)]
    banned = until is None or is_banned(times, now, params)
    to = ProviderStatus.BANNED if banned else ProviderStatus.JAILED
    updated = replace(
        provider,
        bonded=provider.bonded - amount.from_bonded,
        unbonding=provider.unbonding - amount.from_unbonding,
        jailed_until=0 if banned else until,
        updated_at=now,
    )
    if provider.status is not to and provider.status is not ProviderStatus.BANNED:
        updated = replace(updated, status=check_provider_move(provider.provider_id, provider.status, to))
        tx.record_provider_move(provider.provider_id, provider.status, to, f"slashed: {reason.value}", now)
        if to is ProviderStatus.BANNED and updated.bonded > 0:  # issue 15: what is left unbonds, still
            # slashable for unbonding_s; the sweep then releases it to provider:<id>, where a claim takes it
            updated = replace(updated, bonded=0, unbonding=updated.unbonding + updated.bonded,
                              unbonding_until=now + params.unbonding_s)  # fmt: skip
    elif provider.status is ProviderStatus.JAILED and until is not None:
        updated = replace(updated, jailed_until=max(until, provider.jailed_until or 0))
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
