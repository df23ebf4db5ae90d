"""Command line for demo data: `generate` a back-fill of days, `drip` small files live, or `stream`
events to Kafka.

python -m ml_platform.demo generate --days 7 --events-per-day 1000 --seed 42
python -m ml_platform.demo drip --interval 10 --count 5
python -m ml_platform.demo stream --rate 100   (needs ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS or --bootstrap)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from ml_platform.demo import stream as demo_stream
from ml_platform.demo.generator import generate, write_drip_file
from ml_platform.storage.aws import aws_access
from ml_platform.storage.landing_upload import upload_landing
from ml_platform.storage.location import s3_location

# The bootstrap variable of the demo stream source (its declaration names the same).
STREAM_BOOTSTRAP_ENV = "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS"


def _default_data_dir() -> Path:
    return Path(os.environ.get("ML_PLATFORM_DATA_DIR", "./data"))


def _next_seq(data_dir: Path, landing: date) -> int:
    """First file number not yet used in the landing folder, so restarts never overwrite."""
    folder = data_dir / "landing" / "events" / landing.isoformat()
    pattern = re.compile(rf"events_{landing.isoformat()}_(\d+)\.")
    used = [int(m.group(1)) for p in folder.glob("events_*") if (m := pattern.match(p.name))]
    # Generated days use 01-03; start drips clear of them even in an empty folder.
    return max([3, *used]) + 1


def _drip(data_dir: Path, interval: float, count: int | None, seed: int) -> None:
    written = 0
    while count is None or written < count:
        now = datetime.now(UTC)
        landing = now.date()
        path = write_drip_file(data_dir, landing, _next_seq(data_dir, landing), seed, now=now)
        written += 1
        print(path, flush=True)
        if count is None or written < count:
            time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml_platform.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write N landing days of events with known defects")
    gen.add_argument("--days", type=int, required=True)
    gen.add_argument("--events-per-day", type=int, required=True)
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument(
        "--end-date",
        type=date.fromisoformat,
        default=None,
        help="last landing date, YYYY-MM-DD (default: today in UTC)",
    )
    gen.add_argument("--data-dir", type=Path, default=None, help="default: $ML_PLATFORM_DATA_DIR or ./data")
    gen.add_argument(
        "--telemetry-hours-per-day", type=int, default=24, help="hourly telemetry files per landing day (default: 24)"
    )
    gen.add_argument(
        "--problems",
        action="store_true",
        help="break some days on purpose (half volume, empty column, orphans, drift, a type change, a source"
        " that stops): see ml_platform/demo/problems.py",
    )

    drip = sub.add_parser("drip", help="write one small valid file into today's landing folder every interval")
    drip.add_argument("--interval", type=float, default=10.0, help="seconds between files")
    drip.add_argument("--count", type=int, default=None, help="stop after K files (default: until Ctrl-C)")
    drip.add_argument("--data-dir", type=Path, default=None, help="default: $ML_PLATFORM_DATA_DIR or ./data")
    drip.add_argument("--seed", type=int, default=0)

    stream = sub.add_parser(
        "stream", help="produce clickstream events to a Kafka topic, with the mix real producers make"
    )
    stream.add_argument("--rate", type=float, default=10.0, help="messages per second (default: 10)")
    stream.add_argument("--count", type=int, default=None, help="stop after K messages (default: until Ctrl-C)")
    stream.add_argument(
        "--bootstrap", default=None, help="host:port of the broker (default: $ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS)"
    )
    stream.add_argument("--topic", default=demo_stream.TOPIC)
    stream.add_argument("--partitions", type=int, default=demo_stream.PARTITIONS, help="when it creates the topic")
    stream.add_argument("--seed", type=int, default=0)

    args = parser.parse_args(argv)
    if args.command == "stream":
        return _stream(args)
    data_dir = args.data_dir or _default_data_dir()

    if args.command == "generate":
        end_date = args.end_date or datetime.now(UTC).date()
        manifest = generate(
            data_dir,
            args.days,
            args.events_per_day,
            args.seed,
            end_date,
            telemetry_hours_per_day=args.telemetry_hours_per_day,
            problems=args.problems,
        )
        print(
            f"wrote {len(manifest['files'])} event files, {manifest['telemetry']['files']} telemetry files and "
            f"daily users / products / maintenance files for {manifest['start_date']}..{manifest['end_date']} "
            f"into {data_dir}"
        )
        summary = {k: manifest[k] for k in ("totals", "users", "products", "telemetry", "maintenance")}
        print(json.dumps(summary, sort_keys=True, indent=2))
        if (location := s3_location()) is not None:
            # ML_PLATFORM_STORAGE=s3://...: the files land on the S3 prefix, as a source would put them.
            uploaded = upload_landing(data_dir / "landing", location, aws_access())
            print(f"uploaded {len(uploaded)} files to {location.url('landing')}/")
        return 0

    # Ctrl-C is how a drip is stopped: end quietly.
    with contextlib.suppress(KeyboardInterrupt):
        _drip(data_dir, args.interval, args.count, args.seed)
    return 0


def _stream(args) -> int:
    bootstrap = args.bootstrap or os.environ.get(STREAM_BOOTSTRAP_ENV)
    if not bootstrap:
        print(f"no broker: pass --bootstrap host:port or set {STREAM_BOOTSTRAP_ENV}", file=sys.stderr)
        return 2
    options = dict(topic=args.topic, rate=args.rate, seed=args.seed, partitions=args.partitions)
    if args.count is not None:
        sent = demo_stream.produce(bootstrap, count=args.count, **options)
    else:
        print(f"producing about {args.rate:g} events/s to {args.topic} at {bootstrap} (Ctrl-C stops)", flush=True)
        sent = demo_stream.run_until_stopped(bootstrap, **options)
    print(json.dumps(sent, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
