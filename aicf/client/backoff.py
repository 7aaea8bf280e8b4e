"""A retry site's backoff (aicf.core.backoff) with its clock and RNG: the one stateful piece every process uses
between a failed call to its database or coordinator and the next try."""

import random
import time
from collections.abc import Callable

from aicf.client.rpc import RpcError, RpcTransportError
from aicf.core.backoff import Backoff, BackoffPolicy, failed, succeeded, wait_ms

STORE_UNAVAILABLE_CODES = frozenset({-32030, -32031})  # the coordinator is up but its database is not (errors.py)


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def is_outage(exc: BaseException) -> bool:
    """The coordinator cannot be reached, or it answers that its database cannot: wait and try again."""
    return isinstance(exc, RpcTransportError) or (isinstance(exc, RpcError) and exc.code in STORE_UNAVAILABLE_CODES)


class Reconnect:
    """Failures in a row at one retry site and the wait before the next try (equal jitter, capped, reset by a
    success). `now_ms` is the site's clock, `rng` its randomness: tests pass a fake clock and a seeded RNG."""

    def __init__(
        self,
        policy: BackoffPolicy | None = None,
        *,
        now_ms: Callable[[], int] = monotonic_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy if policy is not None else BackoffPolicy()
        self._now_ms = now_ms
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - spreading retries, not a secret
        self.state = Backoff()

    @property
    def failures(self) -> int:
        return self.state.failures

    def failed(self) -> float:
        """Count a failure; returns the seconds to wait before the next try."""
        now = self._now_ms()
        self.state = failed(self.state, self.policy, now, lambda n: self._rng.randint(0, n))
        return wait_ms(self.state, now) / 1000

    def succeeded(self) -> None:
        self.state = succeeded(self.state)
