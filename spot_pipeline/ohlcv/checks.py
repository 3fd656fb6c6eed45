"""Checks on the daily candles that a run evaluates over its own window in the same step, and the
asset's freshness policy (the daily run must have materialized it by 03:00 UTC)."""

import datetime as dt
from typing import Any

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.db.schema import MAPPED_KEY, NATURAL_KEY, cc_ohlcv_spot_1d_raw
from spot_pipeline.metadata import markdown_table
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import DayWindow
from spot_pipeline.timeutils import day_start

ASSET = cc_ohlcv_spot_1d_raw.name
# Completeness looks at the latest days of a window only: a multi-year backfill would otherwise
# cross every pair with every day.
COMPLETENESS_DAYS = 31
# A close this far from the median of the exchanges quoting the same instrument is an outlier.
MAX_CLOSE_DEVIATION = 0.10
MIN_QUOTING_EXCHANGES = 3
# A traded pair whose close has not moved for this many days has a frozen feed.
STALE_CLOSE_DAYS = 5

NO_DUPLICATE_KEYS = "no_duplicate_keys"
OHLC_CONSISTENT = "ohlc_consistent"
TRADE_TIMES_INSIDE_DAY = "trade_timestamps_inside_day"
COMPLETE_AGAINST_UNIVERSE = "complete_against_universe"
CLOSE_NEAR_OTHER_EXCHANGES = "close_near_other_exchanges"
PRICES_MOVE_WHILE_TRADED = "prices_move_while_traded"

WINDOW_CHECK_SPECS = [
    dg.AssetCheckSpec(
        NO_DUPLICATE_KEYS,
        asset=ASSET,
        description="No two rows share (datetime, exchange, symbol_unmapped) or (datetime, exchange, symbol) "
        "within the run's window.",
    ),
    dg.AssetCheckSpec(
        OHLC_CONSISTENT,
        asset=ASSET,
        description="low <= open, close <= high, and volumes and trade counts are not negative.",
    ),
    dg.AssetCheckSpec(
        TRADE_TIMES_INSIDE_DAY,
        asset=ASSET,
        description="Every trade timestamp falls inside its candle's UTC day.",
    ),
    dg.AssetCheckSpec(
        COMPLETE_AGAINST_UNIVERSE,
        asset=ASSET,
        description=f"Every universe pair has a candle for each of the window's last {COMPLETENESS_DAYS} "
        "days on which it had already started trading (warning only: exchanges have outages).",
    ),
    dg.AssetCheckSpec(
        CLOSE_NEAR_OTHER_EXCHANGES,
        asset=ASSET,
        description="Where at least three universe exchanges quote a mapped instrument on a day, no close "
        "is further than the run's max_close_deviation (10 % by default) from their median: a bad tick, a "
        "mislabelled quote or a remap gone wrong (warning, with a table of the outliers).",
    ),
    dg.AssetCheckSpec(
        PRICES_MOVE_WHILE_TRADED,
        asset=ASSET,
        description=f"No traded universe pair keeps the same close for {STALE_CLOSE_DAYS} days or more, and "
        "none has a day without volume after its first trade (warning: a frozen or empty feed).",
    ),
]


def window_check_results(
    connection: sa.Connection, window: DayWindow, max_close_deviation: float = MAX_CLOSE_DEVIATION
) -> list[dg.AssetCheckResult]:
    start, end = day_start(window.start), day_start(window.end)
    duplicates = {
        "_".join(key[2:]): queries.duplicate_keys(connection, start, end, key)
        for key in (NATURAL_KEY, MAPPED_KEY)
    }
    inconsistent = queries.inconsistent_ohlc(connection, start, end)
    outside = queries.trade_times_outside_day(connection, start, end)
    recent_days = [
        window.end - dt.timedelta(days=n) for n in range(min(window.days, COMPLETENESS_DAYS), 0, -1)
    ]
    missing, missing_sample = queries.missing_candles(connection, recent_days)
    outliers, outlier_sample = queries.close_outliers(
        connection, start, end, max_close_deviation, MIN_QUOTING_EXCHANGES
    )
    frozen, frozen_sample = queries.stale_closes(connection, start, end, STALE_CLOSE_DAYS)
    untraded, untraded_sample = queries.untraded_days_after_listing(connection, start, end)
    return [
        dg.AssetCheckResult(
            check_name=NO_DUPLICATE_KEYS,
            passed=not any(duplicates.values()),
            metadata={f"duplicate_keys_by_{name}": count for name, count in duplicates.items()},
        ),
        _sampled_result(OHLC_CONSISTENT, inconsistent),
        _sampled_result(TRADE_TIMES_INSIDE_DAY, outside),
        _warning(
            COMPLETE_AGAINST_UNIVERSE,
            missing_pair_days=missing,
            examples=markdown_table(missing_sample, ["day", "exchange", "exchange_instrument_id"]),
        ),
        _warning(
            CLOSE_NEAR_OTHER_EXCHANGES,
            outliers=outliers,
            max_close_deviation=max_close_deviation,
            largest=markdown_table(
                outlier_sample, ["datetime", "exchange", "symbol", "close", "median", "deviation"]
            ),
        ),
        _warning(
            PRICES_MOVE_WHILE_TRADED,
            frozen_closes=frozen,
            frozen_examples=markdown_table(
                frozen_sample, ["exchange", "symbol_unmapped", "first_day", "last_day", "close"]
            ),
            days_without_volume=untraded,
            days_without_volume_examples=markdown_table(
                untraded_sample, ["datetime", "exchange", "symbol_unmapped"]
            ),
        ),
    ]


def _warning(check_name: str, **metadata: Any) -> dg.AssetCheckResult:
    """A warning-severity result that passes when every count in its metadata is zero."""
    counts = [value for value in metadata.values() if isinstance(value, int)]
    return dg.AssetCheckResult(
        check_name=check_name, passed=not any(counts), severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )


def _sampled_result(check_name: str, offending: list[dict[str, object]]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=not offending,
        metadata={
            "offending_rows_sampled": len(offending),
            "examples": markdown_table(offending, ["datetime", "exchange", "symbol_unmapped"]),
        },
    )


# Dagster's freshness daemon (on by default) marks the asset stale when no run has materialized it
# between 00:00 and the 03:00 UTC deadline: the daily run, scheduled at 00:15, did not finish in time.
DAILY_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 3 * * *", lower_bound_delta=dt.timedelta(hours=3), timezone="UTC"
)
