"""Stake, slashing, jail and bans (SPEC §9).

A slash takes `(bonded + unbonding) × bps // 10000`, bonded stake first, and moves it to the fund. At most
one slash per lease or proof; each carries evidence whose hash is its ledger reference. Jail times follow
the reason; three slashes within seven days ban the provider for good.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from aicf.core.errors import AicfError
from aicf.core.ids import evidence_hash
from aicf.core.params import SLASH_REASONS, Params
from aicf.core.registry import ProviderStatus, check_provider_move
from aicf.core.types import BPS


class SlashReason(StrEnum):
    MISSED_LEASE = "MISSED_LEASE"
    BAD_ATTESTATION = "BAD_ATTESTATION"
    TRAP_FAILURE = "TRAP_FAILURE"
    QOS_CHRONIC = "QOS_CHRONIC"
    FRAUD = "FRAUD"


if tuple(r.value for r in SlashReason) != SLASH_REASONS:  # pragma: no cover - a code edit broke it
    raise ImportError("SlashReason and params.SLASH_REASONS disagree")


class UnknownSlashReasonError(AicfError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"unknown slash reason {reason!r}; known: {', '.join(SLASH_REASONS)}")
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class SlashAmount:
    from_bonded: int
    from_unbonding: int

    @property
    def total(self) -> int:
        return self.from_bonded + self.from_unbonding


def slash_amount(bonded: int, unbonding: int, reason: SlashReason, params: Params) -> SlashAmount:
    """(bonded + unbonding) × bps // 10000, taken from bonded stake first, then from unbonding stake."""
    bps = params.slash_bps.get(reason.value)
    if bps is None:
        raise UnknownSlashReasonError(reason.value)
    total = (bonded + unbonding) * bps // BPS
    from_bonded = min(total, bonded)
    return SlashAmount(from_bonded=from_bonded, from_unbonding=total - from_bonded)


@dataclass(frozen=True, slots=True, kw_only=True)
class StakeState:
    """The part of a provider's row a slash changes."""

    status: ProviderStatus
    bonded: int
    unbonding: int
    jailed_until: int | None
    unbonding_until: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SlashOutcome:
    amount: SlashAmount  # what moves from stake:<id> to the fund
    jailed_until: int | None  # the slash record's: when this slash's jail ends; None for a permanent one
    state: StakeState  # the provider's after the slash


def slash_outcome(
    provider_id: bytes,
    state: StakeState,
    reason: SlashReason,
    now: int,
    earlier_slash_times: Iterable[int],
    params: Params,
) -> SlashOutcome:
    """A provider's stake and status after a slash for `reason` at `now` (SPEC §9):
    1. the amount: `slash_amount`, bonded stake first;
    2. the jail: `jail_until`; a permanent jail, or the ban_slashes-th slash within ban_window_s (this one
       counted with `earlier_slash_times`), bans;
    3. a move to JAILED or BANNED unless already there (a BANNED provider stays BANNED); a ban unbonds what is
       left bonded, still slashable for unbonding_s; a JAILED provider slashed again keeps the later jail end.
    Raises UnknownSlashReasonError, and IllegalProviderMoveError for a move the provider table refuses."""
    amount = slash_amount(state.bonded, state.unbonding, reason, params)
    until = jail_until(reason, now, params)
    banned = until is None or is_banned([*earlier_slash_times, now], now, params)
    to = ProviderStatus.BANNED if banned else ProviderStatus.JAILED
    after = replace(
        state,
        bonded=state.bonded - amount.from_bonded,
        unbonding=state.unbonding - amount.from_unbonding,
        jailed_until=0 if banned else until,
    )
    if state.status is not to and state.status is not ProviderStatus.BANNED:
        after = replace(after, status=check_provider_move(provider_id, state.status, to))
        if to is ProviderStatus.BANNED and after.bonded > 0:
            after = replace(
                after, bonded=0, unbonding=after.unbonding + after.bonded, unbonding_until=now + params.unbonding_s
            )
    elif state.status is ProviderStatus.JAILED and until is not None:
        after = replace(after, jailed_until=max(until, state.jailed_until or 0))
    return SlashOutcome(amount=amount, jailed_until=until, state=after)


def jail_until(reason: SlashReason, now: int, params: Params) -> int | None:
    """When the jail ends; None for a permanent jail (a jail time of 0 in params)."""
    seconds = params.jail_s[reason.value]
    return None if seconds == 0 else now + seconds


def is_banned(slash_times: Iterable[int], now: int, params: Params) -> bool:
    """Three slashes within seven days → BANNED (counting the slash at `now` if it is in the list)."""
    recent = [t for t in slash_times if now - params.ban_window_s < t <= now]
    return len(recent) >= params.ban_slashes


def slash_evidence(
    *,
    reason: SlashReason,
    task_id: bytes,
    subject_kind: str,  # "lease_id" or "proof_id"
    subject_id: bytes,
    record: Mapping[str, object],  # the envelope or the signed lease grant
    height: int,
    heartbeat_root: bytes | None = None,
    reference_output: bytes | None = None,
) -> dict[str, object]:
    """The evidence map of SPEC §9; MISSED_LEASE and QOS_CHRONIC add the root of the heartbeat log, an audit
    mismatch (issue 14) the reference output the coordinator's re-execution gave."""
    evidence: dict[str, object] = {
        "reason": reason.value,
        "task_id": task_id,
        subject_kind: subject_id,
        "record": dict(record),
        "height": height,
    }
    if heartbeat_root is not None:
        evidence["heartbeat_root"] = heartbeat_root
    if reference_output is not None:
        evidence["reference_output"] = reference_output
    return evidence


def evidence_ref(evidence: Mapping[str, object]) -> bytes:
    return evidence_hash(evidence)
