"""What a source kind's builder returns: its raw asset(s) and the triggers and resources they need."""

from dataclasses import dataclass, field


@dataclass
class RawSide:
    assets: list = field(default_factory=list)  # the raw asset first
    sensors: list = field(default_factory=list)
    schedules: list = field(default_factory=list)
    resources: dict = field(default_factory=dict)
