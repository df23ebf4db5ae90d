# The two commands: `make dev` (run the platform) and `make test` (run the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(CURDIR)/data
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
PORT ?= 3000
export ML_PLATFORM_DATA_DIR := $(DATA_DIR)

.PHONY: install dev test test-fast lint format demo-data system-deps screenshot clean bench-pit bench bench-scaleout bench-table-formats scale-demo bench-spark kafka bench-stream

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

# System packages the tests need, from Debian's packages: Chromium for the browser tests
# (Playwright cannot download browsers here), a PostgreSQL server for the database source and a
# Redis server for the online store.
SYSTEM_PACKAGES_MISSING = $(strip \
  $(if $(shell command -v chromium),,chromium) \
  $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
  $(if $(shell command -v redis-server),,redis-server))
system-deps:
	@missing="$(SYSTEM_PACKAGES_MISSING)"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing system packages: run 'sudo apt-get install $$missing' (Debian/Ubuntu) and retry."; exit 1; \
	  fi; \
	fi

# The development and test Kafka broker: Apache Kafka's pinned jars from Maven Central
# (deploy/kafka/pom.xml), copied once into .kafka/lib (git-ignored); offline afterwards.
# Needs Java 17+ and Maven (docs/streaming.md).
KAFKA_LIB := $(CURDIR)/.kafka/lib
kafka: $(KAFKA_LIB)/.fetched
$(KAFKA_LIB)/.fetched: deploy/kafka/pom.xml
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	  { echo "The Kafka broker needs Java 17+ and Maven: apt-get install openjdk-17-jre-headless maven"; exit 1; }
	rm -rf "$(KAFKA_LIB)"
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$(KAFKA_LIB)" -DincludeScope=runtime
	touch $@

demo-data: install
	@if [ ! -d "$(DATA_DIR)/landing/events" ]; then \
	  $(PY) -m ml_platform.demo generate --days 7 --events-per-day 2000 --seed 7 --data-dir "$(DATA_DIR)"; \
	fi

# The demo also serves a fake weather API on 127.0.0.1:$(WEATHER_PORT) for the REST source,
# unless ML_PLATFORM_WEATHER_API_URL already points at a real one; the weather's catch-up sensor fetches
# the demo's complete days from it at once (not only yesterday's, at 00:15 UTC).
WEATHER_PORT ?= 8765
# Prometheus metrics (ml_platform.monitoring) are served on http://127.0.0.1:$(METRICS_PORT)/metrics.
METRICS_PORT ?= $(or $(ML_PLATFORM_METRICS_PORT),9108)
# A Kafka broker on 127.0.0.1:$(KAFKA_PORT) and the demo clickstream at $(STREAM_RATE) events/s for the
# stream source, unless ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS already points at a broker; without Java
# the stream source stays idle and the broker command says why (docs/streaming.md).
KAFKA_PORT ?= 9092
STREAM_RATE ?= 2
# The online store: a Redis server on 127.0.0.1:$(REDIS_PORT) with its snapshot in $(DATA_DIR)/redis, unless
# ML_PLATFORM_REDIS_URL already points at one, and the online features' HTTP endpoint on
# http://127.0.0.1:$(SERVE_PORT)/features reading it (docs/streaming.md#the-online-store). Without
# redis-server the rest starts, online lookups read the warehouse, and the reason is printed.
REDIS_PORT ?= 6380
SERVE_PORT ?= $(or $(ML_PLATFORM_SERVE_PORT),8766)
# Curated tables pseudonymize user ids with a secret key: ML_PLATFORM_PSEUDONYM_KEY, or else a random
# one made on the first start and kept in $(DAGSTER_HOME)/pseudonym_key (docs/privacy.md).
# The transactions source reads a local PostgreSQL server holding the demo's payments, started here
# and stopped with the rest (ml_platform/demo/payments_db.py), unless ML_PLATFORM_PG_HOST already points
# at a real database; without PostgreSQL's binaries the rest starts and the source stays idle.
# Partitions start at the demo's first landing day (ML_PLATFORM_START_DATE, unless set).
dev: install demo-data
	mkdir -p "$(DAGSTER_HOME)" && cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@if [ -z "$$ML_PLATFORM_PSEUDONYM_KEY" ] && [ ! -s "$(DAGSTER_HOME)/pseudonym_key" ]; then \
	  (umask 077 && $(PY) -c 'import secrets; print(secrets.token_hex(32))' > "$(DAGSTER_HOME)/pseudonym_key"); \
	fi
	@if [ -z "$$ML_PLATFORM_PSEUDONYM_KEY" ]; then \
	  export ML_PLATFORM_PSEUDONYM_KEY="$$(cat "$(DAGSTER_HOME)/pseudonym_key")"; \
	fi; \
	if [ -z "$$ML_PLATFORM_START_DATE" ]; then \
	  first="$$($(PY) -m ml_platform.demo.manifest first-day "$(DATA_DIR)")"; \
	  if [ -n "$$first" ]; then export ML_PLATFORM_START_DATE="$$first"; fi; \
	fi; \
	trap 'kill $$api $$pg $$kafka $$redis $$serve $$metrics 2>/dev/null; wait' EXIT INT TERM; \
	if [ -z "$$ML_PLATFORM_PG_HOST" ]; then \
	  pg_env="$(DAGSTER_HOME)/payments_db.env"; rm -f "$$pg_env"; \
	  $(PY) -m ml_platform.demo.payments_db --data-dir "$(DATA_DIR)" --env-file "$$pg_env" & pg=$$!; \
	  while [ ! -s "$$pg_env" ] && kill -0 $$pg 2>/dev/null; do sleep 0.2; done; \
	  if [ -s "$$pg_env" ]; then . "$$pg_env"; else pg=; fi; \
	fi; \
	if [ -z "$$ML_PLATFORM_WEATHER_API_URL" ]; then \
	  $(PY) -m ml_platform.demo.weather_api --port $(WEATHER_PORT) & api=$$!; \
	  export ML_PLATFORM_WEATHER_API_URL=http://127.0.0.1:$(WEATHER_PORT); \
	fi; \
	if [ -z "$$ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS" ]; then \
	  $(MAKE) -s kafka || true; \
	  if $(PY) -m ml_platform.demo.kafka_broker --check; then \
	    $(PY) -m ml_platform.demo.kafka_broker --port $(KAFKA_PORT) --data-dir "$(DATA_DIR)/kafka" --demo-rate $(STREAM_RATE) & kafka=$$!; \
	    export ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT); \
	  fi; \
	fi; \
	if [ -z "$$ML_PLATFORM_REDIS_URL" ]; then \
	  if $(PY) -m ml_platform.demo.redis_server --check; then \
	    $(PY) -m ml_platform.demo.redis_server --port $(REDIS_PORT) --data-dir "$(DATA_DIR)/redis" & redis=$$!; \
	    export ML_PLATFORM_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0; \
	  fi; \
	fi; \
	if [ -n "$$ML_PLATFORM_REDIS_URL" ]; then \
	  $(PY) -m ml_platform serve --port $(SERVE_PORT) & serve=$$!; \
	fi; \
	export ML_PLATFORM_UI_URL="$${ML_PLATFORM_UI_URL:-http://127.0.0.1:$(PORT)}"; \
	DAGSTER_HOME="$(DAGSTER_HOME)" $(PY) -m ml_platform metrics --port $(METRICS_PORT) & metrics=$$!; \
	DAGSTER_HOME="$(DAGSTER_HOME)" $(VENV)/bin/dagster dev -h 127.0.0.1 -p $(PORT) -w workspace.yaml

