"""render_prometheus: valid text exposition format 0.0.4, every family with its TYPE, escaping, empty snapshots.

prometheus_client writes the exposition (a custom collector over the snapshot); a strict line parser below reads
it back all the same: it refuses anything the format does not allow (an unknown line shape, a sample before its
TYPE, a value that is not a whole number, a bad escape, a duplicate series), so a collector bug cannot pass by
being parsed leniently. The library prints values as floats ("7.0"); every aicf value is a whole number.
"""

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from aicf.core.jobs import JobStatus
from aicf.core.registry import ProviderStatus
from aicf.core.slashing import SlashReason
from aicf.proofs.verdict import RejectCode
from aicf.transports.metrics import (
    CONTENT_TYPE,
    FAMILIES,
    FAMILY_BY_NAME,
    REJECT_CODES,
    CollateralExpiry,
    EpochMetrics,
    MetricsSnapshot,
    MetricType,
    ProviderMetrics,
    metric_names,
    metrics_response,
    render_prometheus,
)

ROOT = Path(__file__).resolve().parents[2]
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
HELP_RE = re.compile(rf"# HELP ({NAME}) (.*)")
TYPE_RE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)")
SAMPLE_RE = re.compile(rf"({NAME})(?:\{{(.*)\}})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)")
LABEL_PAIR_RE = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


@dataclass
class ParsedFamily:
    type: str
    help: str
    samples: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"\\": "\\", '"': '"', "n": "\n"}[m.group(1)], value)


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = LABEL_PAIR_RE.match(text, pos)
        assert m, f"bad label set at {text[pos:]!r}"
        pairs.append((m.group(1), unescape(m.group(2))))
        pos = m.end()
        if pos < len(text):
            assert text[pos] == ",", f"expected ',' in {text!r}"
            pos += 1
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate label name in {text!r}"
    return tuple(pairs)


