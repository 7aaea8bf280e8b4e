"""The soak's figures (tests/chaos/test_soak.py): least-squares slopes, the CSV and a hand-written SVG plot
(matplotlib is not a dependency of aicf)."""

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float  # seconds since the soak began
    rss_replica_a_bytes: int  # resident memory of each `aicf serve` replica
    rss_replica_b_bytes: int
    rss_providers_bytes: int  # the outside provider processes together
    oldest_queued_age_s: int  # getStatus queue.oldest_queued_age_s
    db_bytes: int  # the run's PostgreSQL database (pg_database_size)
    connections: int  # open connections to the run's database
    jobs_sent: int  # requests sent so far


SERIES: tuple[tuple[str, str, float], ...] = (  # field, label, divisor for the plot's unit
    ("rss_replica_a_bytes", "RSS of replica a (MiB)", float(1 << 20)),
    ("rss_replica_b_bytes", "RSS of replica b (MiB)", float(1 << 20)),
    ("rss_providers_bytes", "RSS of the two providers (MiB)", float(1 << 20)),
    ("oldest_queued_age_s", "oldest queued job (s)", 1.0),
    ("db_bytes", "database size (MiB)", float(1 << 20)),
    ("connections", "open PostgreSQL connections", 1.0),
)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ys over xs (0 for fewer than two distinct xs)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Sample)])
        writer.writeheader()
        for s in samples:
            writer.writerow(asdict(s))


def write_svg(samples: Sequence[Sample], path: Path, title: str) -> None:
    """Stacked line charts, one per series, over the soak's time."""
    width, height, pad, gap = 720, 150, 48, 28
    total = len(SERIES) * (height + gap) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>'
             f'<text x="{pad}" y="18" font-size="13">{title}</text>']  # fmt: skip
    t_end = max((s.t_s for s in samples), default=1.0) or 1.0
    for i, (name, label, unit) in enumerate(SERIES):
        top = 30 + i * (height + gap)
        values = [float(getattr(s, name)) / unit for s in samples]
        hi = max(values, default=1.0) * 1.1 or 1.0
        plot_w, plot_h = width - 2 * pad, height - 30
        points = " ".join(
            f"{pad + s.t_s / t_end * plot_w:.1f},{top + 16 + plot_h - v / hi * plot_h:.1f}"
            for s, v in zip(samples, values, strict=True)
        )
        parts.append(f'<text x="{pad}" y="{top + 10}">{label}: {min(values, default=0):.1f} .. '
                     f'{max(values, default=0):.1f}</text>')  # fmt: skip
        parts.append(f'<rect x="{pad}" y="{top + 16}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>')
        parts.append(f'<text x="8" y="{top + 20}">{hi:.0f}</text><text x="8" y="{top + 16 + plot_h}">0</text>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>')
    parts.append(f'<text x="{pad}" y="{total - 6}">time (s), 0 .. {t_end:.0f}</text></svg>')
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
