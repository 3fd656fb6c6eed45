"""The timestamp migration's definitions: `migrate_ohlcv_timestamps_job` and its (stopped) schedule."""

import dagster as dg

from spot_pipeline.maintenance.timestamp_migration.schedules import (
    migrate_ohlcv_timestamps_job,
    migrate_ohlcv_timestamps_schedule,
)

defs = dg.Definitions(jobs=[migrate_ohlcv_timestamps_job], schedules=[migrate_ohlcv_timestamps_schedule])
