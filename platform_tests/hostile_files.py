"""A generator of broken and hostile landing files, each with a manifest of what it must give.

`hostile_day(folder, outside)` writes, into one landing day of the `events` source, well over 50
files per format family (CSV; JSON Lines and JSON; Parquet): empty, header-only, binary junk,
other delimiters, Latin-1 and Windows-1252 lines, BOM, CRLF, UTF-16 and UTF-32, gzip and zstd
(also behind a wrong extension, cut short, or several members), upper-case and clashing
headers, broken header quoting, ragged rows, a field and a line longer than the line limit,
10,000 columns, quoted newlines, duplicate headers, truncated and mislabelled Parquet, wrong
column types, mixed JSON types, nested objects, NUL in keys, literal null markers, dotfiles,
temp files, symbolic links, names and headers carrying SQL, beside ordinary files.
For each it returns a `Landed` manifest entry: the event ids that are valid (they must reach the
clean table), the status the file must get, how many lines must be rejected and how many decoded
with the fallback encoding. Content that must never appear anywhere carries `SECRET`; it lives
only outside the landing root.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

DAY = "2026-11-02"
SECRET = "TOP-SECRET-OUTSIDE-THE-LANDING-ROOT"
COLUMNS = ["event_id", "user_id", "event_type", "event_time", "product_id", "amount", "device_type", "session_id"]
LINE_LIMIT = 2_097_152  # the events source's max_line_bytes (the default)


@dataclass
class Landed:
    """What one landed file must give."""

    name: str
    family: str
    status: str  # ingested, partly_read, unreadable, refused, unsupported, or in_flight (never looked at)
    valid_ids: list[str] = field(default_factory=list)  # must reach clean_events
    rejected_lines: int | None = 0  # exact lines in rejected_lines (None: not asserted)
    quarantined: dict[str, str] = field(default_factory=dict)  # event id -> clean quarantine rule
    fallback_lines: int = 0  # lines decoded with the fallback encoding (Windows-1252), in the ledger


def event(event_id: str, minute: int = 0, **overrides) -> dict:
    """A valid event of DAY, as text values."""
    row = {
        "event_id": event_id,
        "user_id": f"user-{event_id}",
        "event_type": "page_view",
        "event_time": f"{DAY}T{8 + minute // 60 % 12:02d}:{minute % 60:02d}:00Z",
        "product_id": "",
        "amount": "",
        "device_type": "mobile",
        "session_id": "s1",
    }
    return {**row, **overrides}


def _csv_field(value: str, delimiter: str) -> str:
    if any(c in value for c in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_text(rows: list[dict], columns=COLUMNS, delimiter=",", newline="\n") -> str:
    lines = [delimiter.join(_csv_field(c, delimiter) for c in columns)]
    lines += [delimiter.join(_csv_field(str(r.get(c, "")), delimiter) for c in columns) for r in rows]
    return newline.join(lines) + newline


def jsonl_text(rows: list, newline="\n") -> str:
    return "".join(json.dumps(r) + newline for r in rows)


class HostileDay:
    """Builds the files of one landing day and their manifest."""

    def __init__(self, folder: Path, outside: Path):
        self.folder, self.outside = folder, outside
        self.manifest: list[Landed] = []
        self._next = 0
        folder.mkdir(parents=True, exist_ok=True)

    def ids(self, prefix: str, n: int) -> list[str]:
        start, self._next = self._next, self._next + n
        return [f"{prefix}{i:05d}" for i in range(start, start + n)]

    def add(self, name: str, content: bytes | str, entry: Landed) -> None:
        data = content.encode() if isinstance(content, str) else content
        (self.folder / name).write_bytes(data)
        self.manifest.append(entry)

    def rows(self, prefix: str, n: int, **overrides) -> list[dict]:
        return [event(i, minute=k, **overrides) for k, i in enumerate(self.ids(prefix, n))]


def _csv_family(day: HostileDay, rng: random.Random) -> None:
    def ok(name, rows, text=None, status="ingested", **extra):
        day.add(
            name,
            text if text is not None else csv_text(rows),
            Landed(name, "csv", status, [r["event_id"] for r in rows], **extra),
        )

    for k in range(3):  # ordinary files beside the hostile ones
        ok(f"good_{k}.csv", day.rows("g", 400))
    day.add("empty.csv", b"", Landed("empty.csv", "csv", "partly_read"))
    ok("header_only.csv", [])
    for k in range(6):  # binary junk named .csv: image headers, then noise
        junk = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\x00\x01\x02\x03")[k % 3] + rng.randbytes(2000 + 500 * k)
        day.add(f"junk_{k}.csv", junk, Landed(f"junk_{k}.csv", "csv", "unreadable"))
    for k, delimiter in enumerate([";", "\t", "|", ";", "\t"]):
        rows = day.rows("d", 5)
        ok(f"delimiter_{k}.csv", rows, csv_text(rows, delimiter=delimiter))
    for k in range(4):  # Latin-1 bytes in some rows of a UTF-8 file: decoded as Windows-1252, kept
        good, accented = day.rows("l", 4), day.rows("la", 2 + k % 2, session_id="séance")
        text = csv_text(good).encode() + b"".join(csv_text([r]).split("\n", 1)[1].encode("latin-1") for r in accented)
        ids = [r["event_id"] for r in good + accented]
        day.add(
            f"latin1_{k}.csv", text, Landed(f"latin1_{k}.csv", "csv", "ingested", ids, fallback_lines=len(accented))
        )
    for k, (bom, newline) in enumerate([(True, "\n"), (False, "\r\n"), (True, "\r\n"), (False, "\r\n")]):
        rows = day.rows("b", 3)
        text = ("\ufeff" if bom else "") + csv_text(rows, newline=newline)
        ok(f"bom_crlf_{k}.csv", rows, text)
    for k in range(6):  # ragged rows: some short, some long
        good = day.rows("r", 5)
        body = [",".join(_csv_field(str(r[c]), ",") for c in COLUMNS) for r in good]
        bad = [f"rag{k}a,u,page_view", ",".join(["x"] * (9 + k)), "only-one-field"][: 1 + k % 3]
        lines = body[:2] + bad + body[2:]
        text = ",".join(COLUMNS) + "\n" + "\n".join(lines) + "\n"
        day.add(
            f"ragged_{k}.csv",
            text,
            Landed(f"ragged_{k}.csv", "csv", "partly_read", [r["event_id"] for r in good], len(bad)),
        )
    for k in range(2):  # one field longer than the line limit: that line is rejected
        good, [huge] = day.rows("h", 3), day.rows("hx", 1, session_id="x" * (LINE_LIMIT + 10 + k))
        day.add(
            f"huge_field_{k}.csv",
            csv_text([good[0], huge, *good[1:]]),
            Landed(f"huge_field_{k}.csv", "csv", "partly_read", [r["event_id"] for r in good], 1),
        )
    huge_header = ",".join(COLUMNS) + "," + "y" * (LINE_LIMIT + 5) + "\n"
    day.add("huge_header.csv", huge_header, Landed("huge_header.csv", "csv", "unreadable"))
    wide_columns = COLUMNS + [f"extra_{i}" for i in range(10_000 - len(COLUMNS))]
    rows = day.rows("w", 2)
    ok("wide_10000_columns.csv", rows, csv_text(rows, columns=wide_columns))
    for k in range(3):  # quoted line breaks inside fields
        rows = day.rows("q", 3, session_id=["two\nlines", "crlf\r\ninside", "blank\n\nline"][k])
        ok(f"quoted_newlines_{k}.csv", rows)
    for k in range(2):  # a contract column named twice: which one holds it? The file is refused.
        rows = day.rows("dup", 3)
        text = (
            ",".join([*COLUMNS, ["event_id", "EVENT_ID"][k]])
            + "\n"
            + "".join(",".join([*(str(r[c]) for c in COLUMNS), "not-the-id"]) + "\n" for r in rows)
        )
        day.add(f"duplicate_header_{k}.csv", text, Landed(f"duplicate_header_{k}.csv", "csv", "unreadable"))
    for k in range(2):  # an extra column named twice: the repeat is renamed and reported
        rows = day.rows("dupx", 3)
        text = (
            ",".join([*COLUMNS, "note", "note"])
            + "\n"
            + "".join(",".join([*(str(r[c]) for c in COLUMNS), "a", "b"]) + "\n" for r in rows)
        )
        ok(f"duplicate_extra_header_{k}.csv", rows, text, status="partly_read")
    for k in range(3):  # wrong types: the rows reach raw and are quarantined by clean with the rule
        good = day.rows("t", 2)
        bad_amount, bad_time = day.rows("ta", 1, amount="twelve"), day.rows("tt", 1, event_time="yesterday")
        quarantined = {
            bad_amount[0]["event_id"]: "amount:type(DOUBLE)",
            bad_time[0]["event_id"]: "event_time:unparsable_timestamp",
        }
        ok(f"wrong_types_{k}.csv", good, csv_text(good + bad_amount + bad_time), quarantined=quarantined)
    for k in range(2):  # NUL and other control characters in the key
        good, [nul] = day.rows("n", 2), day.rows("nul", 1)
        nul["event_id"] = nul["event_id"] + ("\x00" if k == 0 else "\x1b[2J")
        ok(
            f"control_in_key_{k}.csv",
            good,
            csv_text(good + [nul]),
            quarantined={nul["event_id"]: "event_id:control_characters"},
        )
    for k in range(3):  # SQL in names, headers and values: all of it is data
        name = ["x'); DROP TABLE raw_events; --.csv", 'quote"d;name.csv', "semi;colon 'or' 1=1.csv"][k]
        rows = day.rows("s", 2, session_id="O'Brien\"; DROP TABLE clean_events; --")
        columns = [*COLUMNS, 'evil"; DROP TABLE ingest_ledger; --', "it's"]
        ok(name, rows, csv_text(rows, columns=columns))
    for k in range(3):  # null markers of R, pandas and databases, undeclared: values like any other
        marker = ["NA", "NULL", "\\N"][k]
        rows = day.rows("na", 3, product_id=marker, session_id=marker)
        [amount] = day.rows("nam", 1, amount=marker)
        ok(
            f"null_markers_{k}.csv",
            rows,
            csv_text(rows + [amount]),
            quarantined={amount["event_id"]: "amount:type(DOUBLE)"},
        )
    for k in range(3):  # a copy cut short in the middle of a row: that row is rejected
        rows = day.rows("cut", 3)
        text = csv_text(rows)
        cut = text.rindex(",", 0, len(text) - 20)
        day.add(
            f"truncated_{k}.csv",
            text[:cut],
            Landed(f"truncated_{k}.csv", "csv", "partly_read", [r["event_id"] for r in rows[:-1]], 1),
        )
    rows = day.rows("bl", 4)
    ok("blank_lines.csv", rows, csv_text(rows).replace("\n", "\n\n", 2))
    rows = day.rows("ws", 2)
    day.add(
        "whitespace_lines.csv",
        csv_text(rows) + "   \n\t\n",
        Landed("whitespace_lines.csv", "csv", "partly_read", [r["event_id"] for r in rows], 2),
    )
    rows = day.rows("uq", 2)
    day.add(
        "unterminated_quote.csv",
        csv_text(rows) + 'uq-bad,u,page_view,"never closed\n',
        Landed("unterminated_quote.csv", "csv", "partly_read", [r["event_id"] for r in rows], None),
    )
    _exported_csv(day, rng)
    for name in [".hidden.csv", "_in_flight.csv", ".events.csv.swp"]:
        day.add(name, csv_text(day.rows("inflight", 1)), Landed(name, "csv", "in_flight"))
    for name in ["events.csv.tmp", "notes.txt", "export.xlsx", "events.csv.part", "README"]:
        day.add(name, csv_text(day.rows("unsup", 1)), Landed(name, "csv", "unsupported"))
    _symlinks(day, "csv")


def _with_header(header: list[str], rows: list[dict], delimiter: str = ",", newline: str = "\n") -> str:
    """`rows` as CSV under a header of other spellings (one name per column of COLUMNS, in order)."""
    body = csv_text(rows, delimiter=delimiter, newline=newline).split(newline, 1)[1]
    return delimiter.join(header) + newline + body


def unicode_text(rows: list[dict], encoding: str = "utf-16-le") -> bytes:
    """A spreadsheet's "Unicode text" export: UTF-16 (or 32) with a byte-order mark, tabs, CRLF."""
    return "\ufeff".encode(encoding) + csv_text(rows, delimiter="\t", newline="\r\n").encode(encoding)


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _exported_csv(day: HostileDay, rng: random.Random) -> None:
    """CSV as other systems export it: compressed, any header case, UTF-16, stray Windows-1252."""

    def add(name, data, valid, status="ingested", rejected=0, **extra):
        day.add(name, data, Landed(name, "csv", status, [r["event_id"] for r in valid], rejected, **extra))

    for k in range(3):  # object stores, Firehose and database dumps deliver gzip or zstd
        rows = day.rows("gz", 4)
        add(f"export_{k}.csv.gz", gzip.compress(csv_text(rows).encode()), rows)
        rows = day.rows("zs", 4)
        add(f"export_{k}.csv.zst", zstd(csv_text(rows).encode()), rows)
    rows = day.rows("gzr", 4)  # a ragged line inside an archive: rejected like in a plain file
    lines = csv_text(rows).split("\n")
    lines.insert(3, "gzr-bad,u,page_view")
    add("ragged.csv.gz", gzip.compress("\n".join(lines).encode()), rows, "partly_read", 1)
    # Names that lie: read by the first bytes.
    rows = day.rows("gzl", 3)
    add("dump.csv", gzip.compress(csv_text(rows).encode()), rows)
    rows = day.rows("zsl", 3)
    add("dump_zstd.csv", zstd(csv_text(rows).encode()), rows)
    rows = day.rows("pgz", 3)
    add("plain.csv.gz", csv_text(rows), rows)
    # Concatenated archives: several gzip members, several zstd frames, cut mid-line.
    rows = day.rows("gzm", 6)
    text = csv_text(rows).encode()
    add("members.csv.gz", gzip.compress(text[:101]) + gzip.compress(text[101:]), rows)
    rows = day.rows("zsm", 6)
    text = csv_text(rows).encode()
    add("frames.csv.zst", zstd(text[:77]) + zstd(text[77:]), rows)
    # Archives cut short, and junk inside an archive: refused whole, with the reason.
    whole = gzip.compress(csv_text(day.rows("gzcut", 200)).encode())
    zwhole = zstd(csv_text(day.rows("zscut", 200)).encode())
    for k in range(2):
        add(f"cut_{k}.csv.gz", whole[: len(whole) * (k + 1) // 3], [], "unreadable")
        add(f"cut_{k}.csv.zst", zwhole[: len(zwhole) * (k + 1) // 3], [], "unreadable")
    add("junk.csv.gz", gzip.compress(rng.randbytes(3000)), [], "unreadable")
    # Header names in any case, with spaces around: matched to the contract (aliases too).
    spellings = [
        [c.upper() for c in COLUMNS],
        [c.title() for c in COLUMNS],
        [f" {c.upper()} " for c in COLUMNS],
        [c.upper() if c != "device_type" else "Device" for c in COLUMNS],
    ]
    for k, header in enumerate(spellings):
        rows = day.rows("uh", 3)
        add(f"upper_header_{k}.csv", _with_header(header, rows), rows)
    rows = day.rows("uhc", 2)  # the alias of device_type twice, in two cases: refused
    header = [*COLUMNS[:6], "device", "DEVICE", "session_id"]
    body = "".join(",".join([*(r[c] for c in COLUMNS[:6]), "mobile", "tablet", r["session_id"]]) + "\n" for r in rows)
    add("clashing_alias.csv", ",".join(header) + "\n" + body, [], "unreadable")
    # UTF-16 and UTF-32 with a byte-order mark (also compressed).
    for k, encoding in enumerate(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]):
        rows = day.rows("u16", 3, session_id="séance ✓")
        add(f"unicode_text_{k}.csv", unicode_text(rows, encoding), rows)
    rows = day.rows("u16z", 3, session_id="naïve")
    add("unicode_text.csv.gz", gzip.compress(unicode_text(rows)), rows)
    # Windows-1252 lines in UTF-8 files (€, ’, and 0x81, which only browsers' windows-1252 maps).
    for k, odd in enumerate([b"5 \x80", b"it\x92s", b"x\x81y"]):
        good, [other] = day.rows("w", 3), day.rows("wx", 1)
        line = csv_text([other]).split("\n")[1].rsplit(",", 1)[0].encode() + b"," + odd + b"\n"
        add(f"windows_1252_line_{k}.csv", csv_text(good).encode() + line, good + [other], fallback_lines=1)
    # Broken quoting in the header (the header and 5 rows): every line read, the header noted.
    for k, name in enumerate(['"user_id', 'session"_id', '"product_id" (sku)']):
        rows = day.rows("bh", 5)
        broken = {"user_id": name} if k == 0 else {"session_id": name} if k == 1 else {"product_id": name}
        add(f"broken_header_{k}.csv", _with_header([broken.get(c, c) for c in COLUMNS], rows), rows, "partly_read")


def _symlinks(day: HostileDay, family: str) -> None:
    """Links to a file outside the landing root, and to an ordinary file inside it: both refused."""
    secret = day.outside / f"secret.{family}"
    secret.write_text(
        csv_text([event("secret-1", user_id=SECRET)])
        if family == "csv"
        else jsonl_text([event("secret-1", user_id=SECRET)])
    )
    suffix = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[family]
    for k, target in enumerate([secret, day.outside / "missing", day.folder / "good_0.csv"]):
        name = f"link_{family}_{k}.{suffix}"
        (day.folder / name).symlink_to(target)
        day.manifest.append(Landed(name, family, "refused"))


def _json_family(day: HostileDay, rng: random.Random) -> None:
    def add(name, text, valid, status="ingested", rejected=0, **extra):
        day.add(name, text, Landed(name, "json", status, [r["event_id"] for r in valid], rejected, **extra))

    for k in range(2):
        rows = day.rows("jg", 300)
        add(f"good_{k}.jsonl", jsonl_text(rows), rows)
    for k in range(6):  # malformed lines among good ones
        rows = day.rows("jm", 4)
        bad = ['{"event_id": "broken', "not json at all", "{'single': 'quotes'}", '{"a": 1'][: 1 + k % 4]
        lines = [json.dumps(r) for r in rows[:2]] + bad + [json.dumps(r) for r in rows[2:]]
        add(f"malformed_{k}.jsonl", "\n".join(lines) + "\n", rows, "partly_read", len(bad))
    for k in range(3):  # blank and whitespace-only lines are not records
        rows = day.rows("jb", 3)
        add(f"blank_lines_{k}.jsonl", "\n\n".join(json.dumps(r) for r in rows) + "\n\n", rows)
    for k in range(4):  # lines that are JSON but not objects
        rows = day.rows("jn", 2)
        others = ["[1, 2, 3]", '"a string"', "42", "null"][: 1 + k]
        add(f"not_objects_{k}.jsonl", jsonl_text(rows) + "\n".join(others) + "\n", rows, "partly_read", len(others))
    for k in range(4):  # arrays and objects in scalar columns are quarantined, never stringified
        good, [nested] = day.rows("jo", 2), day.rows("jnest", 1)
        column = ["user_id", "event_id", "session_id", "amount"][k]
        value = [["u1"], {"id": "x"}, {"deep": {"er": [1]}}, [12.5]][k]
        record = {**nested, column: value}
        quarantined = {} if column == "event_id" else {nested["event_id"]: f"{column}:not_a_scalar"}
        add(f"nested_{k}.jsonl", jsonl_text(good + [record]), good, quarantined=quarantined)
    for k in range(4):  # mixed JSON types: numbers and strings are text alike; a bool is no amount
        good = day.rows("jt", 2)
        good[0]["amount"], good[1]["amount"] = 12.5, "7.25"
        good[0]["event_type"] = "purchase"
        good[1]["event_type"] = "purchase"
        [bad] = day.rows("jtb", 1)
        bad["amount"] = [True, "many", {"v": 1}, -5][k]
        rule = "amount:not_a_scalar" if isinstance(bad["amount"], dict) else "amount:type(DOUBLE)"
        if bad["amount"] == -5:
            rule = "amount:greater_than_or_equal_to(0.0)"
        add(f"mixed_types_{k}.jsonl", jsonl_text(good + [bad]), good, quarantined={bad["event_id"]: rule})
    for k in range(3):  # BOM and CRLF
        rows = day.rows("jc", 3)
        add(f"bom_crlf_{k}.jsonl", ("\ufeff" if k != 1 else "") + jsonl_text(rows, newline="\r\n" if k else "\n"), rows)
    for k in range(3):  # Latin-1 bytes: that line is decoded as Windows-1252 and kept
        rows, [accented] = day.rows("jl", 2), day.rows("jla", 1, session_id="séance")
        text = jsonl_text(rows).encode() + (json.dumps(accented, ensure_ascii=False) + "\n").encode("latin-1")
        add(f"latin1_{k}.jsonl", text, rows + [accented], fallback_lines=1)
    for k in range(2):  # a line longer than the limit
        rows, [huge] = day.rows("jh", 2), day.rows("jhx", 1, session_id="x" * (LINE_LIMIT + k))
        add(f"huge_line_{k}.jsonl", jsonl_text([rows[0], huge, rows[1]]), rows, "partly_read", 1)
    for k in range(3):  # cut short: the last line is rejected
        rows = day.rows("jx", 3)
        text = jsonl_text(rows)
        add(f"truncated_{k}.jsonl", text[: len(text) - 10 - k], rows[:-1], "partly_read", 1)
    for k in range(2):  # NUL and escape characters in the key
        good, [bad] = day.rows("jz", 2), day.rows("jzn", 1)
        bad["event_id"] += "\x00" if k == 0 else "\x07"
        add(
            f"control_in_key_{k}.jsonl",
            jsonl_text(good + [bad]),
            good,
            quarantined={bad["event_id"]: "event_id:control_characters"},
        )
    for k in range(3):  # SQL in keys, values and names
        rows = day.rows("js", 2, session_id="'); DROP TABLE raw_events; --")
        records = [{**r, 'x"; DROP TABLE clean_events; --': 1, "it's": "a'b"} for r in rows]
        add(["j'; DROP TABLE x; --.jsonl", 'j"quoted".jsonl', "j;semi.ndjson"][k], jsonl_text(records), rows)
    for k in range(2):  # null markers, undeclared: values like any other
        rows = day.rows("jna", 2, product_id="NA", session_id="\\N")
        [amount] = day.rows("jnam", 1, amount="NULL")
        add(
            f"null_markers_{k}.jsonl",
            jsonl_text(rows + [amount]),
            rows,
            quarantined={amount["event_id"]: "amount:type(DOUBLE)"},
        )
    add("empty.jsonl", "", [], "partly_read")
    add("whitespace_only.jsonl", "  \n\t\n", [], "partly_read")
    for k in range(4):  # .json arrays of records
        rows = day.rows("ja", 5)
        add(f"array_{k}.json", json.dumps(rows, indent=1 if k % 2 else None), rows)
    for k in range(3):  # arrays with elements that are not records: rejected by position
        rows = day.rows("jae", 2)
        others = [[1], "text", None][: 1 + k]
        add(f"array_mixed_{k}.json", json.dumps([*rows, *others]), rows, "partly_read", len(others))
    for k in range(4):  # arrays cut short: not parseable, the whole file is quarantined
        text = json.dumps(day.rows("jat", 3))
        add(f"array_truncated_{k}.json", text[: len(text) // (k + 2)], [], "unreadable")
    rows = day.rows("jaj", 3)
    add("lines_named_json.json", jsonl_text(rows), rows)
    add("scalar.json", "42", [], "unreadable")
    add("empty.json", "", [], "partly_read")
    for k in range(3):
        nested = day.rows("jan", 1)[0]
        add(
            f"array_nested_{k}.json",
            json.dumps([{**nested, "user_id": {"id": k}}]),
            [],
            quarantined={nested["event_id"]: "user_id:not_a_scalar"},
        )
    for name in [".hidden.jsonl", "_tmp.json"]:
        day.add(name, jsonl_text(day.rows("jinflight", 1)), Landed(name, "json", "in_flight"))
    # Named as compressed, but plain: read by its first bytes, not its name.
    rows = day.rows("jplain", 1)
    add("events.jsonl.gz", jsonl_text(rows), rows)
    for name in ["events.json~", "events.jsonl.gz.part"]:
        day.add(name, jsonl_text(day.rows("junsup", 1)), Landed(name, "json", "unsupported"))
    for k in range(3):  # binary junk behind a JSON start: refused whole
        junk = rng.randbytes(1500)
        add(f"junk_{k}.json", b"[" + junk if k else b"{" + junk, [], "unreadable")
    _exported_json(day, rng)
    _symlinks(day, "json")


def _exported_json(day: HostileDay, rng: random.Random) -> None:
    """JSON Lines and JSON as other systems export them: compressed, keys in any case, UTF-16."""

    def add(name, data, valid, status="ingested", rejected=0, **extra):
        day.add(name, data, Landed(name, "json", status, [r["event_id"] for r in valid], rejected, **extra))

    for k in range(2):
        rows = day.rows("jgz", 4)
        add(f"export_{k}.jsonl.gz", gzip.compress(jsonl_text(rows).encode()), rows)
        rows = day.rows("jzs", 4)
        add(f"export_{k}.jsonl.zst", zstd(jsonl_text(rows).encode()), rows)
    rows = day.rows("jnd", 3)
    add("export.ndjson.gz", gzip.compress(jsonl_text(rows).encode()), rows)
    rows = day.rows("jar", 3)
    add("export_array.json.gz", gzip.compress(json.dumps(rows).encode()), rows)
    rows = day.rows("jlz", 3)
    add("export_lines.json.zst", zstd(jsonl_text(rows).encode()), rows)
    rows = day.rows("jgm", 3)  # a malformed line inside an archive: rejected by its number
    add(
        "malformed.jsonl.gz",
        gzip.compress((jsonl_text(rows[:1]) + "{oops\n" + jsonl_text(rows[1:])).encode()),
        rows,
        "partly_read",
        1,
    )
    rows = day.rows("jgl", 2)
    add("firehose-delivery.jsonl", gzip.compress(jsonl_text(rows).encode()), rows)  # gzip behind a plain name
    whole = gzip.compress(jsonl_text(day.rows("jcut", 100)).encode())
    add("cut.jsonl.gz", whole[: len(whole) // 2], [], "unreadable")
    add("cut_array.json.gz", gzip.compress(json.dumps(day.rows("jcuta", 100)).encode())[:-30], [], "unreadable")
    add("junk.jsonl.zst", zstd(rng.randbytes(2000)), [], "unreadable")
    # Keys in any case, or with spaces around: matched to the contract; two for one column: refused.
    rows = day.rows("jup", 3)
    add("upper_keys.jsonl", jsonl_text([{k.upper(): v for k, v in r.items()} for r in rows]), rows)
    rows = day.rows("jsp", 3)
    add("spaced_keys.ndjson", jsonl_text([{f" {k} ": v for k, v in r.items()} for r in rows]), rows)
    rows = day.rows("jcl", 2)
    add("clashing_keys.jsonl", jsonl_text([rows[0], {k.upper(): v for k, v in rows[1].items()}]), [], "unreadable")
    # UTF-16 with a byte-order mark; a Windows-1252 line.
    rows = day.rows("j16", 2, session_id="séance")
    add("unicode.jsonl", "\ufeff".encode("utf-16-le") + jsonl_text(rows, newline="\r\n").encode("utf-16-le"), rows)
    rows, [odd] = day.rows("jw", 2), day.rows("jwx", 1, session_id="5 €")
    data = jsonl_text(rows).encode() + (json.dumps(odd, ensure_ascii=False) + "\n").encode("cp1252")
    add("windows_1252_line.jsonl", data, rows + [odd], fallback_lines=1)


def _parquet(day: HostileDay, name: str, select_sql: str) -> bytes:
    path = day.outside / f"build-{len(day.manifest)}.parquet"
    con = duckdb.connect()
    con.execute(f"COPY ({select_sql}) TO '{path}' (FORMAT parquet)")
    con.close()
    return path.read_bytes()


def _values_sql(rows: list[dict], types: dict[str, str] | None = None) -> str:
    types = types or {}
    selects = []
    for r in rows:
        cols = []
        for c in COLUMNS:
            value = r.get(c)
            text = "NULL" if value in (None, "") else "'" + str(value).replace("'", "''") + "'"
            cols.append(f'CAST({text} AS {types.get(c, "VARCHAR")}) AS "{c}"')
        selects.append("SELECT " + ", ".join(cols))
    return " UNION ALL ".join(selects)


def _parquet_family(day: HostileDay, rng: random.Random) -> None:
    def add(name, data, valid, status="ingested", **extra):
        day.add(name, data, Landed(name, "parquet", status, [r["event_id"] for r in valid], 0, **extra))

    for k in range(2):
        rows = day.rows("pg", 300)
        add(f"good_{k}.parquet", _parquet(day, "g", _values_sql(rows)), rows)
    typed = {"event_time": "TIMESTAMP", "amount": "DOUBLE"}
    for k in range(4):  # typed columns: timestamps and doubles become text in raw
        rows = day.rows("pt", 3, amount=str(1.5 + k), event_type="purchase")
        types = typed if k % 2 else {**typed, "event_time": "TIMESTAMPTZ"}
        add(f"typed_{k}.parquet", _parquet(day, "t", _values_sql(rows, types)), rows)
    whole = _parquet(day, "cut", _values_sql(day.rows("pcut", 50)))
    for k in range(12):  # copies cut short at many points: no footer, quarantined whole
        add(f"truncated_{k}.parquet", whole[: max(1, len(whole) * (k + 1) // 13)], [], "unreadable")
    for k in range(8):  # mislabelled: other formats named .parquet
        rows = day.rows("pmis", 2)
        data = [csv_text(rows), jsonl_text(rows), json.dumps(rows), "PAR1 but not really"][k % 4]
        add(f"mislabelled_{k}.parquet", data.encode() + (rng.randbytes(k) if k >= 4 else b""), [], "unreadable")
    for k in range(6):  # PAR1 at both ends, garbage between
        add(f"corrupt_{k}.parquet", b"PAR1" + rng.randbytes(300 + 100 * k) + b"PAR1", [], "unreadable")
    for k in range(4):  # a valid file whose footer (the schema and row groups) is overwritten
        broken = bytearray(whole)
        footer = int.from_bytes(whole[-8:-4], "little")
        start = len(whole) - 8 - footer + 4 * k
        broken[start : start + 48] = rng.randbytes(48)
        add(f"scrambled_footer_{k}.parquet", bytes(broken), [], "unreadable")
    add("empty.parquet", b"", [], "unreadable")
    add("zero_rows.parquet", _parquet(day, "z", _values_sql([event("never")]) + " LIMIT 0"), [])
    for k in range(4):  # wrong types inside Parquet
        good, [bad] = day.rows("pw", 2), day.rows("pwb", 1, amount="lots")
        add(
            f"wrong_types_{k}.parquet",
            _parquet(day, "w", _values_sql(good + [bad])),
            good,
            quarantined={bad["event_id"]: "amount:type(DOUBLE)"},
        )
    for k in range(4):  # nested columns: a list or a struct where one value is expected
        [row] = day.rows("pn", 1)
        nested = "['u1', 'u2']" if k % 2 else "{'id': 'u1'}"
        sql = _values_sql([row]).replace(f"CAST('{row['user_id']}' AS VARCHAR)", nested)
        add(f"nested_{k}.parquet", _parquet(day, "n", sql), [], quarantined={row["event_id"]: "user_id:not_a_scalar"})
    for k in range(2):  # control characters in the key
        good, [bad] = day.rows("pz", 2), day.rows("pzn", 1)
        bad["event_id"] += "\x00" if k == 0 else "\x1f"
        sql = _values_sql(good + [bad]).replace(
            f"'{bad['event_id']}'", f"'{bad['event_id'][:-1]}' || chr({ord(bad['event_id'][-1])})"
        )
        add(
            f"control_in_key_{k}.parquet",
            _parquet(day, "z", sql),
            good,
            quarantined={bad["event_id"]: "event_id:control_characters"},
        )
    for k in range(3):  # SQL in names and column names
        rows = day.rows("ps", 2)
        sql = f'SELECT *, 1 AS "x""; DROP TABLE raw_events; --" FROM ({_values_sql(rows)})'
        add(["p'; DROP TABLE x; --.parquet", 'p"q".parquet', "p;s.parquet"][k], _parquet(day, "s", sql), rows)
    rows = day.rows("pwide", 1)
    wide = ", ".join(f"{i} AS extra_{i}" for i in range(1000))
    add("wide_1000_columns.parquet", _parquet(day, "w", f"SELECT *, {wide} FROM ({_values_sql(rows)})"), rows)
    for name in [".hidden.parquet", "_tmp.parquet"]:
        day.add(name, whole, Landed(name, "parquet", "in_flight"))
    for name in ["events.parquet.crc", "events.orc", "events.parquet.gz"]:
        day.add(name, whole, Landed(name, "parquet", "unsupported"))
    rows = day.rows("pup", 2)  # column names in upper case: matched to the contract
    upper = ", ".join(f'"{c}" AS "{c.upper()}"' for c in COLUMNS)
    add("upper_columns.parquet", _parquet(day, "u", f"SELECT {upper} FROM ({_values_sql(rows)})"), rows)
    rows = day.rows("pcl", 2)  # event_id and EVENT_ID: which one is the id? Refused.
    sink = io.BytesIO()
    table = pa.Table.from_pylist([{**r, "EVENT_ID": "other-" + r["event_id"]} for r in rows])
    pq.write_table(table, sink)
    add("clashing_columns.parquet", sink.getvalue(), [], "unreadable")
    _symlinks(day, "parquet")


def hostile_day(folder: Path, outside: Path, seed: int = 9) -> list[Landed]:
    """Write the hostile day into `folder` (a landing day of events); return its manifest."""
    outside.mkdir(parents=True, exist_ok=True)
    day = HostileDay(folder, outside)
    rng = random.Random(seed)
    _csv_family(day, rng)
    _json_family(day, rng)
    _parquet_family(day, rng)
    return day.manifest
