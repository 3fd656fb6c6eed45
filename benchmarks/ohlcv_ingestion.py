"""Benchmarks of daily candle ingestion, each against a baseline measured in the same run.

(a) requests for a 2-year backfill of 200 pairs vs one request per pair per day;
(b) wall time for 400 pairs against the fake API with 100 ms latency and a 20 calls/s limit, vs the
    ideal 400 / 20 = 20 s (target: within 20 %, zero requests over the limit);
(c) MariaDB upsert rows/s for 200k candle rows vs pandas `DataFrame.to_sql` on the same rows
    (target: at least 3x), with the peak memory (max RSS) of each, each run in its own process.

    python -m benchmarks.ohlcv_ingestion                 # all three
    python -m benchmarks.ohlcv_ingestion --only c --rows 200000
    SPOT_PIPELINE_BENCH_MYSQL_URL=mysql+mysqlconnector://root@127.0.0.1:3306/test (default) for (c)
"""

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from benchmarks.report import print_table
from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db import schema
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.ohlcv.candles import DayWindow, Pair
from spot_pipeline.ohlcv.ingestion import ingest_window
from spot_pipeline.ohlcv.queries import load_universe, write_candles
from spot_pipeline.timeutils import utc_now, utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer, FakeDataset
from spot_pipeline_dev.synthetic_candles import synthetic_candle

DEFAULT_MYSQL_URL = "mysql+mysqlconnector://root@127.0.0.1:3306/test"
BENCH_SCHEMA = "market_bench_ohlcv"
UPSERT_PASSES = {"to_sql": 0, "upsert": 1, "upsert_twice": 2}
YESTERDAY = utc_today() - dt.timedelta(days=1)


def seeded_database(directory: Path, dataset: FakeDataset, pairs: int) -> MarketDatabase:
    """An SQLite market database whose spot_universe holds the first `pairs` pairs of the dataset."""
    market_db = MarketDatabase(url=f"sqlite:///{directory / 'market.sqlite'}")
    universe = [
        {
            "exchange": market_key,
            "exchange_instrument_id": instrument.instrument,
            "mapped_instrument": instrument.mapped_instrument,
            "base_asset_id": instrument.base_id,
            "quote_asset_id": instrument.quote_id,
            "exchange_grade": "AA",
            "base_asset_rank": 1,
            "selected_at": utc_now(),
        }
        for market_key, market in dataset.markets.items()
        for instrument in market.instruments
    ][:pairs]
    with market_db.begin() as connection:
        connection.execute(schema.spot_universe.insert(), universe)
    return market_db


def ingest(market_db: MarketDatabase, client: CCDataClient, window: DayWindow) -> tuple[float, int]:
    with market_db.connect() as connection:
        pairs: list[Pair] = load_universe(connection)
    started = time.monotonic()
    summary = ingest_window(client, market_db, pairs, window, utc_now())
    assert not summary.failed, summary.failure_report()
    return time.monotonic() - started, summary.rows_written


