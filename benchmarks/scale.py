"""Benchmark: does a run cost its window, not the table? The same runs on an N-row table and an empty one.

Builds `cc_ohlcv_spot_1d_raw` with N rows server-side (2,800 pairs of ten years ending yesterday, on
exchanges the universe does not hold), then times, side by side in one run, on that table and on an
empty one (each with the same reference tables and the fake API's 53-pair universe):

1. the daily partition with its checks (yesterday), 2. a 10-day range, 3. the universe,
4. the weekly dedupe (default config), 5. the write of a one-year backfill of 500 pairs
(182,500 rows, 20,000 rows per transaction as ingestion writes them),

and prints the ratios, the write rate against `LOAD DATA LOCAL INFILE` and a server-side
`INSERT ... SELECT` of the same rows into the same table (taken in turns, best of two, each after
the server has purged the rows deleted before it), the rate of writing them again over themselves,
and the EXPLAIN plan of every statement the daily run sends to the candle table on the N-row
table. It fails if a plan reads the candle table without a key (a full scan).

    python -m benchmarks.scale                  # N = 10,000,000 (builds in a few minutes)
    python -m benchmarks.scale --rows 1000000   # a quicker run
    SPOT_PIPELINE_BENCH_MYSQL_URL=mysql+mysqlconnector://root@127.0.0.1:3306/test (default)
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from benchmarks.report import print_table
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import row_count, staging_table
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.maintenance.deduplication.schedules import deduplicate_ohlcv_job
from spot_pipeline.ohlcv.assets import cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.queries import STAGING_TABLE, write_candles
from spot_pipeline.ohlcv.schedules import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from spot_pipeline.reference_data.assets import asset_top_list, cc_exchanges_general, cc_instruments_spot
from spot_pipeline.timeutils import utc_today
from spot_pipeline.universe.assets import spot_universe
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_dev.synthetic_candles import synthetic_candle

DEFAULT_URL = "mysql+mysqlconnector://root@127.0.0.1:3306/test"
FULL_SCHEMA, EMPTY_SCHEMA = "market_bench_scale_full", "market_bench_scale_empty"
BULK_PAIRS = 2_800
BACKFILL_PAIRS, BACKFILL_DAYS, BATCH_ROWS = 500, 365, 20_000
BUILD_ROWS_PER_STATEMENT = 500_000
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
YESTERDAY = utc_today() - dt.timedelta(days=1)
CANDLES = schema.cc_ohlcv_spot_1d_raw
COLUMNS = [column.name for column in CANDLES.columns]


def timed(action: Callable[..., object], *arguments: Any) -> float:
    started = time.perf_counter()
    action(*arguments)
    return time.perf_counter() - started


# --- The N-row table, built inside the server -------------------------------------------------------


def build_table(market_db: MarketDatabase, rows: int) -> None:
    """`rows` candles of BULK_PAIRS pairs, the latest day yesterday, written by INSERT ... SELECT."""
    with market_db.begin() as connection:
        # Instant, where deleting ten million rows would leave the server purging them during the runs.
        connection.exec_driver_sql(f"TRUNCATE TABLE `{FULL_SCHEMA}`.`{CANDLES.name}`")
    values = {
        "datetime": f"DATE_SUB('{YESTERDAY}', INTERVAL (seq DIV {BULK_PAIRS}) DAY)",
        "exchange": f"CONCAT('bulk', seq MOD {BULK_PAIRS} MOD 10)",
        "symbol_unmapped": f"CONCAT('BULK', seq MOD {BULK_PAIRS}, 'USD')",
        "symbol": f"CONCAT('BULK', seq MOD {BULK_PAIRS}, '-USD')",
        "base": f"CONCAT('BULK', seq MOD {BULK_PAIRS})",
        "quote": "'USD'",
        "base_id": f"10000 + seq MOD {BULK_PAIRS}",
        "quote_id": "5",
        "transform_function": "''",
        **dict.fromkeys(("open", "high", "low", "close"), "100 + seq MOD 97 * 0.37"),
        **dict.fromkeys(
            schema.TRADE_TIMESTAMP_COLUMNS,
            f"DATE_ADD(DATE_SUB('{YESTERDAY}', INTERVAL (seq DIV {BULK_PAIRS}) DAY), INTERVAL 3 HOUR)",
        ),
        **{f"{side}_trade_price": "100 + seq MOD 97 * 0.37" for side in ("first", "high", "low", "last")},
        **dict.fromkeys(("total_trades", "total_trades_buy", "total_trades_sell"), "1234 + seq MOD 11"),
        "total_trades_unknown": "0",
        **{
            f"{prefix}volume{side}": "17.5 * (1 + seq MOD 13)"
            for side in ("", "_buy", "_sell", "_unknown")
            for prefix in ("", "quote_")
        },
        "collected_at": f"'{YESTERDAY} 01:00:00'",
    }
    target = f"`{FULL_SCHEMA}`.`{CANDLES.name}`"
    select = ", ".join(values[name] for name in COLUMNS)
    for first in range(0, rows, BUILD_ROWS_PER_STATEMENT):
        last = min(rows, first + BUILD_ROWS_PER_STATEMENT) - 1
        with market_db.begin() as connection:
            connection.exec_driver_sql(
                f"INSERT INTO {target} ({', '.join(COLUMNS)}) SELECT {select} FROM seq_{first}_to_{last}"
            )
    with market_db.begin() as connection:
        connection.exec_driver_sql(f"ANALYZE TABLE {target}")


def table_rows(market_db: MarketDatabase) -> int:
    with market_db.connect() as connection:
        return row_count(connection, CANDLES)


def built_rows(market_db: MarketDatabase) -> int:
    """The rows `build_table` made (the runs add the universe's own beside them)."""
    with market_db.connect() as connection:
        return row_count(connection, CANDLES, CANDLES.c.exchange.like("bulk%"))


# --- The runs -------------------------------------------------------------------------------------


def materialize(assets: list[Any], resources: dict[str, Any], **kwargs: Any) -> None:
    result = dg.materialize(assets, resources=resources, run_config=QUIET, raise_on_error=False, **kwargs)
    assert result.success, [event.message for event in result.all_events if event.is_failure]


def daily_run(resources: dict[str, Any]) -> None:
    materialize([cc_ohlcv_spot_1d_raw], resources, partition_key=YESTERDAY.isoformat())


def range_run(resources: dict[str, Any], days: int = 10) -> None:
    first = YESTERDAY - dt.timedelta(days=days - 1)
    tags = {PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: YESTERDAY.isoformat()}
    materialize([cc_ohlcv_spot_1d_raw], resources, tags=tags)


def universe_run(resources: dict[str, Any]) -> None:
    materialize([spot_universe], resources)


def dedupe_run(resources: dict[str, Any]) -> None:
    result = deduplicate_ohlcv_job.execute_in_process(resources=resources, run_config=QUIET)
    assert result.success


def backfill_rows() -> Iterator[list[dict[str, Any]]]:
    """One year of BACKFILL_PAIRS new pairs, in transactions of BATCH_ROWS rows (whole pairs each)."""
    first_day = YESTERDAY - dt.timedelta(days=BACKFILL_DAYS - 1)
    batch: list[dict[str, Any]] = []
    for pair in range(BACKFILL_PAIRS):
        for offset in range(BACKFILL_DAYS):
            batch.append(backfill_row(pair, first_day + dt.timedelta(days=offset)))
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def backfill_row(pair: int, day: dt.date) -> dict[str, Any]:
    return synthetic_candle(
        pair,
        dt.datetime.combine(day, dt.time()),
        pair * 31 + day.toordinal(),
        market=f"backfill{pair % 5}",
        prefix="NEW",
        collected_at=dt.datetime.combine(YESTERDAY, dt.time(1)),
    )


def write_backfill(market_db: MarketDatabase, batches: list[list[dict[str, Any]]]) -> None:
    """The rows are made beforehand, as the baselines' file is: only the write is timed."""
    for batch in batches:
        with market_db.begin() as connection:
            write_candles(connection, batch)


def timed_write(market_db: MarketDatabase, write: Callable[..., object], *arguments: Any) -> float:
    """Seconds of one write of the backfill into a table without it, the server's purge of the
    rows deleted before it done first (a purge running meanwhile would slow the write at random)."""
    delete_backfill(market_db)
    with market_db.connect() as connection:
        status = "SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'"
        while int(connection.exec_driver_sql(status).one()[1]) > 0:
            time.sleep(0.2)
    return timed(write, *arguments)


def delete_backfill(market_db: MarketDatabase) -> None:
    c = CANDLES.c
    first_day = dt.datetime.combine(YESTERDAY - dt.timedelta(days=BACKFILL_DAYS - 1), dt.time())
    exchanges = [f"backfill{index}" for index in range(5)]
    with market_db.begin() as connection:
        connection.execute(sa.delete(CANDLES).where(c.datetime >= first_day, c.exchange.in_(exchanges)))


# --- Baselines of the server's own load speed -----------------------------------------------------


def write_tsv(path: Path) -> int:
    """The backfill rows as a tab-separated file that LOAD DATA reads (\\N for NULL)."""
    written = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE)
        for batch in backfill_rows():
            for row in batch:
                writer.writerow(["\\N" if row[name] is None else row[name] for name in COLUMNS])
            written += len(batch)
    return written


