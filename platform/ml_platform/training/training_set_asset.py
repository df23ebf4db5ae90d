"""The training-set asset: a label's rows with their features as of each row's time, split by time.

Built with the same API a data scientist calls (`get_training_set`), so the asset and a notebook
get the same rows. The entity rows are the label table's final rows (keys, `event_timestamp`,
the label; nothing else of the label table, whose other columns describe the future). Rows of
the latest `validation_days` days are marked `validation`, the rest `train`: a model fitted on
`train` never sees the later period it is scored on.

Each build records its manifest (`ml_platform.training.manifest`): every label and feature
partition it read, with row counts, content fingerprints and Dagster data versions, in the
table `training_set_<name>_manifest` and in the run's metadata. The set is rebuilt when its label
changes, and when a feature view partition it read changes (the days of each view it read are
recorded in its metadata, `READ_DAYS`): a view's newest hours, outside every label row's reach,
update all day without rebuilding it.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import datetime as dt
from dataclasses import dataclass

import dagster as dg
import duckdb

from ml_platform.automation import READ_DAYS, Read, on_new_input
from ml_platform.contracts.writer import write_whole
from ml_platform.curated import FeatureView, Label
from ml_platform.lakehouse.housekeeping import tag_snapshot
from ml_platform.lakehouse.scan import pin_current
from ml_platform.point_in_time.join import ENTITY_TIMESTAMP
from ml_platform.training.manifest import ManifestInput, build_manifest, view_window, write_manifest
from ml_platform.training.retrieval import get_training_set
from ml_platform.training.spec import TrainingSet
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse, sql

_ENTITIES = "__training_entities"
SPLIT_COLUMN = "split"


def training_set_asset(spec: TrainingSet, label: Label, views: dict[str, FeatureView]) -> dg.AssetsDefinition:
    missing = [v for v in spec.views if v not in views]
    if missing:
        raise ValueError(f"training set {spec.name}: no feature view(s) {missing}; views: {sorted(views)}")

    @dg.asset(
        name=f"{spec.name}_training_set",
        group_name=spec.group,
        kinds={"duckdb"},
        deps=[label.name, *spec.views],
        pool=WAREHOUSE_POOL,
        owners=[spec.owner],
        description=spec.description,
        metadata={"dagster/table_name": spec.table, "label": label.name, "features": ", ".join(spec.features)},
        automation_condition=on_new_input(
            (Read.whole(label.name), *(Read.whole(view, recorded=True) for view in spec.views))
        ),
    )
    def _training_set(context: dg.AssetExecutionContext, warehouse: Warehouse):
        inputs = [label, *(views[v] for v in spec.views)]
        with warehouse.transaction() as con:
            # Lake tables are read at their current snapshot, recorded and tagged (kept by housekeeping).
            # (None: the table had no snapshot yet, i.e. no rows.)
            snapshots = {curated.name: pin_current(con, curated.name) for curated in inputs if curated.table.on_lake}
            built = build_rows(con, spec, label, views)
            write_whole(con, spec.table, built.relation.sql_query())
            manifest = build_manifest(
                con, context.instance, manifest_inputs(label, views, spec, built.first, built.last), snapshots
            )
            write_manifest(con, spec.manifest_table, manifest)
            counts = dict(
                con.execute(f"SELECT {SPLIT_COLUMN}, count(*) FROM {sql.ident(spec.table)} GROUP BY 1").fetchall()
            )
            positives = con.execute(
                f"SELECT count(*) FILTER (WHERE {sql.ident(label.label_column)}) FROM {sql.ident(spec.table)}"
            ).fetchone()[0]
        for name, snapshot_id in snapshots.items():
            if snapshot_id is not None:
                tag_snapshot(name, snapshot_id, snapshot_tag(spec, context.run_id))
        rows, cutoff = built.rows, built.cutoff
        context.log.info(f"{spec.table}: {rows} rows from {len(manifest)} input partitions")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "train_rows": counts.get("train", 0),
                "validation_rows": counts.get("validation", 0),
                "positive_rate": positives / rows if rows else 0.0,
                "validation_from": str(cutoff) if cutoff else "",
                "manifest_table": spec.manifest_table,
                "manifest": dg.MetadataValue.md(_manifest_summary(manifest)),
                READ_DAYS: dg.MetadataValue.json(_read_days(manifest, label)),
                # What `rebuild_training_set(con, name, <this>)` reads again, on the lake.
                **({"lake_snapshots": dg.MetadataValue.json(snapshots)} if snapshots else {}),
            }
        )

    return _training_set


@dataclass(frozen=True)
class TrainingRows:
    """A training set's rows as a relation (its entity rows in a temporary table), with their count,
    first and last entity times and the validation cutoff."""

    relation: duckdb.DuckDBPyRelation
    rows: int
    first: dt.datetime | None
    last: dt.datetime | None
    cutoff: dt.datetime | None


def build_rows(
    con: duckdb.DuckDBPyConnection,
    spec: TrainingSet,
    label: Label,
    views: dict[str, FeatureView],
    create_inputs: bool = True,
) -> TrainingRows:
    """The set's rows from the label and views as `con` reads them: the label's final rows with
    their features as of each row's time, split by time. `create_inputs`: inputs never
    materialized read as empty tables, not as errors."""
    if create_inputs:
        for curated in (label, *(views[v] for v in spec.views)):
            curated.table.create(con)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_ENTITIES} AS {entity_rows_sql(label)}")
    rows, first, last = con.execute(
        f"SELECT count(*), min({ENTITY_TIMESTAMP}), max({ENTITY_TIMESTAMP}) FROM {_ENTITIES}"
    ).fetchone()
    cutoff = validation_cutoff(last, spec.validation_days)
    built = get_training_set(con, _ENTITIES, spec.features, views=views)
    split = (
        f"*, CASE WHEN {ENTITY_TIMESTAMP} >= {sql.literal(cutoff)} THEN 'validation' ELSE 'train' END AS {SPLIT_COLUMN}"
    )
    return TrainingRows(built.project(split), rows, first, last, cutoff)


def snapshot_tag(spec: TrainingSet, run_id: str) -> str:
    """The tag a build puts on every lake snapshot it read: housekeeping keeps tagged snapshots."""
    return f"training_set/{spec.name}/{run_id}"


def entity_rows_sql(label: Label) -> str:
    """The label's rows as entity rows: keys and join columns, `event_timestamp`, the label; oldest first."""
    keys = sql.columns_list(label.entity_row_columns)
    return (
        f"SELECT {keys}, {sql.ident(label.timestamp_column)} AS {ENTITY_TIMESTAMP}, {sql.ident(label.label_column)}"
        f" FROM {sql.ident(label.name)} ORDER BY {ENTITY_TIMESTAMP}, {keys}"
    )


