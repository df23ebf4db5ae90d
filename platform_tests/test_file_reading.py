"""How file sources read what lands, one property at a time: encoding and its fallback, delimiter
and null markers; the `files` check's WARN and ERROR; files outside any date folder; and a raw partition
that refuses to shrink silently when a landing file it was built from is moved away."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import dagster as dg

from conftest import source_runner, write_landing
from helpers import run_check, run_metadata
from ml_platform.declarations.sources.events import SPEC as EVENTS

DAY = "2026-11-02"
HEADER = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"


def _row(event_id: str, session: str = "s1", amount: str = "", sep: str = ",") -> str:
    return sep.join([event_id, "u1", "purchase", f"{DAY}T10:00:00Z", "p1", amount, "mobile", session]) + "\n"


def test_latin1_lines_are_decoded_with_the_fallback_and_counted_or_read_whole_when_declared(instance, data_dir):
    path = data_dir / "landing" / "events" / DAY / "latin1.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(HEADER.encode() + _row("e1", "séance").encode("latin-1") + _row("e2", "crème").encode("latin-1"))

    # By default, a line that is not UTF-8 is decoded as Windows-1252 and kept; the ledger counts it.
    default = source_runner(EVENTS, instance, data_dir)
    raw = default.run("raw_events", "clean_events", partition=DAY)
    assert default.query("SELECT event_id, session_id FROM clean_events ORDER BY 1") == [
        ("e1", "séance"),
        ("e2", "crème"),
    ]
    assert default.query("SELECT count(*) FROM rejected_lines") == [(0,)]
    assert default.query("SELECT status, encoding, fallback_lines FROM ingest_ledger") == [("ingested", "utf-8", 2)]
    assert run_metadata(raw, "raw_events")["lines_decoded_with_fallback"] == 2

    # Without a fallback, such lines are rejected with the reason.
    strict = source_runner(dataclasses.replace(EVENTS, fallback_encoding=None), instance, data_dir)
    strict.run("raw_events", partition=DAY)
    reason = "not valid utf-8 text (declare the source's encoding, or a fallback_encoding to decode such lines)"
    assert strict.query("SELECT line, reason FROM rejected_lines ORDER BY 1") == [(2, reason), (3, reason)]

    # Declared, the whole file is Latin-1: nothing falls back.
    declared = source_runner(dataclasses.replace(EVENTS, encoding="latin-1"), instance, data_dir)
    declared.run("raw_events", "clean_events", partition=DAY)
    assert declared.query("SELECT event_id, session_id FROM clean_events ORDER BY 1") == [
        ("e1", "séance"),
        ("e2", "crème"),
    ]
    assert declared.query("SELECT count(*) FROM rejected_lines") == [(0,)]
    assert declared.query("SELECT encoding, fallback_lines FROM ingest_ledger") == [("latin-1", 0)]


def test_a_declared_delimiter_keeps_commas_inside_values(instance, data_dir):
    text = HEADER.replace(",", ";") + _row("e1", "a,b", sep=";") + _row("e2", "c,d,e", sep=";")
    write_landing(data_dir, "events", DAY, "semicolons.csv", text)
    runner = source_runner(dataclasses.replace(EVENTS, delimiter=";"), instance, data_dir)
    runner.run("raw_events", "clean_events", partition=DAY)
    assert runner.query("SELECT event_id, session_id FROM clean_events ORDER BY 1") == [("e1", "a,b"), ("e2", "c,d,e")]


def test_only_an_empty_value_is_null_unless_the_source_declares_its_markers(instance, data_dir):
    text = HEADER + _row("e1", "NA", "") + _row("e2", "\\N", "NULL") + _row("e3", "s", "12.5")
    write_landing(data_dir, "events", DAY, "exported_by_r.csv", text)

    # By default 'NA' is a value like any other (a country, a product code): kept as text; 'NULL'
    # in a numeric column is then a type error, quarantined with its rule. Nothing read as NULL.
    default = source_runner(dataclasses.replace(EVENTS, max_quarantine_fraction=1.0), instance, data_dir)
    raw = default.run("raw_events", "clean_events", partition=DAY)
    assert default.query("SELECT event_id, session_id, amount FROM clean_events ORDER BY 1") == [
        ("e1", "NA", None),
        ("e3", "s", 12.5),
    ]
    assert default.query("SELECT record->>'event_id', rule FROM quarantine_events") == [("e2", "amount:type(DOUBLE)")]
    assert run_metadata(raw, "raw_events")["values_read_as_null"] == {}

    # Declared markers: for every column, and per column (session ids here only treat \N as no value).
    declared = dataclasses.replace(
        EVENTS, null_values=("NA", "NULL", "\\N"), column_null_values={"session_id": ("\\N",)}
    )
    runner = source_runner(declared, instance, data_dir)
    raw = runner.run("raw_events", "clean_events", partition=DAY)
    assert runner.query("SELECT event_id, session_id, amount FROM clean_events ORDER BY 1") == [
        ("e1", "NA", None),
        ("e2", None, None),
        ("e3", "s", 12.5),
    ]
    counted = {"amount": {"NULL": 1}, "session_id": {"\\N": 1}}
    assert run_metadata(raw, "raw_events")["values_read_as_null"] == counted
    [(in_ledger,)] = runner.query("SELECT null_markers FROM ingest_ledger")
    assert json.loads(in_ledger) == counted


def _land_good(data_dir, n: int) -> None:
    for i in range(n):
        write_landing(data_dir, "events", DAY, f"good_{i}.csv", HEADER + _row(f"g{i}"))


def test_an_unreadable_file_warns_and_the_rest_of_the_day_is_ingested(instance, data_dir):
    _land_good(data_dir, 4)
    (data_dir / "landing" / "events" / DAY / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    runner = source_runner(EVENTS, instance, data_dir)
    raw = runner.run("raw_events", "clean_events", partition=DAY)

    assert [r[0] for r in runner.query("SELECT event_id FROM clean_events ORDER BY 1")] == ["g0", "g1", "g2", "g3"]
    assert runner.query("SELECT source_file, status, reason FROM quarantined_files") == [
        (
            f"events/{DAY}/image.csv",
            "unreadable",
            "binary data, not text: a PNG image; land it with its real extension",
        )
    ]
    files = run_check(raw, "raw_events", "files")
    assert (files.passed, files.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert files.description.startswith(f"1 of 5 file(s) not read in full: events/{DAY}/image.csv (unreadable: ")
    assert files.metadata["unreadable_share"].value == 0.2

    # Above the source's share of unreadable files, the check is an ERROR.
    strict = source_runner(dataclasses.replace(EVENTS, max_unreadable_file_share=0.1), instance, data_dir)
    files = run_check(strict.run("raw_events", partition=DAY), "raw_events", "files")
    assert (files.passed, files.severity) == (False, dg.AssetCheckSeverity.ERROR)


def test_files_outside_a_date_folder_are_named_and_warn(instance, data_dir):
    _land_good(data_dir, 1)
    write_landing(data_dir, "events", None, "loose.csv", HEADER + _row("x1"))
    write_landing(data_dir, "events", "2026-11-02'; DROP TABLE raw_events; --", "e.csv", HEADER + _row("x2"))
    runner = source_runner(EVENTS, instance, data_dir)
    files = run_check(runner.run("raw_events", partition=DAY), "raw_events", "files")
    assert (files.passed, files.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert [(p["file"], p["status"]) for p in files.metadata["problems"].value] == [
        ("events/2026-11-02'; DROP TABLE raw_events; --/e.csv", "misplaced"),
        ("events/loose.csv", "misplaced"),
    ]
    assert runner.query("SELECT record->>'event_id' FROM raw_events") == [("g0",)]


def test_raw_refuses_to_shrink_when_a_landed_file_is_moved_away(instance, data_dir, tmp_path):
    _land_good(data_dir, 3)
    runner = source_runner(EVENTS, instance, data_dir)
    runner.run("raw_events", partition=DAY)
    (data_dir / "landing" / "events" / DAY / "good_1.csv").rename(tmp_path / "moved.csv")

    refused = runner.run("raw_events", partition=DAY, expect_success=False)
    [failure] = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    assert f"['events/{DAY}/good_1.csv']" in failure.event_specific_data.error.message
    assert sorted(r[0] for r in runner.query("SELECT record->>'event_id' FROM raw_events")) == ["g0", "g1", "g2"]

    # Dropping the file's rows on purpose: the tag says so.
    accepted = dg.materialize(
        [runner.defs.get_assets_def("raw_events")],
        instance=instance,
        resources=runner.defs.resources,
        partition_key=DAY,
        tags={"ml_platform/accept_missing_files": "true"},
    )
    assert accepted.success
    assert sorted(r[0] for r in runner.query("SELECT record->>'event_id' FROM raw_events")) == ["g0", "g2"]


def test_a_raw_run_looks_at_its_own_date_folders_and_at_what_is_outside_any(data_dir, tmp_path):
    """What a run reports as unsupported or refused is what the whole landing tree holds for its
    days and outside any date folder, found without walking the other days' folders."""
    from ml_platform.ingestion.files.landing import refused_files, unsupported_files

    secret = tmp_path / "outside.csv"
    secret.write_text(HEADER + _row("s1"))
    for day in ("2026-11-01", DAY, "2026-11-03"):
        write_landing(data_dir, "events", day, "ok.csv", HEADER + _row("a"))
        write_landing(data_dir, "events", day, "notes.txt", "not events\n")
        write_landing(data_dir, "events", f"{day}/sub", "nested.csv", HEADER + _row("b"))
        (data_dir / "landing" / "events" / day / "link.csv").symlink_to(secret)
    write_landing(data_dir, "events", None, "loose.csv", HEADER + _row("c"))
    write_landing(data_dir, "events", "misc/deep", "x.csv", HEADER + _row("d"))
    write_landing(data_dir, "events", "2026-11-04", "_private.txt", "")
    root = data_dir / "landing"
    window = (dt.date(2026, 11, 2), dt.date(2026, 11, 2))

    def in_run(path: str) -> bool:
        return path.split("/")[1] not in ("2026-11-01", "2026-11-03", "2026-11-04")

    everywhere = [p.relative_to(root).as_posix() for p in unsupported_files(root, "events", ("csv",))]
    windowed = [p.relative_to(root).as_posix() for p in unsupported_files(root, "events", ("csv",), window)]
    assert (
        windowed
        == [p for p in everywhere if in_run(p)]
        == [
            f"events/{DAY}/notes.txt",
            f"events/{DAY}/sub/nested.csv",
            "events/loose.csv",
            "events/misc/deep/x.csv",
        ]
    )
    refused = refused_files(root, "events", window)
    assert refused == {p: r for p, r in refused_files(root, "events").items() if in_run(p)}
    assert list(refused) == [f"events/{DAY}/link.csv"]
