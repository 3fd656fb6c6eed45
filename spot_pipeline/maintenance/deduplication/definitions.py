"""The deduplication job's definitions: `deduplicate_ohlcv_job` and its weekly schedule."""

import dagster as dg

from spot_pipeline.maintenance.deduplication.schedules import (
    deduplicate_ohlcv_job,
    deduplicate_ohlcv_schedule,
)

defs = dg.Definitions(jobs=[deduplicate_ohlcv_job], schedules=[deduplicate_ohlcv_schedule])
