"""The operator dashboard in a real headless Chromium (Debian's), driven by Playwright, against the fixture.

The page must show live data from /rpc, change when an event arrives on /ws, show "disconnected" when the
socket drops and catch up on what it missed when it comes back, load nothing from outside its origin, and
log no error. Every wait is on a DOM condition with a timeout, never a sleep.

Needs /usr/bin/chromium and playwright (scripts/install-browser); skipped without them unless
AICF_REQUIRE_BROWSER=1. A full-page screenshot goes to the test's tmp dir, and to docs/img/dashboard.png
when that file is missing or AICF_UPDATE_SCREENSHOT=1 (so a test run does not rewrite a tracked image).
"""

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicf.transports import fmt
from transports.dashboard_fixture import FakeFund, Served, serve

try:
    from playwright.sync_api import Page, sync_playwright  # type: ignore[import-not-found,unused-ignore]

    HAVE_PLAYWRIGHT = True
except ImportError:  # the skip below says what to install
    HAVE_PLAYWRIGHT = False

ROOT = Path(__file__).resolve().parents[2]
DOC_SCREENSHOT = ROOT / "docs" / "img" / "dashboard.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
pytestmark = pytest.mark.slow  # a real browser against a served app


@contextlib.contextmanager
def dashboard_page(base_url: str, tmp_path: Path, wait_ms: int) -> Iterator["Page"]:
    """Headless Debian Chromium on `base_url`/dashboard/, failing the test on any page error, console error or
    request outside `base_url` (the page must work offline and load only from its own origin)."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=LAUNCH_ARGS,
            viewport={"width": 1440, "height": 1000},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(wait_ms)
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: problems.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None,
            )
            page.on(
                "request",
                lambda req: None if req.url.startswith(base_url) else problems.append(f"outside request {req.url}"),
            )
            page.goto(base_url + "/dashboard/")
            yield page
            assert problems == [], "\n".join(problems)
        finally:
            context.close()


def missing_browser() -> str | None:
    if not HAVE_PLAYWRIGHT:
        return "playwright is not installed (scripts/install-browser: pip install playwright==1.65.2)"
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (scripts/install-browser: apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def served() -> Iterator[Served]:
    with serve(FakeFund()) as s:
        yield s


@pytest.fixture
def page(served: Served, tmp_path: Path) -> Iterator["Page"]:
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("AICF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AICF_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with dashboard_page(served.base_url, tmp_path, WAIT_MS) as opened:
        yield opened


def wait_for(page: "Page", js: str, arg: object = None) -> None:
    """Wait until the JS predicate holds (Playwright polls it), failing after WAIT_MS."""
    page.wait_for_function(js, arg=arg, timeout=WAIT_MS)


def text(page: "Page", selector: str) -> str:
    return str(page.locator(selector).inner_text()).strip()


def job_status(page: "Page", task_id: str) -> str | None:
    row = page.locator(f'#jobs tr[data-task-id="{task_id}"]')
    return row.get_attribute("data-status") if row.count() else None


LOADED = """() => document.querySelector('#conn-badge').dataset.state === 'live'
    && document.querySelectorAll('#providers tbody tr[data-provider-id]').length === 4
    && document.querySelectorAll('#epochs tbody tr[data-epoch]').length === 3
    && document.querySelector('#kpi-queued').textContent === '3'"""


def test_dashboard_shows_live_data_and_changes_on_events(page: "Page", served: Served, tmp_path: Path) -> None:
    fund = served.fund
    wait_for(page, LOADED)
    assert text(page, "#kpi-leased") == "2"
    assert text(page, "#head-height") == "5,000"
    assert text(page, "#kpi-params") == "v1"  # the params version in force, the next one and what is pending
    assert text(page, "#kpi-params-next") == "v2 next epoch · 1 pending"
    assert "AicfProviderLatencySlaDrift" in text(page, "#alarms")
    assert page.locator("#slashes tbody tr[data-evidence]").count() == 1
    assert page.locator("#jobs tbody tr[data-status=QUEUED]").count() == 3

    # 1. jobAssigned: the queued job turns LEASED, the queue depth and the assignment count follow
    assigned = fund.assign()
    task_id = assigned["data"]["task_id"]
    wait_for(
        page, "id => document.querySelector(`#jobs tr[data-task-id='${id}']`)?.dataset.status === 'LEASED'", task_id
    )
    wait_for(page, "seq => document.querySelector(`#feed li[data-seq='${seq}']`) !== null", assigned["seq"])
    wait_for(page, "() => document.querySelector('#kpi-leased').textContent === '3'")
    assert text(page, "#kpi-assigns") == f"{fund.assignments_total:,}"

    # 2. jobCompleted: the job leaves the live list
    completed = fund.complete()
    done_id = completed["data"]["task_id"]
    wait_for(page, "id => document.querySelector(`#jobs tr[data-task-id='${id}']`) === null", done_id)

    # 3. providerSlashed: the provider is JAILED and the slash is listed
    slashed = fund.slash()
    pid = slashed["data"]["provider_id"]
    wait_for(
        page,
        "id => document.querySelector(`#providers tr[data-provider-id='${id}']`)?.dataset.status === 'JAILED'",
        pid,
    )
    wait_for(page, "() => document.querySelectorAll('#slashes tbody tr[data-evidence]').length === 2")

    # 4. epochSettled: a new epoch row, and the header moves to the next epoch
    settled = fund.settle_epoch()
    wait_for(page, "e => document.querySelector(`#epochs tr[data-epoch='${e}']`) !== null", settled["data"]["epoch"])
    wait_for(page, "() => document.querySelector('#current-epoch').textContent === '4'")
    assert text(page, "#last-seq") == f"#{settled['seq']}"

    save_screenshot(page, tmp_path)


def test_dashboard_shows_disconnected_then_resumes_without_missing_an_event(page: "Page", served: Served) -> None:
    fund = served.fund
    wait_for(page, LOADED)
    first = fund.assign()
    wait_for(page, "seq => document.querySelector(`#feed li[data-seq='${seq}']`) !== null", first["seq"])

    fund.go_offline()
    wait_for(page, "() => document.querySelector('#conn-badge').dataset.state === 'disconnected'")
    assert page.locator("#conn-badge").text_content() == "disconnected"
    missed = [fund.assign(), fund.settle_epoch()]  # happen while the page has no socket

    fund.go_online()
    wait_for(page, "() => document.querySelector('#conn-badge').dataset.state === 'live'")
    # the feed is filled from events only (RPC refreshes never add to it): seeing these proves the resume
    for event in missed:
        wait_for(page, "seq => document.querySelector(`#feed li[data-seq='${seq}']`) !== null", event["seq"])
    seqs = [int(s) for s in page.locator("#feed li[data-seq]").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == sorted(seqs, reverse=True)
    assert len(seqs) == len(set(seqs)), f"an event was shown twice: {seqs}"
    assert seqs[:3] == [missed[1]["seq"], missed[0]["seq"], first["seq"]]


def test_dashboard_survives_a_failing_method(page: "Page", served: Served) -> None:
    """One RPC method failing shows its error in its own section; the others stay live."""
    wait_for(page, LOADED)
    served.fund.broken_methods.add("aicf.listJobs")
    served.fund.assign()
    wait_for(page, "() => !document.querySelector('#jobs-error').hidden")
    assert "aicf.listJobs" in text(page, "#jobs-error")
    wait_for(page, "() => document.querySelector('#kpi-leased').textContent === '3'")
    served.fund.broken_methods.clear()
    wait_for(page, "() => document.querySelector('#jobs-error').hidden")


def test_the_event_feed_starts_filled_from_the_event_log(served: Served, tmp_path: Path) -> None:
    """Events appended before the page opened are listed on load (the last FEED_MAX of the log), not applied."""
    fund = served.fund
    past = [fund.assign(), fund.complete(), fund.settle_epoch()]
    skip_without_browser()
    with dashboard_page(served.base_url, tmp_path, WAIT_MS) as page:
        wait_for(page, "() => document.querySelectorAll('#feed li.history[data-seq]').length === 3")
        seqs = page.locator("#feed li[data-seq]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
        assert seqs == [e["seq"] for e in reversed(past)]
        assert text(page, "#last-seq") == f"#{past[-1]['seq']}"
        assert "verified" in text(page, f"#feed li[data-seq='{past[1]['seq']}']")
        live = fund.assign()  # a new event after the history is applied as before
        wait_for(
            page, "seq => document.querySelector(`#feed li[data-seq='${seq}']:not(.history)`) !== null", live["seq"]
        )


def test_the_page_formats_numbers_as_the_cli_does(page: "Page", served: Served) -> None:
    """aicfFormat on the page and aicf.transports.fmt give the same text for every vector; the tables use it."""
    vectors = json.loads((Path(__file__).parent / "format_vectors.json").read_text(encoding="utf-8"))
    shown = page.evaluate(
        "v => Object.fromEntries(Object.entries(v).map(([k, cases]) => [k, cases.map(c => aicfFormat[k](c[0]))]))",
        vectors,
    )
    for name, cases in vectors.items():
        assert shown[name] == [text for _, text in cases], name
        assert shown[name] == [getattr(fmt, name)(value) for value, _ in cases], name
    wait_for(page, LOADED)
    epoch = served.fund.epochs[2]
    row = page.locator("#epochs tr[data-epoch='2'] td")
    assert row.nth(3).inner_text() == fmt.units(epoch["totals"]["units_mu"])
    assert row.nth(4).inner_text() == fmt.anm(epoch["totals"]["provider"])
    assert row.nth(8).inner_text().startswith(fmt.pct(epoch["cap_use_bps"]))


def test_live_jobs_show_the_provider_and_epochs_the_cap_use_the_api_returns(page: "Page", served: Served) -> None:
    wait_for(page, LOADED)
    leased = [j for j in served.fund.jobs.values() if j["status"] == "LEASED"]
    assert leased
    for job in leased:
        cell = page.locator(f"#jobs tr[data-task-id='{job['task_id']}'] td").nth(3)
        assert cell.get_attribute("title") == job["provider_id"]
    for epoch in served.fund.epochs.values():
        cap = page.locator(f"#epochs tr[data-epoch='{epoch['epoch']}'] td").nth(8).inner_text()
        assert cap.startswith(fmt.pct(epoch["cap_use_bps"])), cap


ISSUE_17_ALARMS = ("queue_depth", "queue_age", "trap_escrow_unfunded", "provider_over_budget")


def test_each_operator_alarm_is_a_red_line(page: "Page", served: Served) -> None:
    """The alarms getStatus raises (tests/transports/test_alarms.py makes each fire) each show as a red line."""
    wait_for(page, LOADED)
    served.fund.alarms = [{"name": name, "severity": "warning", "message": f"{name} fired"} for name in ISSUE_17_ALARMS]
    served.fund.assign()  # an event: the page refreshes its status
    for name in ISSUE_17_ALARMS:
        wait_for(page, "n => document.querySelector(`#alarms li[data-alarm='${n}']`) !== null", name)
        line = page.locator(f"#alarms li[data-alarm='{name}']")
        assert f"{name} fired" in line.inner_text()
        red = "rgb(248, 81, 73)"
        assert line.evaluate("el => getComputedStyle(el).borderLeftColor") == red
        assert line.evaluate("el => getComputedStyle(el).color") == red


CHARTS_LOADED = """() => {
    const imgs = [...document.querySelectorAll('#charts img[data-chart]')];
    return imgs.length === 6 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""


def test_the_charts_of_the_last_hour_load_from_the_coordinator_and_redraw(page: "Page", served: Served) -> None:
    wait_for(page, LOADED)
    wait_for(page, CHARTS_LOADED)
    first = page.locator("#charts img[data-chart='jobs']").get_attribute("src")
    served.fund.assign()  # each move is a new sample: the jobs chart gets its first rates
    served.fund.complete()
    wait_for(page, "s => document.querySelector(`#charts img[data-chart='jobs']`).getAttribute('src') !== s", first)
    wait_for(page, CHARTS_LOADED)
    svg = page.evaluate("() => fetch(document.querySelector(`#charts img[data-chart='jobs']`).src).then(r => r.text())")
    assert 'data-series="leased"' in svg
    payouts = page.evaluate(
        "() => fetch(document.querySelector(`#charts img[data-chart='payouts']`).src).then(r => r.text())"
    )
    assert 'data-bar="2"' in payouts  # the fixture's three settled epochs


def skip_without_browser() -> None:
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("AICF_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AICF_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def save_screenshot(page: "Page", tmp_path: Path) -> None:
    page.evaluate("() => document.querySelectorAll('tr.flash').forEach(r => r.classList.remove('flash'))")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if not DOC_SCREENSHOT.exists() or os.environ.get("AICF_UPDATE_SCREENSHOT") == "1":
        DOC_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOC_SCREENSHOT)
