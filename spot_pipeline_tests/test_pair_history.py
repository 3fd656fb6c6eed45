"""History for pairs that join the universe: the coverage every write keeps, the history job that
fetches just the pairs lacking it, and the sensor that launches it after a universe refresh."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import cc_ohlcv_spot_1d_raw, ohlcv_pair_coverage
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.ohlcv.coverage import pairs_lacking_history
from spot_pipeline.ohlcv.partitions import HISTORY_START
from spot_pipeline.ohlcv.schedules import ohlcv_pair_history_job, ohlcv_pair_history_sensor
from spot_pipeline.timeutils import day_start, utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_tests.pipeline import (
    candle_metadata,
    materialize_candles,
    materialize_reference_and_universe,
    output_metadata,
)

HISTORY_PATH = "/spot/v1/historical/days"
YESTERDAY = utc_today() - dt.timedelta(days=1)
SMALL_UNIVERSE = {"top_assets": 2, "quote_assets": ["USD"]}
LARGER_UNIVERSE = {"top_assets": 3, "quote_assets": ["USD"]}


def universe_pairs(market_db: MarketDatabase) -> list[Pair]:
    with market_db.connect() as connection:
        return queries.load_universe(connection)


def fetch_history(ccdata: CCDataClient, market_db: MarketDatabase) -> dg.ExecuteInProcessResult:
    return ohlcv_pair_history_job.execute_in_process(
        resources={"ccdata": ccdata, "market_db": market_db}, raise_on_error=False
    )


def fetched_pairs(fake_api: FakeCCDataServer) -> list[tuple[str, str]]:
    return sorted(
        (request.query["market"], request.query["instrument"])
        for request in fake_api.requests
        if request.path == HISTORY_PATH
    )


def stored_days(market_db: MarketDatabase) -> dict[tuple[str, str], tuple[dt.datetime, dt.datetime, int]]:
    candles = cc_ohlcv_spot_1d_raw.c
    query = sa.select(
        candles.exchange,
        candles.symbol_unmapped,
        sa.func.min(candles.datetime),
        sa.func.max(candles.datetime),
        sa.func.count(),
    ).group_by(candles.exchange, candles.symbol_unmapped)
    with market_db.connect() as connection:
        return {(row[0], row[1]): tuple(row[2:]) for row in connection.execute(query)}


def coverage(market_db: MarketDatabase) -> dict[tuple[str, str], dict[str, object]]:
    with market_db.connect() as connection:
        rows = connection.execute(sa.select(ohlcv_pair_coverage)).mappings()
        return {(row["exchange"], row["symbol_unmapped"]): dict(row) for row in rows}


@pytest.fixture
def small_universe(ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer) -> list[Pair]:
    assert materialize_reference_and_universe(ccdata, market_db, **SMALL_UNIVERSE).success
    fake_api.reset_log()
    return universe_pairs(market_db)


def test_every_write_records_what_it_fetched_of_each_pair(
    small_universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    first = YESTERDAY - dt.timedelta(days=3)
    assert materialize_candles(ccdata, market_db, first, YESTERDAY).success
    recorded = coverage(market_db)
    assert set(recorded) == {(pair.exchange, pair.exchange_instrument_id) for pair in small_universe}
    for key, (first_day, last_day, _) in stored_days(market_db).items():
        assert (recorded[key]["first_day"], recorded[key]["last_day"]) == (first_day, last_day)
    assert {row["fetched_from"] for row in recorded.values()} == {day_start(first)}
    with market_db.connect() as connection:
        assert pairs_lacking_history(connection, HISTORY_START) == small_universe


def test_a_pair_that_joins_the_universe_gets_its_whole_history_and_no_other_pair_is_fetched_again(
    small_universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    assert fetch_history(ccdata, market_db).success  # the first backfill: every pair, once
    assert fetched_pairs(fake_api) == sorted((p.exchange, p.exchange_instrument_id) for p in small_universe)
    history_before = stored_days(market_db)

    assert materialize_reference_and_universe(ccdata, market_db, **LARGER_UNIVERSE).success
    newcomers = sorted(set(universe_pairs(market_db)) - set(small_universe))
    assert newcomers
    fake_api.reset_log()
    result = fetch_history(ccdata, market_db)

    assert result.success
    assert fetched_pairs(fake_api) == sorted((p.exchange, p.exchange_instrument_id) for p in newcomers)
    history_after = stored_days(market_db)
    assert {key: history_after[key] for key in history_before} == history_before
    for pair in newcomers:
        first_day, last_day, days = history_after[(pair.exchange, pair.exchange_instrument_id)]
        assert last_day == day_start(YESTERDAY) and days == (last_day - first_day).days + 1
    metadata = output_metadata(result, "fetch_missing_history")
    assert metadata["pairs_lacking_history"] == 0
    assert metadata["pairs_with_history"] == len(small_universe) + len(newcomers)


def test_pairs_that_leave_the_universe_keep_their_rows_and_do_not_count_as_lacking(
    ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    assert materialize_reference_and_universe(ccdata, market_db, **LARGER_UNIVERSE).success
    assert fetch_history(ccdata, market_db).success
    stored_before = stored_days(market_db)
    assert materialize_reference_and_universe(ccdata, market_db, **SMALL_UNIVERSE).success
    fake_api.reset_log()
    result = fetch_history(ccdata, market_db)
    assert result.success and fetched_pairs(fake_api) == []
    assert stored_days(market_db) == stored_before


def test_the_daily_run_shows_the_universe_coverage(
    small_universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    metadata = candle_metadata(result)
    assert metadata["pairs_with_history"] == 0
    assert metadata["pairs_lacking_history"] == len(small_universe)
    assert small_universe[0].exchange_instrument_id in metadata["lacking_history"]


def test_the_sensor_launches_one_history_run_after_a_universe_refresh_only_when_pairs_lack_it(
    ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    cursor = None

    def tick_after_refresh() -> list[dg.RunRequest]:
        nonlocal cursor
        assert materialize_reference_and_universe(ccdata, market_db, instance, **SMALL_UNIVERSE).success
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"market_db": market_db}
        )
        tick = ohlcv_pair_history_sensor.evaluate_tick(context)
        cursor = tick.cursor
        return tick.run_requests or []

    first = tick_after_refresh()
    assert len(first) == 1 and first[0].run_key
    assert fetch_history(ccdata, market_db).success
    assert tick_after_refresh() == []  # every pair has its history now
