"""The database-level root causes of duplicate candles (docs/duplicates.md), on SQLite and MariaDB.

Each cause is reproduced on the naive path (a legacy-shaped table and the writes the old scripts did)
and shown absent on the project's path: the project's table, which has PRIMARY KEY (datetime,
exchange, symbol) and UNIQUE (datetime, exchange, symbol_unmapped), written by `upsert_rows` on the
natural key (datetime, exchange, symbol_unmapped), under the table's write lock where runs overlap.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from spot_pipeline.db import schema
from spot_pipeline.db.dialect import qualified_name, upsert_rows
from spot_pipeline.db.inspection import reflect_table
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import MAPPED_KEY, NATURAL_KEY
from spot_pipeline.maintenance.deduplication.table_deduplication import count_duplicates
from spot_pipeline.timeutils import utc_from_epoch
from spot_pipeline_dev.legacy_tables import insert_rows, legacy_row, replace_with_legacy_table

DAY = dt.datetime(2024, 3, 9)
FIRST_RUN, SECOND_RUN = dt.datetime(2024, 3, 10, 0, 5), dt.datetime(2024, 3, 11, 0, 5)

Rows = list[dict[str, Any]]
Writer = Callable[[sa.Connection, sa.Table, Rows], None]


@dataclass(frozen=True)
class WritePath:
    """Where candles go and how: `write` takes legacy-form rows and stores them in `table`."""

    database: MarketDatabase
    table: sa.Table
    write: Callable[[sa.Connection, Rows], None]

    def store(self, rows: Rows) -> None:
        with self.database.begin() as connection:
            self.write(connection, rows)

    def duplicates(self) -> int:
        """Rows beyond the first of their natural key."""
        with self.database.connect() as connection:
            table = reflect_table(connection, self.database.schema_name, self.table.name)
            return count_duplicates(connection, table, NATURAL_KEY).duplicates

    def candles(self) -> set[tuple[Any, ...]]:
        with self.database.connect() as connection:
            return {
                tuple(row) for row in connection.execute(sa.select(*(self.table.c[n] for n in NATURAL_KEY)))
            }


def replace_into(connection: sa.Connection, table: sa.Table, rows: Rows) -> None:
    """What the old `insert_dataframe(replace=True)` sent: REPLACE, which only replaces on a key conflict."""
    columns = list(rows[0])
    quoted = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in columns)
    statement = sa.text(
        f"REPLACE INTO {qualified_name(connection, table)} ({quoted}) "
        f"VALUES ({', '.join(f':{name}' for name in columns)})"
    ).bindparams(*(sa.bindparam(name, type_=table.c[name].type) for name in columns))
    connection.execute(statement, rows)


def upsert_on_mapped_key(connection: sa.Connection, table: sa.Table, rows: Rows) -> None:
    upsert_rows(connection, table, rows, MAPPED_KEY)


def naive_path(database: MarketDatabase, *, primary_key: bool, writer: Writer) -> WritePath:
    """The legacy table (with or without PRIMARY KEY (datetime, exchange, symbol)) and an old-style write."""
    with database.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=primary_key)
    return WritePath(database, table, lambda connection, rows: writer(connection, table, rows))


def project_path(database: MarketDatabase) -> WritePath:
    table = schema.cc_ohlcv_spot_1d_raw

    def write(connection: sa.Connection, rows: Rows) -> None:
        upsert_rows(connection, table, [project_row(row) for row in rows], NATURAL_KEY)

    return WritePath(database, table, write)


def project_row(row: dict[str, Any]) -> dict[str, Any]:
    """A legacy-form row with its BIGINT trade timestamps as the project's UTC DATETIMEs."""
    return row | {name: utc_from_epoch(row[name]) for name in schema.TRADE_TIMESTAMP_COLUMNS}


def candle(day_offset: int, collected_at: dt.datetime, **values: Any) -> dict[str, Any]:
    return legacy_row(DAY + dt.timedelta(days=day_offset), collected_at=collected_at, **values)