def local_infile_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, connect_args={"allow_local_infile": True, "time_zone": "+00:00"})


def load_file(connection: sa.Connection, path: Path, table: str) -> None:
    connection.exec_driver_sql(
        f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} "
        f"FIELDS TERMINATED BY '\\t' ({', '.join(COLUMNS)})"
    )


def load_data(url: str, path: Path) -> None:
    engine = local_infile_engine(url)
    with engine.begin() as connection:
        load_file(connection, path, f"`{FULL_SCHEMA}`.`{CANDLES.name}`")
    engine.dispose()


@contextmanager
def staged_copy(url: str, path: Path) -> Iterator[str]:
    """A plain table of the backfill rows in the same schema, for the INSERT ... SELECT baseline."""
    name = f"`{FULL_SCHEMA}`.`bench_backfill_source`"
    engine = local_infile_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE TABLE {name} LIKE `{FULL_SCHEMA}`.`{CANDLES.name}`")
        load_file(connection, path, name)
    try:
        yield name
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        engine.dispose()


def insert_select(market_db: MarketDatabase, source: str) -> None:
    columns = ", ".join(COLUMNS)
    with market_db.begin() as connection:
        connection.exec_driver_sql(
            f"INSERT INTO `{FULL_SCHEMA}`.`{CANDLES.name}` ({columns}) SELECT {columns} FROM {source}"
        )


