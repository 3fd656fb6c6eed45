"""`cc_ohlcv_spot_1d_raw`: daily spot candles of every universe pair, one partition per closed UTC day."""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from spot_pipeline.ccdata import CCDataAuthError, CCDataClient, ClientStats
from spot_pipeline.db import schema
from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.live_tables import stop_unless_writable
from spot_pipeline.metadata import OWNERS, column_schema, markdown_table, ownership_tags
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.budget import ApiBudget, plan_run
from spot_pipeline.ohlcv.candles import DayWindow, Pair
from spot_pipeline.ohlcv.checks import (
    DAILY_FRESHNESS,
    MAX_CLOSE_DEVIATION,
    WINDOW_CHECK_SPECS,
    window_check_results,
)
from spot_pipeline.ohlcv.coverage import coverage_metadata
from spot_pipeline.ohlcv.ingestion import DEFAULT_BATCH_ROWS, IngestionSummary, ingest_window
from spot_pipeline.ohlcv.partitions import HISTORY_START, daily_partitions
from spot_pipeline.timeutils import day_start, utc_now, utc_today

GROUP = "ohlcv"
# Runs up to this many days show a preview of each day's candles on its partition.
PREVIEW_DAYS = 31


class CandleRunConfig(dg.Config):
    """What every candle-writing run accepts: the daily partition, a backfill, a repair."""

    write_batch_rows: int = Field(
        default=DEFAULT_BATCH_ROWS,
        ge=100,
        le=500_000,
        description="Rows per write transaction; a pair's rows are never split across transactions.",
    )
    max_close_deviation: float = Field(
        default=MAX_CLOSE_DEVIATION,
        gt=0,
        le=10,
        description="Share of the median close of the other exchanges quoting the same instrument beyond "
        "which a close is reported as an outlier (warning check close_near_other_exchanges).",
    )
    ignore_api_budget: bool = Field(
        default=False,
        description="Start even when the API key's calls left today or this month cannot cover the run "
        "(it will then meet the provider's 429s once they are spent).",
    )


@dg.asset(
    name=schema.cc_ohlcv_spot_1d_raw.name,
    group_name=GROUP,
    kinds={"sql"},
    partitions_def=daily_partitions,
    # A backfill of any length is one run: each pair then costs ceil(days / 5000) requests.
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=OHLCV_WRITE_POOL,
    deps=["spot_universe"],
    check_specs=WINDOW_CHECK_SPECS,
    freshness_policy=DAILY_FRESHNESS,
    owners=OWNERS,
    tags=ownership_tags("raw", "ccdata"),
    metadata=column_schema(schema.cc_ohlcv_spot_1d_raw),
)
def cc_ohlcv_spot_1d_raw(
    context: dg.AssetExecutionContext,
    config: CandleRunConfig,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
) -> dg.MaterializeResult:
    """Daily spot candles (UTC days) of every pair in `spot_universe`, upserted into
    `market.cc_ohlcv_spot_1d_raw` on (datetime, exchange, symbol_unmapped).

    A run covers its partition range with one request per pair per 5000 days, fetched concurrently
    under the client's rate limit. Only closed days are stored; trade timestamps are UTC DATETIME.
    Each pair is written whole or not at all; pairs that fail are named and the run fails after the
    others are stored, so re-running the partition fills the gap. Before fetching, the run paces
    itself by the API key's own limits and refuses to start when the key's day or month cannot cover it.
    """
    window = _run_window(context)
    outcome = ingest_and_check(context.log, ccdata, market_db, window, config, _universe)
    _describe_partitions(context, market_db, window)
    return dg.MaterializeResult(metadata=outcome.metadata, check_results=outcome.check_results)


def _describe_partitions(
    context: dg.AssetExecutionContext, market_db: MarketDatabase, window: DayWindow
) -> None:
    """Each day's own figures on its partition, however long the run: its candle count, and for
    runs of up to a month a preview of its candles (the run's figures describe the whole window)."""
    with market_db.connect() as connection:
        counts = queries.candles_per_day(connection, day_start(window.start), day_start(window.end))
        for key in context.partition_keys:
            day = dt.date.fromisoformat(key)
            figures: dict[str, Any] = {"dagster/row_count": counts.get(day, 0)}
            if window.days <= PREVIEW_DAYS:
                preview = queries.day_candles(connection, day_start(day))
                figures["preview"] = markdown_table(preview, queries.PREVIEW_COLUMNS)
            context.add_asset_metadata(figures, partition_key=key)


