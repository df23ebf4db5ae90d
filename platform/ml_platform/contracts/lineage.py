"""Lineage columns every cleaned table carries back to the landed file and row."""

from __future__ import annotations

from typing import Annotated

import ibis.expr.datatypes as dt
from pandera.ibis import DataFrameModel, Field

# DuckDB TIMESTAMP as ibis reports it (microseconds, no zone): the platform stores UTC only.
UtcTimestamp = Annotated[dt.Timestamp, None, 6, True]


class LineageColumns(DataFrameModel):
    source_file: dt.String = Field(description="Landed file the row came from (path under landing/).")
    source_row: dt.Int64 = Field(description="1-based row number inside that file.")
    landing_date: dt.Date = Field(description="Date (UTC) the file landed: the raw partition.")
    ingested_at: UtcTimestamp = Field(description="When the raw layer ingested the file (UTC).")
    schema_version: dt.String = Field(description="Source schema version detected from the file's columns.")


class HistoryColumns(DataFrameModel):
    """Validity of one version of a dimension row (SCD type 2), derived from daily snapshots."""

    valid_from: dt.Date = Field(description="First snapshot day (UTC) this version was seen.")
    valid_to: dt.Date = Field(
        nullable=True, description="First snapshot day it was no longer true; null while current."
    )
    is_current: dt.Boolean = Field(description="True for the version in the latest snapshot.")
