"""Landing sensors: a new or rewritten file requests its raw partition, exactly once."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from conftest import USERS_CSV, write_landing
from helpers import tick

EVENTS_HEADER = "event_id,user_id,event_type,event_time,product_id,amount\n"
T0 = 1_790_000_000  # a fixed mtime (seconds), well in the past relative to any test run


def _csv(*rows: str) -> str:
    return EVENTS_HEADER + "".join(r + "\n" for r in rows)


def _land(data_dir: Path, source: str, date: str | None, name: str, text: str, mtime: float = T0) -> Path:
    path = write_landing(data_dir, source, date, name, text)
    os.utime(path, (mtime, mtime))
    return path


def _tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None, sensor: str = "events_landing_sensor"
):
    return tick(defs, instance, sensor, cursor)


def _requests(result) -> list[dg.RunRequest]:
    return list(result.run_requests or [])


def _skipped(result) -> bool:
    """The tick requested nothing and said why."""
    return not result.run_requests and bool(result.skip_message)


ROW = "e1,u1,page_view,2026-11-05T10:00:00Z,,"


def test_sensors_target_their_raw_asset_and_run_by_default(defs):
    graph = defs.resolve_asset_graph()
    events = defs.resolve_sensor_def("events_landing_sensor")
    users = defs.resolve_sensor_def("users_landing_sensor")
    assert events.asset_selection.resolve(graph) == {dg.AssetKey("raw_events")}
    assert users.asset_selection.resolve(graph) == {dg.AssetKey("raw_users")}
    assert events.default_status == dg.DefaultSensorStatus.RUNNING
    assert users.default_status == dg.DefaultSensorStatus.RUNNING


def test_no_files_skips(defs, instance):
    result = _tick(defs, instance, None)
    assert _skipped(result)


def test_one_file_one_request_then_never_again(data_dir, defs, instance):
    _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW))
    result = _tick(defs, instance, None)
    [request] = _requests(result)
    assert request.partition_key == "2026-11-05"
    # The request targets the sensor's selection: raw_events only.
    assert request.asset_selection in (None, [dg.AssetKey("raw_events")])
    assert request.run_key and request.run_key.startswith("events:2026-11-05:")
    assert request.tags["ml_platform/files"] == "1"
    assert result.cursor is not None

    again = _tick(defs, instance, result.cursor)
    assert _skipped(again)
    # Still nothing on a third tick with the (unchanged) cursor.
    assert _skipped(_tick(defs, instance, result.cursor))


def test_files_of_one_date_make_one_request_dates_sorted(data_dir, defs, instance):
    _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW))
    _land(data_dir, "events", "2026-11-05", "b.csv", _csv(ROW.replace("e1", "e2")), T0 + 5)
    [request] = _requests(_tick(defs, instance, None))
    assert request.partition_key == "2026-11-05"
    assert request.tags["ml_platform/files"] == "2"


def test_files_of_two_dates_make_two_requests_sorted_by_date(data_dir, defs, instance):
    # The later date is written first and with the older mtime: order comes from the date.
    _land(data_dir, "events", "2026-11-07", "x.csv", _csv(ROW), T0)
    _land(data_dir, "events", "2026-11-04", "y.csv", _csv(ROW), T0 + 10)
    requests = _requests(_tick(defs, instance, None))
    assert [r.partition_key for r in requests] == ["2026-11-04", "2026-11-07"]
    assert len({r.run_key for r in requests}) == 2


def test_rewritten_file_is_requested_again_with_a_new_run_key(data_dir, defs, instance):
    path = _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW))
    first = _tick(defs, instance, None)
    [r1] = _requests(first)

    path.write_text(_csv(ROW, "e2,u1,search,2026-11-05T11:00:00Z,,"))
    os.utime(path, (T0 + 60, T0 + 60))
    second = _tick(defs, instance, first.cursor)
    [r2] = _requests(second)
    assert r2.partition_key == "2026-11-05"
    assert r2.run_key != r1.run_key
    assert _skipped(_tick(defs, instance, second.cursor))


def test_rewritten_file_same_size_new_mtime_is_requested_again(data_dir, defs, instance):
    path = _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW))
    first = _tick(defs, instance, None)
    [r1] = _requests(first)

    path.write_text(_csv(ROW.replace("u1", "u9")))  # same size, different content
    assert path.stat().st_size == len(_csv(ROW))
    os.utime(path, (T0 + 1, T0 + 1))
    [r2] = _requests(_tick(defs, instance, first.cursor))
    assert r2.partition_key == "2026-11-05"
    assert r2.run_key != r1.run_key


def test_new_file_with_the_cursors_mtime_is_still_picked_up(data_dir, defs, instance):
    a = _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW), T0)
    first = _tick(defs, instance, None)
    [r1] = _requests(first)
    # The cursor is the arrival time: the later of mtime and ctime (os.utime sets ctime to now).
    assert json.loads(first.cursor)["arrived_ns"] == max(a.stat().st_mtime_ns, a.stat().st_ctime_ns)

    # Same second, same date folder: only the new file is requested, not a.csv again.
    _land(data_dir, "events", "2026-11-05", "b.csv", _csv(ROW.replace("e1", "e2")), T0)
    second = _tick(defs, instance, first.cursor)
    [r2] = _requests(second)
    assert r2.partition_key == "2026-11-05"
    assert r2.tags["ml_platform/files"] == "1"
    assert r2.run_key != r1.run_key
    assert _skipped(_tick(defs, instance, second.cursor))


def test_new_file_slightly_older_than_the_cursor_is_still_picked_up(data_dir, defs, instance):
    """Coarse or skewed clocks: a file written a second before the newest one seen still counts."""
    _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW), T0 + 1)
    first = _tick(defs, instance, None)
    _land(data_dir, "events", "2026-11-06", "b.csv", _csv(ROW), T0)
    [request] = _requests(_tick(defs, instance, first.cursor))
    assert request.partition_key == "2026-11-06"


def test_in_flight_and_private_files_are_ignored(data_dir, defs, instance):
    _land(data_dir, "events", "2026-11-05", ".tmp.csv", _csv(ROW))
    _land(data_dir, "events", "2026-11-05", "_x.csv", _csv(ROW))
    assert _skipped(_tick(defs, instance, None))

    # Once renamed to a visible name, the file lands.
    _land(data_dir, "events", "2026-11-05", "x.csv", _csv(ROW))
    [request] = _requests(_tick(defs, instance, None))
    assert request.partition_key == "2026-11-05"
    assert request.tags["ml_platform/files"] == "1"


def test_date_folder_outside_the_partitions_is_not_requested(data_dir, defs, instance):
    _land(data_dir, "events", "1999-01-01", "old.csv", _csv(ROW))
    result = _tick(defs, instance, None)
    assert _requests(result) == []

    _land(data_dir, "events", "1999-01-01", "old.csv", _csv(ROW))
    _land(data_dir, "events", "2026-11-05", "ok.csv", _csv(ROW))
    [request] = _requests(_tick(defs, instance, None))
    assert request.partition_key == "2026-11-05"


def test_users_snapshot_requests_its_landing_day_of_raw_users(data_dir, defs, instance):
    """Snapshots land per day too (landing/users/<YYYY-MM-DD>/): raw_users is partitioned by landing day."""
    assert _skipped(_tick(defs, instance, None, "users_landing_sensor"))
    _land(data_dir, "users", "2026-11-20", "users.csv", USERS_CSV)
    result = _tick(defs, instance, None, "users_landing_sensor")
    [request] = _requests(result)
    assert request.partition_key == "2026-11-20"
    assert request.run_key and request.run_key.startswith("users:2026-11-20:")
    assert _skipped(_tick(defs, instance, result.cursor, "users_landing_sensor"))


def test_snapshot_file_outside_a_date_folder_is_not_requested(data_dir, defs, instance):
    _land(data_dir, "users", None, "users.csv", USERS_CSV)
    assert _skipped(_tick(defs, instance, None, "users_landing_sensor"))


def test_events_sensor_ignores_users_files(data_dir, defs, instance):
    _land(data_dir, "users", "2026-11-05", "users.csv", USERS_CSV)
    assert _skipped(_tick(defs, instance, None))


def test_file_landed_by_rename_with_an_older_mtime_is_picked_up(data_dir, defs, instance):
    _land(data_dir, "events", "2026-11-05", "a.csv", _csv(ROW), T0 + 100)
    first = _tick(defs, instance, None)
    [_] = _requests(first)

    # Written earlier to an in-flight name, renamed into place now: mtime stays T0.
    staged = _land(data_dir, "events", "2026-11-06", ".b.csv.tmp", _csv(ROW), T0)
    staged.rename(staged.with_name("b.csv"))
    [request] = _requests(_tick(defs, instance, first.cursor))
    assert request.partition_key == "2026-11-06"


def test_file_without_a_partition_yet_waits_and_is_requested_once_it_exists(data_dir, instance, monkeypatch):
    """A file dated before its partition exists (clock skew, early export) is kept in the cursor."""
    from ml_platform.definitions import build_definitions

    monkeypatch.setenv("ML_PLATFORM_START_DATE", "2026-11-10")
    before = build_definitions()
    _land(data_dir, "events", "2026-11-05", "early.csv", _csv(ROW))
    first = _tick(before, instance, None)
    assert _requests(first) == []
    assert json.loads(first.cursor)["waiting"] == [f"events/2026-11-05/early.csv:{len(_csv(ROW))}:{T0 * 10**9}"]
    assert _requests(_tick(before, instance, first.cursor)) == []  # still no partition

    monkeypatch.setenv("ML_PLATFORM_START_DATE", "2026-11-01")  # now the partition exists
    after = build_definitions()
    second = _tick(after, instance, first.cursor)
    [request] = _requests(second)
    assert request.partition_key == "2026-11-05"
    assert json.loads(second.cursor)["waiting"] == []
    assert _skipped(_tick(after, instance, second.cursor))


# --- Cost independent of history: which date folders a tick lists -------------------------------
# These tests shrink the clock-skew window so that "older" can be a fraction of a second here.
EDGE_NS = 50_000_000
SETTLE = 0.2  # seconds: longer than EDGE_NS and than coarse filesystem timestamps
OLD_DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
RECENT_DAYS = ["2026-11-06", "2026-11-07", "2026-11-08"]  # the sensor's RECENT_FOLDERS newest


@pytest.fixture
def history(data_dir, defs, instance, monkeypatch):
    """Eight date folders of one file each, the five oldest landed earlier than the three newest,
    and the cursor of the tick that requested them all. `history.listed` collects the date folders
    each later tick lists."""
    from ml_platform.ingestion.files import landing, sensor

    monkeypatch.setattr(sensor, "EDGE_NS", EDGE_NS)
    for n, day in enumerate(OLD_DAYS):
        _land(data_dir, "events", day, "a.csv", _csv(ROW.replace("e1", f"o{n}")))
    staged = _land(data_dir, "staging", None, "moved.csv", _csv(ROW.replace("e1", "m1")))
    _land(data_dir, "staging", "_2026-11-10", "a.csv", _csv(ROW.replace("e1", "f1")))
    time.sleep(SETTLE)
    for n, day in enumerate(RECENT_DAYS):
        _land(data_dir, "events", day, "a.csv", _csv(ROW.replace("e1", f"r{n}")))
    first = _tick(defs, instance, None)
    assert [r.partition_key for r in _requests(first)] == OLD_DAYS + RECENT_DAYS
    time.sleep(SETTLE)

    listed: list[list[str]] = []
    real = landing.landed_files

    def spy(*args, folders=None, **kwargs):
        listed.append([day.isoformat() for day, _ in folders])
        return real(*args, folders=folders, **kwargs)

    monkeypatch.setattr(landing, "landed_files", spy)
    return SimpleNamespace(cursor=first.cursor, listed=listed, staged=staged, events=data_dir / "landing" / "events")


def test_a_quiet_tick_lists_only_the_newest_folders_and_keeps_no_per_folder_state(defs, instance, history):
    assert _skipped(_tick(defs, instance, history.cursor))
    assert history.listed == [RECENT_DAYS]
    cursor = json.loads(history.cursor)
    assert set(cursor) == {"arrived_ns", "checked_ns", "folders", "edge", "waiting"}
    assert cursor["folders"] == ["2026-11-01..2026-11-08"]


def test_a_late_file_in_an_old_folder_is_requested_once(defs, instance, history):
    _land(history.events.parent.parent, "events", "2026-11-02", "late.csv", _csv(ROW.replace("e1", "l1")))
    result = _tick(defs, instance, history.cursor)
    [request] = _requests(result)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-02", "1")
    assert history.listed == [["2026-11-02", *RECENT_DAYS]]
    assert _skipped(_tick(defs, instance, result.cursor))


def test_a_file_moved_into_an_old_folder_with_old_times_is_requested_once(defs, instance, history):
    """Written before the cursor's tick (old mtime and ctime), moved in after it: the move changes
    the folder, and the file's ctime."""
    history.staged.rename(history.events / "2026-11-03" / "moved.csv")
    result = _tick(defs, instance, history.cursor)
    [request] = _requests(result)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-03", "1")
    assert _skipped(_tick(defs, instance, result.cursor))


