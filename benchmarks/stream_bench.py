"""The stream benchmark (`make bench-stream`): sustained production into the running platform, per rate.

    .venv/bin/python benchmarks/stream_bench.py                      # 1 k, 10 k, 20 k, 50 k events/s, 3 min each
    .venv/bin/python benchmarks/stream_bench.py --quick              # 40 s each (try it out; figures not final)
    .venv/bin/python benchmarks/stream_bench.py --rates 20000 --seconds 300

For each rate, on a platform of its own (`stream_platform.py`: a Kafka broker and Redis started
here, a fresh data folder and DAGSTER_HOME, `dagster-daemon run` on the real code location, every
sensor at its default): once the lag sensor has ticked and one message's micro-batch run has
completed (the fork server started, the tables made: cold costs left out), producers (`stream_producer.py`, the demo's
events and mix, one process per `PER_PRODUCER` events/s) send for `--warmup` + `--seconds`; then
the harness waits until raw has read everything produced and no micro-batch run is in flight
(`--drain-timeout`), and stops the platform. The figures come from what the platform recorded
(`stream_measure.py`), over the messages produced after the warm-up:

- produce -> raw (the raw step's materialization of the run that read the message, minus its Kafka
  timestamp) and event -> online (the view rows' `created_at`), p50 and p99;
- the lag per second and the lag sensor's observations; bounded or not (`stream_measure.boundedness`);
  the time to drain once production stopped; the highest rate with bounded lag;
- where a micro-batch's time goes: the median of each phase of the lag sensor's runs (sensor wait,
  tick, queue, launch, raw step, view steps);
- CPU seconds and peak RSS of each process tree (the platform: daemon, code server, fork server and
  runs; the broker; Redis; the producers) from /proc, from the start of production to the end of
  the drain, and how busy the machine's cores were (it is shared).

Results: `results/<name>.json` (everything, every run's phases) and `results/<name>.md` (the table);
`--name` defaults to `stream`, or `stream_quick` with `--quick`. Exits 1 when a target is missed
(produce -> raw and event -> online <= 5 s p50 and <= 15 s p99 at 1 k events/s; 20 k events/s with
bounded lag).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # the sibling modules, whatever the working directory

import stream_measure as measure  # noqa: E402
from pipeline_bench import machine  # noqa: E402
from stream_platform import RAW_KEY, ProcessSampler, lag_sensor_ticks, started_platform, wait_ready  # noqa: E402

AUTOMATION_SENSOR = "automation"  # the platform's AutomationConditionSensorDefinition (definitions.py)
# One producer process per this many events/s (one busy core of this machine class sends about 46 k).
PER_PRODUCER = 30_000
TARGET_P50_S, TARGET_P99_S, TARGET_RATE, TARGET_LATENCY_RATE = 5.0, 15.0, 20_000, 1_000
# Dagster's sensor daemon looks at sensors every 5 s (dagster/_daemon/sensor.py, MIN_INTERVAL_LOOP_TIME).
# `--sensor-loop-seconds` runs the daemon with another loop period, to measure what a faster lag
# sensor would give; it is an experiment, not how the platform runs.
FAST_LOOP_DAEMON = (
    "import sys; import dagster._daemon.sensor as loop; loop.MIN_INTERVAL_LOOP_TIME = float(sys.argv.pop(1));"
    " from dagster._daemon.cli import main; sys.argv[0] = 'dagster-daemon'; sys.exit(main())"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,10000,20000,50000", help="events/s, comma-separated")
    parser.add_argument("--seconds", type=float, help="measured production per rate (default 180; quick: 40)")
    parser.add_argument("--warmup", type=float, help="production before measuring (default 30; quick: 15)")
    parser.add_argument("--quick", action="store_true", help="short runs to try the harness; figures not final")
    parser.add_argument("--partitions", type=int, default=3, help="of the topic (the demo's 3)")
    parser.add_argument(
        "--drain-timeout", type=float, help="seconds to wait for raw to catch up (default 300; quick: 120)"
    )
    parser.add_argument("--sensor-loop-seconds", type=float, help="experiment: the sensor daemon's loop period")
    parser.add_argument("--sensor-interval", type=int, help="experiment: ML_PLATFORM_SENSOR_INTERVAL")
    parser.add_argument(
        "--automation-off",
        action="store_true",
        help="experiment: stop the automation sensor (no clean_stream_events runs competing for the warehouse)",
    )
    parser.add_argument("--name", help="results/<name>.json and .md (default stream, or stream_quick)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--work-dir", type=Path, help="keep every platform's files here (default: a temp folder)")
    args = parser.parse_args(argv)
    args.rates = [int(float(r)) for r in args.rates.split(",")]
    args.seconds = args.seconds or (40.0 if args.quick else 180.0)
    args.warmup = args.warmup if args.warmup is not None else (15.0 if args.quick else 30.0)
    args.drain_timeout = args.drain_timeout or (120.0 if args.quick else 300.0)
    args.name = args.name or ("stream_quick" if args.quick else "stream")
    return args


def _daemon_command(args) -> list[str] | None:
    if args.sensor_loop_seconds is None:
        return None
    return [sys.executable, "-c", FAST_LOOP_DAEMON, str(args.sensor_loop_seconds), "run"]


def _start_producers(platform, rate: int, seconds: float, work: Path) -> list[tuple[subprocess.Popen, Path]]:
    count = max(1, math.ceil(rate / PER_PRODUCER))
    started = []
    for i in range(count):
        out = work / f"producer_{i}.json"
        command = [sys.executable, str(HERE / "stream_producer.py"), "--bootstrap", platform.bootstrap]
        command += ["--rate", str(rate / count), "--seconds", str(seconds), "--seed", str(i), "--out", str(out)]
        with (work / f"producer_{i}.log").open("ab") as log:
            process = subprocess.Popen(command, cwd=REPO, env=platform.env, stdout=log, stderr=subprocess.STDOUT)
        started.append((process, out))
    return started


@contextlib.contextmanager
def _stopped_at_exit(producers: list):
    """Producers still running when the block is left (an error, Ctrl-C) are stopped."""
    try:
        yield
    finally:
        for process, _ in producers:
            if process.poll() is None:
                process.kill()
                process.wait()


def _watermarks(bootstrap: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    from ml_platform.demo.stream import TOPIC

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "stream-bench", "enable.auto.commit": False})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()


def _stop_sensor(platform, instance, name: str, timeout: float = 120.0) -> None:
    """Stop a sensor as the UI's Stop button does: its stored state set to STOPPED (once the daemon made it)."""
    deadline = time.monotonic() + timeout
    while True:
        states = [s for s in instance.all_instigator_state() if s.name == name]
        if states:
            state = states[0]
            # The status enum is reached through the state: Dagster keeps it in a private module.
            instance.update_instigator_state(state.with_status(type(state.status).STOPPED))
            return
        platform.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"sensor {name} has no state after {timeout:.0f}s")
        time.sleep(1.0)


