"""The daily candle job, its schedule (yesterday plus recent revisions), the freshness sensor, and
the pair repair job (launched by hand)."""

import datetime as dt
import os

import dagster as dg

from spot_pipeline.ohlcv.assets import cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.checks import ohlcv_freshness_checks
from spot_pipeline.ohlcv.ops import repair_pairs
from spot_pipeline.ohlcv.partitions import daily_partitions
from spot_pipeline.settings import read_setting

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
MAX_RETRIES_TAG = "dagster/max_retries"

ohlcv_daily_job = dg.define_asset_job(
    "ohlcv_daily_job",
    selection=[cc_ohlcv_spot_1d_raw],
    description="Ingest daily candles for a partition or a range of partitions (one run, ranged requests).",
    # On an instance with run retries enabled (deploy/dagster.yaml), a failed run (a pair that still
    # failed after the client's retries, a worker that died) is retried from its failure; upserts make
    # the repeated range safe.
    tags={MAX_RETRIES_TAG: "2"},
)


def revision_range(yesterday: dt.date, revision_days: int) -> tuple[str, str]:
    """Partition keys from `revision_days` before yesterday up to yesterday, within the partitions."""
    first = max(yesterday - dt.timedelta(days=revision_days), daily_partitions.start.date())
    return first.isoformat(), yesterday.isoformat()


@dg.schedule(
    job=ohlcv_daily_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def ohlcv_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shortly after 00:00 UTC: yesterday's candles, and the OHLCV_REVISION_DAYS days before it again,
    since the provider revises recent candles when missed trades are recovered. One run, one request
    per pair."""
    yesterday = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    first, last = revision_range(yesterday, read_setting("OHLCV_REVISION_DAYS", os.environ))
    return dg.RunRequest(
        run_key=f"ohlcv-{last}",
        tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last},
    )


ohlcv_freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=ohlcv_freshness_checks, name="ohlcv_freshness_sensor"
)


@dg.job(
    description="Re-ingest chosen pairs (market:INSTRUMENT, or a mapped instrument on every exchange) "
    "over a day range: the fix for a ticker handed over to another instrument, a failed pair or a "
    "provider correction. Same writer, write lock, pool and window checks as the daily run. Config "
    "on repair_pairs (instruments, mapped_instruments, first_day, last_day)."
)
def repair_ohlcv_pairs_job() -> None:
    repair_pairs()
