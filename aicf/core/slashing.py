"""Stake, slashing, jail and bans (SPEC §9).

A slash takes `(bonded + unbonding) × bps // 10000`, bonded stake first, and moves it to the fund. At most
one slash per lease or proof; each carries evidence whose hash is its ledger reference. Jail times follow
the reason; three slashes within seven days ban the provider for good.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from aicf.core.errors import AicfError
from aicf.core.ids import evidence_hash
from aicf.core.params import SLASH_REASONS, Params
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
