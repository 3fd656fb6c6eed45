"""The ingestion-level causes of duplicate candles (docs/duplicates.md, causes 3 and 4): the naive
path stores a candle twice, the project's path does not."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.candles import DayWindow, Pair, candle_row
from spot_pipeline.ohlcv.ingestion import ingest_window
from spot_pipeline.timeutils import utc_now, utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer, FakeDataset
from spot_pipeline_dev.legacy_tables import replace_with_legacy_table

TODAY = utc_today()


@pytest.fixture
def one_pair_world(fake_api: FakeCCDataServer) -> Pair:
    """A single pair with history since 2008, so a 5,002-day window needs two requests."""
    fake_api.dataset = FakeDataset.synthetic(markets=1, pairs_per_market=1, history_start=dt.date(2008, 1, 1))
    market_key, market = next(iter(fake_api.dataset.markets.items()))
    instrument = market.instruments[0]
    instrument.first_trade_day = dt.date(2008, 1, 1)
    return Pair(market_key, instrument.instrument, instrument.mapped_instrument)


def keys_by_day(market_db: MarketDatabase) -> list[dt.datetime]:
    with market_db.connect() as connection:
        return list(
            connection.execute(
                sa.select(cc_ohlcv_spot_1d_raw.c.datetime).order_by(cc_ohlcv_spot_1d_raw.c.datetime)
            ).scalars()
        )


def test_inclusive_to_ts_paging_stores_the_boundary_twice_but_ranged_requests_do_not(
    one_pair_world: Pair, ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    pair = one_pair_world
    # Naive: page backwards with to_ts = the earliest candle received, append into a keyless table.
    yesterday_ts = int(dt.datetime.combine(TODAY - dt.timedelta(days=1), dt.time(), dt.UTC).timestamp())
    first_page = ccdata.historical_days(
        pair.exchange, pair.exchange_instrument_id, limit=5000, to_ts=yesterday_ts
    )
    second_page = ccdata.historical_days(
        pair.exchange, pair.exchange_instrument_id, limit=5000, to_ts=first_page[0]["TIMESTAMP"]
    )
    naive_rows = [candle_row(candle, pair, utc_now()) for candle in second_page + first_page]
    with market_db.begin() as connection:
        legacy = replace_with_legacy_table(connection, primary_key=False)
        # The legacy table keeps trade times as BIGINT; they play no part in this cause.
        naive_rows = [{**row, **dict.fromkeys(TRADE_TIMESTAMP_COLUMNS)} for row in naive_rows]
        connection.execute(legacy.insert(), naive_rows)
    days = keys_by_day(market_db)
    assert len(days) - len(set(days)) == 1, "the boundary day is stored twice"

    # The project's path: non-overlapping requests, one row per day, upserts on the natural key.
    with market_db.begin() as connection:
        legacy.drop(connection)
        cc_ohlcv_spot_1d_raw.create(connection)
    window = DayWindow(TODAY - dt.timedelta(days=5002), TODAY)
    summary = ingest_window(ccdata, market_db, [pair], window, utc_now())
    assert not summary.failed
    days = keys_by_day(market_db)
    assert len(days) == len(set(days)) == 5002


def test_the_incomplete_current_day_is_never_stored(
    one_pair_world: Pair, ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    pair = one_pair_world
    # Naive: today's (incomplete) candle is stored, then stored again later with other values.
    today_ts = int(dt.datetime.combine(TODAY, dt.time(), dt.UTC).timestamp())
    morning, evening = (
        ccdata.historical_days(pair.exchange, pair.exchange_instrument_id, limit=1, to_ts=today_ts)[0]
        for _ in range(2)
    )
    assert morning != evening, "the current day's candle changes from request to request"

    # The project's path: even a window that reaches into today stops at yesterday.
    window = DayWindow(TODAY - dt.timedelta(days=2), TODAY + dt.timedelta(days=1))
    for _ in range(2):
        assert not ingest_window(ccdata, market_db, [pair], window, utc_now()).failed
    days = keys_by_day(market_db)
    assert days == [dt.datetime.combine(TODAY - dt.timedelta(days=n), dt.time()) for n in (2, 1)]
