"""What every fuzz test here shares: its settings (the whole suite's count and the fast loop's) and the one check
shape, a decoder that returns a value or raises its own specific error and nothing else."""

from collections.abc import Callable
from typing import TypeVar

from budget import examples
from hypothesis import HealthCheck, settings

T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def fuzz_settings(*, full: int, fast: int) -> settings:
    """`full` examples in the whole suite (CI), `fast` in the fast loop; no example database (the inputs are cheap
    to find again) and every health check off (the strategies draw large, filtered inputs on purpose)."""
    return settings(
        max_examples=examples(full, fast), deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


def outcome(decode: Callable[[], T], error: type[E]) -> T | E:
    """What `decode()` returned, or the `error` it raised; any other exception escapes and fails the test."""
    try:
        return decode()
    except error as exc:
        return exc