def path_for(database: MarketDatabase, project: bool, *, primary_key: bool, writer: Writer) -> WritePath:
    """The project's path, or the naive one: the legacy table and an old-style write."""
    return project_path(database) if project else naive_path(database, primary_key=primary_key, writer=writer)


@pytest.mark.parametrize("project", [False, True], ids=["naive", "project"])
def test_rerun_on_a_table_without_unique_key_appends(market_db: MarketDatabase, project: bool) -> None:
    """REPLACE (and ON DUPLICATE KEY UPDATE) only replace a row that conflicts on a unique key: on the
    legacy copies without any key, every re-run of a day appends its candles again."""
    path = path_for(market_db, project, primary_key=False, writer=replace_into)
    path.store([candle(0, FIRST_RUN), candle(1, FIRST_RUN)])
    path.store([candle(1, SECOND_RUN, close=106.0), candle(2, SECOND_RUN)])
    assert path.duplicates() == (0 if project else 1)
    assert len(path.candles()) == 3


@pytest.mark.parametrize("project", [False, True], ids=["naive", "project"])
def test_remap_under_a_key_on_symbol_adds_a_second_row(market_db: MarketDatabase, project: bool) -> None:
    """The provider renames an instrument's mapped symbol (MATIC-USD -> POL-USD) while its exchange id
    stays: keyed on `symbol`, the re-fetched candle conflicts with nothing and is added beside the old one."""
    path = path_for(market_db, project, primary_key=True, writer=upsert_on_mapped_key)
    before = legacy_row(DAY, "binance", "MATIC-USD", collected_at=FIRST_RUN)
    after = legacy_row(DAY, "binance", "POL-USD", symbol_unmapped="MATICUSD", collected_at=SECOND_RUN)
    path.store([before])
    path.store([after])
    assert path.duplicates() == (0 if project else 1)
    if project:
        with market_db.connect() as connection:
            assert connection.execute(sa.select(path.table.c.symbol)).scalars().all() == ["POL-USD"]


@pytest.mark.parametrize("project", [False, True], ids=["naive", "project"])
def test_retried_batch_on_a_table_without_unique_key_stores_its_committed_part_twice(
    market_db: MarketDatabase, project: bool
) -> None:
    """A batch written in chunks that commit one by one (as pandas `to_sql` does) fails after its first
    chunk; the retry sends the whole batch again, and the first chunk is stored twice."""
    path = path_for(market_db, project, primary_key=False, writer=insert_rows)
    batch = [candle(day, FIRST_RUN) for day in range(4)]
    path.store(batch[:2])  # the first chunk committed before the connection dropped
    path.store(batch)  # the retry
    assert path.duplicates() == (0 if project else 2)
    assert len(path.candles()) == 4


def check_then_insert(path: WritePath, rows: Rows, both_checked: threading.Barrier) -> None:
    """Store the candles not stored yet: right alone, but two runs can both check before either writes."""
    keys = [path.table.c[name] for name in NATURAL_KEY]
    with path.database.connect() as connection:
        stored_keys = {tuple(row) for row in connection.execute(sa.select(*keys))}
    both_checked.wait(timeout=30)
    path.store([row for row in rows if tuple(row[name] for name in NATURAL_KEY) not in stored_keys])


def upsert_under_lock(path: WritePath, rows: Rows, both_ready: threading.Barrier) -> None:
    both_ready.wait(timeout=30)
    with path.database.write_lock(path.table):
        path.store(rows)


def run_concurrently(targets: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.parametrize("project", [False, True], ids=["naive", "project"])
def test_overlapping_concurrent_runs_store_the_overlap_twice(
    market_db: MarketDatabase, project: bool
) -> None:
    """A daily run and a backfill over overlapping days run at the same time."""
    runs = [[candle(day, FIRST_RUN) for day in range(5)], [candle(day, FIRST_RUN) for day in range(3, 8)]]
    barrier = threading.Barrier(len(runs))
    path = path_for(market_db, project, primary_key=False, writer=insert_rows)
    run = upsert_under_lock if project else check_then_insert
    run_concurrently([lambda rows=rows: run(path, rows, barrier) for rows in runs])
    assert path.duplicates() == (0 if project else 2)
    assert len(path.candles()) == 8
