"""What reading one large landed file costs the raw layer, per kind of file (docs/reading-files.md).

Generates files of `--lines` events (default 1 M, about 70 MB as CSV) once under `--work-dir`:
plain UTF-8 CSV and JSON Lines, the same with one Windows-1252 line in the middle (the fallback
decoding's case), gzip- and zstd-compressed CSV, and a spreadsheet's UTF-16 tab-separated export.
Each case runs `ingest_file` (what a raw run does per file: parse on a scratch connection, copy
into the raw table, ledger, rejected lines) in a fresh process and measures its wall time, its CPU
time (user + system of the process, DuckDB's threads included: what a loaded, shared machine
disturbs least) and the process's peak RSS. `--code LABEL=DIR` (repeatable) names revisions of
the package to compare (DIR is a checkout's `platform/` folder, put first on the child's path);
rounds interleave them, case by case, so a noisy machine weighs on each alike. Medians go to
`--output` (JSON) and a Markdown table to stdout.

    .venv/bin/python benchmarks/file_reading_bench.py --code before=/tmp/old/platform --code after=platform
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = ["event_id", "user_id", "event_type", "event_time", "product_id", "amount", "device_type", "session_id"]
CASES = ("csv", "jsonl", "csv_latin1_line", "jsonl_latin1_line", "csv_gzip", "csv_zstd", "csv_utf16")


def _rows(lines: int):
    for i in range(lines):
        yield [
            f"e{i:08d}",
            f"user-{i % 5000}",
            "purchase" if i % 7 == 0 else "page_view",
            f"2026-11-02T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z",
            f"p{i % 300}",
            f"{(i % 1000) / 10:.2f}",
            "mobile",
            f"s{i % 9000}",
        ]


def _csv_lines(lines: int, latin1_line: bool, delimiter: str = ","):
    yield delimiter.join(COLUMNS).encode() + b"\n"
    for n, row in enumerate(_rows(lines - 1)):
        if latin1_line and n == lines // 2:
            row[-1] = "séance"
            yield delimiter.join(row).encode("cp1252") + b"\n"
        else:
            yield delimiter.join(row).encode() + b"\n"


def _jsonl_lines(lines: int, latin1_line: bool):
    for n, row in enumerate(_rows(lines)):
        record = dict(zip(COLUMNS, row, strict=True))
        if latin1_line and n == lines // 2:
            record["session_id"] = "séance"
            yield (json.dumps(record, ensure_ascii=False) + "\n").encode("cp1252")
        else:
            yield (json.dumps(record) + "\n").encode()


def _write(path: Path, chunks) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        buffer = []
        for chunk in chunks:
            buffer.append(chunk)
            if len(buffer) >= 10_000:
                f.write(b"".join(buffer))
                buffer.clear()
        f.write(b"".join(buffer))
    tmp.rename(path)


def prepare(work: Path, lines: int) -> dict[str, tuple[Path, str]]:
    """Each case's file (generated once) and the format it is read as."""
    work.mkdir(parents=True, exist_ok=True)
    files = {
        "csv": (work / f"plain_{lines}.csv", "csv"),
        "jsonl": (work / f"plain_{lines}.jsonl", "jsonl"),
        "csv_latin1_line": (work / f"latin1_line_{lines}.csv", "csv"),
        "jsonl_latin1_line": (work / f"latin1_line_{lines}.jsonl", "jsonl"),
        "csv_gzip": (work / f"plain_{lines}.csv.gz", "csv"),
        "csv_zstd": (work / f"plain_{lines}.csv.zst", "csv"),
        "csv_utf16": (work / f"utf16_{lines}.csv", "csv"),
    }
    makers = {
        "csv": lambda: _csv_lines(lines, False),
        "jsonl": lambda: _jsonl_lines(lines, False),
        "csv_latin1_line": lambda: _csv_lines(lines, True),
        "jsonl_latin1_line": lambda: _jsonl_lines(lines, True),
        "csv_utf16": lambda: [b"\xff\xfe"] + [c.decode().encode("utf-16-le") for c in _csv_lines(lines, False, "\t")],
    }
    for case, make in makers.items():
        if not files[case][0].exists():
            _write(files[case][0], make())
    plain = files["csv"][0]
    if not files["csv_gzip"][0].exists():
        with open(plain, "rb") as src, gzip.open(files["csv_gzip"][0], "wb", compresslevel=6) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    if not files["csv_zstd"][0].exists():
        import zstandard

        with open(plain, "rb") as src, open(files["csv_zstd"][0], "wb") as dst:
            zstandard.ZstdCompressor().copy_stream(src, dst)
    return files


