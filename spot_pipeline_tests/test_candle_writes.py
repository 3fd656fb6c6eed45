"""How candle batches are written, on both dialects: new candles go straight in, a batch that meets
stored candles anywhere takes the guarded replace, and either way the table ends the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from spot_pipeline.db import dialect
from spot_pipeline.db.dialect import insert_if_all_new, is_mysql
from spot_pipeline.db.engine import BULK_LOAD_DIRECTORY_OPTION
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import Row, cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.queries import STAGING_TABLE, SymbolHeldByAnotherInstrument, write_candles
from spot_pipeline_dev.synthetic_candles import synthetic_candle

FIRST_DAY = dt.datetime(2025, 1, 1)
COLLECTED_AT = dt.datetime(2025, 3, 1, 1)


def candles(pair: int, days: range, variety: int = 0, prefix: str = "NEW") -> list[Row]:
    return [
        synthetic_candle(
            pair,
            FIRST_DAY + dt.timedelta(days=day),
            variety + day,
            market="kraken",
            prefix=prefix,
            collected_at=COLLECTED_AT,
        )
        for day in days
    ]


def stored(market_db: MarketDatabase) -> dict[tuple[object, ...], Row]:
    with market_db.connect() as connection:
        rows = connection.execute(sa.select(cc_ohlcv_spot_1d_raw)).mappings()
        return {(row["datetime"], row["exchange"], row["symbol_unmapped"]): dict(row) for row in rows}


def keyed(rows: list[Row]) -> dict[tuple[object, ...], Row]:
    return {(row["datetime"], row["exchange"], row["symbol_unmapped"]): row for row in rows}


@contextmanager
def statements_sent(market_db: MarketDatabase) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    sa.event.listen(market_db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(market_db.engine, "before_cursor_execute", record)


def write(market_db: MarketDatabase, rows: list[Row]) -> list[str]:
    """Write the rows in one transaction; returns the statements sent."""
    with statements_sent(market_db) as sent, market_db.begin() as connection:
        write_candles(connection, rows)
    return sent


def loaded_from_files(statements: list[str]) -> bool:
    return any(statement.startswith("LOAD DATA LOCAL INFILE") for statement in statements)


def server_takes_local_files(market_db: MarketDatabase) -> bool:
    """MySQL/MariaDB with `local_infile` on (off, as MySQL 8's default, the pipeline writes by statements)."""
    if not is_mysql(market_db.engine):
        return False
    with market_db.connect() as connection:
        return bool(connection.exec_driver_sql("SELECT @@local_infile").scalar())


def used_the_guarded_path(statements: list[str]) -> bool:
    return any(STAGING_TABLE in statement for statement in statements)


def test_new_candles_go_straight_in_and_a_rewrite_takes_the_guarded_path(market_db: MarketDatabase) -> None:
    first = candles(1, range(0, 30)) + candles(2, range(0, 30))
    assert not used_the_guarded_path(write(market_db, first))
    assert stored(market_db) == keyed(first)

    revised = candles(1, range(0, 30), variety=7)
    assert used_the_guarded_path(write(market_db, revised))
    assert stored(market_db) == {**keyed(first), **keyed(revised)}


def test_a_batch_meeting_stored_candles_only_between_its_ends_is_still_exact(
    market_db: MarketDatabase,
) -> None:
    """The check before the straight insert reads each instrument's first and last day only: a
    batch that meets stored candles in between is inserted, conflicts, is undone and replaced."""
    middle = candles(1, range(10, 20))
    write(market_db, middle)
    around = candles(1, range(0, 30), variety=3) + candles(2, range(0, 30))
    statements = write(market_db, around)
    assert used_the_guarded_path(statements)
    assert any("SAVEPOINT" in statement.upper() for statement in statements)
    assert stored(market_db) == keyed(around)


def test_a_symbol_held_by_another_instrument_between_the_ends_stops_the_batch(
    market_db: MarketDatabase,
) -> None:
    holder = candles(1, range(10, 12), prefix="OLD")
    write(market_db, holder)
    # The newcomer now maps to the holder's symbol, for days around the holder's.
    newcomer = [{**row, "symbol": holder[0]["symbol"]} for row in candles(2, range(0, 30))]
    with pytest.raises(SymbolHeldByAnotherInstrument, match="stored under instrument OLD1USD"):
        write(market_db, newcomer)
    assert stored(market_db) == keyed(holder), "nothing of the refused batch is stored"


@pytest.mark.parametrize("bulk_path", [True, False], ids=["bulk", "statements"])
def test_insert_if_all_new_stores_everything_or_nothing(market_db: MarketDatabase, bulk_path: bool) -> None:
    existing = candles(1, range(5, 6))
    write(market_db, existing)
    options = {} if bulk_path else {BULK_LOAD_DIRECTORY_OPTION: None}
    with statements_sent(market_db) as sent, market_db.begin() as connection:
        connection = connection.execution_options(**options)
        assert not insert_if_all_new(connection, cc_ohlcv_spot_1d_raw, candles(1, range(0, 10), variety=9))
        assert insert_if_all_new(connection, cc_ohlcv_spot_1d_raw, candles(2, range(0, 10)))
    assert stored(market_db) == {**keyed(existing), **keyed(candles(2, range(0, 10)))}
    assert loaded_from_files(sent) == (bulk_path and server_takes_local_files(market_db))


def test_rows_keep_their_order_in_a_load_file_whatever_they_hold() -> None:
    """For REPLACE the later of two rows with one key wins, as in an upsert: rows with NULL or text
    to escape stay in place among the plain ones."""
    rows = [(1, "a"), (2, None), (3, "b"), (4, "tab\there"), (5, "c")]
    expected = "1\ta\n2\t\\N\n3\tb\n4\ttab\\there\n5\tc\n"
    assert dialect._tsv_text(rows, "%s\t%s\n") == expected
    assert dialect._tsv_text(rows[:2] + rows[4:], "%s\t%s\n") == "1\ta\n2\t\\N\n5\tc\n"


@pytest.mark.mysql
@pytest.mark.parametrize("position", ["first file", "last file"])
def test_a_value_the_table_cannot_hold_is_refused_in_any_file_of_a_bulk_load(
    market_db: MarketDatabase, position: str
) -> None:
    """LOAD DATA LOCAL keeps a value it cannot store as a warning, and each statement clears the
    warnings of the one before: every file's are checked."""
    if not server_takes_local_files(market_db):
        pytest.skip("the bulk load needs MySQL/MariaDB with local_infile on")
    rows = candles(1, range(0, dialect.MYSQL_ROWS_IN_FIRST_FILE + dialect.MYSQL_ROWS_PER_FILE + 10))
    bad = 0 if position == "first file" else -1
    rows[bad] = {**rows[bad], "open": "not a number"}
    with statements_sent(market_db) as sent, pytest.raises(ValueError, match="columns cannot store"):
        write(market_db, rows)
    assert loaded_from_files(sent)
    assert stored(market_db) == {}
