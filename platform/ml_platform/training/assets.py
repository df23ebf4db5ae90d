"""Every modeling asset of the platform: per training set its set, model and leaky model; the serving snapshot."""

from __future__ import annotations

import dagster as dg

from ml_platform.curated import FeatureView, Label
from ml_platform.training.model_asset import model_assets
from ml_platform.training.serving_asset import serving_asset
from ml_platform.training.spec import TrainingSet
from ml_platform.training.training_set_asset import training_set_asset


def training_assets(
    training_sets: list[TrainingSet], labels: list[Label], views: list[FeatureView]
) -> list[dg.AssetsDefinition]:
    labels_by_name = {label.name: label for label in labels}
    views_by_name = {view.name: view for view in views}
    assets = [serving_asset(views)] if views else []
    for spec in training_sets:
        if spec.label not in labels_by_name:
            raise ValueError(f"training set {spec.name}: no label {spec.label!r}; labels: {sorted(labels_by_name)}")
        label = labels_by_name[spec.label]
        assets.append(training_set_asset(spec, label, views_by_name))
        assets += model_assets(spec, label)
    return assets
