"""What a user declares: the platform's sources, feature tables and views, labels and training sets.

One module per thing, in the folder of its kind; the code location finds them all (`discover_*`
below, through `ml_platform.discovery`), so adding one is adding a module:

- `sources/<name>.py`: a source's contract (a Pandera model) and `SPEC` (a `FileSourceSpec`,
  `PostgresSourceSpec` or `ApiSourceSpec` from `ml_platform.ingestion`);
- `features/<name>.py`: a curated table's or feature view's contract, SQL and `TABLE`
  (`CuratedTable` or `FeatureView` from `ml_platform.curated`);
- `stream_features/<name>.py`: a stream feature view's contract, window and aggregates and `VIEW`
  (`StreamFeatureView` from `ml_platform.curated.stream_view`);
- `labels/<name>.py`: a label's contract, SQL and `LABEL` (`Label`);
- `training_sets/<name>.py`: `TRAINING_SET` (`TrainingSet` from `ml_platform.training`).

Declarations import only the public spec classes, contracts and rules; nothing imports them but
discovery (`platform_tests/test_architecture.py`).
"""

from __future__ import annotations

from ml_platform.curated import CuratedTable, Label
from ml_platform.curated.stream_view import StreamFeatureView
from ml_platform.discovery import discover
from ml_platform.raw.spec import SourceSpec
from ml_platform.training.spec import TrainingSet


def discover_specs() -> list[SourceSpec]:
    """Every source spec, in module-name order."""
    return discover("sources", SourceSpec)


def discover_curated_tables() -> list[CuratedTable]:
    """Every curated table and feature view, in module-name order."""
    return discover("features", CuratedTable)


def discover_stream_views() -> list[StreamFeatureView]:
    """Every stream feature view, in module-name order."""
    return discover("stream_features", StreamFeatureView)


def discover_labels() -> list[Label]:
    """Every label, in module-name order."""
    return discover("labels", Label)


def discover_training_sets() -> list[TrainingSet]:
    """Every training set, in module-name order."""
    return discover("training_sets", TrainingSet)