def test_a_whole_date_folder_landed_by_rename_is_requested_once(defs, instance, history):
    """Its files were written before the cursor's tick (old mtime and ctime); the folder is new."""
    (history.events.parent / "staging" / "_2026-11-10").rename(history.events / "2026-11-10")
    result = _tick(defs, instance, history.cursor)
    [request] = _requests(result)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-10", "1")
    assert json.loads(result.cursor)["folders"] == ["2026-11-01..2026-11-08", "2026-11-10..2026-11-10"]
    assert _skipped(_tick(defs, instance, result.cursor))


def test_a_file_rewritten_by_rename_in_an_old_folder_is_requested_again(defs, instance, history):
    folder = history.events / "2026-11-02"
    before = _tick(defs, instance, None).run_requests  # the run keys of the first requests
    staged = _land(folder.parent.parent.parent, "events", "2026-11-02", ".a.csv.tmp", _csv(ROW, ROW.replace("e1", "x")))
    staged.rename(folder / "a.csv")
    result = _tick(defs, instance, history.cursor)
    [request] = _requests(result)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-02", "1")
    assert request.run_key not in {r.run_key for r in before}
    assert _skipped(_tick(defs, instance, result.cursor))


def test_an_in_place_rewrite_in_an_old_folder_is_seen_once_its_folder_is_touched(defs, instance, history):
    """The documented limit: rewriting a file in place leaves its folder unchanged, so in a folder
    older than the newest RECENT_FOLDERS it is not seen, until the folder is touched."""
    path = history.events / "2026-11-02" / "a.csv"
    path.write_text(_csv(ROW, ROW.replace("e1", "x")))
    os.utime(path, (T0 + 60, T0 + 60))
    assert _skipped(_tick(defs, instance, history.cursor))

    os.utime(path.parent)  # `touch landing/events/2026-11-02`
    result = _tick(defs, instance, history.cursor)
    [request] = _requests(result)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-02", "1")
    assert _skipped(_tick(defs, instance, result.cursor))


