"""A landing day of files as other systems export them (issue 22): gzip and zstd, a gzip file
behind a `.csv` name, upper-case headers, a spreadsheet's UTF-16 "Unicode text", a stray
Windows-1252 line in a UTF-8 file, a header with broken quoting, a literal NA, an archive cut
short. Every valid row reaches the clean table, every other line is recorded with its reason,
and a compressed file rejects the same lines under the same numbers as the plain one.
"""

from __future__ import annotations

import dataclasses
import gzip
import json

from conftest import source_runner
from helpers import run_check, run_metadata
from hostile_files import COLUMNS, csv_text, event, jsonl_text, unicode_text, zstd
from ml_platform.declarations.sources.events import SPEC as EVENTS

DAY = "2026-11-02"


def _rows(prefix: str, n: int, **overrides) -> list[dict]:
    return [event(f"{prefix}{i}", minute=i, **overrides) for i in range(1, n + 1)]


def _land(data_dir, name: str, data: bytes | str) -> None:
    path = data_dir / "landing" / "events" / DAY / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _export_day(data_dir) -> None:
    """The day's files; the valid rows are those `_expected_clean` lists."""
    orders = csv_text(_rows("o", 4)).split("\n")
    orders.insert(3, "o-bad,u,page_view")  # line 4: three fields
    _land(data_dir, "orders_export.csv.gz", gzip.compress("\n".join(orders).encode()))
    delivery = jsonl_text(_rows("f", 1)) + '{"event_id": "f-bad",\n' + jsonl_text(_rows("f", 3)[1:])
    _land(data_dir, "delivery-0001.jsonl.zst", zstd(delivery.encode()))
    upper = csv_text(_rows("c", 2)).split("\n", 1)[1]
    _land(data_dir, "CRM_EXPORT.CSV", ",".join(c.upper() for c in COLUMNS) + "\n" + upper)
    _land(data_dir, "unicode_text.csv", unicode_text([event("u1", session_id="séance"), event("u2", user_id="Zoë")]))
    latin = event("m3", session_id="café")
    latin_line = ",".join(latin[c] for c in COLUMNS).encode("cp1252") + b"\n"
    _land(data_dir, "mostly_utf8.csv", csv_text(_rows("m", 2, session_id="naïve")).encode() + latin_line)
    broken = ",".join('"user_id' if c == "user_id" else c for c in COLUMNS) + "\n"
    _land(data_dir, "broken_header.csv", broken + csv_text(_rows("b", 5)).split("\n", 1)[1])
    _land(data_dir, "dump.csv", gzip.compress(csv_text(_rows("d", 2, product_id="NA")).encode()))
    whole = gzip.compress(csv_text(_rows("t", 300)).encode())
    _land(data_dir, "truncated.csv.gz", whole[: len(whole) // 2])


def _expected_clean(na_product: str | None) -> list[tuple]:
    """(event_id, user_id, product_id, session_id) of every valid row of the day."""
    rows = [
        *(f"o{i}" for i in range(1, 5)),
        *(f"f{i}" for i in range(1, 4)),
        "c1",
        "c2",
        "u1",
        "u2",
        "m1",
        "m2",
        "m3",
        *(f"b{i}" for i in range(1, 6)),
        "d1",
        "d2",
    ]
    user = {"u2": "Zoë"}
    session = {"u1": "séance", "m1": "naïve", "m2": "naïve", "m3": "café"}
    product = {"d1": na_product, "d2": na_product}
    return sorted((i, user.get(i, f"user-{i}"), product.get(i), session.get(i, "s1")) for i in rows)


def test_a_day_of_exported_files_keeps_every_valid_row_and_records_every_other_line(instance, data_dir):
    _export_day(data_dir)
    runner = source_runner(EVENTS, instance, data_dir)
    raw = runner.run("raw_events", "clean_events", partition=DAY)

    clean = "SELECT event_id, user_id, product_id, session_id FROM clean_events ORDER BY 1"
    assert runner.query(clean) == _expected_clean(na_product="NA")
    assert runner.query("SELECT count(*) FROM quarantine_events") == [(0,)]

    f = f"events/{DAY}/"
    assert runner.query("SELECT source_file, line, reason, excerpt FROM rejected_lines ORDER BY 1, 2") == [
        (f + "delivery-0001.jsonl.zst", 2, "not valid JSON", '{"event_id": "f-bad",'),
        (f + "orders_export.csv.gz", 4, "fewer fields than the header's 8", "o-bad,u,page_view"),
    ]
    ledger = "SELECT source_file, status, row_count, compression, encoding, fallback_lines FROM ingest_ledger"
    assert runner.query(ledger + " ORDER BY 1") == [
        (f + "CRM_EXPORT.CSV", "ingested", 2, None, "utf-8", 0),
        (f + "broken_header.csv", "partly_read", 5, None, "utf-8", 0),
        (f + "delivery-0001.jsonl.zst", "partly_read", 3, "zstd", "utf-8", 0),
        (f + "dump.csv", "ingested", 2, "gzip", "utf-8", 0),
        (f + "mostly_utf8.csv", "ingested", 3, None, "utf-8", 1),
        (f + "orders_export.csv.gz", "partly_read", 4, "gzip", "utf-8", 0),
        (f + "truncated.csv.gz", "unreadable", 0, None, None, 0),
        (f + "unicode_text.csv", "ingested", 2, None, "utf-16-le", 0),
    ]
    renamed = dict(
        runner.query("SELECT source_file, renamed_columns FROM ingest_ledger WHERE renamed_columns IS NOT NULL")
    )
    assert renamed == {
        f + "CRM_EXPORT.CSV": {c.upper(): c for c in COLUMNS},
        f + "broken_header.csv": {'"user_id': "user_id"},
    }
    assert runner.query("SELECT source_file, status, reason FROM quarantined_files ORDER BY 1") == [
        (
            f + "broken_header.csv",
            "partly_read",
            "the header's quoting is broken (a quote opened and not closed, or text after a closing quote): its"
            " names were split at every delimiter, quotes around them dropped:"
            " 'event_id,\"user_id,event_type,event_time,product_id,amount,device_type,session_id'",
        ),
        (f + "delivery-0001.jsonl.zst", "partly_read", "1 line(s) rejected, see rejected_lines"),
        (f + "orders_export.csv.gz", "partly_read", "1 line(s) rejected, see rejected_lines"),
        (f + "truncated.csv.gz", "unreadable", "truncated gzip archive: the copy was cut short, land it again"),
    ]
    # Every line of every file read, rejected or in a refused file: nothing unaccounted for.
    assert runner.query("SELECT count(*) FROM ingest_ledger WHERE status = 'unaccounted'") == [(0,)]
    metadata = run_metadata(raw, "raw_events")
    assert (metadata["rows_ingested"], metadata["rows_rejected"], metadata["lines_decoded_with_fallback"]) == (21, 2, 1)
    assert metadata["values_read_as_null"] == {}
    files = run_check(raw, "raw_events", "files")
    assert (files.metadata["lines_decoded_with_fallback"].value, files.metadata["decoded_with_fallback"].value) == (
        1,
        {f + "mostly_utf8.csv": 1},
    )


def test_a_declared_null_marker_reads_as_null_and_is_counted(instance, data_dir):
    _export_day(data_dir)
    runner = source_runner(dataclasses.replace(EVENTS, null_values=("NA",)), instance, data_dir)
    raw = runner.run("raw_events", "clean_events", partition=DAY)
    assert runner.query("SELECT event_id, user_id, product_id, session_id FROM clean_events ORDER BY 1") == (
        _expected_clean(na_product=None)
    )
    assert run_metadata(raw, "raw_events")["values_read_as_null"] == {"product_id": {"NA": 2}}
    [(markers,)] = runner.query(f"SELECT null_markers FROM ingest_ledger WHERE source_file = 'events/{DAY}/dump.csv'")
    assert json.loads(markers) == {"product_id": {"NA": 2}}


def test_compressed_files_reject_the_same_lines_under_the_same_numbers_as_plain_ones(instance, data_dir):
    rows = _rows("q", 3, session_id="two\nlines")  # quoted line breaks: a row spans two lines
    lines = csv_text(rows).split("\n")
    lines[1:1] = ["q-bad,u", "", "x,y,z,1,2,3,4,5,6,7"]
    text = "\n".join(lines)
    jsonl = jsonl_text(_rows("j", 2)) + "\nnot json\n\n" + jsonl_text(_rows("k", 2))
    for name, compress in (("plain", lambda b: b), ("gzip", gzip.compress), ("zstd", zstd)):
        suffix = {"plain": "", "gzip": ".gz", "zstd": ".zst"}[name]
        _land(data_dir, f"{name}.csv{suffix}", compress(text.encode()))
        _land(data_dir, f"{name}.jsonl{suffix}", compress(jsonl.encode()))
    runner = source_runner(EVENTS, instance, data_dir)
    runner.run("raw_events", partition=DAY)

    def rejected(name: str) -> list[tuple]:
        return runner.query(
            "SELECT line, reason, excerpt FROM rejected_lines WHERE source_file = ? ORDER BY 1",
            [f"events/{DAY}/{name}"],
        )

    assert rejected("plain.csv") == [
        (2, "fewer fields than the header's 8", "q-bad,u"),
        (4, "more fields than the header's 8", "x,y,z,1,2,3,4,5,6,7"),
    ]
    assert rejected("gzip.csv.gz") == rejected("zstd.csv.zst") == rejected("plain.csv")
    assert rejected("plain.jsonl") == [(4, "not valid JSON", "not json")]
    assert rejected("gzip.jsonl.gz") == rejected("zstd.jsonl.zst") == rejected("plain.jsonl")
    counts = "SELECT regexp_replace(source_file, '.*/(\\w+)\\.(\\w+).*', '\\2'), status, row_count, rows_rejected"
    assert sorted(set(runner.query(counts + " FROM ingest_ledger"))) == [
        ("csv", "partly_read", 3, 2),
        ("jsonl", "partly_read", 4, 1),
    ]
    raw_rows = "SELECT source_row, record FROM raw_events WHERE source_file LIKE ? ORDER BY 1"
    for fmt in ("csv", "jsonl"):
        plain = runner.query(raw_rows, [f"%plain.{fmt}"])
        assert runner.query(raw_rows, [f"%gzip.{fmt}.gz"]) == runner.query(raw_rows, [f"%zstd.{fmt}.zst"]) == plain
