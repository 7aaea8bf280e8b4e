"""Small SVG charts of the coordinator's last hour, written here (no library, no CDN: the page works offline).

Pure functions: data in, SVG text out. The coordinator serves them at `/charts/<name>.svg` (the dashboard shows
those), and `aicf report --out DIR` saves the same responses as files. Values are integers; a `Scale` turns
them into the unit printed on the axis (µANM → ANM, bps → %, ms → s), and nothing is recomputed from them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final

WIDTH: Final = 560
HEIGHT: Final = 220
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 44, 28  # margins: y labels left, legend on top, time labels below
PALETTE: Final = ("#4aa3ff", "#3fb950", "#d29922", "#f85149", "#a371f7", "#39c5cf", "#db61a2", "#8593a3")
LIMIT_COLOR: Final = "#f85149"
STYLE: Final = (
    "text{font:11px system-ui,'DejaVu Sans',sans-serif;fill:#8593a3}"
    ".title{font-size:13px;font-weight:600;fill:#d8dee6}.grid{stroke:#2a3542;stroke-width:1}"
)


@dataclass(frozen=True, slots=True)
class Scale:
    """How an integer value reads on the axis: value / divisor, with `digits` decimals and a unit suffix."""

    divisor: int = 1
    digits: int = 0
    unit: str = ""

    def label(self, value: int) -> str:
        if self.divisor == 1:
            return f"{value:,}{self.unit}"
        sign, (whole, frac) = ("-" if value < 0 else ""), divmod(abs(value), self.divisor)
        if self.digits == 0:
            return f"{sign}{whole:,}{self.unit}"
        shown = frac * 10**self.digits // self.divisor
        return f"{sign}{whole:,}.{str(shown).rjust(self.digits, '0')}{self.unit}"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[tuple[int, int], ...]  # (unix seconds, value), ascending time
    dashed: bool = False  # a limit or threshold line


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # the category under the bar, e.g. an epoch number
    parts: tuple[int, ...]  # stacked from the bottom, in the order of `part_names`
    note: str = ""  # printed above the bar


def nice_max(value: int) -> int:
    """A round top for the axis: 4 × the smallest step of 1, 2 or 5 × 10^k with 4 steps reaching `value`, so the
    five grid lines (0, ¼, ½, ¾, top) fall on whole numbers: 0 -> 4, 17 -> 20, 300 -> 400."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if 4 * m * step >= value:
                return 4 * m * step
        step *= 10


def _header(title: str, legend: Sequence[tuple[str, str, bool]]) -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<style>{STYLE}</style>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#171e26"/>',
        f'<text class="title" x="{LEFT}" y="16">{escape(title)}</text>',
    ]
    x = LEFT
    for name, color, dashed in legend:
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        out.append(f'<line x1="{x}" y1="30" x2="{x + 14}" y2="30" stroke="{color}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + 18}" y="34" data-series="{escape(name)}">{escape(name)}</text>')
        x += 26 + 7 * len(name)
    return out


def _y_axis(top: int, scale: Scale) -> list[str]:
    out = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = top * i // 4
        y = HEIGHT - BOTTOM - plot_h * i // 4
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{escape(scale.label(value))}</text>')
    return out


def line_chart(title: str, series: Sequence[Series], *, t0: int, t1: int, scale: Scale = Scale()) -> str:
    """Lines over [t0, t1] (unix seconds), x labelled in UTC; a series without points is listed, not drawn."""
    colors = [LIMIT_COLOR if s.dashed else PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    out = _header(title, [(s.name, c, s.dashed) for s, c in zip(series, colors, strict=True)])
    solid = max((v for s in series if not s.dashed for _, v in s.points), default=0)
    limit = max((v for s in series if s.dashed for _, v in s.points), default=0)
    top = nice_max(max(solid, min(limit, 4 * max(1, solid))))  # a far-away limit runs along the top edge
    out += _y_axis(top, scale)
    span, plot_w, plot_h = max(1, t1 - t0), WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for i in range(4):
        t = t0 + span * i // 3
        x = LEFT + plot_w * i // 3
        anchor = "start" if i == 0 else "end" if i == 3 else "middle"
        stamp = datetime.fromtimestamp(t, tz=UTC).strftime("%H:%M")
        out.append(f'<text x="{x}" y="{HEIGHT - 8}" text-anchor="{anchor}">{stamp}</text>')
    for s, color in zip(series, colors, strict=True):
        pts = [
            (LEFT + plot_w * (t - t0) // span, HEIGHT - BOTTOM - plot_h * min(top, max(0, v)) // top)
            for t, v in s.points
            if t0 <= t <= t1
        ]
        if not pts:
            continue
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        if len(pts) == 1:
            out.append(f'<circle cx="{pts[0][0]}" cy="{pts[0][1]}" r="2.5" fill="{color}"/>')
        path = " ".join(f"{x},{y}" for x, y in pts)
        out.append(
            f'<polyline data-series="{escape(s.name)}" points="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(title: str, part_names: Sequence[str], bars: Sequence[Bar], *, scale: Scale = Scale()) -> str:
    """Stacked bars, one per category, oldest left; each bar's `note` above it."""
    out = _header(title, [(n, PALETTE[i % len(PALETTE)], False) for i, n in enumerate(part_names)])
    top = nice_max(max((sum(b.parts) for b in bars), default=0))
    out += _y_axis(top, scale)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w // max(1, len(bars))
    width = max(4, slot * 3 // 5)
    for i, bar in enumerate(bars):
        x = LEFT + slot * i + (slot - width) // 2
        base = HEIGHT - BOTTOM
        for j, part in enumerate(bar.parts):
            h = plot_h * max(0, part) // top
            out.append(
                f'<rect data-bar="{escape(bar.label)}" data-part="{escape(part_names[j])}" x="{x}" y="{base - h}" '
                f'width="{width}" height="{h}" fill="{PALETTE[j % len(PALETTE)]}"/>'
            )
            base -= h
        middle = x + width // 2
        out.append(f'<text x="{middle}" y="{HEIGHT - 8}" text-anchor="middle">{escape(bar.label)}</text>')
        if bar.note:
            out.append(f'<text x="{middle}" y="{base - 4}" text-anchor="middle">{escape(bar.note)}</text>')
    if not bars:
        out.append(f'<text x="{LEFT + plot_w // 2}" y="{TOP + plot_h // 2}" text-anchor="middle">no data yet</text>')
    out.append("</svg>")
    return "\n".join(out)
