"""Training-set assets, their manifest, the baseline model and its leaky twin, end to end in process.

Fifty days of purchases by thirty users, half of whom stop buying at different days: the churn
label, user_activity and the churn training set are built by the platform's own assets; the
expected label rows come from a plain-Python reading of the same fixture.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from conftest import BuiltState, Runner, build_state, write_landing
from helpers import pseudonym, run_metadata
from ml_platform.declarations import discover_training_sets
from ml_platform.training.manifest import manifest_changes
from ml_platform.training.model_asset import load_model
from ml_platform.warehouse import connect

FIRST = dt.date(2026, 8, 1)
DAYS = 50
USERS = 30
EVENTS = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"


def _stop_day(user: int) -> int | None:
    """Odd users stop buying (and visiting) after a day between 3 and 14; even users never stop."""
    return 3 + user % 12 if user % 2 else None


def _purchase_days(user: int) -> list[int]:
    stop = _stop_day(user)
    return [d for d in range(user % 3, DAYS) if d % (2 + user % 3) == user % 3 and (stop is None or d < stop)]


def _land(data_dir) -> None:
    users = "".join(
        f"u{u:02d},2026-07-01,{'DE' if u % 3 else 'US'},{'pro' if u % 4 else 'free'}\n" for u in range(USERS)
    )
    write_landing(data_dir, "users", FIRST.isoformat(), "users.csv", "user_id,signup_date,country,plan\n" + users)
    for day in range(DAYS):
        date = FIRST + dt.timedelta(days=day)
        rows = []
        for user in range(USERS):
            if day in _purchase_days(user):
                rows.append(
                    f"e{day}-{user},u{user:02d},purchase,{date}T10:00:00Z,P1,{10 + user}.0,mobile,s{day}-{user}"
                )
        write_landing(data_dir, "events", date.isoformat(), "events.csv", EVENTS + "\n".join(rows) + "\n")


def _expected_labels() -> list[tuple]:
    """(as-of day, user's pseudonym, churned) for the final as-of days: newest landing (day 49) - 33 = day 16."""
    expected = []
    for as_of in range(1, 17):
        for user in range(USERS):
            purchases = _purchase_days(user)
            if purchases and purchases[0] < as_of:
                churned = not any(as_of <= d < as_of + 30 for d in purchases)
                expected.append((FIRST + dt.timedelta(days=as_of), pseudonym(f"u{user:02d}"), churned))
    # The set's order: as-of time, then the (pseudonymized) user id.
    return sorted(expected)


@pytest.fixture(scope="module")
def starting_state(tmp_path_factory) -> BuiltState:
    """The fifty days through the churn training set, built once (about 20 s) for the tests of
    `built`: each gets its own copy of the warehouse and instance (conftest.BuiltState)."""
    from ml_platform.definitions import build_definitions

    with build_state(tmp_path_factory.mktemp("churn_built")) as (state, instance):
        runner = Runner(build_definitions(), instance, state.data_dir)
        _land(state.data_dir)
        last = (FIRST + dt.timedelta(days=DAYS - 1)).isoformat()
        runner.run("raw_users", partition=FIRST.isoformat())
        runner.run("clean_users")
        runner.run("raw_events", range_=(FIRST.isoformat(), last))
        runner.run("clean_events", range_=(FIRST.isoformat(), last))
        runner.run("user_activity", range_=(FIRST.isoformat(), last))
        runner.run("churn_label", range_=(FIRST.isoformat(), last))
        state.value = runner.run("churn_training_set")
    return state


@pytest.fixture
def built(starting_state: BuiltState) -> dg.ExecuteInProcessResult:
    """The churn training set's run; the test's `data_dir` and `instance` are copies of what it built."""
    return starting_state.value


def _table_hash(runner, table: str) -> tuple:
    return runner.query(f"SELECT count(*), sum(hash(t)) FROM {table} t")[0]


def test_the_training_set_is_the_label_rows_with_features_as_of_then_split_by_time(built, runner):
    expected = _expected_labels()
    rows = runner.query("SELECT CAST(event_timestamp AS DATE), user_id, churned, split FROM training_set_churn")
    # Every final label row once, oldest first; the last 7 as-of days (08-11 … 08-17) validate.
    assert [r[:3] for r in rows] == expected
    cutoff = dt.date(2026, 8, 11)
    assert [r[3] for r in rows] == ["validation" if r[0] >= cutoff else "train" for r in rows]
    metadata = run_metadata(built, "churn_training_set")
    assert metadata["dagster/row_count"] == len(expected)
    assert metadata["validation_rows"] == sum(r[0] >= cutoff for r in expected)
    assert metadata["validation_from"] == "2026-08-11 00:00:00"
    # Features as known at midnight before the as-of day: u01 buys every 3 days from day 1 and
    # stops on day 4, so it bought once (11.0, day 1); as of day 4 (08-05) that was 3 days before.
    assert runner.query(
        "SELECT lifetime_value, purchases, days_since_last_purchase, churned FROM training_set_churn "
        "WHERE user_id = ? AND event_timestamp = '2026-08-05'",
        [pseudonym("u01")],
    ) == [(11.0, 1, 3, True)]


def test_the_manifest_records_every_input_partition_and_a_rebuild_is_identical(built, runner, instance):
    manifest = runner.query(
        "SELECT input, partition, rows, data_version IS NOT NULL, run_id IS NOT NULL FROM training_set_churn_manifest "
        "ORDER BY input, partition"
    )
    label_days = sorted({r[0] for r in _expected_labels()})
    assert [(r[0], r[1]) for r in manifest if r[0] == "churn_label"] == [
        ("churn_label", d.isoformat()) for d in label_days
    ]
    # user_activity: the entity days, back to the first minus its 2-day TTL and a day; it starts on 08-02.
    assert [r[1] for r in manifest if r[0] == "user_activity"] == [
        (FIRST + dt.timedelta(days=d)).isoformat() for d in range(1, 18)
    ]
    assert all(r[3] and r[4] for r in manifest)
    label_runs = runner.query("SELECT DISTINCT run_id FROM training_set_churn_manifest WHERE input = 'churn_label'")
    assert label_runs == [(instance.get_latest_materialization_event(dg.AssetKey("churn_label")).run_id,)]

    before = _table_hash(runner, "training_set_churn")
    with connect(runner.data_dir / "warehouse.duckdb", read_only=True) as con:
        assert manifest_changes(con, "training_set_churn_manifest") == []
    runner.run("churn_training_set")
    assert _table_hash(runner, "training_set_churn") == before


def _late_purchase(runner: Runner, data_dir, through: str) -> None:
    """A late purchase of u00 on 08-05 (landed 08-06), taken through raw, clean and user_activity,
    which it changes as of 08-06 onwards (`through` is the last day rebuilt)."""
    write_landing(
        data_dir,
        "events",
        "2026-08-06",
        "late.csv",
        EVENTS + "late1,u00,purchase,2026-08-05T23:00:00Z,P1,99.0,mobile,s\n",
    )
    runner.run("raw_events", partition="2026-08-06")
    runner.run("clean_events", range_=("2026-08-03", "2026-08-06"))
    runner.run("user_activity", range_=("2026-08-06", through))


def test_a_changed_feature_partition_makes_the_manifest_report_the_set_stale(built, runner, data_dir):
    _late_purchase(runner, data_dir, "2026-08-20")
    with connect(runner.data_dir / "warehouse.duckdb", read_only=True) as con:
        changes = manifest_changes(con, "training_set_churn_manifest")
    assert changes == [f"user_activity 2026-08-{day:02d}: content changed (30 -> 30 rows)" for day in range(6, 19)]


def test_the_baseline_is_fitted_on_the_training_window_only_and_the_leaky_twin_scores_better(built, runner):
    model_run = runner.run("churn_model", "churn_leaky_model")
    baseline = run_metadata(model_run, "churn_model")
    leaky = run_metadata(model_run, "churn_leaky_model")
    assert baseline["trained"] and leaky["trained"]
    frame = pd.DataFrame(
        runner.query("SELECT lifetime_value, split FROM training_set_churn"),
        columns=["lifetime_value", "split"],
    )
    assert baseline["train_rows"] == int((frame.split == "train").sum())
    assert baseline["validation_rows"] == int((frame.split == "validation").sum())

    # Saved in the storage (here the data folder), where the model's metadata says.
    saved = runner.data_dir / "models" / "churn.pkl"
    assert baseline["model_path"] == str(saved)
    assert saved.is_file()
    model = load_model("churn")
    numeric = model.named_steps["features"].named_transformers_["numeric"]
    column = list(model.named_steps["features"].transformers_[0][2]).index("lifetime_value")
    scaler = numeric.named_steps["standardscaler"]
    train_mean = frame.lifetime_value[frame.split == "train"].mean()
    assert scaler.mean_[column] == pytest.approx(train_mean)
    assert scaler.mean_[column] != pytest.approx(frame.lifetime_value.mean())

    # Purchases over all history say whether a user still buys later: the leak wins.
    assert leaky["roc_auc"] > baseline["roc_auc"]
    validation = [r for r in _expected_labels() if r[0] >= dt.date(2026, 8, 11)]
    assert baseline["validation_positive_rate"] == pytest.approx(sum(r[2] for r in validation) / len(validation))
    # Days since the last purchase tell churn apart honestly too: the baseline learns something.
    assert baseline["roc_auc"] > 0.8


def test_a_model_waits_for_a_trainable_set_without_failing(runner, data_dir):
    run = runner.run("churn_training_set", "churn_model", "churn_leaky_model")
    assert run_metadata(run, "churn_training_set")["dagster/row_count"] == 0
    waiting = {
        "trained": False,
        "reason": "the training rows hold 0 row(s) and 0 label class(es); a model needs both classes",
    }
    assert run_metadata(run, "churn_model") == waiting
    assert run_metadata(run, "churn_leaky_model") == waiting


def test_every_training_set_names_features_of_existing_views_and_a_label(defs):
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    for spec in discover_training_sets():
        assert {f"{spec.name}_training_set", f"{spec.name}_model", spec.label, *spec.views} <= keys
    assert dg.AssetKey("latest_features") in defs.resolve_asset_graph().get_all_asset_keys()


def test_device_failure_set_on_the_demo_plant_keeps_every_label_row_and_trains(runner, data_dir):
    from ml_platform.demo import generate

    demo = generate(data_dir, days=8, events_per_day=20, seed=5, end_date=dt.date(2026, 11, 20))
    first, last = demo["start_date"], demo["end_date"]
    for source in ("telemetry", "maintenance"):
        runner.run(f"raw_{source}", range_=(first, last))
        runner.run(f"clean_{source}", range_=(first, last))
    runner.run("device_health", range_=(first, last))
    runner.run("device_failure_label", range_=(first, last))
    run = runner.run("device_failure_training_set", "device_failure_model", "device_failure_leaky_model")

    # Telemetry of the last day (11-20) settles the log up to 11-16: device-hours of 11-13 … 11-16.
    assert runner.query("SELECT min(hour_date), max(hour_date) FROM device_failure_label") == [
        (dt.date(2026, 11, 13), dt.date(2026, 11, 16))
    ]
    labels = runner.query("SELECT count(*), count(*) FILTER (WHERE fails_within_24h) FROM device_failure_label")[0]
    assert runner.query(
        "SELECT count(*), count(*) FILTER (WHERE fails_within_24h) FROM training_set_device_failure"
    ) == [labels]
    # The label, recomputed here from the log: a failure within 24 h of the hour's end.
    assert runner.query(
        "SELECT count(*) FROM device_failure_label l WHERE fails_within_24h <> EXISTS ("
        " SELECT 1 FROM clean_maintenance m WHERE m.device_id = l.device_id AND m.event_type = 'failure'"
        " AND m.event_time >= l.event_timestamp AND m.event_time < l.event_timestamp + INTERVAL 24 HOUR)"
    ) == [(0,)]
    # Health as known then: telemetry of a landing day is known from the next midnight, so the
    # hours of the first demo day (11-13) have no health yet, and every later hour has; the rows
    # stay either way. No weather source is configured here: the weather is null, the rows stay.
    assert runner.query(
        "SELECT CAST(event_timestamp AS DATE) AS day, count(*) FILTER (WHERE temperature_mean_24h IS NULL)"
        " = count(*), count(*) FILTER (WHERE temperature_mean_24h IS NULL) > 0, count(temperature_c)"
        " FROM training_set_device_failure GROUP BY day ORDER BY day"
    ) == [
        (dt.date(2026, 11, 13), True, True, 0),
        *((dt.date(2026, 11, day), False, False, 0) for day in range(14, 18)),
    ]
    metadata = run_metadata(run, "device_failure_model")
    assert metadata["trained"] is True
    assert metadata["train_rows"] + metadata["validation_rows"] == labels[0]


def test_a_set_on_lake_tables_is_rebuilt_from_its_snapshots_after_the_tables_changed(instance, data_dir, monkeypatch):
    """With lake tables, a build records (and tags) the snapshot of every input it read;
    `rebuild_training_set` reads them again and gives that build's rows, after the inputs changed
    and the set was built again, and after housekeeping expired every untagged snapshot."""
    from ml_platform.definitions import build_definitions
    from ml_platform.lakehouse.housekeeping_asset import lake_housekeeping
    from ml_platform.lakehouse.tables import load_table
    from ml_platform.training import rebuild_training_set

    monkeypatch.setenv("ML_PLATFORM_PARALLEL_RAW", "true")
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    runner = Runner(build_definitions(), instance, data_dir)
    _land(data_dir)
    last = (FIRST + dt.timedelta(days=DAYS - 1)).isoformat()
    runner.run("raw_users", partition=FIRST.isoformat())
    runner.run("clean_users")
    for asset in ("raw_events", "clean_events", "user_activity", "churn_label"):
        runner.run(asset, range_=(FIRST.isoformat(), last))
    first_build = run_metadata(runner.run("churn_training_set"), "churn_training_set")
    first_rows = runner.query("SELECT * FROM training_set_churn")
    snapshots = first_build["lake_snapshots"]
    # No transactions landed: user_transactions has no snapshot, and reads as empty.
    assert sorted(snapshots) == ["churn_label", "user_activity", "user_transactions"]
    assert snapshots["user_transactions"] is None
    assert snapshots["user_activity"] == load_table("user_activity").current_snapshot().snapshot_id
    assert runner.query("SELECT DISTINCT input, snapshot_id FROM training_set_churn_manifest ORDER BY 1") == sorted(
        (name, snapshot_id) for name, snapshot_id in snapshots.items() if snapshot_id is not None
    )

    # A late purchase changes user_activity from 08-06 on; the set is built again and differs.
    _late_purchase(runner, data_dir, last)
    runner.run("churn_training_set")
    second_rows = runner.query("SELECT * FROM training_set_churn")
    assert second_rows != first_rows and len(second_rows) == len(first_rows)

    # Housekeeping with no retention: only current and tagged snapshots stay.
    table = load_table("user_activity")
    untagged = next(
        s.snapshot_id
        for s in table.snapshots()
        if s.snapshot_id not in (snapshots["user_activity"], table.current_snapshot().snapshot_id)
    )
    dg.materialize([lake_housekeeping], run_config={"ops": {"lake_housekeeping": {"config": {"retention_hours": 0.0}}}})
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        assert rebuild_training_set(con, "churn", snapshots).fetchall() == first_rows
        # Its own manifest table: the latest build.
        assert rebuild_training_set(con, "churn").fetchall() == second_rows
        with pytest.raises(ValueError, match=f"user_activity has no snapshot {untagged}"):
            rebuild_training_set(con, "churn", {**snapshots, "user_activity": untagged})
