"""A file's column names matched to the source's contract, as exports write them.

Exports write names their own way: `EVENT_ID`, `Event_Id `, ` event_id`. A name that equals a
contract column or alias once surrounding spaces are stripped and case is folded is read under
the contract's spelling, so the clean layer finds it; the ledger keeps the names as landed
(`renamed_columns`). Other names are kept as landed (stripped, for a CSV header): the clean layer
records them as extra columns.

Two names of one file that fold to the same contract name (`event_id` and `EVENT_ID`, or
`event_id` twice) leave no way to tell which holds the column: the file is unreadable, with both
names in the reason, rather than one picked silently. Names the contract does not read are never
picked between, so they may repeat in any case.
"""

from __future__ import annotations

from collections import defaultdict

from ml_platform.ingestion.files.scan import UnreadableFile
from ml_platform.raw.spec import SourceSpec


def fold(name: str) -> str:
    return name.strip().casefold()


def contract_names(spec: SourceSpec, names: list[str], what: str = "header fields") -> list[str]:
    """`names` with each one the contract reads (a column or an alias, after stripping and
    case-folding) in the contract's spelling, the others unchanged. Raises UnreadableFile when
    two of them read as the same contract name."""
    known = {fold(name): name for name in sorted(spec.known_columns())}
    claims: dict[str, list[int]] = defaultdict(list)
    matched = []
    for i, name in enumerate(names):
        target = known.get(fold(name))
        if target is not None:
            claims[target].append(i)
        matched.append(target if target is not None else name)
    clashes = {target: found for target, found in claims.items() if len(found) > 1}
    if clashes:
        words = "; ".join(
            " and ".join(f"{names[i]!r} (#{i + 1})" for i in found)
            + (" both" if len(found) == 2 else " all")
            + f" read as {target!r}"
            for target, found in sorted(clashes.items())
        )
        raise UnreadableFile(
            f"{what} {words} once spaces and case are set aside: the file cannot say which holds the"
            " column; rename or drop the others and land it again"
        )
    return matched


def renamed(landed: list[str], read: list[str]) -> dict[str, str]:
    """Names as landed -> as read, for those that differ."""
    return {before: after for before, after in zip(landed, read, strict=True) if before != after}
