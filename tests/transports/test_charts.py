"""The dashboard's charts (aicf.transports.charts and .history): SVG that parses, the series it promises, rates
and limits computed from the snapshots, one sample per SAMPLE_S kept for an hour."""

import xml.etree.ElementTree as ET

import pytest

from aicf.core.jobs import JobStatus
from aicf.core.registry import ProviderStatus
from aicf.core.slashing import SlashReason
from aicf.transports.charts import BOTTOM, HEIGHT, TOP, Bar, Scale, Series, bar_chart, line_chart, nice_max
from aicf.transports.history import (
    CHARTS,
    SAMPLE_S,
    WINDOW_S,
    History,
    Sample,
    jobs_rate_chart,
    render_chart,
)
from aicf.transports.metrics import (
    EpochMetrics,
    KindQueueMetrics,
    MetricsSnapshot,
    ProviderMetrics,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1_767_225_600


def snapshot(step: int) -> MetricsSnapshot:
    """Step n of a steady fund: 3 jobs enqueued, 2 leased, 2 verified and settled per 10 s; a slash at step 3."""
    return MetricsSnapshot(
        jobs_by_status={JobStatus.QUEUED: 4 + step, JobStatus.SETTLED: 2 * step},
        assignments_total=2 * step,
        providers=[
            ProviderMetrics(
                provider_id=b"\xab" * 32,
                status=ProviderStatus.ACTIVE,
                live_leases=1,
                proofs_accepted=step,
                proofs_rejected=0,
                latency_p50_ms=900,
                latency_p95_ms=2400,
                availability_bps=10_000,
                bonded_stake=10**10,
                job_budget_ms=20_000,
            )
        ],
        slashes_by_reason={SlashReason.MISSED_LEASE: 1} if step >= 3 else {},
        epochs=[
            EpochMetrics(
                epoch=e,
                units_mu=1000,
                payouts=3,
                carried=0,
                provider=800_000,
                miner=150_000,
                fund=50_000,
                cap_use_bps=1250,
                price_bps=10_000,
            )
            for e in range(step // 3)
        ],
        queues_by_kind=[
            KindQueueMetrics(kind="quantum", depth=4 + step, depth_limit=17, oldest_age_s=12 * step, age_limit_s=300)
        ],
    )


def history(steps: int) -> list[Sample]:
    return [Sample(T0 + SAMPLE_S * n, snapshot(n)) for n in range(steps)]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == SVG + "svg"
    return root


def drawn(root: ET.Element) -> set[str]:
    return {el.attrib["data-series"] for el in root.iter(SVG + "polyline")}


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_is_svg_with_a_title_even_without_data(name: str) -> None:
    for samples in ([], history(12)):
        root = parse(render_chart(name, samples, T0 + 120))
        assert root.find(SVG + "text").text  # type: ignore[union-attr]


def test_jobs_rate_is_the_change_per_second_between_samples() -> None:
    root = parse(jobs_rate_chart(history(6), T0, T0 + 60))
    assert {"enqueued", "leased", "verified", "settled"} <= drawn(root)
    leased = next(el for el in root.iter(SVG + "polyline") if el.attrib["data-series"] == "leased")
    assert len(leased.attrib["points"].split()) == 5  # one rate per pair of consecutive samples
    labels = {el.text for el in root.iter(SVG + "text")}
    assert {"0.00/s", "0.10/s", "0.20/s", "0.30/s", "0.40/s"} <= labels  # 3 jobs per 10 s at most: topped at 0.4/s
    ys = {int(pt.split(",")[1]) for pt in leased.attrib["points"].split()}
    assert ys == {HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * 200 // 400}  # 2 leases per 10 s: 0.2/s, half way


def test_queue_charts_draw_each_kind_beside_its_limit() -> None:
    samples = history(10)
    assert drawn(parse(render_chart("queue-depth", samples, T0 + 100))) == {"quantum queued", "quantum limit"}
    age = parse(render_chart("queue-age", samples, T0 + 100))
    assert drawn(age) == {"quantum oldest", "quantum limit"}
    limit = next(el for el in age.iter(SVG + "polyline") if el.attrib["data-series"] == "quantum limit")
    assert limit.attrib["stroke-dasharray"] == "4 3"


def test_latency_payouts_and_slashes_show_what_the_snapshots_hold() -> None:
    samples = history(10)
    assert drawn(parse(render_chart("latency", samples, T0 + 100))) == {"0xababab p50", "0xababab p95"}
    payouts = parse(render_chart("payouts", samples, T0 + 100))
    bars = {(r.attrib["data-bar"], r.attrib["data-part"]) for r in payouts.iter(SVG + "rect") if "data-bar" in r.attrib}
    assert bars == {(str(e), part) for e in range(3) for part in ("provider", "miner", "fund")}
    assert "cap 12%" in {el.text for el in payouts.iter(SVG + "text")}
    assert drawn(parse(render_chart("slashes", samples, T0 + 100))) == {"all reasons", "MISSED_LEASE"}


def test_samples_older_than_the_window_are_left_out() -> None:
    samples = history(3)
    root = parse(render_chart("queue-depth", samples, T0 + WINDOW_S + 15))  # only the last sample is in the hour
    (queued,) = [el for el in root.iter(SVG + "polyline") if el.attrib["data-series"] == "quantum queued"]
    assert len(queued.attrib["points"].split()) == 1


def test_history_keeps_one_sample_per_interval_for_an_hour() -> None:
    h = History()
    calls: list[int] = []

    def snap() -> MetricsSnapshot:
        calls.append(1)
        return MetricsSnapshot()

    taken = [h.offer(T0 + s, snap) for s in range(0, 2 * WINDOW_S, 1)]
    assert sum(taken) == len(calls) == 2 * WINDOW_S // SAMPLE_S  # the snapshot is read only when one is due
    kept = h.samples()
    assert len(kept) == WINDOW_S // SAMPLE_S + 1
    assert kept[-1].time - kept[0].time == WINDOW_S


def test_names_are_escaped_and_scales_print_exact_integers() -> None:
    svg = line_chart("a <b> & c", [Series('x"y', ((T0, 5),))], t0=T0, t1=T0 + 10)
    root = parse(svg)
    assert drawn(root) == {'x"y'}
    assert Scale(1_000_000, 2, " ANM").label(1_234_567) == "1.23 ANM"
    assert Scale(1000, 1, " s").label(2400) == "2.4 s"
    assert Scale(unit=" s").label(300) == "300 s"
    assert [nice_max(v) for v in (0, 1, 3, 17, 300, 1001)] == [4, 4, 4, 20, 400, 2000]
    parse(bar_chart("none", ("a",), []))
    far = parse(line_chart("far", [Series("d", ((T0, 3),)), Series("l", ((T0, 900_000),), dashed=True)], t0=T0, t1=T0))
    assert "20" in {el.text for el in far.iter(SVG + "text")}  # topped near the data, not at the far limit
    parse(bar_chart("one", ("a", "b"), [Bar("7", (1, 2), "note")]))
