"""Paths stay inside the landing root: a symbolic link in a source's folder, to a file or as a
date folder, is never followed. Its target (here a stand-in for a system file) never reaches the
warehouse; the raw run names it with the reason, and the landing sensor does not request it."""

from __future__ import annotations

from conftest import write_landing
from helpers import run_metadata

EVENTS = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"
SECRET = "root:x:0:0:root:/root:/bin/bash\n"


def _outside(tmp_path):
    """A file and a folder outside the landing root, shaped like what a source would read."""
    secret = tmp_path / "outside" / "passwd.csv"
    secret.parent.mkdir()
    secret.write_text(EVENTS + f"s1,{SECRET.strip()},page_view,2026-11-02T08:00:00Z,,,mobile,s\n")
    folder = tmp_path / "outside" / "day"
    folder.mkdir()
    (folder / "events.csv").write_text(EVENTS + "s2,u9,page_view,2026-11-03T08:00:00Z,,,mobile,s\n")
    return secret, folder


def test_symlinks_are_refused_with_the_reason_and_never_read(runner, data_dir, tmp_path):
    secret, folder = _outside(tmp_path)
    write_landing(
        data_dir, "events", "2026-11-02", "events.csv", EVENTS + "a1,u1,page_view,2026-11-02T09:00:00Z,,,mobile,s\n"
    )
    (data_dir / "landing" / "events" / "2026-11-02" / "passwd.csv").symlink_to(secret)
    (data_dir / "landing" / "events" / "2026-11-03").symlink_to(folder, target_is_directory=True)

    run = runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))

    assert runner.query("SELECT source_file, record->>'user_id' FROM raw_events") == [
        ("events/2026-11-02/events.csv", "u1")
    ]
    assert run_metadata(run, "raw_events")["refused_files"] == {
        "events/2026-11-02/passwd.csv": (
            "events/2026-11-02/passwd.csv is a symbolic link: links are never followed (land the file itself)"
        ),
        "events/2026-11-03": "events/2026-11-03 is a symbolic link: links are never followed (land the file itself)",
    }
    assert run_metadata(run, "raw_events")["files"] == 1


def test_the_landing_sensor_does_not_request_a_symlink(data_dir, defs, instance, tmp_path):
    from helpers import tick

    secret, _ = _outside(tmp_path)
    folder = data_dir / "landing" / "events" / "2026-11-02"
    folder.mkdir(parents=True)
    (folder / "passwd.csv").symlink_to(secret)
    alone = tick(defs, instance, "events_landing_sensor", None)
    assert not alone.run_requests
    # A real file beside it is requested as usual.
    write_landing(
        data_dir, "events", "2026-11-02", "events.csv", EVENTS + "a1,u1,page_view,2026-11-02T09:00:00Z,,,mobile,s\n"
    )
    assert [r.partition_key for r in tick(defs, instance, "events_landing_sensor", alone.cursor).run_requests] == [
        "2026-11-02"
    ]
