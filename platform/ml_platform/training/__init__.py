"""Training data and models: features by `view:feature` name, point-in-time correct (no leakage).

- `retrieval`: `get_training_set` (snapshot or temporal accuracy), over `ml_platform.point_in_time`;
- `online`: `get_online_features`, the serving lookup (the same join at "now");
- `spec`: `TrainingSet`, what a training-set declaration holds;
- `training_set_asset` (+ `manifest`): a declared set built from its label's rows, split by
  time, with the manifest of every input partition it read;
- `rebuild`: `rebuild_training_set`, a past build again from the lake snapshots it recorded;
- `baseline`, `model_asset`: the baseline scikit-learn model and the leaky one beside it;
- `serving_asset`: the `latest_<view>` tables; `assets`: all of these for the code location.
"""

from ml_platform.point_in_time.join import (
    ENTITY_TIMESTAMP,
    AmbiguousFeatureRows,
    FeatureTable,
    point_in_time_join,
)
from ml_platform.point_in_time.temporal import TemporalFeature, TemporalView, temporal_join
from ml_platform.training.online import get_online_features
from ml_platform.training.rebuild import rebuild_training_set
from ml_platform.training.retrieval import Accuracy, feature_views, get_training_set
from ml_platform.training.spec import LeakyVariant, TrainingSet

__all__ = [
    "ENTITY_TIMESTAMP",
    "Accuracy",
    "AmbiguousFeatureRows",
    "FeatureTable",
    "LeakyVariant",
    "TemporalFeature",
    "TemporalView",
    "TrainingSet",
    "feature_views",
    "get_online_features",
    "get_training_set",
    "point_in_time_join",
    "rebuild_training_set",
    "temporal_join",
]
