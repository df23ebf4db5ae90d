"""Device health per device and hour, for predictive maintenance: rolling sensor statistics as of
the end of each hour, their change since the previous hour, and anomaly flags.

Rows. A device has a row for every UTC hour [H, H+1h) in which it sent at least one reading. The
row is as of the hour's end, `as_of` = H+1h, and uses only readings with timestamp < as_of: the
1 h window is [as_of - 1h, as_of), the 24 h window [as_of - 24h, as_of), so a reading exactly on
a boundary opens its hour (10:00:00 counts for the row as of 11:00, not 10:00). An hour without
readings has no row; retrieval then uses the device's previous row, within the TTL. The partition
is the UTC date of `as_of`: the hour 23:00-24:00 of day D is as of D+1 00:00 and belongs to D+1
(like user_activity's rows as of midnight), so a partition reads its day and the day before.

Values. Means, sample standard deviations (n - 1) and maxima skip nulls. A statistic is null when
its window holds no value, and a std also with a single value (undefined). The 24 h statistics
combine hourly counts, sums and sums of squares, all exact (decimals: a value never depends on the
order rows were added in, so every build gives the same bits); a variance is clamped at 0.
`power_mean_24h` is the mean power_consumption reading in kW, not an energy. The changes are the
hour's mean minus the previous hour's [as_of - 2h, as_of - 1h), null when either has no value.
The flags compare the hour's readings with the row's own statistics (the hour included, so they
can be recomputed from the row), strictly, and are null when they cannot be evaluated:
- `temperature_anomaly`: a temperature of the hour is more than 3 x temperature_std_24h from
  temperature_mean_24h. Being part of its own baseline, one value among n lies at most
  (n - 1) / sqrt(n) std from the mean: the flag needs at least 11 readings in 24 h to fire.
- `vibration_anomaly`: vibration_max_1h > 2 x vibration_mean_1h, a spike within the hour (it
  needs 3 readings in the hour; jumps between hours show in vibration_change_1h).

Availability. `created_at` is the end of the newest landing day among the 24 h window's readings,
`CAST(max(landing_date) + 1 AS TIMESTAMP)`, as for user_activity: the landing folder tells only
the day a file landed (an hourly file may have landed at 23:59), and `ingested_at` is not when a
reading arrived (the raw layer re-ingests the whole landing day whenever a file lands). An earlier
claim could not be proven. So at an entity time on day D the newest usable row is as of the last
midnight (an hour earlier if the 23:00 file landed after midnight), at most 25 h old: the TTL is
26 h, which also nulls a device silent for a day. A 2 h TTL suits hourly data only once the
platform records when each file first landed; with daily availability it would null almost every
entity row. A late file recomputes the rows whose 24 h windows hold its readings; their
`created_at` moves to the end of its landing day.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView


class DeviceHealth(DataFrameModel):
    """Per device and hour with readings: 1 h and 24 h sensor statistics as of the hour's end."""

    device_id: ibis_dt.String = Field(nullable=False, description="Entity key.")
    as_of_date: ibis_dt.Date = Field(
        nullable=False, description="UTC date of as_of: the partition (the hour ending at midnight is the next day's)."
    )
    as_of: UtcTimestamp = Field(
        description="End of the hour (UTC): the features' timestamp; only readings before it are used."
    )
    created_at: UtcTimestamp = Field(
        description="When all readings of the 24 h window had landed (end of the newest landing day)."
    )
    location: ibis_dt.String = Field(
        nullable=True, description="Location of the hour's latest reading that names one (a weather location)."
    )
    readings_1h: ibis_dt.Int64 = Field(ge=1, description="Readings in [as_of - 1h, as_of), nulls included.")
    readings_24h: ibis_dt.Int64 = Field(ge=1, description="Readings in [as_of - 24h, as_of), nulls included.")
    temperature_mean_1h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=200.0, description="Mean temperature in the 1 h window, °C; null without one."
    )
    temperature_std_1h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, description="Sample std of temperature in the 1 h window, °C; null below 2 values."
    )
    temperature_max_1h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=200.0, description="Highest temperature in the 1 h window, °C."
    )
    temperature_mean_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=200.0, description="Mean temperature in the 24 h window, °C."
    )
    temperature_std_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, description="Sample std of temperature in the 24 h window, °C; null below 2 values."
    )
    temperature_max_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=200.0, description="Highest temperature in the 24 h window, °C."
    )
    vibration_mean_1h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=100.0, description="Mean vibration in the 1 h window, mm/s; null without one."
    )
    vibration_std_1h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, description="Sample std of vibration in the 1 h window, mm/s; null below 2 values."
    )
    vibration_max_1h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=100.0, description="Highest vibration in the 1 h window, mm/s."
    )
    vibration_mean_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=100.0, description="Mean vibration in the 24 h window, mm/s."
    )
    vibration_std_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, description="Sample std of vibration in the 24 h window, mm/s; null below 2 values."
    )
    vibration_max_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=100.0, description="Highest vibration in the 24 h window, mm/s."
    )
    power_mean_24h: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, description="Mean power_consumption reading in the 24 h window, kW (not kWh)."
    )
    temperature_change_1h: ibis_dt.Float64 = Field(
        nullable=True,
        ge=-200.0,
        le=200.0,
        description="temperature_mean_1h minus the previous hour's mean, °C per hour; null if either is missing.",
    )
    vibration_change_1h: ibis_dt.Float64 = Field(
        nullable=True,
        ge=-100.0,
        le=100.0,
        description="vibration_mean_1h minus the previous hour's mean, mm/s per hour; null if either is missing.",
    )
    temperature_anomaly: ibis_dt.Boolean = Field(
        nullable=True,
        description=(
            "A temperature of the hour is more than 3 x temperature_std_24h from temperature_mean_24h; "
            "null without a temperature in the hour or without a 24 h std."
        ),
    )
    vibration_anomaly: ibis_dt.Boolean = Field(
        nullable=True,
        description="vibration_max_1h > 2 x vibration_mean_1h (a spike within the hour); null without a vibration.",
    )

    class Config:
        strict = True


