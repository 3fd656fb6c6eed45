"""The alerts' definitions: the run-failure and candle-check sensors (the webhook resource comes with the
others, from `settings.py`)."""

import dagster as dg

from spot_pipeline.alerts.sensors import candle_check_alert_sensor, run_failure_alert_sensor

defs = dg.Definitions(sensors=[run_failure_alert_sensor, candle_check_alert_sensor])
