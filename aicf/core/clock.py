"""Time as an argument: every use-case reads a `Clock` once; tests move the fake one.

One protocol, two clocks (issue 16): `FakeClock` here (tests, replays: it says what it is told), and
`aicf.client.clock.WallClock`, the one reader of the system clock, which core may not import.
"""

from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Integer unix seconds."""

    def now_ms(self) -> int:
        """Integer unix milliseconds (latency is measured in ms, SPEC §3)."""


class FakeClock:
    """A clock that says what it is told: for tests and for replaying a recorded run. It moves only by
    `advance` and `set`, never by itself."""

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


FixedClock = FakeClock  # its name before issue 16, kept for code written against it
