"""Device failure within 24 hours: each reporting hour with the device's health and the local weather,
as known at the end of that hour."""

from __future__ import annotations

from ml_platform.training import LeakyVariant, TrainingSet

_HEALTH = (
    "readings_24h",
    "temperature_mean_1h",
    "temperature_max_1h",
    "temperature_mean_24h",
    "temperature_std_24h",
    "temperature_max_24h",
    "vibration_mean_1h",
    "vibration_max_1h",
    "vibration_mean_24h",
    "vibration_std_24h",
    "vibration_max_24h",
    "power_mean_24h",
    "temperature_change_1h",
    "vibration_change_1h",
    "temperature_anomaly",
    "vibration_anomaly",
)

TRAINING_SET = TrainingSet(
    name="device_failure",
    description=(
        "Device reporting hours (device_failure_label) with device health and the weather at the device's "
        "location as known then, split by time."
    ),
    label="device_failure_label",
    features=(
        *(f"device_health:{name}" for name in _HEALTH),
        "weather:temperature_c",
        "weather:humidity_pct",
    ),
    validation_days=2,
    leaky=LeakyVariant(
        description="failures and downtime counted over the whole maintenance log, scaler fitted on every row, "
        "random split.",
        sql="""
            SELECT device_id,
                   count(*) FILTER (WHERE event_type = 'failure') AS failures_all_time,
                   coalesce(sum(downtime_minutes), 0) AS downtime_minutes_all_time
            FROM clean_maintenance GROUP BY device_id
        """,
    ),
)