# --- EXPLAIN of every statement a run sends to the candle table ----------------------------------


@contextmanager
def captured_statements() -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if CANDLES.name in statement and re.match(
            r"\s*(SELECT|INSERT INTO \S+ \(.*\) SELECT|DELETE|UPDATE)", statement, re.S
        ):
            statements.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", capture)


def explain(market_db: MarketDatabase, statements: list[tuple[str, Any]]) -> list[list[Any]]:
    """One row per distinct statement: how the candle table is read (access type, key, rows).

    The write path's statements read a session-private staging table: this session gets its own,
    holding a day of candles, so that they can be explained too.
    """
    plans, seen = [], set()
    keys = [*schema.MAPPED_KEY, "symbol_unmapped"]
    with market_db.begin() as connection, staging_table(connection, CANDLES, STAGING_TABLE, keys) as staged:
        yesterday = dt.datetime.combine(YESTERDAY, dt.time())
        rows = sa.select(*(CANDLES.c[name] for name in keys)).where(CANDLES.c.datetime == yesterday)
        connection.execute(sa.insert(staged).from_select(keys, rows))
        for statement, parameters in statements:
            shape = re.sub(r"\s+", " ", statement)
            if shape in seen:
                continue
            seen.add(shape)
            for plan in connection.exec_driver_sql("EXPLAIN " + statement, parameters).mappings():
                if plan["table"] == CANDLES.name:
                    plans.append(
                        [shape[:100].replace("|", "/") + " ...", plan["type"], plan["key"], plan["rows"]]
                    )
    return plans


