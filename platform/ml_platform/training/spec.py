"""A training set declared as data: which label, which features, how it is split."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LeakyVariant:
    """How "the seeds" built this model, kept beside the baseline to show what leakage buys.

    `sql` selects, per entity, aggregates over *all* history (the future of most rows included);
    its columns are added to the features, the scaler is fitted on every row and the split is
    random instead of by time. The score it gets is the score no deployed model will see.
    """

    sql: str
    description: str


@dataclass(frozen=True, kw_only=True)
class TrainingSet:
    name: str
    description: str
    # The label table (an `ml_platform.declarations.labels` label): its rows are the entity rows.
    label: str
    # Features by `view:feature` name, as `get_training_set` takes them.
    features: tuple[str, ...]
    # The latest this many days of as-of times are the validation set; the rest trains.
    validation_days: int
    leaky: LeakyVariant | None = None
    owner: str = "team:ml-platform"
    group: str = "training"

    def __post_init__(self):
        if self.validation_days < 1:
            raise ValueError(f"training set {self.name}: validation_days must be at least 1")
        if not self.features:
            raise ValueError(f"training set {self.name}: name at least one view:feature")

    @property
    def table(self) -> str:
        """The warehouse table holding the built set."""
        return f"training_set_{self.name}"

    @property
    def manifest_table(self) -> str:
        """The warehouse table recording the feature partitions the set was built from."""
        return f"training_set_{self.name}_manifest"

    @property
    def views(self) -> list[str]:
        """The feature views the set reads, in the order first named."""
        return list(dict.fromkeys(name.partition(":")[0] for name in self.features))
