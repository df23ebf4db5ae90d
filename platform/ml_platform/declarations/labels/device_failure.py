"""Device failure within the next 24 hours: the predictive-maintenance label.

One row per device and hour the device reported telemetry in: as of the end of that hour
(`event_timestamp`, the time the hour's readings are complete and `device_health` describes),
`fails_within_24h` when the maintenance log records a failure of the device in the 24 hours
from then on. An hour of day D looks at failures up to D+2 00:00, so the partition of D is final
once the log of D and D+1 has settled (it lands up to 2 days late): it fills when telemetry of
day D+4 lands.
"""

from __future__ import annotations

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import Label, Read


class DeviceFailureLabel(DataFrameModel):
    """Per device and reporting hour: does it fail within the next 24 hours?"""

    device_id: ibis_dt.String = Field(nullable=False, description="Entity key.")
    location: ibis_dt.String = Field(nullable=True, description="Where the device is (joins the weather).")
    hour_date: ibis_dt.Date = Field(nullable=False, description="UTC day of the hour's start: the partition.")
    event_timestamp: UtcTimestamp = Field(description="End of the reporting hour (UTC): the training row's time.")
    fails_within_24h: ibis_dt.Boolean = Field(description="A failure is logged in [event_timestamp, +24 h).")
    hours_to_failure: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, lt=24.0, description="Hours from event_timestamp to that failure; null if none."
    )

    class Config:
        strict = True


SQL = """
WITH device_hours AS (
  SELECT device_id, reading_date AS hour_date,
         date_trunc('hour', timestamp) + INTERVAL 1 HOUR AS event_timestamp,
         -- A device moved mid-hour reports its last location.
         arg_max(location, timestamp) AS location
  FROM clean_telemetry WHERE reading_date BETWEEN $start AND $end
  GROUP BY ALL
),
failures AS (
  SELECT device_id, event_time FROM clean_maintenance
  WHERE event_type = 'failure' AND event_date BETWEEN $start AND $end + $horizon_days
)
SELECT h.device_id, h.location, h.hour_date, h.event_timestamp,
       min(f.event_time) IS NOT NULL AS fails_within_24h,
       epoch(min(f.event_time) - h.event_timestamp) / 3600.0 AS hours_to_failure
FROM device_hours h
LEFT JOIN failures f
  ON f.device_id = h.device_id AND f.event_time >= h.event_timestamp
 AND f.event_time < h.event_timestamp + INTERVAL 24 HOUR
GROUP BY h.device_id, h.location, h.hour_date, h.event_timestamp
"""

LABEL = Label(
    name="device_failure_label",
    description=(
        "Per device and reporting hour: fails_within_24h when the maintenance log records a failure "
        "in the 24 hours after the hour ends. Written once the log has settled (day + 4)."
    ),
    contract=DeviceFailureLabel,
    partition_column="hour_date",
    sql=SQL,
    # Telemetry gives the device-hours and is the clock: it lands every hour, while the
    # maintenance log can stay silent for days and would never say its horizon had passed.
    reads=("clean_telemetry", Read.days("clean_maintenance", 0, 2)),
    # A telemetry file landed on D + 4 (or later) makes D final.
    clock_table="raw_telemetry",
    entity_columns=("device_id",),
    join_columns=("location",),
    timestamp_column="event_timestamp",
    label_column="fails_within_24h",
    horizon_days=2,
    # The maintenance source's late tolerance (sources/maintenance.py).
    settle_days=2,
)
