"""The baseline model: a scikit-learn pipeline fitted on the training window only, scored on validation.

Numeric features are imputed with the training median and standardized; text features are
one-hot encoded (categories unseen in training are ignored). Every statistic (medians, means,
scales, categories) is fitted inside the pipeline on the training rows only, so nothing about
the validation period reaches the model. A logistic regression with balanced class weights is
the baseline: a number to beat, not a product.

The leaky variant does what the seeds did: scaler fitted on every row, random split, features
computed over all history. `fit_leaky` exists to show the score leakage buys, never to deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

# scikit-learn is imported inside the functions that fit or score: every run's worker loads the
# code location, which imports this module, and scikit-learn alone took about 1 s of that import
# (`python -X importtime`), paid by every raw and clean run that never trains a model.
if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SEED = 7


class NotTrainable(ValueError):
    """The training set cannot train a model yet (too few rows, one class only)."""


@dataclass
class Fitted:
    model: Pipeline
    metrics: dict[str, float]


def feature_kinds(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns: booleans count as numeric, text as categorical."""
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    return numeric, [c for c in features if c not in numeric]


def baseline_pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ],
        # Columns that are entirely null in training still pass through the imputer as constants.
        remainder="drop",
    )
    return Pipeline([("features", columns), ("model", LogisticRegression(max_iter=2000, class_weight="balanced"))])


def fit_time_split(frame: pd.DataFrame, label: str, features: list[str], split_column: str = "split") -> Fitted:
    """Fit on the rows marked 'train', score on those marked 'validation' (the later period)."""
    train = frame[frame[split_column] == "train"]
    validation = frame[frame[split_column] == "validation"]
    _require_trainable(train, validation, label)
    model = baseline_pipeline(*feature_kinds(frame, features))
    model.fit(_inputs(train, features), train[label].astype(int))
    return Fitted(model, evaluate(model, validation, label, features, len(train)))


def fit_leaky(frame: pd.DataFrame, label: str, features: list[str]) -> Fitted:
    """The seeds' way: standardize with statistics of every row, then a random 75/25 split."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    _require_trainable(frame, frame, label)  # before the scaler, which refuses an empty frame
    numeric, categorical = feature_kinds(frame, features)
    inputs = _inputs(frame, features).copy()
    # Fitted on all rows, the validation rows included: the leak the baseline avoids.
    inputs[numeric] = StandardScaler().fit_transform(
        SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(inputs[numeric])
    )
    target = frame[label].astype(int)
    train_x, valid_x, train_y, valid_y = train_test_split(inputs, target, test_size=0.25, random_state=SEED)
    _require_trainable(train_y.to_frame(label), valid_y.to_frame(label), label)
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", "passthrough", numeric),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=2000, class_weight="balanced")),
        ]
    )
    model.fit(train_x, train_y)
    validation = valid_x.assign(**{label: valid_y})
    return Fitted(model, evaluate(model, validation, label, features, len(train_x)))


def evaluate(model: Pipeline, validation: pd.DataFrame, label: str, features: list[str], train_rows: int) -> dict:
    """Validation metrics as plain floats (Dagster plots numeric metadata over materializations)."""
    from sklearn.metrics import accuracy_score, average_precision_score, log_loss, roc_auc_score

    truth = validation[label].astype(int).to_numpy()
    probability = model.predict_proba(_inputs(validation, features))[:, 1]
    return {
        "roc_auc": float(roc_auc_score(truth, probability)),
        "average_precision": float(average_precision_score(truth, probability)),
        "log_loss": float(log_loss(truth, probability, labels=[0, 1])),
        "accuracy": float(accuracy_score(truth, probability >= 0.5)),
        "validation_positive_rate": float(truth.mean()),
        "train_rows": train_rows,
        "validation_rows": len(truth),
    }


def _inputs(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    # pandas' nullable types (Int64, boolean) hold pd.NA, which scikit-learn's imputers do not take.
    return frame[features].astype({c: "float64" for c in features if _nullable_number(frame[c])})


def _nullable_number(column: pd.Series) -> bool:
    return pd.api.types.is_extension_array_dtype(column) and (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    )


def _require_trainable(train: pd.DataFrame, validation: pd.DataFrame, label: str) -> None:
    for name, part in (("training", train), ("validation", validation)):
        classes = np.unique(part[label].astype(int)) if len(part) else []
        if len(classes) < 2:
            raise NotTrainable(
                f"the {name} rows hold {len(part)} row(s) and {len(classes)} label class(es); a model needs both classes"
            )
