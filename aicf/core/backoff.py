"""Reconnect backoff (issue 15: "every database connection reconnects with backoff, in every process").

One policy for every retry site (the coordinator's pass loop in `aicf up` and `aicf serve`, provider agents, the
requester's watch, the WebSocket client): after the n-th failure in a row the next try waits a delay drawn in
[ceiling/2, ceiling], where ceiling = min(cap_ms, base_ms * factor^(n-1)) ("equal jitter": the lower half is
kept so the waits never shrink while failures go on, the upper half spreads the processes that lost the same
server so they do not come back at the same instant). A success resets the count. Pure: the time (`now_ms`) and
the randomness (`draw(n)`, an integer in 0..n from the caller's RNG) are arguments.

Since the lower bound after n+1 failures equals the ceiling after n, every delay is at least the one before it
until the cap is reached, and no delay is above cap_ms, whatever the RNG draws.
"""

from collections.abc import Callable
from dataclasses import dataclass

from aicf.core.errors import AicfError


class BackoffError(AicfError, ValueError):
    """A backoff policy that cannot work, or an RNG draw outside the range it was asked for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    base_ms: int = 500  # the ceiling after the first failure
    cap_ms: int = 30_000  # no wait is longer
    factor: int = 2  # the ceiling's growth per failure

    def __post_init__(self) -> None:
        if not 1 <= self.base_ms <= self.cap_ms:
            raise BackoffError(f"backoff: need 1 <= base_ms <= cap_ms, got base {self.base_ms}, cap {self.cap_ms}")
        if self.factor < 1:
            raise BackoffError(f"backoff: factor must be at least 1, got {self.factor}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Where a retry site stands: failures in a row and when the next try may start (unix or monotonic ms)."""

    failures: int = 0
    retry_at_ms: int = 0


def ceiling_ms(policy: BackoffPolicy, failures: int) -> int:
    """The longest wait after `failures` failures in a row (0 for none)."""
    if failures < 1:
        return 0
    ceiling = policy.base_ms
    for _ in range(failures - 1):
        if ceiling >= policy.cap_ms:
            break
        ceiling *= policy.factor
    return min(ceiling, policy.cap_ms)


def failed(state: Backoff, policy: BackoffPolicy, now_ms: int, draw: Callable[[int], int]) -> Backoff:
    """One more failure at `now_ms`: the next try waits a delay in [ceiling/2, ceiling]."""
    failures = state.failures + 1
    ceiling = ceiling_ms(policy, failures)
    floor = ceiling - ceiling // 2
    spread = ceiling - floor
    jitter = draw(spread)
    if not 0 <= jitter <= spread:
        raise BackoffError(f"backoff: the RNG drew {jitter}, outside 0..{spread}")
    return Backoff(failures=failures, retry_at_ms=now_ms + floor + jitter)


def succeeded(state: Backoff) -> Backoff:
    """A try worked: the next failure starts from the base again."""
    return Backoff() if state.failures or state.retry_at_ms else state


def wait_ms(state: Backoff, now_ms: int) -> int:
    """How long until the next try may start (0: now)."""
    return max(0, state.retry_at_ms - now_ms)
