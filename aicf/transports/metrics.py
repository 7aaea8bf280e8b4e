"""Prometheus `/metrics` (SPEC §13): one frozen snapshot in, the exposition prometheus_client writes out.

The coordinator builds a `MetricsSnapshot` from its store in one read transaction; `SnapshotCollector` (a
prometheus_client custom collector) turns it into metric families, and the library writes them in the format
the scraper asks for (text 0.0.4 by default, OpenMetrics 1.0 on request), with its escaping. This module reads
nothing itself, so a scrape sees one consistent instant and the output is a pure function of the snapshot.
Every value is an integer (µANM, milli-units, basis points, milliseconds, seconds); the library prints it as a
float, which is what Prometheus stores (exact up to 2^53).

Families are declared once in `FAMILIES`; docs/METRICS.md, the alert rules in deploy/prometheus and the
Grafana dashboard in deploy/grafana are tested against that table, so a renamed metric breaks a test
instead of silently emptying a panel.

Cardinality: labels are provider ids (one per registered provider), job statuses, reject codes, slash
reasons, epochs (only those the snapshot carries: pass the last few settled epochs, not all of them) and
collateral items. Nothing per job.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.responses import Response

from aicf.core.jobs import JobStatus
from aicf.core.registry import ProviderStatus
from aicf.core.slashing import SlashReason
from aicf.transports.health import Readiness, ReadyLimits, is_ready

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# SPEC §8's reject codes and aicf's UNVERIFIABLE, every one rendered (zero until it happens) so rate() works
# from the first scrape.
# aicf.transports may not import aicf.proofs; tests/transports/test_metrics.py checks this list against
# aicf.proofs.verdict.RejectCode.
REJECT_CODES: Final = (
    "MALFORMED",
    "BAD_SIGNATURE",
    "UNKNOWN_LEASE",
    "LEASE_EXPIRED",
    "DUPLICATE",
    "DIGEST_MISMATCH",
    "BAD_ATTESTATION",
    "STALE_ATTESTATION",
    "UNKNOWN_ROOT",
    "TRAP_FAILURE",
    "UNVERIFIABLE",  # not a SPEC code: the verifier could not judge (docs/DECISIONS.md)
    "RUNTIME_MISMATCH",  # not a SPEC code: an AI runtime claim above the observed time (docs/DECISIONS.md)
    "IMPOSSIBLE_RESULT",  # not a SPEC code: a quantum outcome the job's circuit cannot produce (docs/QUANTUM.md)
    "AUDIT_MISMATCH",  # not a SPEC code: a sampled AI job re-executed to another output (docs/TRAPS.md)
    "UNPINNED_DEVICE",  # not a SPEC code: a quantum proof with no certificate of a pinned device (docs/QUANTUM.md §3)
    "BAD_DEVICE_CERT",  # not a SPEC code: a pinned device's certificate whose signature does not verify
)
SPLIT_PARTS: Final = ("provider", "miner", "fund")


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()


C, G = MetricType.COUNTER, MetricType.GAUGE
FAMILIES: Final[tuple[Family, ...]] = (
    # queue
    Family(name="aicf_queue_jobs", type=G, labels=("status",), help="Jobs by status (SPEC §4), every status shown."),
    Family(
        name="aicf_queue_oldest_age_seconds",
        type=G,
        help="Age of the oldest QUEUED job (now minus the time it last became QUEUED); 0 when none is queued.",
    ),
    Family(name="aicf_queue_kind_jobs", type=G, labels=("kind",), help="QUEUED jobs of the kind (ai, quantum, ...)."),
    Family(
        name="aicf_queue_kind_depth_limit_jobs",
        type=G,
        labels=("kind",),
        help="Jobs of the kind the ACTIVE providers' declared unit rate clears in 300 s (0: none serves it).",
    ),
    Family(
        name="aicf_queue_kind_oldest_age_seconds",
        type=G,
        labels=("kind",),
        help="Age of the oldest QUEUED job of the kind (now minus its enqueue block time); 0 when none.",
    ),
    Family(
        name="aicf_queue_kind_age_limit_seconds",
        type=G,
        labels=("kind",),
        help="How long a job of the kind may wait: 300 s, or twice the declared rate's time per job if longer.",
    ),
    Family(name="aicf_assignments_total", type=C, help="Leases granted by the matcher; rate() gives assigns/s."),
    Family(name="aicf_retries_total", type=C, help="Jobs requeued after a lease attempt ended without a proof."),
    Family(
        name="aicf_budget_throttle_active",
        type=G,
        help="1 while the treasury is below the SPEC §5 throttle line and no new leases are granted, else 0.",
    ),
    # providers
    Family(
        name="aicf_provider_status",
        type=G,
        labels=("provider_id", "status"),
        help="1 for the provider's current status, 0 for the others (SPEC §9).",
    ),
    Family(name="aicf_provider_live_leases", type=G, labels=("provider_id",), help="Live leases held."),
    Family(
        name="aicf_provider_proofs_accepted_total",
        type=C,
        labels=("provider_id",),
        help="Proofs accepted; success rate = accepted / (accepted + rejected).",
    ),
    Family(
        name="aicf_provider_proofs_rejected_total",
        type=C,
        labels=("provider_id",),
        help="Proofs rejected or dropped, whatever the code.",
    ),
    Family(
        name="aicf_provider_latency_p50_ms",
        type=G,
        labels=("provider_id",),
        help="Median of (proof received - lease granted) over the provider's QoS window, milliseconds.",
    ),
    Family(
        name="aicf_provider_latency_p95_ms",
        type=G,
        labels=("provider_id",),
        help="p95 of (proof received - lease granted) over the provider's QoS window, milliseconds (SPEC §3).",
    ),
    Family(
        name="aicf_provider_job_budget_ms",
        type=G,
        labels=("provider_id",),
        help="Median runtime budget of the open jobs the provider can serve, milliseconds (p95 above it: overrun).",
    ),
    Family(
        name="aicf_provider_availability_bps",
        type=G,
        labels=("provider_id",),
        help="Live heartbeat slots over the last 3600 s, basis points (SPEC §3).",
    ),
    Family(
        name="aicf_provider_bonded_stake_micro_anm",
        type=G,
        labels=("provider_id",),
        help="Bonded stake, µANM (unbonding stake excluded).",
    ),
    # proofs and slashing
    Family(
        name="aicf_proof_rejections_total",
        type=C,
        labels=("code",),
        help="Proof verification failures by reject code (SPEC §8), every code shown.",
    ),
    Family(name="aicf_slashes_total", type=C, labels=("reason",), help="Slashes by reason (SPEC §9)."),
    Family(
        name="aicf_slashed_micro_anm_total",
        type=C,
        labels=("reason",),
        help="Stake moved to the fund by slashes, µANM, by reason.",
    ),
    # epochs and money
    Family(name="aicf_epoch_current", type=G, help="The epoch of the chain head (SPEC §5)."),
    Family(name="aicf_epoch_last_settled", type=G, help="The last epoch whose batch was built; -1 before the first."),
    Family(
        name="aicf_cap_use_bps",
        type=G,
        help="Open epoch: units_mu of verified, unsettled work x 10000 // (Γ x 1000); the budget pressure gauge.",
    ),
    Family(
        name="aicf_epoch_units_mu",
        type=G,
        labels=("epoch",),
        help="Σ units_mu admitted by the epoch's batch.",
    ),
    Family(name="aicf_epoch_payouts", type=G, labels=("epoch",), help="Payouts in the epoch's batch."),
    Family(name="aicf_epoch_carried", type=G, labels=("epoch",), help="Jobs the epoch's batch carried to the next."),
    Family(
        name="aicf_epoch_split_micro_anm",
        type=G,
        labels=("epoch", "part"),
        help="Split totals of the epoch's batch, µANM, part = provider | miner | fund.",
    ),
    Family(
        name="aicf_epoch_cap_use_bps",
        type=G,
        labels=("epoch",),
        help="Σ units_mu admitted x 10000 // (Γ x 1000) for the epoch's batch.",
    ),
    Family(name="aicf_epoch_price_bps", type=G, labels=("epoch",), help="price_bps used by the epoch's batch."),
    Family(name="aicf_treasury_balance_micro_anm", type=G, help="Treasury balance, µANM."),
    Family(
        name="aicf_trap_escrow_needed_micro_anm",
        type=G,
        labels=("model",),
        help="Escrow of the last trap of the model the fund could not pay, µANM (fund below it: traps skipped).",
    ),
    Family(
        name="aicf_trap_escrow_shortfalls_total",
        type=C,
        labels=("model",),
        help="Traps of the model not enqueued because the fund could not pay their escrow.",
    ),
    Family(name="aicf_fund_balance_micro_anm", type=G, help="Fund balance, µANM."),
    Family(
        name="aicf_trap_budget_available_micro_anm",
        type=G,
        help="What the trap budget has left, µANM: the fund's split × trap_budget_bps, top-ups and reclaims less "
        "trap fundings (docs/TRAPS.md).",
    ),
    Family(
        name="aicf_trap_budget_needed_micro_anm",
        type=G,
        labels=("model",),
        help="Escrow of the last due trap of the model the trap budget held back, µANM.",
    ),
    Family(
        name="aicf_traps_throttled_total",
        type=C,
        labels=("model",),
        help="Due traps of the model held back because the trap budget could not pay their escrow.",
    ),
    # attestation collateral
    Family(
        name="aicf_collateral_expiry_seconds",
        type=G,
        labels=("kind", "item"),
        help="Seconds until the soonest expiry of the item (vendor root, TCB info, CRL, QE identity, "
        "certificate); negative once expired.",
    ),
    # health (aicf.transports.health: the values /readyz judges)
    Family(name="aicf_ready", type=G, help="1 while /readyz answers 200 (every check below passes), else 0."),
    Family(name="aicf_database_up", type=G, help="1 while the database answers a read, else 0."),
    Family(
        name="aicf_last_pass_age_seconds",
        type=G,
        help="Seconds since the last successful coordinator pass; -1 before the first.",
    ),
    Family(
        name="aicf_ingest_lag_blocks",
        type=G,
        help="Chain head height minus the ingested head height; -1 while the database does not answer.",
    ),
    Family(
        name="aicf_outages_total",
        type=C,
        help="Coordinator outages credited to the providers: gaps of more than 10 s without a successful pass.",
    ),
    Family(
        name="aicf_outage_credited_seconds_total",
        type=C,
        help="Seconds of coordinator outage credited: not counted against leases, heartbeats or QoS.",
    ),
    Family(
        name="aicf_wedged",
        type=G,
        help="1 while the coordinator cannot go on by itself (a reorg below finality), else 0.",
    ),
)
FAMILY_BY_NAME: Final[Mapping[str, Family]] = {f.name: f for f in FAMILIES}


def metric_names() -> frozenset[str]:
    """Every family name `render_prometheus` can emit, whatever the snapshot holds."""
    return frozenset(FAMILY_BY_NAME)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderMetrics:
    provider_id: bytes
    status: ProviderStatus
    live_leases: int
    proofs_accepted: int  # lifetime counters: Prometheus takes rates
    proofs_rejected: int
    latency_p50_ms: int
    latency_p95_ms: int
    availability_bps: int
    bonded_stake: int  # µANM
    job_budget_ms: int = 0  # median runtime budget of the open jobs it can serve


@dataclass(frozen=True, slots=True, kw_only=True)
class KindQueueMetrics:
    kind: str
    depth: int
    depth_limit: int
    oldest_age_s: int
    age_limit_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapShortfallMetrics:
    model: str
    count: int
    escrow: int  # µANM the last skipped trap needed


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochMetrics:
    epoch: int
    units_mu: int
    payouts: int
    carried: int
    provider: int  # µANM, the batch's split totals
    miner: int
    fund: int
    cap_use_bps: int
    price_bps: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CollateralExpiry:
    kind: str  # "vendor_root", "tcb_info", "crl", "qe_identity", "certificate", ...
    item: str  # a name a person recognises: "amd-milan-ark", "intel-sgx-root-ca", a CRL issuer
    expires_in_s: int  # the soonest expiry of this item minus now; negative once expired


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    """What one scrape shows, read in one transaction at one instant. Counters are lifetime totals."""

    jobs_by_status: Mapping[JobStatus, int] = field(default_factory=dict)  # a status left out renders as 0
    oldest_queued_age_s: int = 0
    assignments_total: int = 0
    retries_total: int = 0
    budget_throttle_active: bool = False
    providers: Sequence[ProviderMetrics] = ()
    rejections_by_code: Mapping[str, int] = field(default_factory=dict)  # keys: REJECT_CODES
    slashes_by_reason: Mapping[SlashReason, int] = field(default_factory=dict)
    slashed_by_reason: Mapping[SlashReason, int] = field(default_factory=dict)  # µANM
    current_epoch: int = 0
    last_settled_epoch: int = -1
    cap_use_bps: int = 0
    epochs: Sequence[EpochMetrics] = ()  # the last few settled epochs, any order
    treasury_balance: int = 0  # µANM
    fund_balance: int = 0  # µANM
    collateral: Sequence[CollateralExpiry] = ()
    readiness: Readiness | None = None  # None: the health families render without samples
    ready_limits: ReadyLimits = field(default_factory=ReadyLimits)
    queues_by_kind: Sequence[KindQueueMetrics] = ()
    trap_shortfalls: Sequence[TrapShortfallMetrics] = ()
    trap_throttles: Sequence[TrapShortfallMetrics] = ()  # due traps the trap budget held back
    trap_budget_available: int = 0  # µANM the trap budget has left (chain-derived)
    outages_total: int = 0
    outage_credited_s: int = 0


Sample = tuple[tuple[tuple[str, str], ...], int]  # (label pairs, value)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _samples(s: MetricsSnapshot) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {f.name: [] for f in FAMILIES}

    def add(name: str, value: int, **labels: str) -> None:
        family = FAMILY_BY_NAME[name]
        if tuple(labels) != family.labels:  # a coding error here, caught by the tests
            raise ValueError(f"{name}: labels {tuple(labels)} differ from the declared {family.labels}")
        if type(value) is not int and type(value) is not bool:
            raise TypeError(f"{name}: value {value!r} is not an int")
        out[name].append((tuple(labels.items()), int(value)))

    for status in JobStatus:
        add("aicf_queue_jobs", s.jobs_by_status.get(status, 0), status=status.value)
    add("aicf_queue_oldest_age_seconds", s.oldest_queued_age_s)
    for q in sorted(s.queues_by_kind, key=lambda q: q.kind):
        add("aicf_queue_kind_jobs", q.depth, kind=q.kind)
        add("aicf_queue_kind_depth_limit_jobs", q.depth_limit, kind=q.kind)
        add("aicf_queue_kind_oldest_age_seconds", q.oldest_age_s, kind=q.kind)
        add("aicf_queue_kind_age_limit_seconds", q.age_limit_s, kind=q.kind)
    add("aicf_assignments_total", s.assignments_total)
    add("aicf_retries_total", s.retries_total)
    add("aicf_budget_throttle_active", s.budget_throttle_active)
    for p in sorted(s.providers, key=lambda p: p.provider_id):
        pid = _hex(p.provider_id)
        for pstatus in ProviderStatus:
            add("aicf_provider_status", int(p.status == pstatus), provider_id=pid, status=pstatus.value)
        add("aicf_provider_live_leases", p.live_leases, provider_id=pid)
        add("aicf_provider_proofs_accepted_total", p.proofs_accepted, provider_id=pid)
        add("aicf_provider_proofs_rejected_total", p.proofs_rejected, provider_id=pid)
        add("aicf_provider_latency_p50_ms", p.latency_p50_ms, provider_id=pid)
        add("aicf_provider_latency_p95_ms", p.latency_p95_ms, provider_id=pid)
        add("aicf_provider_job_budget_ms", p.job_budget_ms, provider_id=pid)
        add("aicf_provider_availability_bps", p.availability_bps, provider_id=pid)
        add("aicf_provider_bonded_stake_micro_anm", p.bonded_stake, provider_id=pid)
    codes = list(REJECT_CODES) + sorted(set(s.rejections_by_code) - set(REJECT_CODES))
    for code in codes:
        add("aicf_proof_rejections_total", s.rejections_by_code.get(code, 0), code=code)
    for reason in SlashReason:
        add("aicf_slashes_total", s.slashes_by_reason.get(reason, 0), reason=reason.value)
        add("aicf_slashed_micro_anm_total", s.slashed_by_reason.get(reason, 0), reason=reason.value)
    add("aicf_epoch_current", s.current_epoch)
    add("aicf_epoch_last_settled", s.last_settled_epoch)
    add("aicf_cap_use_bps", s.cap_use_bps)
    for e in sorted(s.epochs, key=lambda e: e.epoch):
        epoch = str(e.epoch)
        add("aicf_epoch_units_mu", e.units_mu, epoch=epoch)
        add("aicf_epoch_payouts", e.payouts, epoch=epoch)
        add("aicf_epoch_carried", e.carried, epoch=epoch)
        for part, amount in zip(SPLIT_PARTS, (e.provider, e.miner, e.fund), strict=True):
            add("aicf_epoch_split_micro_anm", amount, epoch=epoch, part=part)
        add("aicf_epoch_cap_use_bps", e.cap_use_bps, epoch=epoch)
        add("aicf_epoch_price_bps", e.price_bps, epoch=epoch)
    add("aicf_treasury_balance_micro_anm", s.treasury_balance)
    add("aicf_fund_balance_micro_anm", s.fund_balance)
    for t in sorted(s.trap_shortfalls, key=lambda t: t.model):
        add("aicf_trap_escrow_needed_micro_anm", t.escrow, model=t.model)
        add("aicf_trap_escrow_shortfalls_total", t.count, model=t.model)
    add("aicf_trap_budget_available_micro_anm", s.trap_budget_available)
    for t in sorted(s.trap_throttles, key=lambda t: t.model):
        add("aicf_trap_budget_needed_micro_anm", t.escrow, model=t.model)
        add("aicf_traps_throttled_total", t.count, model=t.model)
    for c in sorted(s.collateral, key=lambda c: (c.kind, c.item)):
        add("aicf_collateral_expiry_seconds", c.expires_in_s, kind=c.kind, item=c.item)
    if s.readiness is not None:
        r = s.readiness
        add("aicf_ready", is_ready(r, s.ready_limits))
        add("aicf_database_up", r.database_up)
        add("aicf_last_pass_age_seconds", r.last_pass_age_s)
        add("aicf_ingest_lag_blocks", r.ingest_lag_blocks)
        add("aicf_wedged", bool(r.wedged))
    add("aicf_outages_total", s.outages_total)
    add("aicf_outage_credited_seconds_total", s.outage_credited_s)
    return out


class SnapshotCollector(Collector):
    """A prometheus_client collector over one snapshot: every family of FAMILIES, in order, with its samples."""

    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        samples = _samples(self.snapshot)  # raises on a coding error before anything is written
        for family in FAMILIES:
            metric: CounterMetricFamily | GaugeMetricFamily
            if family.type is MetricType.COUNTER:
                metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            for labels, value in samples[family.name]:
                metric.add_metric([v for _, v in labels], value)
            yield metric


def _registry(snapshot: MetricsSnapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return registry


def render_prometheus(snapshot: MetricsSnapshot) -> str:
    """Text exposition format 0.0.4 as prometheus_client writes it: HELP and TYPE for every family (even one
    without samples), no timestamps (Prometheus stamps the scrape), a final line feed.

    Raises ValueError or TypeError on a coding error (labels that differ from the family's, a non-int value).
    """
    return generate_latest(_registry(snapshot)).decode("utf-8")


def metrics_response(snapshot: MetricsSnapshot, accept: str | None = None) -> Response:
    """The `/metrics` response in the format `accept` asks for (the request's Accept header): OpenMetrics 1.0
    when it names application/openmetrics-text, else text 0.0.4 (CONTENT_TYPE)."""
    registry = _registry(snapshot)  # collected below, once: a coding error raises before the response exists
    encoder, content_type = choose_encoder(accept or "")
    return Response(encoder(registry), headers={"content-type": content_type})
