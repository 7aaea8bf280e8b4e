"""GET /healthz and /readyz, and the same values in /metrics (aicf.transports.health)."""

import threading
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from aicf.transports.health import NO_VALUE, Readiness, ReadyLimits, health_routes, is_ready, probe
from aicf.transports.metrics import MetricsSnapshot, metric_names, render_prometheus
from transports.helpers import scrape

READY = Readiness(database_up=True, last_pass_age_s=2, ingest_lag_blocks=1)
LIMITS = ReadyLimits(max_pass_age_s=30, max_ingest_lag_blocks=12, probe_timeout_s=0.5)
HEALTH_FAMILIES = ("aicf_ready", "aicf_database_up", "aicf_last_pass_age_seconds", "aicf_ingest_lag_blocks",
                   "aicf_wedged")  # fmt: skip


def client_for(readiness: Callable[[], Readiness]) -> TestClient:
    return TestClient(Starlette(routes=health_routes(readiness, LIMITS)))


@pytest.fixture
def ready_client() -> Iterator[TestClient]:
    with client_for(lambda: READY) as c:
        yield c


def test_a_ready_coordinator_answers_200_on_both(ready_client: TestClient) -> None:
    assert ready_client.get("/healthz").json() == {"status": "alive"}
    answer = ready_client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "reasons": [], "database_up": True, "last_pass_age_s": 2,
                             "ingest_lag_blocks": 1, "wedged": None, "store_failure": None}  # fmt: skip


@pytest.mark.parametrize(
    ("readiness", "says"),
    [
        (Readiness(database_up=False, database_error="OperationalError: disk I/O error", last_pass_age_s=1),
         "the database does not answer: OperationalError: disk I/O error"),
        (Readiness(database_up=True, ingest_lag_blocks=0), "no coordinator pass has succeeded yet"),
        (Readiness(database_up=True, last_pass_age_s=31, ingest_lag_blocks=0),
         "the last successful coordinator pass was 31 s ago (limit 30 s)"),
        (Readiness(database_up=True, last_pass_age_s=1, ingest_lag_blocks=13),
         "ingest is 13 blocks behind the chain (limit 12)"),
        (Readiness(database_up=True, last_pass_age_s=1, ingest_lag_blocks=0, wedged="reorg of 9 blocks below finality"),
         "the coordinator is wedged: reorg of 9 blocks below finality"),
        (Readiness(database_up=True, last_pass_age_s=1, ingest_lag_blocks=0,
                   store_failure="disk full: the SQLite database x.db cannot grow (disk I/O error)"),
         "the last coordinator pass failed: disk full: the SQLite database x.db cannot grow (disk I/O error)"),
    ],
    ids=["database-down", "no-pass-yet", "stale-pass", "ingest-lag", "wedged", "pass-failed-disk-full"],
)  # fmt: skip
def test_each_reason_makes_readyz_503_and_healthz_stays_200(readiness: Readiness, says: str) -> None:
    with client_for(lambda: readiness) as c:
        answer = c.get("/readyz")
        assert c.get("/healthz").status_code == 200
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["reasons"] == [says]
    assert not is_ready(readiness, LIMITS)


def test_a_failing_probe_is_503_and_logged_and_healthz_stays_200(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Readiness:
        raise RuntimeError("bug in the probe")

    with client_for(broken) as c:
        answer = c.get("/readyz")
        assert c.get("/healthz").status_code == 200
    assert (answer.status_code, answer.json()["reasons"]) == (503, ["the readiness probe failed"])
    assert "readiness probe failed" in caplog.text


def test_a_probe_that_hangs_answers_503_at_its_deadline() -> None:
    release = threading.Event()

    def hanging() -> Readiness:
        release.wait(10)  # a database that does not answer
        return READY

    try:
        with client_for(hanging) as c:
            answer = c.get("/readyz")
    finally:
        release.set()
    assert answer.status_code == 503
    assert answer.json()["reasons"] == ["the readiness probe did not finish within 0.5 s"]


# ---- probe: the facts from the coordinator's pieces ----------------------------------------------------------------


def test_probe_computes_the_pass_age_and_the_ingest_lag() -> None:
    found = probe(now=1_000, last_pass_at=990, stored_head=lambda: 40, chain_head=lambda: 46)
    assert found == Readiness(database_up=True, last_pass_age_s=10, ingest_lag_blocks=6)
    empty = probe(now=1_000, last_pass_at=None, stored_head=lambda: None, chain_head=lambda: 3)
    assert (empty.last_pass_age_s, empty.ingest_lag_blocks) == (NO_VALUE, 4)  # blocks 0..3 not ingested


def test_probe_reports_a_database_that_raises_as_down_with_the_reason() -> None:
    def down() -> int:
        raise OSError("connection refused")

    found = probe(now=1_000, last_pass_at=999, stored_head=down, chain_head=lambda: 5, wedged=lambda: "x")
    assert found == Readiness(database_up=False, database_error="OSError: connection refused", last_pass_age_s=1,
                              wedged="x")  # fmt: skip


# ---- the same values in /metrics ----------------------------------------------------------------------------------


def test_metrics_carry_the_readiness_values() -> None:
    text = render_prometheus(
        MetricsSnapshot(
            readiness=Readiness(database_up=True, last_pass_age_s=3, ingest_lag_blocks=14, wedged="deep reorg"),
            ready_limits=LIMITS,
        )
    )
    expected = {"aicf_ready": 0, "aicf_database_up": 1, "aicf_last_pass_age_seconds": 3, "aicf_ingest_lag_blocks": 14,
                "aicf_wedged": 1}  # fmt: skip
    assert {name: scrape(text, name).get(()) for name in expected} == expected
    ready = render_prometheus(MetricsSnapshot(readiness=READY, ready_limits=LIMITS))
    assert scrape(ready, "aicf_ready") == {(): 1}
    assert scrape(ready, "aicf_wedged") == {(): 0}


def test_without_readiness_the_families_are_declared_but_have_no_samples() -> None:
    lines = render_prometheus(MetricsSnapshot()).splitlines()
    for name in HEALTH_FAMILIES:
        assert name in metric_names()
        assert f"# TYPE {name} gauge" in lines
        assert not any(line.startswith(f"{name} ") for line in lines)
