"""The users' three UI flows, tested in a real browser (Chromium via Playwright) on `dagster dev`.

Lineage (and a clean table's columns and checks), materializing one partition by hand, the
sensor running a landed file by itself, a broken contract made visible, and the quality checks'
figures plotted by partition. One platform serves
all flows; each flow uses its own dates, far enough apart that the automation of one (raw day X
requests clean days X-3..X+1) never touches another's, and waits until the platform is idle
again. Every step leaves a screenshot in test-artifacts/ui/; a failing step also leaves the
page's HTML and the browser console.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser import CURATED_GRAPH, chromium, expand_all_groups, expand_lineage_groups
from ml_platform.demo.generator import write_drip_file, write_events_file
from ml_platform.warehouse import connect
from platform_server import ARTIFACTS, Platform, running_platform, write_demo_users

pytestmark = pytest.mark.e2e

UI_ARTIFACTS = ARTIFACTS / "ui"
UI_TIMEOUT_MS = 30_000
FLOW_TIMEOUT = 110.0  # each flow must finish well under two minutes
ASSETS = ("raw_events", "clean_events", "user_daily_features", "raw_users", "clean_users")
EDGES = {
    ("raw_events", "clean_events"),
    ("clean_events", "user_daily_features"),
    ("raw_users", "clean_users"),
    ("clean_users", "user_daily_features"),
}

TODAY = dt.datetime.now(dt.UTC).date()
# Raw day X touches clean days X-3..X+1: these windows are disjoint (2026-01-01 and today are
# clipped by the partitions' first and last day, which also keeps their flows short).
LINEAGE_DAY = dt.date(2026, 1, 1)
MANUAL_DAY = TODAY - dt.timedelta(days=20)
SENSOR_DAY = TODAY
BROKEN_DAY = TODAY - dt.timedelta(days=40)
PLOTS_DAY = TODAY - dt.timedelta(days=60)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    root = tmp_path_factory.mktemp("ui_platform")
    write_demo_users(root / "data")
    failed_before = request.session.testsfailed
    with running_platform(root, sensor_interval=3, name="dagster_dev_ui") as p:
        # The users snapshot flows through first, so every flow starts from the same state.
        p.wait_for(
            lambda: p.check_status("clean_users", "contract") == "SUCCEEDED" and p.idle(),
            90,
            what="the users snapshot to reach clean_users",
        )
        yield p
        if request.session.testsfailed > failed_before:
            p.save_log()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory):
    with chromium(tmp_path_factory.mktemp("chromium_profile"), UI_TIMEOUT_MS) as context:
        yield context


class Flow:
    """A page plus numbered screenshots of each step under test-artifacts/ui/<flow>/."""

    def __init__(self, page: Page, platform: Platform, name: str):
        self.page, self.platform, self.name = page, platform, name
        self.folder = UI_ARTIFACTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.step = 0
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))

    def goto(self, path: str) -> None:
        self.page.goto(self.platform.base_url + path)
        self.page.wait_for_load_state("networkidle")

    def shot(self, label: str) -> None:
        self.step += 1
        self.page.screenshot(path=self.folder / f"{self.step:02d}_{label}.png")

    def save_failure(self) -> None:
        with contextlib.suppress(Exception):
            self.shot("failure")
        with contextlib.suppress(Exception):
            (self.folder / "failure.html").write_text(self.page.content())
        (self.folder / "console.log").write_text("\n".join(self.console) + "\n")


@pytest.fixture
def flow(request: pytest.FixtureRequest, platform: Platform, browser_context):
    """A fresh page for one flow; on failure its screenshot, HTML and console log are kept."""
    # Runs a previous flow caused (e.g. catching up after b re-enables automation) finish first.
    platform.wait_for(platform.idle, 120, what="the platform to become idle before the flow")
    page = browser_context.new_page()
    f = Flow(page, platform, request.node.name.removeprefix("test_"))
    failed_before = request.session.testsfailed
    yield f
    if request.session.testsfailed > failed_before:
        f.save_failure()
    page.close()


def land_drip(platform: Platform, day: dt.date, seq: int = 1, events: int = 20) -> Path:
    now = dt.datetime.now(dt.UTC) if day == TODAY else None
    return write_drip_file(platform.data_dir, day, seq=seq, seed=5, events=events, now=now)


EVENTS_LAYERS = ("raw_events", "clean_events", "user_daily_features")


def wait_raw_by_sensor(platform: Platform, day: str, timeout: float = 60):
    """The successful raw_events run the landing sensor started for `day`."""

    def run():
        return next(
            (
                r
                for r in platform.runs()
                if r.assets == ["raw_events"]
                and r.partition == day
                and r.sensor == "events_landing_sensor"
                and r.status == "SUCCESS"
            ),
            None,
        )

    return platform.wait_for(run, timeout, what=f"the sensor's raw_events run for {day}")


def graph_edges(page: Page, assets: tuple[str, ...] = ASSETS) -> set[tuple[str, str]]:
    """Edges drawn in the lineage SVG: an edge path starts at an upstream node's right side and
    ends at a downstream node's left side (node boxes are the graph's foreignObjects)."""
    # A node is named by the longest asset name its text holds (clean_weather holds "weather").
    assets = tuple(sorted(assets, key=len, reverse=True))
    return set(
        map(
            tuple,
            page.evaluate(
                """(assets) => {
          const nodes = [];
          for (const fo of document.querySelectorAll('svg foreignObject:not(.group)')) {
            const name = assets.find(a => fo.textContent.includes(a));
            if (!name) continue;
            const [x, y, w, h] = ['x', 'y', 'width', 'height'].map(k => parseFloat(fo.getAttribute(k)));
            nodes.push({name, x, y, w, h});
          }
          const num = s => s.split(/[ ,]/).filter(Boolean).map(Number);
          const edges = [];
          for (const p of document.querySelectorAll('svg path[stroke*="lineage-edge"]')) {
            const d = p.getAttribute('d');
            const start = num(d.match(/^M\\s*([\\d.\\-]+[ ,][\\d.\\-]+)/)[1]);
            const all = num(d.replace(/[A-Za-z]/g, ' '));
            const end = all.slice(-2);
            const from = nodes.find(n => Math.abs(start[0] - (n.x + n.w)) <= 12 && start[1] >= n.y && start[1] <= n.y + n.h);
            const to = nodes.find(n => Math.abs(end[0] - n.x) <= 12 && end[1] >= n.y && end[1] <= n.y + n.h);
            if (from && to) edges.push([from.name, to.name]);
          }
          return edges;
        }""",
                list(assets),
            ),
        )
    )


# --- a. lineage, columns and checks --------------------------------------------------------
def test_lineage_columns_and_checks(flow: Flow, platform: Platform):
    day = LINEAGE_DAY.isoformat()
    land_drip(platform, LINEAGE_DAY)
    # Idle too: the landing also requests the next clean day (X+1), whose run would otherwise be
    # the check's "latest execution", still in progress, on the page below.
    platform.wait_for(
        lambda: platform.check_status("clean_events", "contract", day) == "SUCCEEDED" and platform.idle(),
        FLOW_TIMEOUT,
        what=f"clean_events {day} contract result and the runs the landing caused",
    )
    assert platform.lineage_edges() >= EDGES

    page = flow.page
    # "Global asset lineage", filtered to this pipeline (other sources have assets too).
    selection = " or ".join(f"key:{asset}" for asset in ASSETS)
    flow.goto(f"/asset-groups~{urllib.parse.quote(selection)}/")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    flow.shot("lineage_groups")
    expand_lineage_groups(page)
    for asset in ASSETS:
        expect(page.locator("svg foreignObject:not(.group)").get_by_text(asset, exact=True)).to_be_in_viewport()
    flow.shot("lineage_expanded")
    assert graph_edges(page) == EDGES

    # clean_events' column schema, from its contract.
    flow.goto("/assets/clean_events")
    columns = page.locator("table").filter(has_text="Column name")
    for column in ("event_id", "user_id", "event_type", "event_time", "event_date", "amount", "device_type"):
        expect(columns.get_by_text(column, exact=True)).to_be_visible()
    flow.shot("clean_events_columns")

    # Its checks tab: the blocking contract check and its last result.
    page.get_by_text("Checks", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"view=checks"))
    # The list also holds the quality checks (completeness, late_arrivals, volume): pick the contract.
    page.get_by_text("contract", exact=True).first.click()
    expect(page.get_by_text("This is a blocking asset check.", exact=False)).to_be_visible()
    expect(page.get_by_text("contract", exact=True).first).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()  # the check list
    expect(page.get_by_text("Evaluation result", exact=True)).to_be_visible()  # its latest execution
    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    flow.shot("clean_events_checks")


# --- a2. the curated half: feature views, labels, training sets, models -----------------------
def test_lineage_reaches_training_sets_and_models(flow: Flow, platform: Platform):
    # What Dagster knows (GraphQL), restricted to the picture: the chains ML users follow.
    expected = {(up, down) for up, down in platform.lineage_edges() if {up, down} <= set(CURATED_GRAPH)}
    assert {
        ("clean_events", "user_activity"),
        ("clean_events", "churn_label"),
        ("user_activity", "churn_training_set"),
        ("churn_label", "churn_training_set"),
        ("churn_training_set", "churn_model"),
        ("churn_training_set", "churn_leaky_model"),
        ("clean_telemetry", "device_health"),
        ("clean_weather", "weather"),
        ("device_health", "device_failure_training_set"),
        ("weather", "device_failure_training_set"),
        ("device_failure_label", "device_failure_training_set"),
        ("device_failure_training_set", "device_failure_model"),
    } <= expected

    page = flow.page
    page.set_viewport_size({"width": 1800, "height": 1700})  # every node on screen, none culled
    selection = " or ".join(f"key:{asset}" for asset in CURATED_GRAPH)
    flow.goto(f"/asset-groups~{urllib.parse.quote(selection)}/")
    expand_all_groups(page)
    flow.goto(f"/asset-groups~{urllib.parse.quote(selection)}/")  # fitted to the expanded graph
    for group in ("clean", "features", "labels", "training"):
        expect(page.locator("svg foreignObject.group").get_by_text(group, exact=True)).to_be_visible()
    for asset in CURATED_GRAPH:
        expect(page.locator("svg foreignObject:not(.group)").get_by_text(asset, exact=True)).to_be_in_viewport()
    flow.shot("curated_lineage")
    # What the browser draws is what Dagster knows: every edge, and no other.
    assert graph_edges(page, CURATED_GRAPH) == expected


# --- c. a landed file runs by itself --------------------------------------------------------
def test_sensor_runs_landed_file(flow: Flow, platform: Platform):
    day = SENSOR_DAY.isoformat()
    page = flow.page
    flow.goto("/runs")
    flow.shot("runs_before")
    # Nothing of the day's events has run yet. (user_activity's partition of the day may have:
    # it reads every day before it, and earlier tests landed some.)
    assert not [r for r in platform.runs() if r.partition == day and set(r.assets) & set(EVENTS_LAYERS)]
    land_drip(platform, SENSOR_DAY, seq=4)

    raw_run = wait_raw_by_sensor(platform, day)
    flow.goto("/runs")
    # The run's row (the innermost element holding its link and its launcher) on the Runs page.
    row = (
        page.locator("div")
        .filter(has=page.locator(f'a[href="/runs/{raw_run.run_id}"]'))
        .filter(has=page.locator('a[href$="/sensors/events_landing_sensor"]'))
        .last
    )
    expect(row).to_contain_text("raw_events")
    expect(row).to_contain_text(f"partition: {day}")
    expect(row).to_contain_text("Success")
    flow.shot("runs_sensor_run_succeeded")

    # Downstream partitions update by themselves (automation), checks passed.
    platform.wait_for(
        lambda: (
            day in platform.materialized_partitions("user_daily_features")
            and platform.check_status("user_daily_features", "contract", day) == "SUCCEEDED"
        ),
        FLOW_TIMEOUT,
        what=f"user_daily_features {day}",
    )
    assert platform.check_status("clean_events", "contract", day) == "SUCCEEDED"
    assert platform.row_count(platform.materializations("clean_events", day)[0]) == 20
    # Each layer's partition: one run, the automation's for clean and features, its check's result.
    for asset in ("clean_events", "user_daily_features"):
        latest = platform.materializations(asset, day)[0]
        run = next(r for r in platform.runs() if r.run_id == latest["runId"])
        assert (run.sensor, run.partition, run.status) == ("automation", day, "SUCCESS"), run
        assert platform.check_executions(asset, "contract", day)[0]["runId"] == run.run_id
    # The queue takes newer days first (ml_platform.runs.queue): every run of a day is tagged with
    # its distance from today when submitted (a run created but not yet submitted has none yet).
    dated = [r for r in platform.runs() if r.partition and r.status != "NOT_STARTED"]
    assert day in {r.partition for r in dated}
    for run in dated:
        assert run.tags.get("dagster/priority") == str(min(1, (dt.date.fromisoformat(run.partition) - TODAY).days)), run
    flow.goto(f"/assets/user_daily_features?view=partitions&partition={day}")
    expect(page.get_by_text(re.compile(r"Materialized \(\d+\)"))).to_be_visible()
    flow.shot("features_partition")


# --- d. a broken contract is visible and stops downstream ---------------------------------------
def test_failing_check_is_visible(flow: Flow, platform: Platform):
    day = BROKEN_DAY.isoformat()
    page = flow.page
    rows = []
    for n in range(1, 21):
        rows.append(
            {
                "event_id": f"bad-{day}-{n:03d}",
                "user_id": "U00001",
                # 15 of 20 rows (75%) break the event_type rule; the contract allows 10% quarantined.
                "event_type": "bogus" if n <= 15 else "page_view",
                "event_time": f"{day}T10:{n:02d}:00Z",
                "product_id": None,
                "amount": None,
            }
        )
    path = platform.data_dir / "landing" / "events" / day / f"events_{day}_broken.csv"
    write_events_file(path, "csv", "v1", rows)

    wait_raw_by_sensor(platform, day)
    executions = platform.wait_for(
        lambda: [e for e in platform.check_executions("clean_events", "contract", day) if e["status"] == "FAILED"],
        FLOW_TIMEOUT,
        what=f"a failed contract check on clean_events {day}",
    )
    assert executions[0]["evaluation"]["success"] is False
    assert "quarantined_fraction" in executions[0]["evaluation"]["description"]
    # Neighbouring days (no rows) pass and reach the features; the broken day must not.
    neighbours = {(BROKEN_DAY + dt.timedelta(days=k)).isoformat() for k in (-1, 1)}
    platform.wait_for(
        lambda: neighbours <= platform.materialized_partitions("user_daily_features") and platform.idle(),
        FLOW_TIMEOUT,
        what="the neighbouring feature partitions",
    )
    assert platform.materializations("user_daily_features", day) == []
    # A run may target both (automation allows it while the check is pending); it then fails there.
    assert all(
        r.status == "FAILURE" for r in platform.runs() if r.partition == day and "user_daily_features" in r.assets
    )

    flow.goto("/assets/clean_events?view=checks")
    page.get_by_text("contract", exact=True).first.click()
    page.get_by_role("tab", name="Execution history").or_(
        page.get_by_text("Execution history", exact=True)
    ).first.click()
    row = page.locator("tr").filter(has_text=day)
    expect(row.first).to_contain_text("Failed")
    expect(row.first).to_contain_text("quarantined_fraction")
    flow.shot("clean_events_check_failed")
    flow.goto("/assets/user_daily_features?view=partitions")
    flow.shot("features_partitions_without_broken_day")


# --- b. materialize one partition by hand ---------------------------------------------------
def test_materialize_partition_from_ui(flow: Flow, platform: Platform):
    day = MANUAL_DAY.isoformat()
    page = flow.page
    # Automation off for this flow, so clean_events for the day is materialized by the click only.
    platform.set_sensor("automation", running=False)
    try:
        path = land_drip(platform, MANUAL_DAY, seq=6)  # seq 6: a CSV file
        wait_raw_by_sensor(platform, day)
        assert day not in platform.materialized_partitions("clean_events")

        flow.goto("/assets/clean_events?view=partitions")
        flow.shot("partitions_before")
        page.get_by_role("button", name="Materialize…").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Launch runs to materialize clean_events")).to_be_visible()
        selection = dialog.locator("input").first  # the partition selection (Custom)
        selection.fill(day)
        selection.press("Enter")
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
        flow.shot("dialog_one_partition")
        dialog.get_by_role("button", name="Launch 1 run").click()
        expect(dialog).to_be_hidden()

        run = platform.wait_for(
            lambda: next((r for r in platform.runs() if r.assets == ["clean_events"] and r.partition == day), None),
            30,
            what="the launched run",
        )
        assert run.sensor is None  # launched from the UI, not by automation
        flow.goto(f"/runs/{run.run_id}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=90_000)
        flow.shot("run_succeeded")
        assert platform.runs(runIds=[run.run_id])[0].status == "SUCCESS"

        flow.goto(f"/assets/clean_events?view=partitions&partition={day}")
        expect(page.get_by_text(re.compile(r"Materialized \(\d+\)"))).to_be_visible()
        flow.shot("partition_materialized")
        assert day in platform.materialized_partitions("clean_events")

        # The warehouse holds exactly the landed events (the run released the single writer).
        expected = {row["event_id"] for row in _read_events(path)}
        con = connect(platform.warehouse_path, read_only=True, retry_seconds=30)
        try:
            got = {
                r[0]
                for r in con.execute("SELECT event_id FROM clean_events WHERE event_date = ?", [MANUAL_DAY]).fetchall()
            }
        finally:
            con.close()
        assert got == expected and len(got) == 20
    finally:
        platform.set_sensor("automation", running=True)


# --- e. the quality checks' figures, plotted per partition ------------------------------------
def test_quality_figures_are_plotted_by_partition(flow: Flow, platform: Platform):
    """Three days land; each clean partition's quality figures are materialization metadata, so the
    asset's metadata Plots graph them by partition."""
    page = flow.page
    days = [PLOTS_DAY + dt.timedelta(days=k) for k in range(3)]
    for k, day in enumerate(days):
        land_drip(platform, day, seq=6, events=20 + 10 * k)  # seq 6: a CSV file
    platform.wait_for(
        lambda: {d.isoformat() for d in days} <= platform.materialized_partitions("clean_events") and platform.idle(),
        FLOW_TIMEOUT,
        what="the three clean_events partitions",
    )
    flow.goto("/assets/clean_events")
    page.get_by_role("button", name="Plots").first.click()
    # Partitioned: the plots' x axis is the partition by default.
    expect(page.get_by_text("When graphing values by partition", exact=False).first).to_be_visible()
    for figure in (
        "volume_rows",
        "completeness_max_null_rate",
        "late_arrivals_late_rate",
        "uniqueness_keys_on_other_days",
    ):
        expect(page.get_by_text(f"quality/{figure}", exact=True).first).to_be_visible()
    flow.shot("clean_events_quality_plots")


def _read_events(path: Path) -> list[dict]:
    assert path.suffix == ".csv"
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
