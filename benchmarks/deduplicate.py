"""Benchmark: `deduplicate_table` against a pandas load / drop_duplicates / rewrite, on MariaDB/MySQL.

    .venv/bin/python benchmarks/deduplicate.py --rows 1000000

Builds a table shaped like `market.cc_ohlcv_spot_1d_raw` without any key (as the legacy copies that
hold duplicates), `--rows` rows of which `--duplicate-share` are extra copies of other rows (exact
copies, older, newer and same-time variants), generated in SQL (INSERT ... SELECT over a digits
table, no Python row loop). Two identical copies are then deduplicated on (datetime, exchange,
symbol_unmapped), each approach in its own child process, so that its peak memory is that
process's own peak resident set size (`ru_maxrss`): interpreter and imports included, and shown
separately as "at start". Everything lives in the schema `market_bench_dedupe`, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spot_pipeline.db import schema as market_schema  # noqa: E402
from spot_pipeline.db.engine import create_market_engine  # noqa: E402
from spot_pipeline.db.inspection import NATURAL_KEY  # noqa: E402
from spot_pipeline.db.utils import deduplicate_table  # noqa: E402

BENCH_SCHEMA = "market_bench_dedupe"
SQL_TABLE = "ohlcv_dedupe_sql"
PANDAS_TABLE = "ohlcv_dedupe_pandas"
PAIRS = 500
FIRST_DAY = "2019-01-01"
DEFAULT_URL = "mysql+mysqlconnector://root@127.0.0.1:3306/test"


def bench_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """The OHLCV columns with no primary or unique key, as in the legacy copies that hold duplicates."""
    return sa.Table(
        name,
        metadata,
        *(
            sa.Column(column.name, column.type, nullable=column.nullable, server_default=column.server_default)
            for column in market_schema.cc_ohlcv_spot_1d_raw.columns
        ),
        schema=BENCH_SCHEMA,
        **market_schema.MYSQL_TABLE_OPTIONS,
    )


def numbers_query(digits: sa.Table, below: int) -> sa.Select:
    """0 .. below-1 as column `n`, from a cross join of the digits table."""
    places = [digits.alias(f"d{place}") for place in range(len(str(max(below - 1, 1))))]
    number = sum((alias.c.d * 10**place for place, alias in enumerate(places)), sa.literal(0))
    return sa.select(number.label("n")).select_from(*places).where(number < below)


def candle_columns(n: sa.ColumnElement[int]) -> dict[str, sa.ColumnElement]:
    """One candle per number: pair n % PAIRS on day n // PAIRS, values derived from n."""
    pair = n % PAIRS
    day = sa.func.timestampadd(sa.literal_column("DAY"), n // PAIRS, sa.func.timestamp(FIRST_DAY))
    price = 100 + (n % 997)
    return {
        "datetime": day,
        "exchange": sa.func.concat("ex", pair % 25),
        "symbol_unmapped": sa.func.concat("INST", pair),
        "symbol": sa.func.concat("SYM", pair, "-USD"),
        "base": sa.func.concat("SYM", pair),
        "quote": sa.literal("USD"),
        "open": price,
        "high": price + 5,
        "low": price - 5,
        "close": price + 1,
        "first_trade_timestamp": day,
        "last_trade_timestamp": sa.func.timestampadd(sa.literal_column("SECOND"), 86399, day),
        "total_trades": n,
        "volume": n % 10_000,
        "quote_volume": (n % 10_000) * price,
        "collected_at": sa.func.timestampadd(sa.literal_column("SECOND"), 86400 + n % 3600, day),
    }


def duplicate_columns(table: sa.Table, stride: int) -> dict[str, sa.ColumnElement]:
    """A copy of a row: exact, collected an hour earlier, an hour later, or at the same time with other values."""
    variant = (table.c.total_trades // stride) % 4
    shift = sa.case((variant == 1, -3600), (variant == 2, 3600), else_=0)
    columns: dict[str, sa.ColumnElement] = {column.name: column for column in table.c}
    columns["collected_at"] = sa.func.timestampadd(sa.literal_column("SECOND"), shift, table.c.collected_at)
    columns["close"] = table.c.close + sa.case((variant == 0, 0), else_=1)
    return columns


def build_tables(engine: sa.Engine, rows: int, duplicate_share: float) -> None:
    metadata = sa.MetaData()
    digits = sa.Table("digits", metadata, sa.Column("d", sa.Integer), schema=BENCH_SCHEMA)
    tables = [bench_table(name, metadata) for name in (SQL_TABLE, PANDAS_TABLE)]
    duplicates = round(rows * duplicate_share)
    originals = rows - duplicates
    stride = max(originals // max(duplicates, 1), 1)
    with engine.begin() as connection:
        metadata.drop_all(connection)
        metadata.create_all(connection)
        connection.execute(digits.insert(), [{"d": d} for d in range(10)])
        n = numbers_query(digits, originals).subquery("numbers").c.n
        candle = candle_columns(n)
        connection.execute(sa.insert(tables[0]).from_select(list(candle), sa.select(*candle.values())))
        copies = duplicate_columns(tables[0], stride)
        picked = sa.select(*copies.values()).where(tables[0].c.total_trades % stride == 0).limit(duplicates)
        connection.execute(sa.insert(tables[0]).from_select(list(copies), picked))
        connection.execute(sa.insert(tables[1]).from_select(list(tables[0].c.keys()), sa.select(tables[0])))


def run_sql(engine: sa.Engine, table: str, batch_days: int) -> None:
    deduplicate_table(engine, BENCH_SCHEMA, table, NATURAL_KEY, "collected_at", batch_days=batch_days)


def run_pandas(engine: sa.Engine, table: str, _batch_days: int) -> None:
    """The obvious approach: load everything, drop_duplicates, write a new table, drop and rename."""
    import pandas as pd

    frame = pd.read_sql_table(table, engine, schema=BENCH_SCHEMA)
    frame = frame.sort_values("collected_at").drop_duplicates(list(NATURAL_KEY), keep="last")
    frame.to_sql(f"{table}_new", engine, schema=BENCH_SCHEMA, index=False, chunksize=10_000)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE `{BENCH_SCHEMA}`.`{table}`")
        connection.exec_driver_sql(f"RENAME TABLE `{BENCH_SCHEMA}`.`{table}_new` TO `{BENCH_SCHEMA}`.`{table}`")


APPROACHES: dict[str, tuple[str, Callable[[sa.Engine, str, int], None]]] = {
    "deduplicate_table": (SQL_TABLE, run_sql),
    "pandas": (PANDAS_TABLE, run_pandas),
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(url: str, approach: str, batch_days: int) -> None:
    """Run one approach in this process and print its timing and memory as JSON."""
    table, run = APPROACHES[approach]
    engine = create_market_engine(url, BENCH_SCHEMA)
    with engine.connect() as connection:
        before = connection.execute(sa.text(f"SELECT COUNT(*) FROM `{BENCH_SCHEMA}`.`{table}`")).scalar_one()
    start_rss = peak_rss_mib()
    started = time.perf_counter()
    run(engine, table, batch_days)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        after = connection.execute(sa.text(f"SELECT COUNT(*) FROM `{BENCH_SCHEMA}`.`{table}`")).scalar_one()
    print(json.dumps({"rows": before, "after": after, "seconds": seconds, "start": start_rss, "peak": peak_rss_mib()}))


def measure(url: str, approach: str, batch_days: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--url", url, "--child", approach, "--batch-days", str(batch_days)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(results: dict[str, dict[str, float]]) -> str:
    baseline = results["pandas"]["seconds"]
    lines = [
        "| approach | rows | rows after | seconds | rows/s | peak memory (at start) | vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for approach, result in results.items():
        lines.append(
            f"| {approach} | {result['rows']:,} | {result['after']:,} | {result['seconds']:.1f} "
            f"| {result['rows'] / result['seconds']:,.0f} | {result['peak']:.0f} MiB ({result['start']:.0f} MiB) "
            f"| {baseline / result['seconds']:.1f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("SPOT_PIPELINE_BENCH_MYSQL_URL", DEFAULT_URL))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duplicate-share", type=float, default=0.05)
    parser.add_argument("--batch-days", type=int, default=365)
    parser.add_argument("--child", choices=list(APPROACHES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.url, args.child, args.batch_days)
        return
    engine = create_market_engine(args.url, BENCH_SCHEMA)
    try:
        started = time.perf_counter()
        build_tables(engine, args.rows, args.duplicate_share)
        print(f"built 2 x {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        results = {approach: measure(args.url, approach, args.batch_days) for approach in APPROACHES}
        print(f"batch_days={args.batch_days}, {PAIRS} pairs, duplicate share {args.duplicate_share:.0%}")
        print(report(results))
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{BENCH_SCHEMA}`")
        engine.dispose()


if __name__ == "__main__":
    main()
