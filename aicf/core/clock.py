"""Time as an argument: every use-case reads a `Clock` once; tests move a fake one."""

from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Integer unix seconds."""

    def now_ms(self) -> int:
        """Integer unix milliseconds (latency is measured in ms, SPEC §3)."""


class FixedClock:
    """A clock that says what it is told: for tests and for replaying a recorded run."""

    def __init__(self, now: int) -> None:
        self._now_ms = now * 1000

    def now(self) -> int:
        return self._now_ms // 1000

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: int = 0, *, ms: int = 0) -> int:
        self._now_ms += seconds * 1000 + ms
        return self.now()

    def set(self, now: int) -> None:
        self._now_ms = now * 1000
