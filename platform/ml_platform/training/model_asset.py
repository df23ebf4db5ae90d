"""Model assets: the baseline retrained whenever its training set changes, and its leaky twin.

The baseline (`<name>_model`) is fitted on the training set's `train` rows and scored on its
`validation` rows (the later period); the metrics are numeric metadata, so the asset's page
plots them over retrainings. The fitted pipeline is pickled into the storage as
`models/<name>.pkl` (`ml_platform.storage.artifacts`: the data folder, or the S3 prefix). While the
set cannot train a model yet (no rows, one class only; the demo week is shorter than the churn
horizon), the run succeeds and says why in its metadata instead of failing the lineage.

The leaky variant (`<name>_leaky_model`) adds the spec's all-history columns, scales with every
row's statistics and splits at random (`ml_platform.training.baseline.fit_leaky`): its better
score is the leak, shown side by side with the honest one.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import pickle

import dagster as dg
import pandas as pd

from ml_platform import privacy
from ml_platform.automation import Read, on_new_input
from ml_platform.contracts.writer import table_exists
from ml_platform.curated import Label
from ml_platform.storage import artifacts
from ml_platform.training import ENTITY_TIMESTAMP
from ml_platform.training.baseline import NotTrainable, fit_leaky, fit_time_split
from ml_platform.training.spec import TrainingSet
from ml_platform.training.training_set_asset import SPLIT_COLUMN
from ml_platform.warehouse import Warehouse, sql


def model_assets(spec: TrainingSet, label: Label) -> list[dg.AssetsDefinition]:
    assets = [
        _model_asset(
            spec,
            label,
            f"{spec.name}_model",
            f"Baseline logistic regression on {spec.table}: fitted on its train rows, scored on validation.",
            join="",
            fit=fit_time_split,
        )
    ]
    if spec.leaky is not None:
        keys = sql.columns_list(label.entity_columns)
        # The leaky columns come from the clean layer, by raw id; the training set has pseudonyms.
        pseudonymized = privacy.pseudonymized(label.contract, label.entity_columns)
        leaky_rows = privacy.with_pseudonyms(spec.leaky.sql, pseudonymized)
        assets.append(
            _model_asset(
                spec,
                label,
                f"{spec.name}_leaky_model",
                f"Do not deploy: {spec.leaky.description}",
                join=f"LEFT JOIN ({leaky_rows}) USING ({keys})",
                fit=fit_leaky,
                needs_key=bool(pseudonymized),
            )
        )
    return assets


def _model_asset(
    spec: TrainingSet, label: Label, name: str, description: str, join: str, fit, needs_key: bool = False
) -> dg.AssetsDefinition:
    """A model asset: reads the training set (with `join`'s extra columns, which pseudonymize ids
    when `needs_key`), fits with `fit`."""
    bookkeeping = {*label.entity_row_columns, ENTITY_TIMESTAMP, label.label_column, SPLIT_COLUMN}

    @dg.asset(
        name=name,
        group_name=spec.group,
        kinds={"scikitlearn"},
        deps=[dg.AssetKey(f"{spec.name}_training_set")],
        owners=[spec.owner],
        description=description,
        # Retrain when the training set is rebuilt, never while it is being rebuilt. A model run
        # holds no warehouse slot, so its read is dated by its planned event (Read.pooled).
        automation_condition=on_new_input((Read.whole(f"{spec.name}_training_set", pooled=False),)),
    )
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse):
        frame = _read(warehouse, spec.table, join, needs_key)
        features = [c for c in frame.columns if c not in bookkeeping]
        return _fitted_result(context, name.removesuffix("_model"), lambda: fit(frame, label.label_column, features))

    return _model


def _read(warehouse: Warehouse, table: str, join: str = "", needs_key: bool = False) -> pd.DataFrame:
    # A training set is model input: it is meant to be loaded whole (the platform's tables are not).
    with warehouse.read() as con:
        if not table_exists(con, table):
            return pd.DataFrame()
        if not con.execute(f"SELECT count(*) FROM {sql.ident(table)}").fetchone()[0]:
            join = ""  # nothing to add columns to (and the join's tables may not exist yet)
        if join and needs_key:
            privacy.bind_key(con)
        return con.execute(f"SELECT * FROM {sql.ident(table)} {join} ORDER BY ALL").df()


def _fitted_result(context: dg.AssetExecutionContext, name: str, fit) -> dg.MaterializeResult:
    try:
        fitted = fit()
    except (NotTrainable, KeyError) as exc:
        reason = str(exc) if isinstance(exc, NotTrainable) else "the training set has not been built yet"
        context.log.warning(f"{name}: not trained: {reason}")
        return dg.MaterializeResult(metadata={"trained": False, "reason": reason})
    saved = artifacts.save(model_path(name), pickle.dumps(fitted.model))
    context.log.info(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in fitted.metrics.items()))
    return dg.MaterializeResult(metadata={"trained": True, "model_path": saved, **fitted.metrics})


def model_path(name: str) -> str:
    """Where model `name` (a training set's name, `_leaky` for its leaky twin) is in the storage."""
    return f"{artifacts.MODELS}/{name}.pkl"


def load_model(name: str):
    """The fitted model last saved under `name` (FileNotFoundError before the first)."""
    return pickle.loads(artifacts.load(model_path(name)))
