"""The last hour of `/metrics` snapshots, and the dashboard's charts drawn from it (aicf.transports.charts).

The coordinator offers a snapshot every pass (`History.offer`); one is kept per SAMPLE_S, WINDOW_S worth
(360 samples). Everything is in memory: a restart starts the hour again, Prometheus keeps the long history.
Each chart is a pure function of the samples, so the dashboard and `aicf report` show the same figure.
"""

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aicf.core.jobs import JobStatus
from aicf.transports.charts import Bar, Scale, Series, bar_chart, line_chart
from aicf.transports.metrics import EpochMetrics, MetricsSnapshot

SAMPLE_S: Final = 10
WINDOW_S: Final = 3600


@dataclass(frozen=True, slots=True)
class Sample:
    time: int
    snapshot: MetricsSnapshot


class History:
    """Thread-safe: the coordinator's loop offers, the API threads read."""

    def __init__(self, sample_s: int = SAMPLE_S, window_s: int = WINDOW_S) -> None:
        self.sample_s, self.window_s = sample_s, window_s
        self._samples: deque[Sample] = deque(maxlen=window_s // sample_s + 1)
        self._lock = threading.Lock()

    def due(self, now: int) -> bool:
        with self._lock:
            return not self._samples or now - self._samples[-1].time >= self.sample_s

    def offer(self, now: int, snapshot: Callable[[], MetricsSnapshot]) -> bool:
        """Take a sample at `now` if one is due (`snapshot` is called only then); True if taken."""
        if not self.due(now):
            return False
        taken = Sample(now, snapshot())
        with self._lock:
            self._samples.append(taken)
        return True

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)