# Two workers (xdist): one core each. Tests that must not run beside each other share a group
# (platform_tests/conftest.py); TEST_WORKERS=0 runs the suite in this process, one test at a time.
TEST_WORKERS ?= 2
test: install system-deps kafka lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Lint for bug classes, import order, outdated syntax and needlessly complex code; the format is checked too
# (`make format` applies it).
lint: install
	$(VENV)/bin/ruff check platform platform_tests benchmarks
	$(VENV)/bin/ruff format --check platform platform_tests benchmarks

format: install
	$(VENV)/bin/ruff check --fix platform platform_tests benchmarks
	$(VENV)/bin/ruff format platform platform_tests benchmarks

# Everything but the slow end-to-end tests (dagster dev, browser).
test-fast: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not e2e"

# README's lineage picture, taken from a real `dagster dev` run on demo data.
screenshot: install system-deps
	cd platform_tests && ../$(PY) lineage_screenshot.py ../docs/lineage.png

# Point-in-time join benchmark against a hand-written ASOF join and Feast (benchmarks/README.md).
# Its own venv, where Feast's caps win: Feast 0.67 needs pandas<3, prometheus_client<0.25 and (its redis
# extra) redis<8, so it gets constraints.txt less those pins. The platform's own pins of prometheus_client
# and redis cannot hold beside it, so Feast is installed first and the platform (which the point-in-time
# benchmark imports) after it with its other dependencies only; the modules the benchmarks import there
# use neither package. The online lookup benchmark runs its Feast side here too. Flags: BENCH_ARGS.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_ARGS ?=
BENCH_FEAST_CAPPED := pandas prometheus_client redis

