"""`rebuild_training_set`: a training set as a past build made it, from the lake snapshots its
manifest recorded, whatever the tables hold today.

A build on lake tables (`ML_PLATFORM_LAKE_TABLES`) reads every input (the label and each feature
view) at its current Iceberg snapshot, records the snapshot in the manifest (and in the run's
`lake_snapshots` metadata) and tags it, so housekeeping keeps it. Rebuilding reads each input at
its recorded snapshot (a temporary view in the caller's connection; the view's frontier computed
from it) and runs the build again: the same rows, in the same order, with the same split.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from ml_platform.curated import FeatureView, Label
from ml_platform.discovery import discover
from ml_platform.lakehouse.scan import read_at, read_empty
from ml_platform.point_in_time.frontier import frontier_as_read
from ml_platform.training.manifest import manifest_snapshots
from ml_platform.training.retrieval import feature_views
from ml_platform.training.spec import TrainingSet
from ml_platform.training.training_set_asset import build_rows
from ml_platform.warehouse import sql


def rebuild_training_set(
    con: duckdb.DuckDBPyConnection, name: str, manifest: str | Mapping[str, int] | None = None
) -> duckdb.DuckDBPyRelation:
    """Training set `name` as built from `manifest`'s snapshots: the name of a manifest table (by
    default the set's own, i.e. its latest build) or the `lake_snapshots` of a build's run metadata
    ({input table: snapshot id}). Returns the rows (a temporary table of `con`); raises ValueError
    when the manifest records no snapshot at all, or one that was expired."""
    spec = _training_set(name)
    label = _label(spec.label)
    views = {view: found for view, found in feature_views().items() if view in spec.views}
    snapshots = (
        dict(manifest) if isinstance(manifest, Mapping) else manifest_snapshots(con, manifest or spec.manifest_table)
    )
    if not any(snapshot_id is not None for snapshot_id in snapshots.values()):
        raise ValueError(
            f"training set {name}: the manifest records no lake snapshot (built before ML_PLATFORM_LAKE_TABLES)"
        )
    for curated in (label, *(views[v] for v in spec.views)):
        snapshot_id = snapshots.get(curated.name)
        if snapshot_id is None:
            # No snapshot recorded: the input had no rows the set could read (none at all, or
            # none in the partitions its rows reach, which the manifest lists).
            read_empty(con, curated.name)
        else:
            read_at(con, curated.name, snapshot_id)
        if isinstance(curated, FeatureView):
            frontier_as_read(
                con, curated.name, curated.entity_columns, curated.timestamp_column, curated.created_column
            )
    built = build_rows(con, spec, label, views, create_inputs=False)
    rebuilt = f"rebuilt_{spec.table}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {sql.ident(rebuilt)} AS {built.relation.sql_query()}")
    return con.table(rebuilt)


def _training_set(name: str) -> TrainingSet:
    sets = {s.name: s for s in discover("training_sets", TrainingSet)}
    if name not in sets:
        raise ValueError(f"no training set {name!r}; training sets: {sorted(sets)}")
    return sets[name]


def _label(name: str) -> Label:
    return {label.name: label for label in discover("labels", Label)}[name]
