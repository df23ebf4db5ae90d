"""The set-based SQL that turns raw rows into contract-typed rows, each with its verdict.

`staged_rows_sql` returns one row per raw row of the landing days that can hold the window's
events: contract columns typed with TRY_CAST, event time normalized to UTC, the owning
partition (`_partition`), the first rule the row breaks (`_violation`, NULL when clean) and
columns outside the contract (`_extra_columns`). The clean write keeps the rows the window owns
(deduplicated), quarantines the broken ones and counts the rest as owned by other days, so
every raw row read is accounted for exactly once.

Ownership: a row belongs to the partition of its UTC event date when that date is within
[landing date - tolerance, landing date + 1]. Rows outside (too late, in the future, or with no
readable event time) belong to their landing date's partition, where they are quarantined:
they are never silently dropped.
"""

from __future__ import annotations

import datetime as dt

from ml_platform.contracts import table_contract as tc
from ml_platform.raw.schema_policy import REJECTION_RULES
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

# Rules the clean layer adds to the contract's own row rules.
RULE_UNPARSABLE_TIME = "unparsable_timestamp"
RULE_TOO_LATE = "later_than_tolerance"
RULE_FUTURE = "after_landing_date"
RULE_NOT_SCALAR = "not_a_scalar"
RULE_CONTROL_CHARACTERS = "control_characters"
SCHEMA_RULE_COLUMN = "_schema"
# C0 controls and DEL (NUL included), in RE2 syntax: never part of a key a person could type.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"


def too_late_rule(spec: SourceSpec) -> str:
    """The quarantine rule of rows that landed more than the tolerance after their event day."""
    return f"{spec.event_time_column}:{RULE_TOO_LATE}({spec.late_tolerance_days}d)"


def raw_window(spec: SourceSpec, window: DateWindow) -> DateWindow:
    """Landing dates that can hold rows owned by partitions in `window`."""
    return (window[0] - dt.timedelta(days=1), window[1] + dt.timedelta(days=spec.late_tolerance_days))


# Each raw record is parsed twice in all (text and JSON type of every key at once), not twice per
# key: per-key json_extract_string/json_type calls each re-parse the record, which made JSON
# parsing most of a clean step (profiled in benchmarks/README.md, "Pipeline").
JSON_TEXTS = "_json_texts"
JSON_TYPES = "_json_types"


def _json_keys(spec: SourceSpec) -> list[str]:
    """Every key a source column may arrive under (contract names and aliases), in a fixed order."""
    keys: list[str] = []
    for column in spec.source_columns:
        keys += [name for name in spec.names_for(column) if name not in keys]
    return keys


def _json_item(spec: SourceSpec, values: str, key: str) -> str:
    """`key`'s element of a list computed for every `_json_keys` key (DuckDB lists are 1-based)."""
    return f"{values}[{_json_keys(spec).index(key) + 1}]"


def _text_of(spec: SourceSpec, column: str) -> str:
    """The column's text in a raw record, under its contract name or any of its aliases; the
    column's null markers (e.g. 'NA', when the source declares it) read as NULL."""
    paths = [_json_item(spec, JSON_TEXTS, name) for name in spec.names_for(column)]
    text = paths[0] if len(paths) == 1 else f"COALESCE({', '.join(paths)})"
    markers = spec.null_markers(column)
    if not markers:
        return text
    return f"(CASE WHEN {text} IN ({', '.join(sql.literal(v) for v in markers)}) THEN NULL ELSE {text} END)"


def _value_rules(spec: SourceSpec) -> list[tc.RowRule]:
    """Values no contract type can hold as they arrived: a JSON array or object where a column
    expects one value (never stringified into it), and control characters (NUL...) in a key."""
    rules = []
    for column in spec.source_columns:
        kinds = [_json_item(spec, JSON_TYPES, name) for name in spec.names_for(column)]
        nested = " OR ".join(f"{kind} IN ('ARRAY', 'OBJECT')" for kind in kinds)
        rules.append(tc.RowRule(f"{column}:{RULE_NOT_SCALAR}", column, f"({nested})"))
    for key in spec.key_columns:
        if key in spec.source_columns:
            text = sql.ident(key + "__text")
            control = f"regexp_matches({text}, {sql.literal(CONTROL_CHARACTERS)})"
            rules.append(tc.RowRule(f"{key}:{RULE_CONTROL_CHARACTERS}", key, f"coalesce({control}, false)"))
    return rules


