"""A real Apache Kafka broker for development and tests: KRaft, one node, from the project's own jars.

`make kafka` fetches the pinned broker jars from Maven Central into `.kafka/lib`
(`deploy/kafka/pom.xml`; `settings.kafka_lib_dir`); afterwards everything here works offline.
A broker is one JVM (`kafka.Kafka`) in its own process group, with its own data folder, listening
on 127.0.0.1 at a free port (its controller at another):

    with kafka_broker() as broker:       # formats a new cluster in a temp folder and starts it
        broker.bootstrap                 # "127.0.0.1:<port>", for clients
        broker.stop(); broker.start()    # fault injection: the same cluster goes away and comes back

Stopping sends SIGTERM to the whole group (a clean shutdown, a few seconds) and SIGKILL after a
bound; `stop(hard=True)` kills at once. The JVM also dies with the process that started it
(Linux's parent-death signal), so a test process that is killed leaves no broker behind.

`python -m ml_platform.demo.kafka_broker --port 9092 --data-dir data/kafka` runs one until
SIGTERM or Ctrl-C, or until the process that started it exits (what `make dev` does, with
`--demo-rate 2`: the demo's producer sends the clickstream to it, `ml_platform.demo.stream`); its
data folder is kept, so a restart keeps the topic. When Java 17+ or the jars are missing,
`missing_reason()` says which, and the command (or `--check` alone) prints that sentence and exits
with status 3 instead of a Java stack trace.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ml_platform import settings
from ml_platform.demo.server_process import die_with_parent, free_port, spawn, stop_group

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
HEAP = "-Xmx512m"
MIN_JAVA = 17
# Exit status of the command line when the broker cannot run here (no Java, no jars).
CANNOT_RUN = 3

LOG4J = """\
# Broker logs go to <data>/broker.log; WARN and above, so a test run's log stays small.
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
"""


def java_version(java: str) -> int | None:
    """The major version of `java`, None when it cannot be run."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    # Java 8 and older call themselves 1.x.
    return int(found.group(2) or 0) if major == 1 else major


def missing_reason(lib: Path | None = None) -> str | None:
    """Why a broker cannot start on this machine (no Java 17+, jars not fetched), or None."""
    lib = lib or settings.kafka_lib_dir()
    java = shutil.which("java")
    if java is None:
        return f"no Java on PATH: the Kafka broker needs Java {MIN_JAVA}+ (Debian: apt-get install openjdk-17-jre-headless)"
    version = java_version(java)
    if version is None or version < MIN_JAVA:
        return f"{java} is Java {version or 'of an unknown version'}: the Kafka broker needs Java {MIN_JAVA}+"
    if not list(lib.glob("kafka_2.13-*.jar")):
        return f"the Kafka jars are not in {lib}: run `make kafka` (fetches them from Maven Central once)"
    return None


