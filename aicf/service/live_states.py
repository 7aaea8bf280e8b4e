"""Providers' live state for a matcher pass (SPEC §5, §6; aicf.service.matching): heartbeat credit and
availability over the QoS window, live leases and the unit bucket, computed per provider a draw picks."""

from collections.abc import Callable, Iterator, Mapping

from aicf.core.assignment import LiveState, effective_unit_rate, refill_bucket
from aicf.core.outages import credited_heartbeat_at
from aicf.core.qos import availability_bps, window_slots
from aicf.core.records import Provider
from aicf.service.context import Work


def live_state(w: Work, provider: Provider, counts: Mapping[bytes, int]) -> LiveState:
    params, now = w.params, w.now
    rate = effective_unit_rate(provider.unit_burst_mu, provider.unit_rate_mu_per_day, params)
    first, last = window_slots(now, provider.registered_at, params)
    slots = w.tx.heartbeat_slots(provider.provider_id, first, last)
    interval = params.heartbeat_interval_s
    outages = w.tx.outages_since(now - params.qos_window_s)  # nobody's fault (aicf.core.outages)
    return LiveState(
        provider_id=provider.provider_id,
        last_heartbeat_at=credited_heartbeat_at(provider.last_heartbeat_at, outages),
        availability_bps=availability_bps((s * interval for s in slots), now, provider.registered_at, params, outages),
        # the provider's own limit (at most SPEC's max_leases) counts as reaching SPEC's
        live_leases=count
        if (count := counts.get(provider.provider_id, 0)) < provider.max_leases
        else params.max_leases,
        bucket_tokens_mu=refill_bucket(provider.bucket_tokens_mu, provider.bucket_at, now, params, rate),
        unit_rate=rate,
    )


class LiveStates(Mapping[bytes, LiveState]):
    """Providers' live states for one matcher pass, computed only for the providers a draw actually picks
    (each costs a heartbeat-window query) and kept for the rest of the pass."""

    def __init__(self, compute: Callable[[bytes], LiveState]) -> None:
        self._compute = compute
        self._states: dict[bytes, LiveState] = {}

    def __getitem__(self, pid: bytes) -> LiveState:
        if pid not in self._states:
            self._states[pid] = self._compute(pid)
        return self._states[pid]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def update(self, pid: bytes, state: LiveState) -> None:
        self._states[pid] = state