def test_an_in_place_rewrite_in_a_recent_folder_is_requested_once(defs, instance, history):
    path = history.events / "2026-11-06" / "a.csv"
    path.write_text(_csv(ROW, ROW.replace("e1", "x")))
    os.utime(path, (T0 + 60, T0 + 60))
    result = _tick(defs, instance, history.cursor)
    [request] = _requests(result)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-06", "1")
    assert history.listed == [RECENT_DAYS]
    assert _skipped(_tick(defs, instance, result.cursor))


def test_a_waiting_file_in_an_old_folder_is_requested_once_its_partition_exists(data_dir, instance, monkeypatch):
    from ml_platform.definitions import build_definitions
    from ml_platform.ingestion.files import sensor

    monkeypatch.setattr(sensor, "EDGE_NS", EDGE_NS)
    monkeypatch.setenv("ML_PLATFORM_START_DATE", "2026-11-10")
    before = build_definitions()
    _land(data_dir, "events", "2026-11-05", "early.csv", _csv(ROW))
    time.sleep(SETTLE)
    recent = ["2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"]
    for day in recent:
        _land(data_dir, "events", day, "a.csv", _csv(ROW))
    first = _tick(before, instance, None)
    assert [r.partition_key for r in _requests(first)] == recent
    time.sleep(SETTLE)
    assert _requests(_tick(before, instance, first.cursor)) == []  # still no partition

    monkeypatch.setenv("ML_PLATFORM_START_DATE", "2026-11-01")
    after = build_definitions()
    second = _tick(after, instance, first.cursor)
    [request] = _requests(second)
    assert (request.partition_key, request.tags["ml_platform/files"]) == ("2026-11-05", "1")
    assert json.loads(second.cursor)["waiting"] == []
    assert _skipped(_tick(after, instance, second.cursor))
