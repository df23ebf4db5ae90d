"""From curated tables to models: training-set assets, baseline models, latest values for serving.

`TrainingSet` (spec.py) declares a training set: a label table as the entity rows, features by
`view:feature` name, the validation window. The platform makes three assets of it: the training
set (point-in-time correct, with a manifest of the feature partitions it used), a baseline
scikit-learn model retrained when the set changes, and the same model built the leaky way.
"""

from ml_platform.modeling.spec import LeakyVariant, TrainingSet

__all__ = ["LeakyVariant", "TrainingSet"]