$(BENCH_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install -q --upgrade pip
	$(BENCH_PY) benchmarks/bench_requirements.py constraints --except $(BENCH_FEAST_CAPPED) > $(BENCH_VENV)/constraints.txt
	$(BENCH_PY) benchmarks/bench_requirements.py bench > $(BENCH_VENV)/feast-requirements.txt
	$(BENCH_PY) benchmarks/bench_requirements.py platform --except $(BENCH_FEAST_CAPPED) > $(BENCH_VENV)/platform-requirements.txt
	$(BENCH_PY) -m pip install -q -c $(BENCH_VENV)/constraints.txt -r $(BENCH_VENV)/feast-requirements.txt
	$(BENCH_PY) -m pip install -q -c $(BENCH_VENV)/constraints.txt -r $(BENCH_VENV)/platform-requirements.txt
	$(BENCH_PY) -m pip install -q --no-deps -e .
	touch $@

bench-pit: $(BENCH_VENV)/.installed
	$(BENCH_PY) benchmarks/point_in_time.py $(BENCH_ARGS)

# Performance harness (benchmarks/README.md). BENCH_PARTS chooses what runs:
#   pipeline: parts 1-3, 6, 7 of the harness: the platform through Dagster's CLI against a
#             hand-written DuckDB script and pandas, outputs asserted equal; results in
#             benchmarks/results/pipeline.{json,md,png}. BENCH_LARGE=1 adds 10 M and 30 M events and
#             the 10 M-row partition (tens of minutes); PIPELINE_ARGS passes other flags.
#   dev:      parts 4-5 (`make dev` catch-up on the demo week, landed file -> features latency):
#             benchmarks/dev_bench.py, results in benchmarks/results/dev.{json,md}; DEV_BENCH_ARGS
#             passes its flags.
BENCH_PARTS ?= pipeline dev
DEV_BENCH_ARGS ?=
BENCH_LARGE ?=
PIPELINE_ARGS ?=

$(VENV)/.installed-perf: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e '.[test,perf]'
	touch $@

bench: $(VENV)/.installed-perf
	@for part in $(BENCH_PARTS); do \
	  case $$part in \
	    pipeline) $(PY) benchmarks/pipeline_bench.py $(if $(BENCH_LARGE),--large) $(PIPELINE_ARGS) || exit 1 ;; \
	    dev) $(PY) benchmarks/dev_bench.py $(DEV_BENCH_ARGS) || exit 1 ;; \
	    *) echo "unknown bench part '$$part' (known: pipeline, dev)"; exit 1 ;; \
	  esac; \
	done

# Parallel partition writes: one DuckDB file, DuckLake and per-partition Parquet + a catalog, with 1
# and 2 workers against a local S3 server and PostgreSQL started here (docs/scaling.md); results in
# benchmarks/results/scaleout_options.{json,md}. SCALEOUT_ARGS passes its flags.
SCALEOUT_ARGS ?=
bench-scaleout: $(VENV)/.installed-perf system-deps
	$(PY) benchmarks/scaleout_options.py $(SCALEOUT_ARGS)

# The open table formats (DuckLake, Apache Iceberg through pyiceberg) for partition replaces from workers
# that share no disk: the same partition work with 1, 2 and 4 workers, a second engine's read, a worker
# killed before its commit, snapshot retention (docs/scaling.md). About 6 minutes here. Results in
# benchmarks/results/table_formats.{json,md}.
bench-table-formats: $(VENV)/.installed-perf system-deps
	$(PY) benchmarks/table_formats.py $(TABLE_FORMATS_ARGS)

# Spark's local mode on the same partition work, against DuckDB (docs/scaling.md); its own venv: pyspark
# is 450 MB and needs Java 17+, which nothing else here needs. Results in benchmarks/results/spark_probe.json.
SPARK_VENV := .venv-spark
$(SPARK_VENV)/.installed: constraints.txt
	$(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install -q -c constraints.txt duckdb 'pyspark==4.3.0' 'py4j==$(PY4J_VERSION)'
	touch $@
PY4J_VERSION := 0.10.9.9
bench-spark: $(SPARK_VENV)/.installed
	$(SPARK_VENV)/bin/python benchmarks/spark_probe.py

# The stream benchmark (benchmarks/README.md): the demo's clickstream at 1 k, 10 k, 20 k and 50 k events/s for 3
# minutes each into the running platform (a Kafka broker, Redis and `dagster-daemon run` started here, one
# fresh platform per rate): produce -> raw and event -> online latency, lag, CPU and memory; results in
# benchmarks/results/stream.{json,md}. STREAM_BENCH_ARGS passes its flags: `--quick` (40 s per rate, results
# in stream_quick.*), `--rates 20000 --seconds 300`, ...
STREAM_BENCH_ARGS ?=
bench-stream: install kafka system-deps
	$(PY) benchmarks/stream_bench.py $(STREAM_BENCH_ARGS)

# The scale-out demonstration (docs/scaling.md): a 30-partition backfill of raw_events on a local S3
# server through `dagster dev`, one run per day (ML_PLATFORM_PARALLEL_RAW), with 1 and then 2 concurrent
# runs; the tables must equal the embedded run's. Results in benchmarks/results/scaleout_demo.{json,md}.
SCALE_DEMO_ARGS ?=
scale-demo: install
	$(PY) benchmarks/scaleout_demo.py $(SCALE_DEMO_ARGS)

clean:
	rm -rf "$(DAGSTER_HOME)" "$(DATA_DIR)" test-artifacts .pytest_cache