@dataclass
class KafkaBroker:
    """One KRaft node (broker and controller) with its data in `root`."""

    root: Path
    port: int
    controller_port: int
    lib: Path
    die_with_parent: bool = True
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    def _write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.root / "logs"),
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Retention is checked every 5 s (not 5 min), so a topic with tiny retention loses its
            # old segments while a test or a demo watches.
            "log.retention.check.interval.ms": "5000",
        }
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
        (self.root / "log4j2.properties").write_text(LOG4J.format(log=self.log_file))

    def _java(self, main: str, *args: str, heap: str = HEAP) -> list[str]:
        return [
            "java",
            heap,
            "-XX:+UseSerialGC",  # one node, small heap: no GC threads to spare on two cores
            "-XX:TieredStopAtLevel=1",  # the quick compiler only: starts in about half the time
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            "-cp",
            f"{self.lib}/*",
            main,
            *args,
        ]

    @property
    def formatted(self) -> bool:
        return (self.root / "logs" / "meta.properties").exists()

    def format(self) -> None:
        """A new cluster in `root` (once: a formatted folder keeps its topics across restarts)."""
        self._write_config()
        done = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                new_cluster_id(),
                "-c",
                str(self.properties),
                heap="-Xmx256m",
            ),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
        )
        if done.returncode != 0:
            raise RuntimeError(f"formatting the Kafka storage failed: {done.stdout}{done.stderr}"[-3000:])

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the JVM and wait until the broker answers a metadata request."""
        if self.process is not None and self.process.poll() is None:
            return
        if not self.formatted:
            self.format()
        else:
            self._write_config()  # the ports may have changed since the folder was formatted
        out = (self.root / "broker.out").open("ab")
        try:
            self.process = spawn(
                self._java("kafka.Kafka", str(self.properties)),
                cwd=self.root,
                stdout=out,
                with_parent=self.die_with_parent,
            )
        finally:
            out.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0, "logger": _quiet})
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Kafka broker exited with {self.process.returncode}: {self._tail()}")
            with contextlib.suppress(Exception):
                metadata = admin.list_topics(timeout=1)
                if metadata.brokers:
                    return
            if time.monotonic() > deadline:
                self.stop(hard=True)
                raise RuntimeError(f"the Kafka broker did not answer within {timeout:.0f}s: {self._tail()}")
            time.sleep(0.2)

    def _tail(self) -> str:
        texts = [p.read_text(errors="replace")[-2000:] for p in (self.root / "broker.out", self.log_file) if p.exists()]
        return "\n".join(texts)

    def stop(self, hard: bool = False) -> None:
        """Stop the broker's process group: SIGTERM (SIGKILL after a bound), or SIGKILL with `hard`."""
        if self.process is None:
            return
        stop_group(self.process, STOP_TIMEOUT_SECONDS, hard)
        self.process = None


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).

    Never one starting with `-`: the storage tool's parser would take it for an option and refuse to
    format ("argument --cluster-id/-t: expected one argument"), one start in 64. Kafka's own
    `Uuid.randomUuid()` draws again for the same reason.
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _quiet(*_args) -> None:
    """librdkafka's log callback while waiting for the broker: connection refusals are expected."""


def new_broker(root: Path, port: int | None = None, controller_port: int | None = None, **options) -> KafkaBroker:
    """A broker with its data in `root` on the given (else free) ports; not started yet."""
    lib = settings.kafka_lib_dir()
    reason = missing_reason(lib)
    if reason:
        raise RuntimeError(f"cannot start a Kafka broker: {reason}")
    # A formatted cluster recorded its controller's address in its metadata log: keep it.
    controller_port = controller_port or _configured_controller_port(root) or free_port()
    return KafkaBroker(root, port or free_port(), controller_port, lib, **options)


def _configured_controller_port(root: Path) -> int | None:
    properties = root / "server.properties"
    if not properties.exists():
        return None
    found = re.search(r"^controller\.quorum\.bootstrap\.servers=127\.0\.0\.1:(\d+)$", properties.read_text(), re.M)
    return int(found.group(1)) if found else None


@contextlib.contextmanager
def kafka_broker(root: Path | None = None) -> Iterator[KafkaBroker]:
    """A started broker in `root` (a new temp folder, removed afterwards, when None)."""
    temporary = root is None
    root = Path(tempfile.mkdtemp(prefix="ml-platform-kafka-")) if temporary else root
    broker = new_broker(root)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop(hard=temporary)
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml_platform.demo.kafka_broker", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=None, help="default: a free port")
    parser.add_argument("--data-dir", type=Path, help="the cluster's folder (kept across restarts)")
    parser.add_argument("--check", action="store_true", help="only say whether a broker can start here")
    parser.add_argument(
        "--demo-rate", type=float, default=None, help="also produce the demo clickstream at this many events/s"
    )
    args = parser.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(f"Kafka broker not started, the stream source stays idle: {reason}", file=sys.stderr, flush=True)
        return CANNOT_RUN
    if args.check:
        return 0
    if args.data_dir is None:
        parser.error("--data-dir is required")
    # Started in the background by `make dev`: go (and take the broker along) when it ends.
    die_with_parent()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    broker = new_broker(args.data_dir.resolve(), args.port, args.controller_port)
    broker.start()
    print(f"Kafka broker on {broker.bootstrap} (data in {broker.root})", flush=True)
    producer = None
    if args.demo_rate:
        from ml_platform.demo.stream import TOPIC, produce

        producer = threading.Thread(
            target=produce, args=(broker.bootstrap,), kwargs={"rate": args.demo_rate, "stop": stop.is_set}, daemon=True
        )
        producer.start()
        print(f"producing about {args.demo_rate:g} demo events/s to {TOPIC}", flush=True)
    try:
        while not stop.is_set() and broker.process.poll() is None:
            stop.wait(0.5)
    finally:
        stop.set()
        if producer is not None:
            producer.join(timeout=35)
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
