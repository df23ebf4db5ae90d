"""The set-based SQL that turns raw rows into contract-typed rows, each with its verdict.

`staged_rows_sql` returns one row per raw row whose owning partition lies in the window:
contract columns typed with TRY_CAST, event time normalized to UTC, the owning partition, the
first rule the row breaks (`_violation`, NULL when clean) and columns outside the contract
(`_extra_columns`). The clean asset writes the passing rows (deduplicated) and quarantines
the rest, so every raw row is accounted for exactly once.

Ownership: a row belongs to the partition of its UTC event date when that date is within
[landing date - tolerance, landing date + 1]. Rows outside (too late, in the future, or with no
readable event time) belong to their landing date's partition, where they are quarantined:
they are never silently dropped.
"""

from __future__ import annotations

import datetime as dt

from ml_platform.contracts import table_contract as tc
from ml_platform.ingestion.schema_check import REJECTION_RULES
from ml_platform.sources.spec import SourceSpec

# Rules the clean layer adds to the contract's own row rules.
RULE_UNPARSABLE_TIME = "unparsable_timestamp"
RULE_TOO_LATE = "later_than_tolerance"
RULE_FUTURE = "after_landing_date"
SCHEMA_RULE_COLUMN = "_schema"
# Offsets such as Z, +05:30, -0800 or +09 at the end of an ISO timestamp.
OFFSET_PATTERN = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