def run_case(path: Path, fmt: str) -> dict:
    """In this process: one ingest_file of `path` into a fresh in-memory warehouse."""
    import datetime as dt

    import duckdb

    from ml_platform.declarations.sources.events import SPEC
    from ml_platform.ingestion.files.landing import LandedFile
    from ml_platform.ingestion.files.reader import ingest_file
    from ml_platform.raw import quarantine
    from ml_platform.raw.table import create_raw_tables

    con = duckdb.connect()
    create_raw_tables(con, SPEC)
    quarantine.create_quarantine_tables(con)
    stat = path.stat()
    file = LandedFile(path, f"events/2026-11-02/{path.name}", dt.date(2026, 11, 2), fmt, stat.st_size, 0, 0)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    summary = ingest_file(con, SPEC, file, dt.datetime(2026, 11, 3))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "cpu_seconds": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "rows": summary.get("rows"),
        "status": summary.get("status", "ingested"),
        "rows_rejected": summary.get("rows_rejected", 0),
        "fallback_lines": summary.get("fallback_lines", 0),
        "reason": summary.get("reason"),
        "peak_rss_mib": after.ru_maxrss / 1024,
        "ml_platform": str(Path(sys.modules["ml_platform"].__file__).parent),
    }


def _child(code_dir: str | None, path: Path, fmt: str) -> dict:
    env = dict(os.environ)
    if code_dir:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(code_dir).resolve()), env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), fmt], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/ml_platform_file_reading_bench"))
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=DIR", help="a revision to measure")
    parser.add_argument("--output", type=Path, help="write the medians and every run as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(Path(args.child[0]), args.child[1])))
        return
    codes = dict(c.split("=", 1) for c in args.code) or {"current": ""}
    files = prepare(args.work_dir, args.lines)
    runs: dict[str, dict[str, list[dict]]] = {case: {label: [] for label in codes} for case in args.cases}
    for _ in range(args.repeat):
        for case in args.cases:
            for label, code_dir in codes.items():
                runs[case][label].append(_child(code_dir, *files[case]))
    results = {}
    print(
        "| case | file MiB | " + " | ".join(f"{label}: wall s / CPU s / peak MiB / outcome" for label in codes) + " |"
    )
    print("|---|---:|" + "---|" * len(codes))
    for case in args.cases:
        results[case] = {}
        cells = []
        for label in codes:
            done = runs[case][label]
            last = done[-1]
            results[case][label] = {
                "wall_s": round(statistics.median(r["seconds"] for r in done), 2),
                "cpu_s": round(statistics.median(r["cpu_seconds"] for r in done), 2),
                "peak_rss_mib": round(max(r["peak_rss_mib"] for r in done)),
                **{k: last[k] for k in ("rows", "status", "rows_rejected", "fallback_lines", "reason", "ml_platform")},
                "runs": done,
            }
            r = results[case][label]
            outcome = f"{r['rows']:,} rows, {r['status']}" + (
                f", {r['fallback_lines']} fallback" if r["fallback_lines"] else ""
            )
            cells.append(f"{r['wall_s']} / {r['cpu_s']} / {r['peak_rss_mib']} / {outcome}")
        size = round(files[case][0].stat().st_size / 2**20, 1)
        print(f"| {case} | {size} | " + " | ".join(cells) + " |", flush=True)
    if args.output:
        args.output.write_text(
            json.dumps({"lines": args.lines, "repeat": args.repeat, "results": results}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
