"""Benchmark: `migrate_ohlcv_timestamps_job` against a pandas read-convert-write, on the same MariaDB table.

    python -m benchmarks.migrate_timestamps --rows 1000000    # from the repository root

Builds a legacy `cc_ohlcv_spot_1d_raw` (BIGINT trade timestamps) of N rows in a scratch database
(`market_bench`, dropped at the end) with one set-based INSERT ... SELECT over MariaDB's sequence
engine, then runs, each on a freshly built copy of the same rows and in a fresh child process:

1. pandas: `read_sql_table` of the whole table, `to_datetime(unit="s")` on the four columns,
   `to_sql` into the migrating table (no verification, no swap);
2. the job: every step of `migrate_ohlcv_timestamps_job` (inspect, create, copy and convert,
   verify, swap, clean up), in process, with the job's default config unless `--chunk-rows` or
   `--parallel-chunks` say otherwise.

Memory is the child's peak resident set size (`getrusage(RUSAGE_SELF).ru_maxrss`), reported whole
and as growth over the child's size after its imports, so the figure covers the approach's own
data, whatever Python allocates it through (tracemalloc would miss the drivers' C buffers).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS
from spot_pipeline.maintenance.timestamp_migration import layout
from spot_pipeline.maintenance.timestamp_migration.ops import MigrationConfig
from spot_pipeline.maintenance.timestamp_migration.schedules import migrate_ohlcv_timestamps_job
from spot_pipeline_dev.legacy_tables import replace_with_legacy_table

DEFAULT_URL = "mysql+mysqlconnector://root@127.0.0.1:3306/test"
SCHEMA = "market_bench"
PAIRS_PER_DAY = 2_000  # 10 exchanges x 200 symbols
FIRST_DAY_EPOCH = 1_609_459_200  # 2021-01-01 00:00:00 UTC

# One candle per (day, exchange, symbol) from the sequence number; about 1 row in 13 has NULL trade
# timestamps (a day without trades). Written for MariaDB: the seq_0_to_N tables are its sequence engine.
LEGACY_ROWS_SQL = """
INSERT INTO {table}
SELECT
  TIMESTAMP'2021-01-01 00:00:00' + INTERVAL (seq DIV {pairs}) DAY,
  CONCAT('ex', seq MOD 10),
  CONCAT('S', (seq DIV 10) MOD 200, 'USD'),
  CONCAT('S', (seq DIV 10) MOD 200, '-USD'),
  CONCAT('S', (seq DIV 10) MOD 200), 'USD', (seq DIV 10) MOD 200, 5, NULL,
  100 + seq MOD 97, 110 + seq MOD 89, 90 + seq MOD 83, 105 + seq MOD 79,
  IF(seq MOD 13 = 0, NULL, {epoch} + (seq DIV {pairs}) * 86400 + seq MOD 600),
  IF(seq MOD 13 = 0, NULL, {epoch} + (seq DIV {pairs}) * 86400 + 86399 - seq MOD 600),
  100 + seq MOD 97, 110 + seq MOD 89,
  IF(seq MOD 13 = 0, NULL, {epoch} + (seq DIV {pairs}) * 86400 + seq MOD 86400),
  90 + seq MOD 83,
  IF(seq MOD 13 = 0, NULL, {epoch} + (seq DIV {pairs}) * 86400 + (seq * 7) MOD 86400),
  105 + seq MOD 79,
  seq MOD 5000, seq MOD 2500, seq MOD 2400, seq MOD 100,
  seq / 7, seq / 3, seq / 11, seq / 5, seq / 13, seq / 9, 0, 0,
  TIMESTAMP'2021-01-01 00:00:00' + INTERVAL (seq DIV {pairs}) DAY + INTERVAL 1 DAY