# --- The benchmark --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the full table")
    parser.add_argument("--url", default=os.environ.get("SPOT_PIPELINE_BENCH_MYSQL_URL", DEFAULT_URL))
    parser.add_argument("--reuse", action="store_true", help="keep a full table of the right size")
    arguments = parser.parse_args()
    databases = {
        name: MarketDatabase(url=arguments.url, schema_name=name) for name in (EMPTY_SCHEMA, FULL_SCHEMA)
    }
    full, empty = databases[FULL_SCHEMA], databases[EMPTY_SCHEMA]
    with FakeCCDataServer() as fake_api:
        client = fake_api.client(calls_per_second=200)
        for market_db in databases.values():
            resources = {"ccdata": client, "market_db": market_db}
            materialize([cc_exchanges_general, cc_instruments_spot, asset_top_list, spot_universe], resources)
        with empty.begin() as connection:
            connection.execute(sa.delete(CANDLES))
        if not (arguments.reuse and built_rows(full) == arguments.rows):
            print(f"building {arguments.rows:,} rows in {FULL_SCHEMA}.{CANDLES.name} ...", flush=True)
            print(f"built in {timed(build_table, full, arguments.rows):.0f} s", flush=True)
        runs = {
            "daily partition with its checks": daily_run,
            "10-day range": range_run,
            "universe": universe_run,
            "weekly dedupe (default config)": dedupe_run,
        }
        timings = []
        for name, run in runs.items():
            seconds = {}
            for label, market_db in (("empty", empty), ("full", full)):
                resources = {"ccdata": client, "market_db": market_db}
                run(resources)  # warm: a first run pays for imports and cold caches
                seconds[label] = min(timed(run, resources) for _ in range(2))
            timings.append(
                [
                    name,
                    f"{seconds['empty']:.2f}",
                    f"{seconds['full']:.2f}",
                    f"{seconds['full'] / seconds['empty']:.2f}x",
                ]
            )
        with captured_statements() as statements:
            daily_run({"ccdata": client, "market_db": full})
        plans = explain(full, statements)

    backfill = BACKFILL_PAIRS * BACKFILL_DAYS
    batches = list(backfill_rows())
    write_empty = min(timed_write(empty, write_backfill, empty, batches) for _ in range(2))
    delete_backfill(empty)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "backfill.tsv"
        write_tsv(path)
        with staged_copy(arguments.url, path) as source:
            # In turns, best of two, so that each approach meets the server in the same state.
            rounds = [
                (
                    timed_write(full, write_backfill, full, batches),
                    timed_write(full, load_data, arguments.url, path),
                    timed_write(full, insert_select, full, source),
                )
                for _ in range(2)
            ]
    write_full, load, select = map(min, zip(*rounds, strict=True))
    rewrite_full = timed(write_backfill, full, batches)  # over the rows the last round stored: all replaced
    delete_backfill(full)
    timings.append(
        [
            f"write a one-year backfill of {BACKFILL_PAIRS} pairs",
            f"{write_empty:.2f}",
            f"{write_full:.2f}",
            f"{write_full / write_empty:.2f}x",
        ]
    )

    print_table(
        f"Runs on an empty table and on {table_rows(full):,} rows (best of 2 after a warm-up)",
        ["run", "empty table (s)", f"{arguments.rows:,} rows (s)", "ratio"],
        timings,
    )
    print_table(
        f"Writing {backfill:,} backfill rows into the {arguments.rows:,}-row table",
        ["approach", "seconds", "rows/s", "vs LOAD DATA"],
        [
            ["LOAD DATA LOCAL INFILE (baseline)", f"{load:.2f}", f"{backfill / load:,.0f}", "100%"],
            [
                "INSERT ... SELECT from a table of the rows",
                f"{select:.2f}",
                f"{backfill / select:,.0f}",
                f"{load / select:.0%}",
            ],
            [
                "write_candles, 20k rows per transaction",
                f"{write_full:.2f}",
                f"{backfill / write_full:,.0f}",
                f"{load / write_full:.0%}",
            ],
            [
                "write_candles again over the same rows (all replaced)",
                f"{rewrite_full:.2f}",
                f"{backfill / rewrite_full:,.0f}",
                f"{load / rewrite_full:.0%}",
            ],
        ],
    )
    print_table(
        f"EXPLAIN of every statement the daily run sends to the candle table ({arguments.rows:,} rows)",
        ["statement", "access", "key", "rows"],
        plans,
    )
    full_scans = [plan for plan in plans if plan[1] == "ALL"]
    assert not full_scans, f"statements that read the whole candle table: {full_scans}"


if __name__ == "__main__":
    main()
