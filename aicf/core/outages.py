"""Coordinator outages (issue 15): time the coordinator could not act is the operator's, not the providers'.

The coordinator records the instant of its last successful pass. A pass (or a provider's heartbeat or proof)
that finds more than `OUTAGE_THRESHOLD_S` since then knows the coordinator could not act in between (it was
stopped or killed, its database was unreachable, read-only or full) and credits that gap before anything else,
in the same transaction: every lease still live when the gap began lives `gap` seconds longer, the gap counts
toward no lease's runtime budget nor any proof's latency, and heartbeat slots that overlap it are left out of
availability (neither live nor missed). Only the gap is credited: a lease that runs out after the restart is
expired and slashed as usual. Time is always an argument (docs/SPEC.md §7, DECISIONS.md § Coordinator outages).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from aicf.core.params import Params
from aicf.core.types import BPS

# A pass runs about every second and a heartbeat every 20 s: ten seconds without a successful pass is not load,
# it is an outage. Shorter stalls are not credited (a lease's TTL, 60 s, absorbs them).
OUTAGE_THRESHOLD_S: Final = 10


def outage_threshold_s(params: Params) -> int:
    """The gap that is an outage on a chain: OUTAGE_THRESHOLD_S, or one heartbeat interval when that is shorter.
    A gap longer than a slot can cost a heartbeat slot; with 3 s slots a 9 s restart cost every provider three
    slots and, at `min_availability_bps` 9900, its eligibility for the next 300 slots (the chaos harness)."""
    return min(OUTAGE_THRESHOLD_S, params.heartbeat_interval_s)


@dataclass(frozen=True, slots=True)
class Outage:
    """The coordinator could not act from `started_at` (its last successful pass) to `ended_at`."""

    started_at: int
    ended_at: int

    @property
    def gap_s(self) -> int:
        return self.ended_at - self.started_at


def detect_outage(last_pass_at: int | None, now: int, threshold_s: int = OUTAGE_THRESHOLD_S) -> Outage | None:
    """The outage that ends at `now`, or None: no pass recorded yet (a new store), or a gap of at most the
    threshold. A clock that went backwards is no outage."""
    if last_pass_at is None or now - last_pass_at <= threshold_s:
        return None
    return Outage(started_at=last_pass_at, ended_at=now)


def credited_expiry(expires_at: int, outage: Outage) -> int:
    """A lease still live when the outage began lives `gap` longer; one that had already run out is not revived."""
    return expires_at + outage.gap_s if expires_at > outage.started_at else expires_at


def credited_s(outages: Iterable[Outage], since: int, until: int) -> int:
    """Seconds of `outages` that fall in [since, until): what a lease granted at `since` is not charged for."""
    return sum(max(0, min(o.ended_at, until) - max(o.started_at, since)) for o in outages)


def is_slot_excluded(slot: int, interval_s: int, outages: Sequence[Outage]) -> bool:
    """A heartbeat slot [slot × interval, (slot + 1) × interval) that overlaps an outage is not judged."""
    lo, hi = slot * interval_s, (slot + 1) * interval_s
    return any(o.started_at < hi and lo < o.ended_at for o in outages)


def excluded_slots(first: int, last: int, interval_s: int, outages: Sequence[Outage]) -> frozenset[int]:
    """The slots from `first` to `last` inclusive that overlap an outage."""
    out: set[int] = set()
    for o in outages:
        lo, hi = max(first, o.started_at // interval_s), min(last, (o.ended_at - 1) // interval_s)
        out.update(range(lo, hi + 1))
    return frozenset(out)


def live_share_bps(live: Iterable[int], first: int, last: int, excluded: frozenset[int]) -> int:
    """live × 10000 // judged over the slots `first`..`last` inclusive less the excluded ones (10000 when
    every slot is excluded: an outage is nobody's fault)."""
    judged = last - first + 1 - sum(1 for s in excluded if first <= s <= last)
    count = sum(1 for s in set(live) if first <= s <= last and s not in excluded)
    return count * BPS // judged if judged > 0 else BPS


def credited_heartbeat_at(last_heartbeat_at: int | None, outages: Iterable[Outage]) -> int | None:
    """A heartbeat's age does not grow while the coordinator could not receive one: the last heartbeat, moved
    on by the gap of every outage that began at or after it (the matcher's staleness check, SPEC §6)."""
    if last_heartbeat_at is None:
        return None
    return last_heartbeat_at + sum(o.gap_s for o in outages if o.started_at >= last_heartbeat_at)