FROM seq_0_to_{last}
"""


@dataclass(frozen=True)
class Measurement:
    approach: str
    rows: int
    seconds: float
    peak_rss_mb: float
    growth_mb: float


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def build_legacy_table(url: str, rows: int, primary_key: bool) -> None:
    market_db = MarketDatabase(url=url, schema_name=SCHEMA)
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=primary_key)
        qualified = f"`{SCHEMA}`.`{table.name}`"
        sql = LEGACY_ROWS_SQL.format(
            table=qualified, pairs=PAIRS_PER_DAY, epoch=FIRST_DAY_EPOCH, last=rows - 1
        )
        connection.exec_driver_sql(sql)
    market_db.dispose()


def flush_to_disk(url: str) -> None:
    """Write the freshly built table's pages out now (FLUSH ... FOR EXPORT), so that the measured
    approach does not pay for the build's write-back, which InnoDB would otherwise do meanwhile.
    """
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql(f"FLUSH TABLES `{SCHEMA}`.`{layout.ORIGINAL_TABLE}` FOR EXPORT")
        connection.exec_driver_sql("UNLOCK TABLES")
    engine.dispose()


def run_pandas(url: str) -> int:
    """The read-convert-write approach: the whole table through a DataFrame into the migrating table."""
    market_db = MarketDatabase(url=url, schema_name=SCHEMA)
    with market_db.begin() as connection:
        layout.create_migrating_table(connection, SCHEMA)
    engine = sa.create_engine(url, connect_args={"time_zone": "+00:00"})
    frame = pd.read_sql_table(layout.ORIGINAL_TABLE, engine, schema=SCHEMA)
    for column in TRADE_TIMESTAMP_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], unit="s")
    frame.to_sql(
        layout.MIGRATING_TABLE, engine, schema=SCHEMA, if_exists="append", index=False, chunksize=10_000
    )
    with market_db.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE `{SCHEMA}`.`{layout.MIGRATING_TABLE}`")
    return len(frame)


def run_job(url: str, config: MigrationConfig) -> int:
    """Every step of the migration job, in process; returns the rows in the migrated table."""
    result = migrate_ohlcv_timestamps_job.execute_in_process(
        run_config=dg.RunConfig(ops={"inspect_ohlcv_table": config}),
        resources={"market_db": MarketDatabase(url=url, schema_name=SCHEMA)},
    )
    return next(
        event.event_specific_data.metadata["dagster/row_count"].value
        for event in result.all_events
        if event.event_type_value == "STEP_OUTPUT" and event.step_key == "copy_verify_and_swap"
    )


def measure_in_this_process(approach: str, url: str, config: MigrationConfig) -> Measurement:
    baseline = peak_rss_mb()
    started = time.perf_counter()
    rows = run_pandas(url) if approach == "pandas" else run_job(url, config)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    label = (
        approach
        if approach == "pandas"
        else f"job (parallel_chunks={config.parallel_chunks}, chunk_rows={config.chunk_rows or 'default'})"
    )
    return Measurement(label, rows, seconds, peak, peak - baseline)


def measure_in_child(approach: str, url: str, config: MigrationConfig) -> Measurement:
    command = [sys.executable, "-m", "benchmarks.migrate_timestamps", "--child", approach, "--url", url]
    command += ["--parallel-chunks", str(config.parallel_chunks)]
    command += ["--chunk-rows", str(config.chunk_rows)] if config.chunk_rows else []
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
    if completed.returncode != 0:
        raise RuntimeError(f"the {approach} run failed:\n{completed.stderr[-4000:]}")
    return Measurement(**json.loads(completed.stdout.strip().splitlines()[-1]))


def print_table(measurements: list[Measurement]) -> None:
    pandas_rate = next(m.rows / m.seconds for m in measurements if m.approach == "pandas")
    print("| approach | rows | seconds | rows/s | peak RSS (MB) | RSS growth (MB) | vs pandas |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in measurements:
        rate = m.rows / m.seconds
        print(
            f"| {m.approach} | {m.rows:,} | {m.seconds:.1f} | {rate:,.0f} | {m.peak_rss_mb:.0f} | "
            f"{m.growth_mb:.0f} | {rate / pandas_rate:.1f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="legacy rows to build (default 1,000,000)"
    )
    parser.add_argument("--url", default=os.environ.get("SPOT_PIPELINE_BENCH_MYSQL_URL", DEFAULT_URL))
    parser.add_argument("--chunk-rows", type=int, help="the job's chunk_rows config (default: its own)")
    parser.add_argument(
        "--parallel-chunks",
        type=int,
        default=MigrationConfig().parallel_chunks,
        help="chunks the job works on at once (its parallel_chunks config)",
    )
    parser.add_argument("--no-primary-key", action="store_true", help="build the legacy table without a key")
    parser.add_argument("--child", choices=["pandas", "job"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = MigrationConfig(chunk_rows=args.chunk_rows, parallel_chunks=args.parallel_chunks)
    if args.child:
        print(json.dumps(measure_in_this_process(args.child, args.url, config).__dict__))
        return
    try:
        measurements = []
        for approach in ("pandas", "job"):
            # The same rows, freshly built, for each: neither approach finds the other's pages cached.
            started = time.perf_counter()
            build_legacy_table(args.url, args.rows, primary_key=not args.no_primary_key)
            flush_to_disk(args.url)
            print(f"built {args.rows:,} legacy rows in {time.perf_counter() - started:.1f} s", flush=True)
            measurements.append(measure_in_child(approach, args.url, config))
        print_table(measurements)
    finally:
        engine = sa.create_engine(args.url)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{SCHEMA}`")
        engine.dispose()


if __name__ == "__main__":
    main()