@dataclass(frozen=True)
class WindowOutcome:
    """What a run stored over its window: metadata for the UI, and the window checks."""

    metadata: dict[str, Any]
    check_results: list[dg.AssetCheckResult]


def ingest_and_check(
    log: dg.DagsterLogManager,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    window: DayWindow,
    config: CandleRunConfig,
    choose_pairs: Callable[[sa.Connection], list[Pair]],
) -> WindowOutcome:
    """Under the candle table's write lock: make sure the live tables can be written, choose the pairs,
    check the API budget, fetch and write them, then describe and check the window. Pairs that fail
    are named in a failure raised after the others are stored; a refused API key stops everything."""
    started, stats_before = time.monotonic(), ccdata.stats
    first, end = day_start(window.start), day_start(window.end)
    with market_db.write_lock(schema.cc_ohlcv_spot_1d_raw) as lock:
        stop_unless_writable(market_db, [schema.cc_ohlcv_spot_1d_raw, schema.ohlcv_pair_coverage])
        with market_db.connect() as connection:
            pairs = choose_pairs(connection)
            rows_before = queries.count_candles(connection, first, end)
        budget = _start_budget(ccdata, len(pairs), window, log, config.ignore_api_budget)
        try:
            summary = ingest_window(
                ccdata, market_db, pairs, window, utc_now(), config.write_batch_rows, lock, log.warning
            )
        except CCDataAuthError as error:
            raise dg.Failure(description=f"the run stopped at the first refused request: {error}") from None
        if summary.interrupted:
            raise dg.Failure(description=summary.interruption_report(), metadata=budget.metadata())
        with market_db.connect() as connection:
            rows_inserted = queries.count_candles(connection, first, end) - rows_before
            metadata = _run_metadata(summary, rows_inserted, ccdata.stats - stats_before, started, window)
            metadata.update(budget.metadata())
            metadata.update(coverage_metadata(connection, HISTORY_START))
            check_results = window_check_results(connection, window, config.max_close_deviation)
    if summary.failed:
        metadata["failed_pairs"] = markdown_table(
            [{"pair": str(pair), "error": reason} for pair, reason in sorted(summary.failed.items())][:20],
            ["pair", "error"],
        )
        raise dg.Failure(description=summary.failure_report(), metadata=metadata)
    return WindowOutcome(metadata, check_results)


def _start_budget(
    ccdata: CCDataClient, pairs: int, window: DayWindow, log: dg.DagsterLogManager, ignore: bool
) -> ApiBudget:
    """Pace the client by the key's limits and log the estimate; refuse a run the key cannot cover."""
    budget = plan_run(ccdata, pairs, window, log)
    log.info(f"Fetching {budget.describe()}")
    refusal = budget.refusal()
    if refusal and not ignore:
        raise dg.Failure(description=f"Not started: {refusal}", metadata=budget.metadata())
    if refusal:
        log.warning(f"Starting anyway (ignore_api_budget): {refusal}")
    return budget


def _universe(connection: sa.Connection) -> list[Pair]:
    pairs = queries.load_universe(connection)
    if not pairs:
        raise dg.Failure(
            "spot_universe is empty: materialize spot_universe (refresh_reference_data_job) first"
        )
    return pairs


def _run_window(context: dg.AssetExecutionContext) -> DayWindow:
    """The run's partition range as closed days (the current UTC day is never included)."""
    time_window = context.partition_time_window
    window = DayWindow(time_window.start.date(), time_window.end.date()).before(utc_today())
    if window.days == 0:
        raise dg.Failure(f"{time_window.start.date()} is not a closed UTC day yet: nothing to ingest")
    if window.start < HISTORY_START.date():
        raise dg.Failure(
            f"the range starts on {window.start}, before the first partition {HISTORY_START.date()}: "
            "pick days from there on, or set OHLCV_START_DATE earlier"
        )
    return window


def _run_metadata(
    summary: IngestionSummary, rows_inserted: int, stats: ClientStats, started: float, window: DayWindow
) -> dict[str, Any]:
    return {
        "window": str(window),
        "pairs_ok": summary.pairs_ok,
        "pairs_empty": summary.pairs_empty,
        "pairs_not_found": dg.MetadataValue.json(sorted(str(pair) for pair in summary.not_found)[:50]),
        "pairs_failed": len(summary.failed),
        "rows_written": summary.rows_written,
        "rows_inserted": rows_inserted,
        "rows_updated": summary.rows_written - rows_inserted,
        "api_requests": stats.requests,
        "api_retries": stats.retries,
        "api_rate_limited": stats.rate_limited,
        "duration_seconds": round(time.monotonic() - started, 2),
    }
