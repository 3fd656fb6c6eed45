"""The daily partitions of `cc_ohlcv_spot_1d_raw`: one per closed UTC day from OHLCV_START_DATE."""

import os

import dagster as dg

from spot_pipeline.settings import read_setting
from spot_pipeline.timeutils import day_start

# Partitions end with yesterday: a day becomes a partition once it is over in UTC.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=read_setting("OHLCV_START_DATE", os.environ), timezone="UTC", fmt="%Y-%m-%d"
)

# A pair has its history once a run has fetched it from here (see `coverage`).
HISTORY_START = day_start(daily_partitions.start.date())