def _rate_series(name: str, samples: Sequence[Sample], total: Callable[[MetricsSnapshot], int]) -> Series:
    """Per-second rate between consecutive samples, in thousandths (milli-jobs/s) so it stays an integer."""
    points = []
    for a, b in pairwise(samples):
        dt = b.time - a.time
        if dt > 0:
            points.append((b.time, max(0, total(b.snapshot) - total(a.snapshot)) * 1000 // dt))
    return Series(name, tuple(points))


def _count(*statuses: JobStatus) -> Callable[[MetricsSnapshot], int]:
    return lambda s: sum(s.jobs_by_status.get(st, 0) for st in statuses)


def jobs_rate_chart(samples: Sequence[Sample], t0: int, t1: int) -> str:
    """Jobs/s by the state they reached: enqueued (any job seen), leased (assignments), verified, settled,
    failed (FAILED or REJECTED)."""
    series = [
        _rate_series("enqueued", samples, lambda s: sum(s.jobs_by_status.values())),
        _rate_series("leased", samples, lambda s: s.assignments_total),
        _rate_series("verified", samples, _count(JobStatus.VERIFIED, JobStatus.SETTLED)),
        _rate_series("settled", samples, _count(JobStatus.SETTLED)),
        _rate_series("failed", samples, _count(JobStatus.FAILED, JobStatus.REJECTED)),
    ]
    return line_chart("jobs/s by state", series, t0=t0, t1=t1, scale=Scale(1000, 2, "/s"))


def _kinds(samples: Sequence[Sample]) -> list[str]:
    return sorted({q.kind for s in samples for q in s.snapshot.queues_by_kind})


def queue_depth_chart(samples: Sequence[Sample], t0: int, t1: int) -> str:
    series: list[Series] = []
    for kind in _kinds(samples):
        rows = [(s.time, q) for s in samples for q in s.snapshot.queues_by_kind if q.kind == kind]
        series.append(Series(f"{kind} queued", tuple((t, q.depth) for t, q in rows)))
        series.append(Series(f"{kind} limit", tuple((t, q.depth_limit) for t, q in rows), dashed=True))
    return line_chart("queue depth by kind (jobs)", series, t0=t0, t1=t1)


def queue_age_chart(samples: Sequence[Sample], t0: int, t1: int) -> str:
    series: list[Series] = []
    for kind in _kinds(samples):
        rows = [(s.time, q) for s in samples for q in s.snapshot.queues_by_kind if q.kind == kind]
        series.append(Series(f"{kind} oldest", tuple((t, q.oldest_age_s) for t, q in rows)))
        series.append(Series(f"{kind} limit", tuple((t, q.age_limit_s) for t, q in rows), dashed=True))
    return line_chart("oldest queued job by kind", series, t0=t0, t1=t1, scale=Scale(unit=" s"))


def latency_chart(samples: Sequence[Sample], t0: int, t1: int) -> str:
    ids = sorted({p.provider_id for s in samples for p in s.snapshot.providers})
    series: list[Series] = []
    for pid in ids:
        rows = [(s.time, p) for s in samples for p in s.snapshot.providers if p.provider_id == pid]
        short = "0x" + pid.hex()[:6]
        series.append(Series(f"{short} p50", tuple((t, p.latency_p50_ms) for t, p in rows)))
        series.append(Series(f"{short} p95", tuple((t, p.latency_p95_ms) for t, p in rows)))
    return line_chart("lease-to-proof latency per provider", series, t0=t0, t1=t1, scale=Scale(unit=" ms"))


def _epochs(samples: Sequence[Sample]) -> list[EpochMetrics]:
    """Every epoch any sample of the hour carried (the latest figures of each), oldest first."""
    seen: dict[int, EpochMetrics] = {}
    for s in samples:
        for e in s.snapshot.epochs:
            seen[e.epoch] = e
    return [seen[k] for k in sorted(seen)]


def payouts_chart(samples: Sequence[Sample]) -> str:
    bars = [Bar(str(e.epoch), (e.provider, e.miner, e.fund), f"cap {e.cap_use_bps // 100}%") for e in _epochs(samples)]
    return bar_chart(
        "epoch payouts by share (bar) and cap use (above)",
        ("provider", "miner", "fund"),
        bars[-20:],
        scale=Scale(1_000_000, 0, " ANM"),
    )


def slashes_chart(samples: Sequence[Sample], t0: int, t1: int) -> str:
    reasons = sorted({r.value for s in samples for r, n in s.snapshot.slashes_by_reason.items() if n})
    series = [Series("all reasons", tuple((s.time, sum(s.snapshot.slashes_by_reason.values())) for s in samples))]
    for reason in reasons:
        by = tuple(
            (s.time, sum(n for r, n in s.snapshot.slashes_by_reason.items() if r.value == reason)) for s in samples
        )
        series.append(Series(reason, by))
    return line_chart("slashes since start, by reason", series, t0=t0, t1=t1)


CHARTS: Final = ("jobs", "queue-depth", "queue-age", "latency", "payouts", "slashes")


def render_chart(name: str, samples: Sequence[Sample], now: int, window_s: int = WINDOW_S) -> str:
    """The chart `name` (one of CHARTS) over [now - window_s, now]. Raises KeyError for an unknown name."""
    t0 = now - window_s
    kept = [s for s in samples if s.time >= t0]
    drawers: dict[str, Callable[[], str]] = {
        "jobs": lambda: jobs_rate_chart(kept, t0, now),
        "queue-depth": lambda: queue_depth_chart(kept, t0, now),
        "queue-age": lambda: queue_age_chart(kept, t0, now),
        "latency": lambda: latency_chart(kept, t0, now),
        "payouts": lambda: payouts_chart(kept),
        "slashes": lambda: slashes_chart(kept, t0, now),
    }
    return drawers[name]()


SVG_TYPE: Final = "image/svg+xml"


def chart_routes(history: History, now: Callable[[], int]) -> list[Route]:
    """`GET /charts/` lists the charts; `GET /charts/<name>.svg` draws one over the last hour, never cached."""

    def index(_: Request) -> Response:
        return JSONResponse({"charts": [f"{name}.svg" for name in CHARTS], "window_s": history.window_s})

    def chart(request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in CHARTS:
            return JSONResponse({"error": f"no chart {name!r}; one of {', '.join(CHARTS)}"}, status_code=404)
        svg = render_chart(name, history.samples(), now(), history.window_s)
        return Response(svg, media_type=SVG_TYPE, headers={"cache-control": "no-store"})

    return [Route("/charts/", index, methods=["GET"]), Route("/charts/{name}.svg", chart, methods=["GET"])]