def validation_cutoff(last: dt.datetime | None, validation_days: int) -> dt.datetime | None:
    """Start of the validation period: midnight `validation_days - 1` days before the last row's day."""
    if last is None:
        return None
    start = last.date() - dt.timedelta(days=validation_days - 1)
    return dt.datetime(start.year, start.month, start.day)


def manifest_inputs(
    label: Label, views: dict[str, FeatureView], spec: TrainingSet, first: dt.datetime | None, last: dt.datetime | None
) -> list[ManifestInput]:
    if first is None:
        return []
    days = (first.date(), last.date())
    # Every label row is an entity row: the whole label table.
    inputs = [ManifestInput(label.name, label.partition_column, (dt.date.min, dt.date.max))]
    for name in spec.views:
        view = views[name]
        inputs.append(ManifestInput(view.name, view.partition_column, view_window(days, view.ttl)))
    return inputs


def _read_days(manifest: list[tuple], label: Label) -> dict[str, list[str]]:
    """Each view's window of days the set read (a view partition outside it cannot change the set)."""
    return {row[0]: [str(row[2]), str(row[3])] for row in manifest if row[0] != label.name}


def _manifest_summary(manifest: list[tuple]) -> str:
    """Per input: partitions, rows, first and last partition (the full list is in the table)."""
    per_input: dict[str, list[tuple]] = {}
    for row in manifest:
        per_input.setdefault(row[0], []).append(row)
    lines = ["| input | partitions | rows | first | last |", "|---|---|---|---|---|"]
    for name, rows in per_input.items():
        lines.append(f"| {name} | {len(rows)} | {sum(r[5] for r in rows)} | {rows[0][4]} | {rows[-1][4]} |")
    return "\n".join(lines)
