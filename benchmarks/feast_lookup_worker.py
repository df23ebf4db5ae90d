"""Feast's side of the online lookup benchmark: its Redis online store, the same rows, the same lookups.

    .venv-bench/bin/python benchmarks/feast_lookup_worker.py SPEC.json RESULT.json

Run by `online_lookup_bench.py` (in `.venv`) in `.venv-bench`, where Feast 0.67 is installed
(`make .venv-bench/.installed`). SPEC names the Redis server the harness started for Feast
(`redis`: host:port), the rows (`rows_parquet`: `user_id`, `event_timestamp`, one column per
feature), the feature types, the view's TTL, the entity draws (`ids`, used in the same order as the
platform's side), the repeats and the entities whose vectors go back for the equality check. It
makes a Feast repository in a temp folder (`online_store: type: redis`), applies one entity and one
feature view, writes the rows with `FeatureStore.write_to_online_store` in batches of 5 000 (timed),
then times `get_online_features` for 1 and 100 entities, as `to_dict()` (what a model server
reads) and as `to_df()` (the shape of the platform's `get_online_features`).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from lookup_timing import Draws, time_call

BATCH_ROWS = 5000
PACKAGES = ("feast", "redis", "hiredis", "pandas", "pyarrow")


def _store(repo: Path, spec: dict):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64, String

    config = RepoConfig(
        project="lookup_bench",
        provider="local",
        registry=str(repo / "registry.db"),
        offline_store={"type": "file"},
        online_store={"type": "redis", "connection_string": spec["redis"]},
        repo_path=repo,
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    # A feature view needs a batch source; nothing reads it here (the rows are written online).
    source = FileSource(name="user_activity_source", path=spec["rows_parquet"], timestamp_field="event_timestamp")
    types = {"float": Float64, "int": Int64, "str": String}
    view = FeatureView(
        name=spec["view"],
        entities=[user],
        ttl=dt.timedelta(seconds=spec["ttl_seconds"]),
        schema=[Field(name=name, dtype=types[kind]) for name, kind in spec["features"].items()],
        source=source,
        online=True,
    )
    store.apply([user, view])
    return store


def _plain(value):
    """A JSON value for the equality check (Feast gives numpy scalars and NaN for some nulls)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def run(spec: dict) -> dict:
    rows = pd.read_parquet(spec["rows_parquet"])
    refs = [f"{spec['view']}:{name}" for name in spec["features"]]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="feast_lookup_") as repo:
        store = _store(Path(repo), spec)
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH_ROWS):
            store.write_to_online_store(spec["view"], rows.iloc[i : i + BATCH_ROWS])
        results["write_rows_per_second"] = round(len(rows) / (time.perf_counter() - started))

        def lookup(ids: list[str]):
            return store.get_online_features(features=refs, entity_rows=[{"user_id": u} for u in ids])

        answer = lookup(spec["check_ids"]).to_dict()
        results["check"] = {
            user: {ref: _plain(answer[ref.split(":")[1]][i]) for ref in refs}
            for i, user in enumerate(answer["user_id"])
        }
        draws = Draws(spec["ids"])
        cases = {
            "to_dict 1": lambda: lookup([draws.one()]).to_dict(),
            "to_dict 100": lambda: lookup(draws.hundred()).to_dict(),
            "to_df 1": lambda: lookup([draws.one()]).to_df(),
            "to_df 100": lambda: lookup(draws.hundred()).to_df(),
        }
        for name, call in cases.items():
            repeat = spec["repeat_one"] if name.endswith(" 1") else spec["repeat_hundred"]
            results[name] = time_call(call, repeat, spec["warmup"])
            print(f"feast {name}: {results[name]}", file=sys.stderr, flush=True)
    results["versions"] = {}
    for package in PACKAGES:
        try:
            results["versions"][package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            results["versions"][package] = None
    return results


def main(argv: list[str]) -> int:
    spec_path, result_path = (Path(arg) for arg in argv)
    result_path.write_text(json.dumps(run(json.loads(spec_path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