# Readings are summed per device and hour first (count, sum, sum of squares, extremes); a RANGE
# frame over the hour then combines the 24 hours [as_of - 24h, as_of) exactly, missing hours
# included, and another one picks the previous hour. Nothing is joined reading by reading.
# Sums are exact: readings become DECIMAL(38, 10) (squares DECIMAL(38, 20)), so the order rows are
# added in (which varies with how threads split them) cannot change a value's last bit, and every
# build of a partition gives the same values. A sample variance is (n * sum of squares - sum^2) /
# (n (n - 1)), its numerator exact, divided as a double.
SQL = """
WITH readings AS (
  SELECT device_id, date_trunc('hour', "timestamp") AS hour_start, "timestamp", location, landing_date,
         temperature, vibration,
         CAST(temperature AS DECIMAL(38, 10)) AS t, CAST(vibration AS DECIMAL(38, 10)) AS v,
         CAST(power_consumption AS DECIMAL(38, 10)) AS p
  FROM clean_telemetry
  WHERE reading_date BETWEEN $start - 1 AND $end
),
hourly AS (
  SELECT device_id, hour_start,
         count(*) AS readings,
         count(t) AS t_n, sum(t) AS t_sum, sum(t * t) AS t_sq, min(temperature) AS t_min, max(temperature) AS t_max,
         count(v) AS v_n, sum(v) AS v_sum, sum(v * v) AS v_sq, max(vibration) AS v_max,
         count(p) AS p_n, sum(p) AS p_sum,
         arg_max(location, "timestamp") FILTER (WHERE location IS NOT NULL) AS location,
         max(landing_date) AS landed
  FROM readings
  GROUP BY device_id, hour_start
),
windowed AS (
  SELECT *,
         t_sum / nullif(t_n, 0) AS t_mean, v_sum / nullif(v_n, 0) AS v_mean,
         sum(readings) OVER day AS readings_24h,
         sum(t_n) OVER day AS t_n_24h, sum(t_sum) OVER day AS t_sum_24h, sum(t_sq) OVER day AS t_sq_24h,
         max(t_max) OVER day AS t_max_24h,
         sum(v_n) OVER day AS v_n_24h, sum(v_sum) OVER day AS v_sum_24h, sum(v_sq) OVER day AS v_sq_24h,
         max(v_max) OVER day AS v_max_24h,
         sum(p_n) OVER day AS p_n_24h, sum(p_sum) OVER day AS p_sum_24h,
         max(landed) OVER day AS landed_24h,
         max(t_sum / nullif(t_n, 0)) OVER previous_hour AS t_mean_before,
         max(v_sum / nullif(v_n, 0)) OVER previous_hour AS v_mean_before
  FROM hourly
  WINDOW day AS (PARTITION BY device_id ORDER BY hour_start
                 RANGE BETWEEN INTERVAL 23 HOURS PRECEDING AND CURRENT ROW),
         previous_hour AS (PARTITION BY device_id ORDER BY hour_start
                           RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND INTERVAL 1 HOUR PRECEDING)
),
stats AS (
  SELECT *, hour_start + INTERVAL 1 HOUR AS as_of,
         CASE WHEN t_n > 1 THEN sqrt(greatest(
           CAST(t_n * t_sq - t_sum * t_sum AS DOUBLE) / (t_n * (t_n - 1)), 0.0)) END AS t_std,
         CASE WHEN v_n > 1 THEN sqrt(greatest(
           CAST(v_n * v_sq - v_sum * v_sum AS DOUBLE) / (v_n * (v_n - 1)), 0.0)) END AS v_std,
         t_sum_24h / nullif(t_n_24h, 0) AS t_mean_24h,
         CASE WHEN t_n_24h > 1 THEN sqrt(greatest(
           CAST(t_n_24h * t_sq_24h - t_sum_24h * t_sum_24h AS DOUBLE) / (t_n_24h * (t_n_24h - 1)), 0.0)) END AS t_std_24h,
         v_sum_24h / nullif(v_n_24h, 0) AS v_mean_24h,
         CASE WHEN v_n_24h > 1 THEN sqrt(greatest(
           CAST(v_n_24h * v_sq_24h - v_sum_24h * v_sum_24h AS DOUBLE) / (v_n_24h * (v_n_24h - 1)), 0.0)) END AS v_std_24h
  FROM windowed
)
SELECT device_id, CAST(as_of AS DATE) AS as_of_date, as_of,
       CAST(landed_24h + 1 AS TIMESTAMP) AS created_at,
       location, readings AS readings_1h, readings_24h,
       t_mean AS temperature_mean_1h, t_std AS temperature_std_1h, t_max AS temperature_max_1h,
       t_mean_24h AS temperature_mean_24h, t_std_24h AS temperature_std_24h, t_max_24h AS temperature_max_24h,
       v_mean AS vibration_mean_1h, v_std AS vibration_std_1h, v_max AS vibration_max_1h,
       v_mean_24h AS vibration_mean_24h, v_std_24h AS vibration_std_24h, v_max_24h AS vibration_max_24h,
       CAST(p_sum_24h / nullif(p_n_24h, 0) AS DOUBLE) AS power_mean_24h,
       t_mean - t_mean_before AS temperature_change_1h,
       v_mean - v_mean_before AS vibration_change_1h,
       greatest(t_max - t_mean_24h, t_mean_24h - t_min) > 3 * t_std_24h AS temperature_anomaly,
       v_max > 2 * v_mean AS vibration_anomaly
FROM stats
WHERE CAST(as_of AS DATE) BETWEEN $start AND $end
"""

TABLE = FeatureView(
    name="device_health",
    description=(
        "Per device and UTC hour with readings, as of the hour's end: 1 h and 24 h mean, std and max of "
        "temperature and vibration, 24 h mean power (kW), change vs the previous hour, and anomaly flags "
        "(temperature beyond 3 sigma of its 24 h mean, vibration peak above twice its 1 h mean)."
    ),
    contract=DeviceHealth,
    partition_column="as_of_date",
    sql=SQL,
    reads=("clean_telemetry",),
    # Rows as of day D read the 24 hours before each as_of: readings of D - 1 and D.
    reads_days=(-1, 0),
    entity_columns=("device_id",),
    timestamp_column="as_of",
    created_column="created_at",
    # Availability is per landing day (see above): the newest usable row is at most 25 h old.
    ttl=dt.timedelta(hours=26),
)
