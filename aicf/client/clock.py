"""The wall clock (issue 16): the one `aicf.core.clock.Clock` that reads the system's time. Core may not read
the time, so it lives with the clients (the provider agent, the RPC client, the CLIs) and the composition root
takes it from here; tests pass `aicf.core.clock.FakeClock` instead."""

import time


class WallClock:
    """The system clock, in integer seconds and milliseconds since the epoch."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000_000

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000
