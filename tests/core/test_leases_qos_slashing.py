"""Leases (SPEC §7), QoS measurement (SPEC §3) and slashing (SPEC §9) as pure rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.ids import lease_id
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseEnd, end_attempt, extend, grant, is_live
from aicf.core.params import Params
from aicf.core.qos import availability_bps, p95_ms, qos_chronic, window_slots
from aicf.core.registry import IllegalProviderMoveError, ProviderStatus, check_provider_move
from aicf.core.slashing import SlashReason, is_banned, jail_until, slash_amount

P = Params.default()
TASK, PROV = b"\x01" * 32, b"\x02" * 32


def test_lease_id_is_spec_hash_of_task_provider_attempt() -> None:
    lease = grant(TASK, PROV, 2, now=1000, params=P)
    assert lease.lease_id == lease_id(TASK, PROV, 2)
    assert lease.expires_at == 1000 + P.lease_ttl_s


def test_lease_is_dead_at_its_expiry_instant() -> None:
    lease = grant(TASK, PROV, 0, now=1000, params=P)
    assert is_live(lease, 1000 + P.lease_ttl_s - 1)
    assert not is_live(lease, 1000 + P.lease_ttl_s)


def test_heartbeat_extends_a_live_lease_but_never_revives_or_shortens() -> None:
    lease = grant(TASK, PROV, 0, now=1000, params=P)
    assert extend(lease, 1030, P).expires_at == 1030 + P.lease_ttl_s
    assert extend(lease, 1000 + P.lease_ttl_s, P) == lease  # already expired: unchanged
    later = extend(lease, 1050, P)
    assert extend(later, 1040, P).expires_at == later.expires_at


@pytest.mark.parametrize(("attempt", "delay"), [(0, 5), (1, 10), (2, 20), (6, 300), (10, 300)])
def test_expired_lease_requeues_with_exponential_backoff_capped_at_300s(attempt: int, delay: int) -> None:
    params = Params(max_attempts=20)
    outcome = end_attempt(grant(TASK, PROV, attempt, 0, params), LeaseEnd.EXPIRED, 60, params)
    assert outcome.status is JobStatus.QUEUED
    assert outcome.not_before == 60 + delay
    assert outcome.strike
    assert not outcome.exclude_provider


def test_third_expired_attempt_fails_the_job() -> None:
    outcome = end_attempt(grant(TASK, PROV, 2, 0, P), LeaseEnd.EXPIRED, 60, P)
    assert outcome.status is JobStatus.FAILED
    assert outcome.attempts_used == 3


def test_rejected_proof_on_last_attempt_rejects_the_job() -> None:
    assert end_attempt(grant(TASK, PROV, 2, 0, P), LeaseEnd.REJECTED, 60, P).status is JobStatus.REJECTED
    assert end_attempt(grant(TASK, PROV, 1, 0, P), LeaseEnd.REJECTED, 60, P).status is JobStatus.QUEUED


def test_release_excludes_the_provider_without_a_strike() -> None:
    outcome = end_attempt(grant(TASK, PROV, 0, 0, P), LeaseEnd.RELEASED, 30, P)
    assert outcome.exclude_provider
    assert not outcome.strike
    assert outcome.attempts_used == 1


def test_jail_revocation_does_not_use_the_attempt() -> None:
    outcome = end_attempt(grant(TASK, PROV, 2, 0, P), LeaseEnd.REVOKED, 30, P)
    assert outcome.status is JobStatus.QUEUED
    assert outcome.attempts_used == 2
    assert outcome.not_before == 30


def test_availability_counts_live_slots_in_the_window() -> None:
    end = 36_000
    first, last = window_slots(end, 0, P)
    assert last - first + 1 == 181  # 3600 s of 20 s slots, both ends inclusive
    every_slot = [s * 20 for s in range(first, last + 1)]
    assert availability_bps(every_slot, end, 0, P) == 10000
    assert availability_bps(every_slot[::2], end, 0, P) == 91 * 10000 // 181


def test_availability_window_is_clipped_to_registration() -> None:
    end, registered = 36_000, 36_000 - 100
    beats = list(range(registered, end + 1, 20))
    assert availability_bps(beats, end, registered, P) == 10000


def test_two_heartbeats_in_one_slot_count_once() -> None:
    assert availability_bps([1000, 1001, 1019], 1019, 1000, P) == 10000
    assert availability_bps([1000, 1001], 1059, 1000, P) == 5000  # slots 50 live, 51 missed, 52 still open


def test_the_open_slot_counts_only_once_a_heartbeat_arrived_in_it() -> None:
    end = 36_010  # 10 s into slot 1800, no heartbeat in it yet
    on_time = [s * 20 + 5 for s in range((end - 3600) // 20, end // 20)]
    assert availability_bps(on_time, end, 0, P) == 10000
    assert availability_bps([*on_time, end], end, 0, P) == 10000
    assert availability_bps(on_time[1:], end, 0, P) == 179 * 10000 // 180


def test_p95_uses_nearest_rank() -> None:
    assert p95_ms([]) == 0
    assert p95_ms([7]) == 7
    assert p95_ms(range(1, 101)) == 95
    assert p95_ms(range(1, 21)) == 19


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=200))
def test_p95_is_an_observed_value_at_or_above_95_percent_of_samples(samples: list[int]) -> None:
    value = p95_ms(samples)
    assert value in samples
    assert sum(1 for s in samples if s <= value) * 100 >= 95 * len(samples)


def test_qos_chronic_needs_three_consecutive_low_windows() -> None:
    assert not qos_chronic([9800, 9800, 9950, 9800, 9800], P)
    assert qos_chronic([9950, 9800, 9899, 9000], P)


def test_slash_takes_bps_of_bonded_plus_unbonding_bonded_first() -> None:
    amount = slash_amount(1_000_000, 500_000, SlashReason.BAD_ATTESTATION, P)
    assert amount.total == 150_000
    assert (amount.from_bonded, amount.from_unbonding) == (150_000, 0)
    small = slash_amount(10, 1_000_000, SlashReason.FRAUD, P)
    assert (small.from_bonded, small.from_unbonding) == (10, 500_005 - 10)


@given(st.integers(0, 2**62), st.integers(0, 2**62), st.sampled_from(list(SlashReason)))
def test_slash_never_exceeds_the_stake(bonded: int, unbonding: int, reason: SlashReason) -> None:
    amount = slash_amount(bonded, unbonding, reason, P)
    assert 0 <= amount.from_bonded <= bonded
    assert 0 <= amount.from_unbonding <= unbonding


def test_jail_times_follow_spec_and_fraud_is_permanent() -> None:
    assert jail_until(SlashReason.MISSED_LEASE, 100, P) == 100 + 3600
    assert jail_until(SlashReason.BAD_ATTESTATION, 100, P) == 100 + 86400
    assert jail_until(SlashReason.QOS_CHRONIC, 100, P) == 100 + 6 * 3600
    assert jail_until(SlashReason.FRAUD, 100, P) is None


def test_three_slashes_within_seven_days_ban() -> None:
    week = 7 * 86400
    assert is_banned([0, 10, week - 1], week - 1, P)
    assert not is_banned([0, 10, week], week, P)  # the first fell out of the window


def test_banned_provider_cannot_come_back() -> None:
    with pytest.raises(IllegalProviderMoveError, match="BANNED -> ACTIVE"):
        check_provider_move(PROV, ProviderStatus.BANNED, ProviderStatus.ACTIVE)
    assert check_provider_move(PROV, ProviderStatus.JAILED, ProviderStatus.ACTIVE) is ProviderStatus.ACTIVE