def raw_window(spec: SourceSpec, window: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
    """Landing dates that can hold rows owned by partitions in `window`."""
    return (window[0] - dt.timedelta(days=1), window[1] + dt.timedelta(days=spec.late_tolerance_days))


def _text_of(spec: SourceSpec, column: str) -> str:
    paths = [f"json_extract_string(record, {tc.sql_literal('$.' + _json_key(name))})" for name in spec.names_for(column)]
    return paths[0] if len(paths) == 1 else f"COALESCE({', '.join(paths)})"


def _json_key(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _utc_timestamp(text: str, zone: str) -> str:
    """Text -> naive UTC TIMESTAMP; explicit offsets win, otherwise the source's zone applies."""
    with_offset = f"timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ))"
    without = f"timezone('UTC', timezone({tc.sql_literal(zone)}, TRY_CAST({text} AS TIMESTAMP)))"
    parsed = f"CASE WHEN regexp_matches({text}, {tc.sql_literal(OFFSET_PATTERN)}) THEN {with_offset} ELSE {without} END"
    # 'infinity' and friends parse but are not event times.
    return f"(CASE WHEN isfinite({parsed}) THEN {parsed} END)"


def staged_rows_sql(
    spec: SourceSpec, window: tuple[dt.date, dt.date] | None, rejected_batches: list[str] = ()
) -> str:
    """`rejected_batches`: batches (`source_file@landing_date`) the schema policy rejects."""
    types = {c.name: c.duckdb_type for c in tc.columns(spec.contract)}
    text_cols = ",\n    ".join(f"{_text_of(spec, c)} AS {tc.quote(c + '__text')}" for c in spec.source_columns)
    typed = []
    type_rules = []
    for column in spec.source_columns:
        text = tc.quote(column + "__text")
        if column == spec.event_time_column:
            typed.append(f"{_utc_timestamp(text, spec.event_time_zone)} AS {tc.quote(column)}")
            continue
        typed.append(f"TRY_CAST({text} AS {types[column]}) AS {tc.quote(column)}")
        if types[column] != "VARCHAR":
            type_rules.append(
                tc.RowRule(f"{column}:type({types[column]})", column, f"({text} IS NOT NULL AND {tc.quote(column)} IS NULL)")
            )
    known = tc.sql_literal(sorted(spec.known_columns()))
    select_raw = f"""
  SELECT r.source_file, r.source_row, r.landing_date, r.ingested_at, r.schema_version, r.record,
    list_filter(l.columns, k -> NOT list_contains({known}::VARCHAR[], k)) AS _extra_columns,
    {text_cols}
  FROM {tc.quote(spec.raw_table)} r
  JOIN ingest_ledger l ON l.source = {tc.sql_literal(spec.name)} AND l.source_file = r.source_file
    AND l.landing_date = r.landing_date AND l.ingested_at = r.ingested_at"""
    type_rules = [*schema_policy_rules(spec, rejected_batches), *type_rules]
    if window is None:
        # Snapshot source: every landing day is a full snapshot and owns its own rows.
        return _verdict_sql(spec, select_raw, typed, type_rules, [], "landing_date", None)

    lo, hi = raw_window(spec, window)
    select_raw += f"\n  WHERE r.landing_date BETWEEN DATE '{lo}' AND DATE '{hi}'"
    t = tc.quote(spec.event_time_column)
    t_text = tc.quote(spec.event_time_column + "__text")
    day = f"CAST({t} AS DATE)"
    tolerance = spec.late_tolerance_days
    too_late = f"({day} < landing_date - INTERVAL {tolerance} DAY)"
    future = f"({day} > landing_date + INTERVAL 1 DAY)"
    time_rules = [
        tc.RowRule(f"{spec.event_time_column}:{RULE_UNPARSABLE_TIME}", spec.event_time_column, f"({t_text} IS NOT NULL AND {t} IS NULL)"),
        tc.RowRule(f"{spec.event_time_column}:{RULE_TOO_LATE}({tolerance}d)", spec.event_time_column, too_late),
        tc.RowRule(f"{spec.event_time_column}:{RULE_FUTURE}", spec.event_time_column, future),
    ]
    partition_expr = f"CASE WHEN {t} IS NULL OR {too_late} OR {future} THEN landing_date ELSE {day} END"
    return _verdict_sql(spec, select_raw, typed, type_rules, time_rules, partition_expr, window)


def _verdict_sql(spec, select_raw, typed, type_rules, time_rules, partition_expr, window) -> str:
    # History columns of snapshot sources are derived after staging; their rules apply to the table.
    contract_rules = [r for r in tc.row_rules(spec.contract) if r.column not in spec.history_columns]
    rules = [*time_rules, *type_rules, *contract_rules]
    part_col = spec.partition_column
    derived = ""
    if part_col:
        derived = f",\n    CAST({tc.quote(spec.event_time_column)} AS DATE) AS {tc.quote(part_col)}"
    partition_select = f",\n    CAST({partition_expr} AS DATE) AS _partition"
    where = f"\nWHERE _partition BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'" if window else ""
    return f"""
WITH extracted AS ({select_raw}
),
typed AS (
  SELECT *,
    {(','+chr(10)+'    ').join(typed)}
  FROM extracted
),
owned AS (
  SELECT *{derived}{partition_select}
  FROM typed
)
SELECT *, {tc.first_violation_sql(rules)} AS _violation
FROM owned{where}
"""


def schema_policy_rules(spec: SourceSpec, rejected_batches: list[str]) -> list[tc.RowRule]:
    """Every row of a batch the schema policy rejects breaks this rule (see schema_check)."""
    if not rejected_batches:
        return []
    batch = "(source_file || '@' || CAST(landing_date AS VARCHAR))"
    cond = f"list_contains({tc.sql_literal(list(rejected_batches))}::VARCHAR[], {batch})"
    return [tc.RowRule(REJECTION_RULES[spec.schema_policy], SCHEMA_RULE_COLUMN, cond)]


def dedup_order(spec: SourceSpec) -> str:
    """Which copy of a key wins within a partition: the highest version if the source has a version
    column, then the latest ingested, then the last file and row."""
    keys = ", ".join(tc.quote(k) for k in spec.key_columns)
    version = f"{tc.quote(spec.version_column)} DESC NULLS LAST, " if spec.version_column else ""
    return f"PARTITION BY _partition, {keys} ORDER BY {version}ingested_at DESC, source_file DESC, source_row DESC"
