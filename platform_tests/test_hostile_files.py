"""One landing day of broken and hostile files (see hostile_files) beside ordinary ones.

The proof of the file-level quarantine: every valid row reaches the clean table, every file is
ingested or quarantined with a reason (in-flight dotfiles are left alone by design), rows are
accounted for per file, lines decoded with the fallback encoding are counted per file, the landing sensor does not crash, and nothing from outside the landing
root appears in the warehouse or in what the runs recorded.
"""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg

from helpers import run_check, tick
from hostile_files import DAY, SECRET, hostile_day
from ml_platform.declarations.sources.events import SPEC


def test_a_hostile_day_keeps_every_valid_row_and_records_every_file(runner, data_dir, defs, instance, tmp_path):
    manifest = hostile_day(data_dir / "landing" / "events" / DAY, tmp_path / "outside")
    assert min(Counter(m.family for m in manifest).values()) >= 50

    sensor = tick(defs, instance, "events_landing_sensor")
    assert [r.partition_key for r in sensor.run_requests] == [DAY]
    raw = runner.run("raw_events", partition=DAY)
    runner.run("clean_events", partition=DAY)

    # Every file: its status, exactly (in-flight names are never looked at).
    path = {m.name: f"events/{DAY}/{m.name}" for m in manifest}

    def reasons_of(f):
        return runner.query("SELECT reason, reader_error FROM quarantined_files WHERE source_file = ?", [f])

    read = dict(runner.query("SELECT source_file, status FROM ingest_ledger WHERE source = 'events'"))
    never_read = dict(
        runner.query(
            "SELECT source_file, status FROM quarantined_files WHERE source = 'events' AND status IN ('refused', 'unsupported')"
        )
    )
    expected = {path[m.name]: m.status for m in manifest if m.status != "in_flight"}
    got = {**read, **never_read}
    assert {
        f: (got.get(f), expected.get(f), reasons_of(f))
        for f in got.keys() | expected.keys()
        if got.get(f) != expected.get(f)
    } == {}
    # Every file not read in full has a reason a person can act on.
    reasons = dict(runner.query("SELECT source_file, reason FROM quarantined_files WHERE source = 'events'"))
    assert set(reasons) == {path[m.name] for m in manifest if m.status not in ("ingested", "in_flight")}
    assert all(len(reason) > 20 for reason in reasons.values()), reasons
    # Rejected lines, file by file, each with its line number and reason.
    rejected = dict(runner.query("SELECT source_file, count(DISTINCT line) FROM rejected_lines GROUP BY 1"))
    for m in manifest:
        if m.rejected_lines is not None:
            assert rejected.get(path[m.name], 0) == m.rejected_lines, m.name
    assert runner.query("SELECT count(*) FROM rejected_lines WHERE line IS NULL OR reason IS NULL") == [(0,)]
    # Rows read + rejected add up to each file's own count: no file is unaccounted for.
    assert runner.query("SELECT count(*) FROM ingest_ledger WHERE status = 'unaccounted'") == [(0,)]
    # Lines not valid UTF-8 were decoded with the fallback, kept, and counted file by file.
    fallback = dict(runner.query("SELECT source_file, fallback_lines FROM ingest_ledger WHERE fallback_lines > 0"))
    assert fallback == {path[m.name]: m.fallback_lines for m in manifest if m.fallback_lines}

    # Every valid row reaches clean; the broken ones are quarantined with their rule.
    valid = sorted(i for m in manifest for i in m.valid_ids)
    assert [r[0] for r in runner.query("SELECT event_id FROM clean_events ORDER BY 1")] == valid
    expected_rules = {i: rule for m in manifest for i, rule in m.quarantined.items()}
    rules = dict(runner.query("SELECT record->>'event_id', rule FROM quarantine_events"))
    assert {i: rules.get(i) for i in expected_rules} == expected_rules

    # The raw `files` check names the problem files: WARN below the unreadable share, ERROR above.
    files = run_check(raw, "raw_events", "files")
    statuses = Counter(m.status for m in manifest)
    attempted = sum(statuses[s] for s in ("ingested", "partly_read", "unreadable"))
    share = statuses["unreadable"] / attempted
    assert files.passed is False
    assert files.severity == (
        dg.AssetCheckSeverity.ERROR if share > SPEC.max_unreadable_file_share else dg.AssetCheckSeverity.WARN
    )
    assert {
        s: files.metadata[f"files_{s}"].value
        for s in ("ingested", "partly_read", "unreadable", "refused", "unsupported")
    } == {s: statuses[s] for s in ("ingested", "partly_read", "unreadable", "refused", "unsupported")}

    # Nothing from outside the landing root anywhere: not in any table, not in what runs recorded.
    tables = runner.query("SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal")
    for table, column in tables:
        hits = runner.query(f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?', [f"%{SECRET}%"])
        assert hits == [(0,)], (table, column)
    logged = [json.dumps(str(e.event_specific_data)) + str(e.message) for e in raw.all_events]
    assert not [entry for entry in logged if SECRET in entry]