def _prime(platform, instance, partitions: int) -> float:
    """One message and its micro-batch run before production: the fork server starts (imports,
    definitions: seconds) and the warehouse tables are created outside the measurement."""
    from ml_platform.demo.stream import TOPIC, EventMaker, Sender

    started = time.monotonic()
    event = EventMaker(0, "prime").event(dt.datetime.now(dt.UTC), "on_time")
    sender = Sender(platform.bootstrap, TOPIC)
    sender.send(event["user_id"].encode(), json.dumps(event).encode())
    sender.flush(30)
    if _wait_drained(platform, instance, partitions, timeout=300) is None:
        raise RuntimeError(f"the priming message's micro-batch did not complete: {platform.log_tail()}")
    return time.monotonic() - started


def _wait_drained(platform, instance, partitions: int, timeout: float) -> float | None:
    """Wait until raw has stored offsets at the high watermarks and no micro-batch run is in flight;
    returns when the last raw materialization was recorded, None after `timeout`."""
    from ml_platform.ingestion.kafka.sensor import stored_offsets

    high = _watermarks(platform.bootstrap, partitions)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        platform.check_alive()
        stored = stored_offsets(instance, RAW_KEY)
        if all(stored.get(p, 0) >= h for p, h in high.items()) and not measure.in_flight(instance):
            latest = instance.get_latest_materialization_event(RAW_KEY)
            return latest.timestamp
        time.sleep(1.0)
    return None