def bench_request_count(pairs: int = 200, days: int = 730) -> None:
    dataset = FakeDataset.synthetic(markets=4, pairs_per_market=pairs // 4, history_start=dt.date(2015, 1, 1))
    window = DayWindow(YESTERDAY - dt.timedelta(days=days - 1), YESTERDAY + dt.timedelta(days=1))
    with tempfile.TemporaryDirectory() as directory, FakeCCDataServer(dataset) as fake_api:
        market_db = seeded_database(Path(directory), dataset, pairs)
        client = fake_api.client(calls_per_second=200)
        seconds, rows = ingest(market_db, client, window)
        requests_made = fake_api.request_count("/spot/v1/historical/days")
    baseline = pairs * days
    print_table(
        f"(a) requests for a {days}-day backfill of {pairs} pairs",
        ["approach", "requests", "vs baseline", "rows stored", "seconds"],
        [
            ["one request per pair per day (baseline)", baseline, "1x", "-", "-"],
            [
                "ranged: ceil(days / 5000) per pair",
                requests_made,
                f"{baseline / requests_made:.0f}x fewer",
                rows,
                f"{seconds:.1f}",
            ],
        ],
    )


def bench_rate_limited_wall_time(
    pairs: int = 400, calls_per_second: float = 20, latency: float = 0.1
) -> None:
    dataset = FakeDataset.synthetic(markets=8, pairs_per_market=pairs // 8, history_start=dt.date(2020, 1, 1))
    window = DayWindow(YESTERDAY, YESTERDAY + dt.timedelta(days=1))
    with tempfile.TemporaryDirectory() as directory, FakeCCDataServer(dataset) as fake_api:
        fake_api.latency_seconds = latency
        fake_api.limit_key(second=calls_per_second)
        market_db = seeded_database(Path(directory), dataset, pairs)
        client = fake_api.client(
            calls_per_second=calls_per_second,
            max_concurrency=8,
        )
        seconds, _ = ingest(market_db, client, window)
        over_limit, busiest_second = fake_api.over_limit_requests, fake_api.max_requests_in_any_second()
    ideal = pairs / calls_per_second
    print_table(
        f"(b) {pairs} pairs, {latency * 1000:.0f} ms latency, {calls_per_second:g} calls/s limit",
        ["run", "seconds", "vs ideal", "requests over the limit", "busiest second"],
        [
            ["ideal: pairs / limit (baseline)", f"{ideal:.1f}", "1.00x", 0, f"{calls_per_second:g}"],
            [
                "ingest_window, 8 workers",
                f"{seconds:.1f}",
                f"{seconds / ideal:.2f}x",
                over_limit,
                busiest_second,
            ],
        ],
    )


def candle_row(index: int) -> dict[str, Any]:
    """A realistic candle row; rows come 2,000 days per pair."""
    pair, day = divmod(index, 2000)
    moment = dt.datetime(2015, 1, 1) + dt.timedelta(days=day)
    return synthetic_candle(
        pair, moment, index, market=f"exchange{pair % 8}", prefix="PAIR", collected_at=dt.datetime(2026, 1, 1)
    )


def upsert_child(url: str, approach: str, rows: int) -> dict[str, float]:
    """Runs in its own process so that its peak RSS is its own.

    pandas needs the whole frame in memory; the pipeline's path gets rows in batches of 20k, as
    ingestion hands them over, so its memory does not grow with the number of rows.
    """
    market_db = MarketDatabase(url=url, schema_name=BENCH_SCHEMA)
    with market_db.begin() as connection:
        connection.execute(sa.delete(schema.cc_ohlcv_spot_1d_raw))
    started = time.monotonic()
    if approach == "to_sql":
        frame = pd.DataFrame([candle_row(index) for index in range(rows)])
        frame.to_sql(
            "to_sql_target",
            sa.create_engine(url),
            schema=BENCH_SCHEMA,
            if_exists="replace",
            index=False,
            chunksize=20_000,
        )
    for _ in range(UPSERT_PASSES[approach]):
        for first in range(0, rows, 20_000):
            batch = [candle_row(index) for index in range(first, min(rows, first + 20_000))]
            with market_db.begin() as connection:
                write_candles(connection, batch)
    seconds = time.monotonic() - started
    written = rows * max(1, UPSERT_PASSES[approach])
    return {"seconds": seconds, "rows_per_second": written / seconds, "peak_rss_mib": _peak_rss_mib()}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_mysql_upsert(rows: int) -> None:
    url = os.environ.get("SPOT_PIPELINE_BENCH_MYSQL_URL", DEFAULT_MYSQL_URL)
    approaches = {
        "to_sql": "pandas DataFrame.to_sql, plain INSERT (baseline)",
        "upsert": "write_candles: batched upsert, 20k rows per transaction",
        "upsert_twice": "write_candles again over the same rows (all updates)",
    }
    results = {}
    try:
        for approach in approaches:
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.ohlcv_ingestion",
                    "--child",
                    approach,
                    "--rows",
                    str(rows),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "SPOT_PIPELINE_BENCH_MYSQL_URL": url},
            )
            results[approach] = json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{BENCH_SCHEMA}`")
    baseline = results["to_sql"]["rows_per_second"]
    print_table(
        f"(c) {rows:,} candle rows into MariaDB",
        ["approach", "seconds", "rows/s", "vs baseline", "peak RSS (MiB)"],
        [
            [
                label,
                f"{results[name]['seconds']:.1f}",
                f"{results[name]['rows_per_second']:,.0f}",
                f"{results[name]['rows_per_second'] / baseline:.1f}x",
                f"{results[name]['peak_rss_mib']:.0f}",
            ]
            for name, label in approaches.items()
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="abc", help="which benchmarks to run, e.g. 'ac'")
    parser.add_argument("--rows", type=int, default=200_000, help="rows for (c)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        url = os.environ.get("SPOT_PIPELINE_BENCH_MYSQL_URL", DEFAULT_MYSQL_URL)
        print(json.dumps(upsert_child(url, arguments.child, arguments.rows)))
        return
    if "a" in arguments.only:
        bench_request_count()
    if "b" in arguments.only:
        bench_rate_limited_wall_time()
    if "c" in arguments.only:
        bench_mysql_upsert(arguments.rows)


if __name__ == "__main__":
    main()
