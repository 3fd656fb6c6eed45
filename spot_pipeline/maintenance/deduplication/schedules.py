"""`deduplicate_ohlcv_job` and its weekly schedule."""

import dagster as dg

from spot_pipeline.maintenance.deduplication.ops import (
    count_duplicate_candles,
    delete_duplicate_candles,
    enforce_natural_key,
    verify_no_duplicate_candles,
)
from spot_pipeline.metadata import OWNERS, ownership_tags


@dg.job(
    owners=OWNERS,
    tags=ownership_tags("maintenance", "market-db"),
    description="Remove duplicate candles from market.cc_ohlcv_spot_1d_raw, keeping the latest collected_at "
    "of every (datetime, exchange, symbol_unmapped), verify none remain and, with add_unique_key, add the "
    "unique key that prevents new ones. Config on count_duplicate_candles (dry_run, batch_days, "
    "add_unique_key).",
)
def deduplicate_ohlcv_job() -> None:
    plan, _key_enforced = count_duplicate_candles()
    enforce_natural_key(verify_no_duplicate_candles(delete_duplicate_candles(plan)))


deduplicate_ohlcv_schedule = dg.ScheduleDefinition(
    name="deduplicate_ohlcv_schedule",
    job=deduplicate_ohlcv_job,
    description="Weekly, Sunday 03:00 UTC: remove duplicate candles (the latest collected_at wins).",
    # Weekly, in a quiet hour after the 00:xx UTC candle run (the pool and the lock keep them apart anyway).
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