def bench_rate(args, rate: int, work: Path) -> dict:
    print(f"--- {rate} events/s: starting the broker, Redis and the daemon in {work}", flush=True)
    with started_platform(
        REPO, work, args.partitions, sensor_interval=args.sensor_interval, daemon_command=_daemon_command(args)
    ) as platform:
        ready_s = wait_ready(platform, 300)
        instance = platform.instance()
        if args.automation_off:
            _stop_sensor(platform, instance, AUTOMATION_SENSOR)
        primed_s = _prime(platform, instance, args.partitions)
        print(
            f"lag sensor ticking after {ready_s:.0f} s, first micro-batch done after {primed_s:.0f} s more;"
            f" producing for {args.warmup + args.seconds:.0f} s",
            flush=True,
        )
        producers: list = []

        def roots() -> dict:
            found = {"platform": platform.daemon.pid, "kafka_broker": platform.broker_pid}
            if platform.redis_started:
                found["redis"] = platform.redis_pid
            return found | {f"producer_{i}": p.pid for i, (p, _) in enumerate(producers)}

        with ProcessSampler(roots) as sampler, _stopped_at_exit(producers):
            producers.extend(_start_producers(platform, rate, args.warmup + args.seconds, work))
            while any(p.poll() is None for p, _ in producers):
                platform.check_alive()
                print(f"  lag {measure.latest_lag(instance, RAW_KEY)}", flush=True)
                time.sleep(5.0)
            failed = [str(out) for p, out in producers if p.returncode != 0]
            if failed:
                raise RuntimeError(f"producer(s) failed; see {[f.replace('.json', '.log') for f in failed]}")
            produced = [json.loads(out.read_text()) for _, out in producers]
            production = (min(p["started_at"] for p in produced), max(p["ended_at"] for p in produced))
            print("production ended; waiting for raw to catch up", flush=True)
            drained_at = _wait_drained(platform, instance, args.partitions, args.drain_timeout)
        ticks = lag_sensor_ticks(instance)
        runs = measure.micro_batch_runs(instance, ticks)
        others = measure.other_runs(instance)
        observations = measure.lag_observations(instance, RAW_KEY)
        resources = sampler.summary()
        key = platform.env["ML_PLATFORM_PSEUDONYM_KEY"]
        warehouse = platform.warehouse
        redis_url, redis_started = platform.redis_url, platform.redis_started
    # The platform is stopped: the warehouse can be read.
    measured_from = production[0] + args.warmup
    with mock.patch.dict(os.environ, {"ML_PLATFORM_PSEUDONYM_KEY": key}):  # to match the views' user keys
        latencies = measure.message_latencies(warehouse, runs, measured_from, production[1])
    committed = latencies.pop("_committed_by_run")
    per_second: dict[int, int] = {}
    for p in produced:
        for second, n in p["per_second"].items():
            per_second[int(second)] = per_second.get(int(second), 0) + n
    until = drained_at or time.time()
    timeline = measure.lag_timeline(per_second, runs, committed, until)
    drain_s = None if drained_at is None else round(drained_at - production[1], 1)
    lag = measure.boundedness(timeline, production, rate, drain_s)
    stores = sorted({r.online_store for r in runs if r.online_store})
    messages = sum(p["messages"] for p in produced)
    wall = until - production[0]
    return {
        "rate": rate,
        "producers": {
            "processes": len(produced),
            "messages": messages,
            "achieved_rate": round(messages / (production[1] - production[0]), 1),
            "by_kind": {k: sum(p["by_kind"].get(k, 0) for p in produced) for k in produced[0]["by_kind"]},
        },
        "production": {"started_at": production[0], "ended_at": production[1], "measured_from": measured_from},
        "ready_s": round(ready_s, 1),
        "primed_s": round(primed_s, 1),
        "online_store": {
            "redis_url_given": bool(redis_url),
            "redis_started_here": redis_started,
            "views_report": stores,
        },
        "latency": latencies,
        "lag": lag,
        "breakdown": measure.breakdown(runs, measured_from, until),
        "micro_batch_runs": len(runs),
        "failed_runs": sum(r.status != "SUCCESS" for r in runs),
        "other_runs": {"count": len(others), "assets": sorted({a for r in others for a in r["assets"]})},
        "resources": resources,
        "cpu_cores_used": {
            name: round(v["cpu_s"] / wall, 2) for name, v in resources.items() if isinstance(v, dict) and "cpu_s" in v
        },
        "wall_s": round(wall, 1),
        "lag_timeline": timeline,
        "lag_observations": observations,
        "runs": measure.runs_as_dicts(runs),
        "other_run_list": others,
    }


