"""The candles domain's definitions: the daily candle asset, its checks, jobs, schedule and sensor."""

import dagster as dg

from spot_pipeline.ohlcv.assets import cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.schedules import (
    ohlcv_daily_job,
    ohlcv_daily_schedule,
    ohlcv_pair_history_job,
    ohlcv_pair_history_sensor,
    repair_ohlcv_pairs_job,
)

defs = dg.Definitions(
    assets=[cc_ohlcv_spot_1d_raw],
    jobs=[ohlcv_daily_job, repair_ohlcv_pairs_job, ohlcv_pair_history_job],
    schedules=[ohlcv_daily_schedule],
    sensors=[ohlcv_pair_history_sensor],
)
