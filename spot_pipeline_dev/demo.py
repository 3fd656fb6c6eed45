"""Offline demo: the fake CCData API -> reference data -> spot_universe -> 30 days of candles.

Runs with no internet and no API key, into the market database configured as usual (by default
the embedded SQLite file data/market.sqlite), on the local Dagster instance when DAGSTER_HOME is
set (so the runs appear in the UI), and prints what landed. `make demo` runs it.
"""

import argparse
import datetime as dt
import os

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import HISTORICAL_DAYS_PATH
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import row_count
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.metadata import markdown_table, table_preview
from spot_pipeline.ohlcv.assets import cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.schedules import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from spot_pipeline.reference_data.assets import asset_top_list, cc_exchanges_general, cc_instruments_spot
from spot_pipeline.settings import build_resources
from spot_pipeline.timeutils import utc_today
from spot_pipeline.universe.assets import spot_universe
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_demo(days: int) -> None:
    market_db = build_resources()["market_db"]
    with FakeCCDataServer() as fake_api, _instance() as instance:
        ccdata = fake_api.client()
        resources = {"ccdata": ccdata, "market_db": market_db}
        print(f"Fake CCData API: {fake_api.data_api_url} (data), {fake_api.min_api_url} (min-api)")
        reference = [cc_exchanges_general, cc_instruments_spot, asset_top_list, spot_universe]
        dg.materialize(reference, resources=resources, instance=instance, run_config=QUIET)
        last = utc_today() - dt.timedelta(days=1)
        first = last - dt.timedelta(days=days - 1)
        print(f"Ingesting {first} .. {last} in one run")
        dg.materialize(
            [cc_ohlcv_spot_1d_raw],
            resources=resources,
            instance=instance,
            run_config=QUIET,
            tags={PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: last.isoformat()},
        )
        print(f"Candle requests sent: {fake_api.request_count(HISTORICAL_DAYS_PATH)}")
    _print_summary(market_db)


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def _print_summary(market_db: MarketDatabase) -> None:
    c = schema.cc_ohlcv_spot_1d_raw.c
    per_exchange = (
        sa.select(
            c.exchange,
            sa.func.count(sa.distinct(c.symbol_unmapped)).label("pairs"),
            sa.func.count().label("candles"),
            sa.func.min(c.datetime).label("first_day"),
            sa.func.max(c.datetime).label("last_day"),
        )
        .group_by(c.exchange)
        .order_by(c.exchange)
    )
    latest_first = [c.datetime.desc(), c.exchange, c.symbol]
    with market_db.connect() as connection:
        pairs = row_count(connection, schema.spot_universe)
        summary = [dict(row._mapping) for row in connection.execute(per_exchange)]
        latest = table_preview(
            connection,
            schema.cc_ohlcv_spot_1d_raw,
            ["datetime", "exchange", "symbol", "close", "volume"],
            latest_first,
        )
    print(f"\nWhat landed in {market_db.display_url} ({pairs} pairs in spot_universe):\n")
    print(markdown_table(summary, ["exchange", "pairs", "candles", "first_day", "last_day"]).value)
    print("\nLatest candles:\n")
    print(latest.value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="closed days to ingest (default 30)")
    run_demo(parser.parse_args().days)


if __name__ == "__main__":
    main()