def targets(results: list[dict]) -> dict:
    """Each target met (True), missed (False) or not measured (None)."""
    at_rate = next((r for r in results if r["rate"] == TARGET_LATENCY_RATE and "error" not in r), None)

    def within(metric: str, quantile: str, bound: float):
        value = _figure(at_rate, metric, quantile) if at_rate else None
        return None if value is None else value <= bound

    measured = [r for r in results if "error" not in r]
    bounded = [r["rate"] for r in measured if r["lag"]["bounded"]]
    return {
        "produce_to_raw_p50_le_5s_at_1k": within("produce_to_raw", "p50", TARGET_P50_S),
        "produce_to_raw_p99_le_15s_at_1k": within("produce_to_raw", "p99", TARGET_P99_S),
        "event_to_online_p50_le_5s_at_1k": within("event_to_online", "p50", TARGET_P50_S),
        "event_to_online_p99_le_15s_at_1k": within("event_to_online", "p99", TARGET_P99_S),
        "bounded_lag_at_20k_or_more": (max(bounded) >= TARGET_RATE) if bounded else (False if measured else None),
    }


def _figure(rate: dict, metric: str, quantile: str = "p50") -> float | None:
    return rate["latency"].get(metric, {}).get(quantile)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(r: dict) -> str:
    if "error" in r:
        return f"| {r['rate']:,} | failed: {r['error'][:200]} |" + " |" * 9
    lag, res = r["lag"], r["resources"]
    redis = res.get("redis", {}).get("peak_rss_mib")
    cells = [
        f"{r['rate']:,}",
        f"{r['producers']['achieved_rate']:,.0f}",
        f"{_s(_figure(r, 'produce_to_raw'))} / {_s(_figure(r, 'produce_to_raw', 'p99'))} s",
        f"{_s(_figure(r, 'event_to_online'))} / {_s(_figure(r, 'event_to_online', 'p99'))} s",
        "yes" if lag["bounded"] else "no",
        f"{lag['peak_lag']:,}",
        "-" if lag["drain_s"] is None else f"{lag['drain_s']} s",
        f"{r['breakdown']['runs']} ({r['breakdown']['cycle_s_median']} s)",
        f"{res['platform']['cpu_s']} s ({r['cpu_cores_used']['platform']})",
        f"{res['platform']['peak_rss_mib']:,.0f} MiB",
        f"{res['kafka_broker']['peak_rss_mib']:,.0f} / {'-' if redis is None else f'{redis:,.0f}'} MiB",
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(result: dict) -> str:
    m, settings = result["machine"], result["settings"]
    lines = [
        f"Stream benchmark ({result['mode']}), {result['when']}: {m['cores']} cores ({m['cpu']}), {m['ram_gib']:.0f} GiB;"
        f" load average {m['loadavg_before']} before, {m['loadavg_after']} after. Each rate: {settings['warmup_s']:.0f} s"
        f" warm-up, then {settings['measured_s']:.0f} s measured; a fresh broker, Redis and `dagster-daemon run`.",
        "",
        "| events/s | produced/s | produce -> raw p50 / p99 | event -> online p50 / p99 | lag bounded | peak lag"
        " | drain | micro-batches (median cycle) | platform CPU (cores) | platform peak RSS | broker / Redis RSS |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        *(_row(r) for r in result["rates"]),
    ]
    bounded = result["highest_bounded_rate"]
    measured = [r for r in result["rates"] if "error" not in r]
    stores = sorted({s for r in measured for s in r["online_store"]["views_report"]})
    lines += [
        "",
        f"Highest rate with bounded lag: {'none' if bounded is None else f'{bounded:,} events/s'}."
        f" Online store the views wrote to: {', '.join(stores) or '-'}.",
    ]
    if measured:
        first = measured[0]
        phases = {k: v for k, v in first["breakdown"].items() if isinstance(v, dict)}
        lines += [
            "",
            f"Where a micro-batch's time goes at {first['rate']:,} events/s ({first['breakdown']['runs']} runs):",
            "",
            "| phase | median s | max s |",
            "|---|---:|---:|",
            *(f"| {name} | {_s(v['median'])} | {_s(v['max'])} |" for name, v in phases.items()),
            "",
            f"A message's produce -> raw at {first['rate']:,} events/s, median:"
            f" {_s(_figure(first, 'produce_to_raw_step_start'))} s until the raw step of the run that reads it"
            f" started, {_s(_figure(first, 'raw_step_start_to_raw'))} s in it; raw -> online"
            f" {_s(_figure(first, 'raw_to_online'))} s.",
        ]
    verdicts = {True: "met", False: "missed", None: "not measured"}
    lines += ["", "Targets: " + ", ".join(f"{k}: {verdicts[v]}" for k, v in result["targets"].items()) + "."]
    return "\n".join(lines) + "\n"


def write_results(args, host: dict, results: list[dict]) -> dict:
    bounded = [r["rate"] for r in results if "error" not in r and r["lag"]["bounded"]]
    result = {
        "name": args.name,
        "mode": "quick" if args.quick else "full",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "revision": host["revision"],
        "machine": host | {"loadavg_after": Path("/proc/loadavg").read_text().split()[0]},
        "settings": {
            "rates": args.rates,
            "warmup_s": args.warmup,
            "measured_s": args.seconds,
            "partitions": args.partitions,
            "drain_timeout_s": args.drain_timeout,
            "sensor_loop_seconds": args.sensor_loop_seconds,
            "sensor_interval": args.sensor_interval,
            "automation_off": args.automation_off,
        },
        "highest_bounded_rate": max(bounded) if bounded else None,
        "targets": targets(results),
        "rates": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM still stops every server this started (the `finally`s run).
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    # The code measured: the commit, and whether the working tree had changes on top of it.
    revision = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    host = machine() | {"revision": revision.stdout.strip()}
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="stream_bench_"))
    results = []
    try:
        for rate in args.rates:
            try:
                results.append(bench_rate(args, rate, root / f"rate_{rate}"))
            except Exception as exc:  # the next rate still runs; the results say what failed
                traceback.print_exc()
                results.append({"rate": rate, "error": f"{type(exc).__name__}: {exc}"})
            r = results[-1]
            if "error" not in r:
                print(
                    f"{rate} events/s: produce->raw p50 {_s(_figure(r, 'produce_to_raw'))} s, event->online p50"
                    f" {_s(_figure(r, 'event_to_online'))} s, bounded {r['lag']['bounded']}, drain {r['lag']['drain_s']} s",
                    flush=True,
                )
            result = write_results(args, host, results)  # after every rate: a later failure keeps the rest
    finally:
        if args.work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(markdown(result))
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
