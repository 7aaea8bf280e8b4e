"""QoS measured by the coordinator, never reported by the provider (SPEC §3).

Availability: time is cut into slots of one heartbeat interval, aligned to multiples of the interval
(`slot = t // interval`). The window is the `qos_window_s` ending at proof acceptance, clipped to the
provider's registration; it covers the slots from `start // interval` to `end // interval` inclusive. A slot
is live when a valid heartbeat arrived in it. `availability_bps = live_slots × 10000 // slots`, where the
slot still open at `end` is judged only once it is live.

Latency: the p95 (nearest rank) of (proof received − lease granted) in ms over the provider's accepted
proofs in the same window, the proof being accepted included.
"""

from collections.abc import Iterable, Sequence

from aicf.core.outages import Outage, excluded_slots
from aicf.core.params import Params
from aicf.core.types import BPS


def window_slots(end: int, registered_at: int, params: Params) -> tuple[int, int]:
    """The first and last slot index (inclusive) of the QoS window ending at `end`."""
    interval = params.heartbeat_interval_s
    start = max(end - params.qos_window_s, registered_at)
    return start // interval, max(start, end) // interval


def availability_bps(
    heartbeats: Iterable[int], end: int, registered_at: int, params: Params, outages: Sequence[Outage] = ()
) -> int:
    """live_slots × 10000 // slots over the window ending at `end` (heartbeat times in unix seconds).

    The slot `end` falls in is still open: it counts when a heartbeat already arrived in it and is not held
    against the provider otherwise, so a provider heartbeating on time is not rated down for the moment of the
    measurement (one slot in 181 would cost it the ≥ 9990 tier). Slots that overlap a coordinator outage are
    not judged at all (aicf.core.outages).
    """
    first, last = window_slots(end, registered_at, params)
    interval = params.heartbeat_interval_s
    excluded = excluded_slots(first, last, interval, outages)
    live = {t // interval for t in heartbeats if first <= t // interval <= last} - excluded
    judged = last - first - sum(1 for s in excluded if s < last) + (1 if last in live else 0)
    return len(live) * BPS // judged if judged > 0 else BPS


def p95_ms(latencies_ms: Iterable[int]) -> int:
    """Nearest-rank 95th percentile; 0 for no samples (a first proof is measured by itself)."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return 0
    rank = (95 * len(ordered) + 99) // 100  # ceil(0.95 × n), integer-only
    return ordered[rank - 1]


def qos_chronic(window_availabilities: Iterable[int], params: Params) -> bool:
    """QOS_CHRONIC: availability below the minimum in `qos_chronic_windows` consecutive aligned windows.

    `window_availabilities` is the availability of each full window aligned to genesis, oldest first.
    """
    run = 0
    for value in window_availabilities:
        run = run + 1 if value < params.min_availability_bps else 0
        if run >= params.qos_chronic_windows:
            return True
    return False
