"""aicf.core.backoff: the one reconnect policy of every process (equal jitter, capped, reset by a success)."""

import random

import pytest

from aicf.client.backoff import Reconnect
from aicf.core.backoff import Backoff, BackoffError, BackoffPolicy, ceiling_ms, failed, succeeded, wait_ms

POLICY = BackoffPolicy(base_ms=500, cap_ms=8_000)


def low(n: int) -> int:
    return 0


def high(n: int) -> int:
    return n


def test_the_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [ceiling_ms(POLICY, n) for n in range(8)] == [0, 500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]
    assert ceiling_ms(POLICY, 10**6) == 8_000  # no huge power is built on a long outage


def test_each_wait_lies_between_half_the_ceiling_and_the_ceiling() -> None:
    state = Backoff()
    for n, ceiling in enumerate([500, 1_000, 2_000, 4_000, 8_000, 8_000], start=1):
        at_least = failed(state, POLICY, now_ms=10_000, draw=low)
        at_most = failed(state, POLICY, now_ms=10_000, draw=high)
        assert wait_ms(at_least, 10_000) == ceiling - ceiling // 2
        assert wait_ms(at_most, 10_000) == ceiling
        assert at_least.failures == n
        state = at_least


@pytest.mark.parametrize("seed", range(20))
def test_waits_never_shrink_while_failures_go_on_and_never_pass_the_cap(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - jitter, not a secret
    state, now, waits = Backoff(), 0, []
    for _ in range(12):
        state = failed(state, POLICY, now, lambda n: rng.randint(0, n))
        waits.append(wait_ms(state, now))
        now = state.retry_at_ms
    grow = [i for i, w in enumerate(waits) if ceiling_ms(POLICY, i + 1) < POLICY.cap_ms]
    assert all(waits[i] <= waits[i + 1] for i in grow)
    assert max(waits) <= POLICY.cap_ms
    assert waits[-1] >= POLICY.cap_ms // 2


def test_a_success_starts_again_from_the_base() -> None:
    state = Backoff()
    for _ in range(6):
        state = failed(state, POLICY, 0, high)
    assert wait_ms(state, 0) == 8_000
    state = succeeded(state)
    assert state == Backoff()
    assert wait_ms(failed(state, POLICY, 0, high), 0) == 500


def test_the_wait_is_counted_on_the_clock_passed_in() -> None:
    state = failed(Backoff(), POLICY, now_ms=1_000, draw=high)
    assert state.retry_at_ms == 1_500
    assert wait_ms(state, 1_200) == 300
    assert wait_ms(state, 2_000) == 0


def test_a_draw_outside_its_range_is_refused() -> None:
    with pytest.raises(BackoffError, match=r"drew 251, outside 0\.\.250"):
        failed(Backoff(), POLICY, 0, lambda n: n + 1)
    with pytest.raises(BackoffError, match="outside"):
        failed(Backoff(), POLICY, 0, lambda n: -1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_ms": 0}, "base_ms"),
        ({"base_ms": 9_000, "cap_ms": 8_000}, "base_ms <= cap_ms"),
        ({"factor": 0}, "factor"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(BackoffError, match=match):
        BackoffPolicy(**kwargs)


def test_reconnect_reads_its_clock_and_rng_and_resets() -> None:
    now = [0]
    retry = Reconnect(POLICY, now_ms=lambda: now[0], rng=random.Random(3))  # noqa: S311
    waits = [retry.failed() for _ in range(7)]
    assert retry.failures == 7
    assert waits[:5] == sorted(waits[:5])  # growing until the cap (8 s), then anywhere in 4..8 s
    assert 0.25 <= waits[0] <= 0.5
    assert 4.0 <= waits[-1] <= 8.0
    retry.succeeded()
    assert retry.failures == 0
    assert retry.failed() <= 0.5
