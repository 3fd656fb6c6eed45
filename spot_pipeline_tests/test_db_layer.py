"""The database layer on both dialects: upserts, literals, locks, time zones, URLs."""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.db import schema
from spot_pipeline.db.dialect import mysql_literal, replace_rows, upsert_rows
from spot_pipeline.db.engine import (
    BULK_LOAD_DIRECTORY_OPTION,
    DatabaseConfigError,
    parse_market_url,
    safe_url,
)
from spot_pipeline.db.locks import TableLockTimeout
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline_tests.conftest import mysql_url

NOW = dt.datetime(2026, 1, 2, 3, 4, 5)
AWKWARD_TEXT = ['O\'Brien "quoted"', "back\\slash\\", "emoji 🚀 ünïcode", "nul\x00byte", "100% _like_", ""]


def exchange_row(internal_name: str, **values: object) -> dict[str, object]:
    return {
        "exchange_api_id": "1",
        "name": internal_name,
        "internal_name": internal_name,
        "item_types": ["Cex", "Spot"],
        "grade": "A",
        "grade_points": 71.5,
        "has_trades": True,
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }


def stored_exchanges(market_db: MarketDatabase) -> dict[str, sa.Row]:
    table = schema.cc_exchanges_general
    with market_db.connect() as connection:
        return {row.internal_name: row for row in connection.execute(sa.select(table))}


def test_upsert_inserts_then_updates_and_keeps_created_at(market_db: MarketDatabase) -> None:
    table = schema.cc_exchanges_general
    with market_db.begin() as connection:
        upsert_rows(connection, table, [exchange_row("Kraken"), exchange_row("Bitstamp")], ["internal_name"])
    later = NOW + dt.timedelta(days=1)
    with market_db.begin() as connection:
        upsert_rows(
            connection,
            table,
            [exchange_row("Kraken", grade="AA", created_at=later, updated_at=later)],
            ["internal_name"],
            keep_on_update=["created_at"],
        )
    rows = stored_exchanges(market_db)
    assert len(rows) == 2
    assert (rows["Kraken"].grade, rows["Kraken"].created_at, rows["Kraken"].updated_at) == ("AA", NOW, later)
    assert rows["Kraken"].item_types == ["Cex", "Spot"] and rows["Kraken"].has_trades is True


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_any_text_round_trips_unchanged(market_db: MarketDatabase, text: str) -> None:
    with market_db.begin() as connection:
        if connection.dialect.name != "sqlite":
            connection.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
        upsert_rows(
            connection, schema.cc_exchanges_general, [exchange_row("X", description=text)], ["internal_name"]
        )
    assert stored_exchanges(market_db)["X"].description == text


def test_numbers_and_times_round_trip_exactly(market_db: MarketDatabase) -> None:
    values = {"grade_points": 0.1 + 0.2, "rating_avg": 1e-300, "total_volume_24h_usd": 1.7976931348623157e308}
    with market_db.begin() as connection:
        upsert_rows(
            connection,
            schema.cc_exchanges_general,
            [exchange_row("X", rating_total_users=2**31 - 1, **values)],
            ["internal_name"],
        )
    row = stored_exchanges(market_db)["X"]
    assert {name: getattr(row, name) for name in values} == values
    assert row.rating_total_users == 2**31 - 1 and row.created_at == NOW


def test_literals_reject_what_a_double_cannot_hold() -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        mysql_literal(math.nan)
    with pytest.raises(TypeError, match="bytes value"):
        mysql_literal(b"raw")
    assert mysql_literal("a'b") == "_utf8mb4 X'612762'"


def test_write_lock_excludes_a_second_holder_until_released(market_db: MarketDatabase) -> None:
    table = schema.cc_ohlcv_spot_1d_raw
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with market_db.write_lock(table):
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    busy = pytest.raises(TableLockTimeout, match="another ingestion, migration or deduplication")
    with busy, market_db.write_lock(table, wait_seconds=0.3):
        pass
    release.set()
    holder.join()
    started = time.monotonic()
    with market_db.write_lock(table, wait_seconds=5):
        assert time.monotonic() - started < 2


def test_sessions_run_in_utc(market_db: MarketDatabase) -> None:
    with market_db.connect() as connection:
        if connection.dialect.name == "sqlite":
            pytest.skip("SQLite has no session time zone")
        assert connection.exec_driver_sql("SELECT @@session.time_zone").scalar() == "+00:00"


def test_urls_are_shown_without_passwords() -> None:
    assert safe_url("mysql+mysqlconnector://pipeline:pa55@db:3306/market") == (
        "mysql+mysqlconnector://pipeline:***@db:3306/market"
    )
    with pytest.raises(DatabaseConfigError) as error:
        parse_market_url("oracle://pipeline:pa55@db/market")
    assert "pa55" not in str(error.value)


