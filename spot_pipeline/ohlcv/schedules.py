"""The daily candle job and its schedule (yesterday plus recent revisions), the pair repair job
(launched by hand), and the history job with the sensor that launches it when pairs join the universe."""

import datetime as dt
import os

import dagster as dg

from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import spot_universe
from spot_pipeline.launch_config import validated_at_launch
from spot_pipeline.metadata import OWNERS, ownership_tags
from spot_pipeline.ohlcv.assets import CandleRunConfig, cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.coverage import pairs_lacking_history
from spot_pipeline.ohlcv.ops import RepairConfig, fetch_missing_history, repair_pairs
from spot_pipeline.ohlcv.partitions import HISTORY_START, daily_partitions
from spot_pipeline.settings import read_setting

PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
RAW_CANDLE_TAGS = ownership_tags("raw", "ccdata")
MAX_RETRIES_TAG = "dagster/max_retries"

ohlcv_daily_job = dg.define_asset_job(
    "ohlcv_daily_job",
    selection=[cc_ohlcv_spot_1d_raw],
    description="Ingest daily candles for a partition or a range of partitions (one run, ranged requests).",
    owners=OWNERS,
    # On an instance with run retries enabled (deploy/dagster.yaml), a failed run (a pair that still
    # failed after the client's retries, a worker that died) is retried from its failure; upserts make
    # the repeated range safe.
    tags={**RAW_CANDLE_TAGS, MAX_RETRIES_TAG: "2"},
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
    description="00:15 UTC: yesterday's candles and the OHLCV_REVISION_DAYS days before it, in one run.",
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


@dg.job(
    owners=OWNERS,
    tags=RAW_CANDLE_TAGS,
    description="Re-ingest chosen pairs (market:INSTRUMENT, or a mapped instrument on every exchange) "
    "over a day range: the fix for a ticker handed over to another instrument, a failed pair or a "
    "provider correction. Same writer, write lock, pool and window checks as the daily run. Config: "
    "instruments, mapped_instruments, first_day, last_day (checked when the run is launched).",
    config=validated_at_launch(RepairConfig, "repair_pairs"),
)
def repair_ohlcv_pairs_job() -> None:
    repair_pairs()


@dg.job(
    owners=OWNERS,
    tags=RAW_CANDLE_TAGS,
    description="Fetch the whole history (from OHLCV_START_DATE) of the universe pairs that lack it, "
    "about one request per pair, under the same write lock, pool and checks as the daily run. "
    "Launched by ohlcv_pair_history_sensor after a universe refresh; safe to launch by hand.",
    config=validated_at_launch(CandleRunConfig, "fetch_missing_history"),
)
def ohlcv_pair_history_job() -> None:
    fetch_missing_history()


@dg.asset_sensor(
    asset_key=dg.AssetKey(spot_universe.name),
    job=ohlcv_pair_history_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each universe refresh: one run of ohlcv_pair_history_job when universe pairs lack "
    "their history.",
)
def ohlcv_pair_history_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, market_db: MarketDatabase
) -> dg.RunRequest | dg.SkipReason:
    """After each universe refresh, one run of ohlcv_pair_history_job when pairs lack their history
    (pairs that joined the universe; on a new installation, every pair: the first backfill)."""
    with market_db.connect() as connection:
        lacking = pairs_lacking_history(connection, HISTORY_START)
    if not lacking:
        return dg.SkipReason("every universe pair has its history")
    return dg.RunRequest(run_key=f"history-after-universe-run-{asset_event.run_id}")
