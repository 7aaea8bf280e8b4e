"""aicf.core.outages: time the coordinator could not act is credited, never charged (issue 15)."""

from hypothesis import given
from hypothesis import strategies as st

from aicf.core.outages import (
    OUTAGE_THRESHOLD_S,
    Outage,
    credited_expiry,
    credited_heartbeat_at,
    credited_s,
    detect_outage,
    excluded_slots,
    is_slot_excluded,
    live_share_bps,
    outage_threshold_s,
)
from aicf.core.params import Params, params_from_toml
from aicf.core.qos import availability_bps

T = 1_700_000_000
P = Params()


def test_a_gap_above_the_threshold_is_an_outage_and_one_at_it_is_not() -> None:
    assert detect_outage(T, T + OUTAGE_THRESHOLD_S) is None
    assert detect_outage(T, T + OUTAGE_THRESHOLD_S + 1) == Outage(T, T + OUTAGE_THRESHOLD_S + 1)
    assert detect_outage(None, T) is None  # a new store has no last pass: nothing to credit
    assert detect_outage(T, T - 100) is None  # a clock that went backwards is no outage


def test_the_threshold_is_one_heartbeat_interval_when_that_is_shorter_than_ten_seconds() -> None:
    assert outage_threshold_s(P) == OUTAGE_THRESHOLD_S == 10  # SPEC's 20 s slots
    fast = params_from_toml("heartbeat_interval_s = 3\n")
    assert outage_threshold_s(fast) == 3
    assert detect_outage(T, T + 4, outage_threshold_s(fast)) == Outage(T, T + 4)  # a quick restart, credited
    # so the slots it overlapped are not held against a provider that heartbeats in every other one
    beats = [t for t in range(T, T + 300, 3) if not T + 30 <= t < T + 36]
    assert availability_bps(beats, T + 300, T, fast) < fast.min_availability_bps
    assert availability_bps(beats, T + 300, T, fast, [Outage(T + 29, T + 36)]) >= fast.min_availability_bps


def test_a_lease_live_at_the_stop_lives_the_gap_longer_and_a_dead_one_stays_dead() -> None:
    outage = Outage(T, T + 300)
    assert credited_expiry(T + 20, outage) == T + 320
    assert credited_expiry(T, outage) == T  # had run out at the instant the coordinator stopped acting
    assert credited_expiry(T - 5, outage) == T - 5


def test_only_the_part_of_an_outage_after_the_grant_is_credited_to_the_runtime_budget() -> None:
    outages = [Outage(T, T + 100), Outage(T + 500, T + 530)]
    assert credited_s(outages, T - 50, T + 1000) == 130
    assert credited_s(outages, T + 40, T + 1000) == 90
    assert credited_s(outages, T + 40, T + 510) == 70  # an outage still going on counts up to `until`
    assert credited_s(outages, T + 600, T + 1000) == 0


def test_slots_overlapping_an_outage_are_excluded_and_their_neighbours_are_not() -> None:
    interval = 20
    outage = Outage(T + 5, T + 65)  # T is a multiple of 20: slots T//20 .. (T+64)//20
    first = T // interval
    assert excluded_slots(first - 2, first + 10, interval, [outage]) == frozenset(range(first, first + 4))
    assert not is_slot_excluded(first - 1, interval, [outage])
    assert is_slot_excluded(first + 3, interval, [outage])
    assert not is_slot_excluded(first + 4, interval, [outage])
    assert excluded_slots(first + 1, first + 2, interval, [outage]) == frozenset({first + 1, first + 2})


def test_a_provider_silent_only_during_an_outage_keeps_full_availability() -> None:
    interval = P.heartbeat_interval_s
    end = T + P.qos_window_s
    outage = Outage(T + 1000, T + 1600)  # ten minutes down
    beats = [t for t in range(T, end + 1, interval) if not outage.started_at <= t < outage.ended_at]
    assert availability_bps(beats, end, T - 10_000, P) < 9000  # charged without the credit
    assert availability_bps(beats, end, T - 10_000, P, [outage]) == 10_000
    missing_after = [t for t in beats if t < T + 2000 or t >= T + 2100]  # a real miss after the restart
    assert availability_bps(missing_after, end, T - 10_000, P, [outage]) < 10_000


def test_live_share_judges_only_the_slots_outside_outages() -> None:
    assert live_share_bps([1, 2], 0, 9, frozenset(range(2, 10))) == 5_000  # slot 2 is excluded even if live
    assert live_share_bps([], 0, 9, frozenset(range(10))) == 10_000  # nothing judged: nobody's fault
    assert live_share_bps(range(10), 0, 9, frozenset()) == 10_000


def test_a_heartbeat_does_not_age_while_the_coordinator_could_not_receive_one() -> None:
    outages = [Outage(T + 10, T + 310)]
    assert credited_heartbeat_at(T, outages) == T + 300
    assert credited_heartbeat_at(T + 400, outages) == T + 400
    assert credited_heartbeat_at(None, outages) is None


@given(
    expires=st.integers(T - 1000, T + 1000),
    start=st.integers(T - 1000, T + 1000),
    gap=st.integers(OUTAGE_THRESHOLD_S + 1, 100_000),
)
def test_a_credit_never_shortens_a_lease_and_adds_at_most_the_gap(expires: int, start: int, gap: int) -> None:
    credited = credited_expiry(expires, Outage(start, start + gap))
    assert credited - expires in (0, gap)