def test_a_url_from_the_environment_works_outside_a_dagster_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    market_db = MarketDatabase(url=dg.EnvVar("SPOT_PIPELINE_TEST_DB_URL"))
    with pytest.raises(DatabaseConfigError, match="SPOT_PIPELINE_TEST_DB_URL is not set"):
        _ = market_db.engine
    monkeypatch.setenv("SPOT_PIPELINE_TEST_DB_URL", f"sqlite:///{tmp_path / 'market.sqlite'}")
    with market_db.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(schema.spot_universe)).scalar_one() == 0
        )
    market_db.dispose()


def candle(symbol_unmapped: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys((column.name for column in schema.cc_ohlcv_spot_1d_raw.c), None)
    row.update(
        datetime=dt.datetime(2024, 3, 9),
        exchange="kraken",
        symbol_unmapped=symbol_unmapped,
        symbol=f"{symbol_unmapped}-USD",
        collected_at=dt.datetime(2024, 3, 10, 1, 2, 3),
    )
    row.update(values)
    return row


def stored_candles(connection: sa.Connection) -> dict[object, dict[str, object]]:
    rows = connection.execute(sa.select(schema.cc_ohlcv_spot_1d_raw))
    return {row.symbol_unmapped: dict(row._mapping) for row in rows}


@pytest.mark.parametrize("bulk_path", [True, False], ids=["bulk", "upsert"])
def test_replace_rows_stores_every_value_exactly_by_either_path(
    market_db: MarketDatabase, bulk_path: bool
) -> None:
    """The bulk path (LOAD DATA on MariaDB) and the upsert fallback store the same values: NULLs,
    text with tabs, line breaks, backslashes and non-ASCII, extreme doubles; a second write replaces."""
    awkward = candle(
        "X\tY\\Z",
        symbol="A\nB\r\\N",
        base="Ünïcode €",
        transform_function="",
        open=1e-12,
        close=123456789.123456789,
        total_trades=2**62,
        first_trade_timestamp=dt.datetime(2024, 3, 9, 23, 59, 59),
    )
    plain = candle("XXBTZUSD", open=1.5, high=2.5, low=0.5, close=2.0, volume=0.0)
    options = {} if bulk_path else {BULK_LOAD_DIRECTORY_OPTION: None}
    with market_db.begin() as connection:
        connection = connection.execution_options(**options)
        replace_rows(connection, schema.cc_ohlcv_spot_1d_raw, [awkward, plain], schema.NATURAL_KEY)
        replace_rows(connection, schema.cc_ohlcv_spot_1d_raw, [{**plain, "close": 3.0}], schema.NATURAL_KEY)
        stored = stored_candles(connection)
    assert stored == {"XXBTZUSD": {**plain, "close": 3.0}, "X\tY\\Z": awkward}


STEPS_AT_ONCE = 12


def create_the_tables(url: str, schema_name: str, barrier: Any) -> None:
    barrier.wait(timeout=30)
    _ = MarketDatabase(url=url, schema_name=schema_name).engine


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def test_processes_meeting_a_fresh_database_all_create_its_tables(tmp_path: Path, dialect: str) -> None:
    """The first run's steps start in parallel processes on an empty database: none may fail
    with 'table already exists', on either dialect."""
    if dialect == "sqlite":
        url, schema_name = f"sqlite:///{tmp_path / 'fresh.sqlite'}", "market"
    else:
        url, schema_name = mysql_url(), f"market_fresh_{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(STEPS_AT_ONCE)
    arguments = (url, schema_name, barrier)
    processes = [context.Process(target=create_the_tables, args=arguments) for _ in range(STEPS_AT_ONCE)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0] * STEPS_AT_ONCE
        with MarketDatabase(url=url, schema_name=schema_name).connect() as connection:
            tables = set(sa.inspect(connection).get_table_names(schema=schema_name))
        assert {table.name for table in schema.metadata.sorted_tables} <= tables
    finally:
        if dialect == "mysql":
            engine = sa.create_engine(url)
            with engine.begin() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{schema_name}`")
            engine.dispose()


def test_an_unreachable_database_is_named_by_its_masked_url_and_its_variable() -> None:
    database = MarketDatabase(url="mysql+mysqlconnector://spot:s3cret-pw@127.0.0.1:1/market")
    with pytest.raises(DatabaseConfigError) as failure:
        database.engine  # noqa: B018 (the engine connects on first use)
    message = str(failure.value)
    assert "mysql+mysqlconnector://spot:***@127.0.0.1:1/market" in message and "MARKET_DB_URL" in message
    assert "s3cret-pw" not in message and "2003" in message