def parse_exposition(text: str) -> dict[str, ParsedFamily]:
    """A strict reader of text format 0.0.4 as render_prometheus writes it (no timestamps, integer values)."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    families: dict[str, ParsedFamily] = {}
    helps: dict[str, str] = {}
    current: str | None = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        if m := HELP_RE.fullmatch(line):
            assert m.group(1) not in helps, f"line {n}: second HELP for {m.group(1)}"
            helps[m.group(1)] = m.group(2)
            assert "\n" not in m.group(2)
        elif m := TYPE_RE.fullmatch(line):
            name = m.group(1)
            assert name not in families, f"line {n}: second TYPE for {name}"
            assert name in helps, f"line {n}: TYPE before HELP for {name}"
            families[name] = ParsedFamily(type=m.group(2), help=helps[name])
            current = name
        elif m := SAMPLE_RE.fullmatch(line):
            name = m.group(1)
            assert name == current, f"line {n}: sample of {name} outside its family block ({current})"
            labels = parse_labels(m.group(2) or "")
            if name in FAMILY_BY_NAME:  # the library writes label names sorted; read them in the declared order
                order = FAMILY_BY_NAME[name].labels
                labels = tuple(sorted(labels, key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
            assert labels not in families[name].samples, f"line {n}: duplicate series {name}{labels}"
            value = float(m.group(3))
            assert value.is_integer(), f"line {n}: {m.group(3)} is not a whole number"
            families[name].samples[labels] = int(value)
        else:
            pytest.fail(f"line {n} is not valid exposition format: {line!r}")
    return families


PID_A, PID_B = bytes.fromhex("aa" * 32), bytes.fromhex("0b" * 32)


def full_snapshot() -> MetricsSnapshot:
    provider = ProviderMetrics(
        provider_id=PID_A,
        status=ProviderStatus.JAILED,
        live_leases=3,
        proofs_accepted=120,
        proofs_rejected=4,
        latency_p50_ms=210,
        latency_p95_ms=640,
        availability_bps=9950,
        bonded_stake=5_000_000_000,
    )
    return MetricsSnapshot(
        jobs_by_status={JobStatus.QUEUED: 7, JobStatus.LEASED: 3},
        oldest_queued_age_s=95,
        assignments_total=1234,
        retries_total=17,
        budget_throttle_active=True,
        providers=(provider, replace(provider, provider_id=PID_B, status=ProviderStatus.ACTIVE)),
        rejections_by_code={"BAD_SIGNATURE": 2, "TRAP_FAILURE": 1},
        slashes_by_reason={SlashReason.MISSED_LEASE: 1},
        slashed_by_reason={SlashReason.MISSED_LEASE: 50_000_000},
        current_epoch=12,
        last_settled_epoch=11,
        cap_use_bps=8400,
        epochs=(
            EpochMetrics(
                epoch=11,
                units_mu=900_000_000,
                payouts=3100,
                carried=5,
                provider=10_800_000_000,
                miner=2_025_000_000,
                fund=675_000_000,
                cap_use_bps=9000,
                price_bps=10000,
            ),
        ),
        treasury_balance=987_654_321_000,
        fund_balance=12_345_000,
        collateral=(
            CollateralExpiry(kind="crl", item='intel "pck" platform\\crl\nv2', expires_in_s=3600),
            CollateralExpiry(kind="vendor_root", item="amd-milan-ark", expires_in_s=-5),
        ),
    )


def test_every_family_appears_with_its_type_and_help() -> None:
    parsed = parse_exposition(render_prometheus(full_snapshot()))
    assert list(parsed) == [f.name for f in FAMILIES]
    for family in FAMILIES:
        assert parsed[family.name].type == family.type.value
        assert parsed[family.name].help
        for labels in parsed[family.name].samples:
            assert tuple(k for k, _ in labels) == family.labels, family.name


def test_names_carry_the_prefix_and_a_unit_and_counters_end_in_total() -> None:
    units = ("_seconds", "_micro_anm", "_bps", "_mu", "_ms", "_total", "_jobs", "_leases", "_payouts", "_carried",
             "_blocks")  # fmt: skip
    for family in FAMILIES:
        assert family.name.startswith("aicf_"), family.name
        assert (family.type is MetricType.COUNTER) == family.name.endswith("_total"), family.name
    unitless = {"aicf_budget_throttle_active", "aicf_provider_status", "aicf_epoch_current", "aicf_epoch_last_settled",
                "aicf_ready", "aicf_database_up", "aicf_wedged"}  # fmt: skip
    for family in FAMILIES:
        if family.name not in unitless:
            assert family.name.endswith(units), f"{family.name} names no unit"


def test_values_of_a_full_snapshot() -> None:
    parsed = parse_exposition(render_prometheus(full_snapshot()))
    pa, pb = "0x" + "aa" * 32, "0x" + "0b" * 32
    assert parsed["aicf_queue_jobs"].samples[(("status", "QUEUED"),)] == 7
    assert parsed["aicf_queue_jobs"].samples[(("status", "SETTLED"),)] == 0
    assert len(parsed["aicf_queue_jobs"].samples) == len(JobStatus)
    assert parsed["aicf_queue_oldest_age_seconds"].samples[()] == 95
    assert parsed["aicf_assignments_total"].samples[()] == 1234
    assert parsed["aicf_budget_throttle_active"].samples[()] == 1
    status = parsed["aicf_provider_status"].samples
    assert status[(("provider_id", pa), ("status", "JAILED"))] == 1
    assert status[(("provider_id", pa), ("status", "ACTIVE"))] == 0
    assert sum(status.values()) == 2  # one current status per provider
    assert parsed["aicf_provider_bonded_stake_micro_anm"].samples[(("provider_id", pb),)] == 5_000_000_000
    assert list(parsed["aicf_provider_live_leases"].samples) == [(("provider_id", pb),), (("provider_id", pa),)]
    rejections = parsed["aicf_proof_rejections_total"].samples
    assert {k[0][1] for k in rejections} == set(REJECT_CODES)
    assert rejections[(("code", "BAD_SIGNATURE"),)] == 2
    assert parsed["aicf_slashes_total"].samples[(("reason", "MISSED_LEASE"),)] == 1
    assert parsed["aicf_slashed_micro_anm_total"].samples[(("reason", "FRAUD"),)] == 0
    split = parsed["aicf_epoch_split_micro_anm"].samples
    assert split[(("epoch", "11"), ("part", "fund"))] == 675_000_000
    assert parsed["aicf_epoch_cap_use_bps"].samples[(("epoch", "11"),)] == 9000
    assert parsed["aicf_epoch_last_settled"].samples[()] == 11
    assert parsed["aicf_collateral_expiry_seconds"].samples[(("kind", "vendor_root"), ("item", "amd-milan-ark"))] == -5


def test_label_values_are_escaped_and_read_back_exactly() -> None:
    text = render_prometheus(full_snapshot())
    assert 'item="intel \\"pck\\" platform\\\\crl\\nv2"' in text
    samples = parse_exposition(text)["aicf_collateral_expiry_seconds"].samples
    assert samples[(("kind", "crl"), ("item", 'intel "pck" platform\\crl\nv2'))] == 3600


def test_an_empty_snapshot_renders_every_family_without_provider_series() -> None:
    parsed = parse_exposition(render_prometheus(MetricsSnapshot()))
    assert set(parsed) == metric_names()
    for name in ("aicf_provider_status", "aicf_provider_latency_p95_ms", "aicf_epoch_units_mu"):
        assert parsed[name].samples == {}
    assert parsed["aicf_epoch_last_settled"].samples[()] == -1
    assert parsed["aicf_proof_rejections_total"].samples[(("code", "DUPLICATE"),)] == 0


def test_output_is_deterministic_whatever_the_input_order() -> None:
    snap = full_snapshot()
    reordered = replace(snap, providers=tuple(reversed(snap.providers)), epochs=tuple(reversed(snap.epochs)))
    assert render_prometheus(reordered) == render_prometheus(snap)


def test_reject_codes_match_the_verifier() -> None:
    assert tuple(c.value for c in RejectCode) == REJECT_CODES


def test_unknown_reject_code_still_renders_after_the_known_ones() -> None:
    parsed = parse_exposition(render_prometheus(MetricsSnapshot(rejections_by_code={"NEW_CODE": 4})))
    assert list(parsed["aicf_proof_rejections_total"].samples)[-1] == (("code", "NEW_CODE"),)


def test_a_non_integer_value_is_refused() -> None:
    bad = MetricsSnapshot(treasury_balance=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="aicf_treasury_balance_micro_anm"):
        render_prometheus(bad)


def test_metrics_response_carries_the_text_format_content_type() -> None:
    for accept in (None, "", "text/plain", "*/*"):
        response = metrics_response(MetricsSnapshot(), accept)
        assert response.headers["content-type"] == CONTENT_TYPE
        assert bytes(response.body).decode().startswith("# HELP aicf_queue_jobs ")


def test_a_scraper_asking_for_openmetrics_gets_it() -> None:
    """Content negotiation comes from prometheus_client: OpenMetrics 1.0 when the Accept header asks for it."""
    response = metrics_response(full_snapshot(), "application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    text = bytes(response.body).decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE aicf_assignments counter\n" in text  # OpenMetrics names the counter family without _total
    assert "\naicf_assignments_total 1234.0\n" in text


def test_docs_list_every_family() -> None:
    doc = (ROOT / "docs" / "METRICS.md").read_text()
    listed = set(re.findall(r"`(aicf_[a-z0-9_]+)`", doc))
    assert listed >= metric_names(), f"missing from docs/METRICS.md: {sorted(metric_names() - listed)}"
    assert listed - metric_names() <= {"aicf_alerts"}, f"docs name unknown metrics: {listed - metric_names()}"