def staged_rows_sql(
    spec: SourceSpec,
    window: DateWindow | None,
    rejected_batches: list[str] = (),
    snapshots_from=None,
    raw_relation: str | None = None,
) -> str:
    """`rejected_batches`: batches (`source_file@landing_date`) the schema policy rejects.
    `snapshots_from` (snapshot sources): stage only the snapshots of that landing day and later.
    `raw_relation`: a table holding some of the raw table's rows, to stage those only."""
    types = {c.name: c.duckdb_type for c in tc.columns(spec.contract)}
    text_cols = ",\n    ".join(f"{_text_of(spec, c)} AS {sql.ident(c + '__text')}" for c in spec.source_columns)
    typed = []
    type_rules = []
    for column in spec.source_columns:
        text = sql.ident(column + "__text")
        if column == spec.event_time_column:
            typed.append(f"{sql.utc_timestamp(text, spec.event_time_zone)} AS {sql.ident(column)}")
            continue
        typed.append(f"TRY_CAST({text} AS {types[column]}) AS {sql.ident(column)}")
        if types[column] != "VARCHAR":
            type_rules.append(
                tc.RowRule(
                    f"{column}:type({types[column]})", column, f"({text} IS NOT NULL AND {sql.ident(column)} IS NULL)"
                )
            )
    known = sql.string_list(sorted(spec.known_columns()))
    paths = "[" + ", ".join(sql.json_path(key) for key in _json_keys(spec)) + "]"
    parsed = f"""
    SELECT r.source_file, r.source_row, r.landing_date, r.ingested_at, r.schema_version, r.record,
      list_filter(l.columns, k -> NOT list_contains({known}, k)) AS _extra_columns,
      json_extract_string(r.record, {paths}) AS {JSON_TEXTS},
      json_type(r.record, {paths}) AS {JSON_TYPES}
    FROM {sql.ident(raw_relation or spec.raw_table)} r
    JOIN {sql.ident(LEDGER_TABLE)} l ON l.source = {sql.literal(spec.name)} AND l.source_file = r.source_file
      AND l.landing_date = r.landing_date AND l.ingested_at = r.ingested_at"""
    if window is not None:
        parsed += f"\n    WHERE {sql.in_window('landing_date', raw_window(spec, window), table_alias='r')}"
    elif snapshots_from is not None:
        parsed += f"\n    WHERE r.landing_date >= {sql.literal(snapshots_from)}"
    select_raw = f"""
  SELECT * EXCLUDE ({JSON_TEXTS}),
    {text_cols}
  FROM ({parsed}
  )"""
    type_rules = [*schema_policy_rules(spec, rejected_batches), *_value_rules(spec), *type_rules]
    if window is None:
        # Snapshot source: every landing day is a full snapshot and owns its own rows.
        return _verdict_sql(spec, select_raw, typed, type_rules, [], "landing_date")

    t = sql.ident(spec.event_time_column)
    t_text = sql.ident(spec.event_time_column + "__text")
    day = f"CAST({t} AS DATE)"
    tolerance = spec.late_tolerance_days
    too_late = f"({day} < landing_date - INTERVAL {sql.literal(tolerance)} DAY)"
    future = f"({day} > landing_date + INTERVAL 1 DAY)"
    time_rules = [
        tc.RowRule(
            f"{spec.event_time_column}:{RULE_UNPARSABLE_TIME}",
            spec.event_time_column,
            f"({t_text} IS NOT NULL AND {t} IS NULL)",
        ),
        tc.RowRule(too_late_rule(spec), spec.event_time_column, too_late),
        tc.RowRule(f"{spec.event_time_column}:{RULE_FUTURE}", spec.event_time_column, future),
    ]
    partition_expr = f"CASE WHEN {t} IS NULL OR {too_late} OR {future} THEN landing_date ELSE {day} END"
    return _verdict_sql(spec, select_raw, typed, type_rules, time_rules, partition_expr)


def _verdict_sql(spec, select_raw, typed, type_rules, time_rules, partition_expr) -> str:
    # History columns of snapshot sources are derived after staging; their rules apply to the table.
    contract_rules = [r for r in tc.row_rules(spec.contract) if r.column not in spec.history_columns]
    rules = [*time_rules, *type_rules, *contract_rules]
    part_col = spec.partition_column
    derived = ""
    if part_col:
        derived = f",\n    CAST({sql.ident(spec.event_time_column)} AS DATE) AS {sql.ident(part_col)}"
    partition_select = f",\n    CAST({partition_expr} AS DATE) AS _partition"
    # Staged rows stay narrow: the typed columns and the verdict. The raw record is kept only where
    # the quarantine needs it, and the column texts not at all: a 1 M-event clean write peaked at
    # 1.5 GB with them, 0.9 GB without (0.6 GB under the default memory limit).
    texts = ", ".join(sql.ident(c + "__text") for c in spec.source_columns)
    return f"""
WITH extracted AS ({select_raw}
),
typed AS (
  SELECT *,
    {("," + chr(10) + "    ").join(typed)}
  FROM extracted
),
owned AS (
  SELECT *{derived}{partition_select}
  FROM typed
),
judged AS (
  SELECT *, {tc.first_violation_sql(rules)} AS _violation
  FROM owned
)
SELECT * EXCLUDE ({JSON_TYPES}, record, {texts}),
  CASE WHEN _violation IS NOT NULL THEN record END AS record
FROM judged
"""


def schema_policy_rules(spec: SourceSpec, rejected_batches: list[str]) -> list[tc.RowRule]:
    """Every row of a batch the schema policy rejects breaks this rule (see raw.schema_policy)."""
    if not rejected_batches:
        return []
    batch = "(source_file || '@' || CAST(landing_date AS VARCHAR))"
    cond = f"list_contains({sql.string_list(rejected_batches)}, {batch})"
    return [tc.RowRule(REJECTION_RULES[spec.schema_policy], SCHEMA_RULE_COLUMN, cond)]


def dedup_order(spec: SourceSpec) -> str:
    """Which copy of a key wins within a partition: the highest version if the source has a version
    column, then the latest ingested, then the last file and row."""
    keys = ", ".join(sql.ident(k) for k in spec.key_columns)
    version = f"{sql.ident(spec.version_column)} DESC NULLS LAST, " if spec.version_column else ""
    return f"PARTITION BY _partition, {keys} ORDER BY {version}ingested_at DESC, source_file DESC, source_row DESC"
