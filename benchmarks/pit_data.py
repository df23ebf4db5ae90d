"""Deterministic inputs for the point-in-time benchmark: a feature table and entity rows.

The feature table has `keys` users with about `feature_rows / keys` rows each, on an hourly grid
over `days` days: rows of one user often share an hour, so equal-timestamp ties are common. Most
rows are created (written) at their timestamp; `late_fraction` of them later, by up to three days,
as backfills and corrections are. Rows that would agree on (user, ts, created) get their created
time moved by a few seconds: the platform's join refuses such rows as ambiguous.

The entity rows are `entity_rows` (user, event_timestamp) pairs at random seconds of the same
span; about 1% name users that have no feature row at all. Each carries a `row_id` (its input
position), which every contender passes through, so outputs can be matched row by row.

Everything comes from one numpy seed, so a run is repeatable byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

START = np.datetime64("2026-01-01T00:00:00", "s")
FEATURES = ("amount", "clicks", "score", "segment")  # DOUBLE, BIGINT, DOUBLE, VARCHAR
SEGMENTS = np.array(["new", "casual", "regular", "power"])


@dataclass(frozen=True)
class Spec:
    """Sizes and shape of the generated data."""

    entity_rows: int = 100_000
    feature_rows: int = 1_000_000
    keys: int = 10_000
    days: int = 90
    late_fraction: float = 0.2
    ttl_hours: int = 48
    seed: int = 20260301


@dataclass(frozen=True)
class Inputs:
    """Where the generated inputs are: a DuckDB file with tables `features` and `entities`
    (naive UTC TIMESTAMPs, the warehouse's convention), and the same rows as Parquet."""

    database: Path
    features_parquet: Path  # timestamps as TIMESTAMPTZ (UTC): what Feast's sources expect
    entities_parquet: Path


def _feature_rows(rng: np.random.Generator, spec: Spec) -> pa.Table:
    n = spec.feature_rows
    hours = rng.integers(0, spec.days * 24, n)
    ts = START + hours * np.timedelta64(3600, "s")
    # Whole minutes of delay: the tie-breaking seconds added later cannot make new collisions.
    late = rng.random(n) < spec.late_fraction
    delay_minutes = np.where(late, rng.integers(1, 72 * 60, n), 0)
    return pa.table(
        {
            "user_id": rng.integers(0, spec.keys, n),
            "ts": ts,
            "created": ts + delay_minutes * np.timedelta64(60, "s"),
            "amount": np.round(rng.gamma(2.0, 50.0, n), 2),
            "clicks": rng.poisson(5.0, n),
            "score": rng.random(n),
            "segment": SEGMENTS[rng.integers(0, len(SEGMENTS), n)],
        }
    )


def _entity_rows(rng: np.random.Generator, spec: Spec) -> pa.Table:
    n = spec.entity_rows
    seconds = rng.integers(0, spec.days * 86_400, n)
    return pa.table(
        {
            "row_id": np.arange(n),
            "user_id": rng.integers(0, int(spec.keys * 1.01) + 1, n),
            "event_timestamp": START + seconds * np.timedelta64(1, "s"),
            "label": rng.integers(0, 2, n),
        }
    )


def generate(spec: Spec, directory: Path) -> Inputs:
    """Write the inputs under `directory` and say where they are."""
    rng = np.random.default_rng(spec.seed)
    features, entities = _feature_rows(rng, spec), _entity_rows(rng, spec)
    inputs = Inputs(directory / "warehouse.duckdb", directory / "features.parquet", directory / "entities.parquet")
    con = duckdb.connect(str(inputs.database))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("generated_features", features)
        con.register("generated_entities", entities)
        # Stored in append order (by created time), as a warehouse table filled over time is.
        con.execute(
            """
            CREATE TABLE features AS
            SELECT user_id, CAST(ts AS TIMESTAMP) AS ts,
                   CAST(created AS TIMESTAMP) + to_seconds(
                       row_number() OVER (PARTITION BY user_id, ts, created ORDER BY amount, clicks, score) - 1
                   ) AS created,
                   amount, clicks, score, segment
            FROM generated_features
            ORDER BY created, user_id
            """
        )
        con.execute(
            "CREATE TABLE entities AS SELECT row_id, user_id, CAST(event_timestamp AS TIMESTAMP) AS event_timestamp,"
            " label FROM generated_entities ORDER BY row_id"
        )
        _assert_unambiguous(con)
        con.execute(
            f"COPY (SELECT user_id, ts::TIMESTAMPTZ AS ts, created::TIMESTAMPTZ AS created, {', '.join(FEATURES)}"
            f" FROM features) TO '{inputs.features_parquet}' (FORMAT parquet)"
        )
        con.execute(f"COPY entities TO '{inputs.entities_parquet}' (FORMAT parquet)")
    finally:
        con.close()
    return inputs


def _assert_unambiguous(con: duckdb.DuckDBPyConnection) -> None:
    duplicates = con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM features GROUP BY user_id, ts, created HAVING count(*) > 1)"
    ).fetchone()[0]
    assert duplicates == 0, f"{duplicates} (user_id, ts, created) groups are not unique"


def describe(database: Path, spec: Spec) -> dict:
    """Counts that say what the data exercises: ties, late rows, entity rows with nothing in the TTL."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        feature_facts = con.execute(
            """
            SELECT count(*), count(DISTINCT user_id), count(*) FILTER (WHERE created > ts),
                   (SELECT count(*) FROM (SELECT 1 FROM features GROUP BY user_id, ts HAVING count(*) > 1))
            FROM features
            """
        ).fetchone()
        entity_facts = con.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE f.ts IS NULL),
                   count(*) FILTER (WHERE f.ts IS NULL OR f.ts < e.event_timestamp - INTERVAL {spec.ttl_hours} HOUR)
            FROM entities e ASOF LEFT JOIN features f ON e.user_id = f.user_id AND e.event_timestamp >= f.ts
            """
        ).fetchone()
    finally:
        con.close()
    return {
        "feature_rows": feature_facts[0],
        "users_with_features": feature_facts[1],
        "rows_created_after_their_timestamp": feature_facts[2],
        "user_hours_with_timestamp_ties": feature_facts[3],
        "entity_rows": entity_facts[0],
        "entity_rows_without_any_earlier_feature_row": entity_facts[1],
        "entity_rows_whose_latest_earlier_row_is_outside_ttl": entity_facts[2],
        "ttl_hours": spec.ttl_hours,
    }
