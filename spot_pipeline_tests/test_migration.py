"""The timestamp migration job, on SQLite and MariaDB: conversion, verification, atomic swap, re-runs."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import MAX_EPOCH_SECONDS
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import upsert_rows
from spot_pipeline.db.locks import TableLockTimeout
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.maintenance.timestamp_migration import (
    chunks,
    copying,
    definitions,
    epochs,
    layout,
    preflight,
    swap,
)
from spot_pipeline.maintenance.timestamp_migration.ops import MigrationConfig
from spot_pipeline.maintenance.timestamp_migration.schedules import (
    migrate_ohlcv_timestamps_job,
    migrate_ohlcv_timestamps_schedule,
)
from spot_pipeline.timeutils import utc_now
from spot_pipeline_dev.legacy_tables import LEGACY_KEY, insert_rows, legacy_row, replace_with_legacy_table
from spot_pipeline_tests.pipeline import output_metadata, step_error, steps

ORIGIN = dt.datetime(1970, 1, 1)
DAY = dt.datetime(2024, 3, 9)
# Instants around New York's 2024 DST changes: the spring-forward gap and the repeated autumn hour.
DST_EPOCHS = (1_710_054_000, 1_730_611_800, 1_730_615_400)
EDGE_EPOCHS = (1, 2_147_483_647, 2_147_483_648, MAX_EPOCH_SECONDS, *DST_EPOCHS)
SMALL_CHUNKS = {"chunk_rows": 3}


def legacy_rows(*, primary_key: bool) -> list[dict[str, Any]]:
    """Candles over several days and pairs, NULL and edge epochs, and (without a key) duplicates."""
    rows = [
        legacy_row(DAY + dt.timedelta(days=day), exchange, symbol)
        for day in range(4)
        for exchange, symbol in (("kraken", "BTC-USD"), ("kraken", "ETH-USD"), ("coinbase", "BTC-USD"))
    ]
    rows.append(legacy_row(DAY, "binance", "BTC-USDT", **dict.fromkeys(schema.TRADE_TIMESTAMP_COLUMNS)))
    rows.append(legacy_row(DAY, "binance", "ETH-USDT", first_trade_timestamp=None, low_trade_timestamp=1))
    rows += [
        legacy_row(DAY + dt.timedelta(days=10 + index), "edge", "BTC-USD", high_trade_timestamp=epoch)
        for index, epoch in enumerate(EDGE_EPOCHS)
    ]
    if not primary_key:
        rows += [rows[0], rows[0], {**rows[1], "close": 1.5}]
    return rows


@pytest.fixture(params=[True, False], ids=["primary_key", "no_primary_key"])
def legacy_db(request: pytest.FixtureRequest, market_db: MarketDatabase) -> MarketDatabase:
    """`market_db` whose cc_ohlcv_spot_1d_raw is the legacy BIGINT table, with and without a key."""
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=request.param)
        insert_rows(connection, table, legacy_rows(primary_key=request.param))
    return market_db


def run_migration(market_db: MarketDatabase, **config: Any) -> dg.ExecuteInProcessResult:
    return migrate_ohlcv_timestamps_job.execute_in_process(
        run_config=dg.RunConfig(ops={"inspect_ohlcv_table": MigrationConfig(**config)}),
        resources={"market_db": market_db},
        raise_on_error=False,
    )


def reflect(connection: sa.Connection, market_db: MarketDatabase, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), schema=market_db.schema_name, autoload_with=connection)


def table_names(market_db: MarketDatabase) -> set[str]:
    with market_db.connect() as connection:
        return set(sa.inspect(connection).get_table_names(schema=market_db.schema_name))


def backup_tables(market_db: MarketDatabase) -> list[str]:
    return sorted(name for name in table_names(market_db) if name.startswith(layout.BACKUP_TABLE_PREFIX))


def rows_of(market_db: MarketDatabase, name: str = layout.ORIGINAL_TABLE) -> Counter[tuple[Any, ...]]:
    """Every row (duplicates counted), in the column order of the project's table."""
    with market_db.connect() as connection:
        table = reflect(connection, market_db, name)
        columns = [table.c[column.name] for column in schema.cc_ohlcv_spot_1d_raw.columns]
        return Counter(tuple(row) for row in connection.execute(sa.select(*columns)))


def converted(rows: Counter[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    """What the legacy rows must become: each epoch as 1970-01-01 + that many seconds, the rest unchanged."""
    positions = [
        index
        for index, column in enumerate(schema.cc_ohlcv_spot_1d_raw.columns)
        if column.name in schema.TRADE_TIMESTAMP_COLUMNS
    ]

    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for index in positions:
            if values[index] is not None:
                values[index] = ORIGIN + dt.timedelta(seconds=values[index])
        return tuple(values)

    return Counter({convert(row): count for row, count in rows.items()})


def definition(market_db: MarketDatabase, name: str) -> list[Any]:
    """The table's definition as the database reports it, with the trade timestamps' types blanked."""
    with market_db.connect() as connection:
        if on_mysql(market_db):
            ddl = connection.exec_driver_sql(f"SHOW CREATE TABLE `{market_db.schema_name}`.`{name}`").one()[1]
            lines = ddl.replace(f"`{name}`", "`<table>`").splitlines()
            pattern = re.compile(r"^(  `(?:first|last|high|low)_trade_timestamp` )(bigint\(20\)|datetime)")
            return [pattern.sub(r"\1<type>", line) for line in lines]
        info = connection.exec_driver_sql(f'PRAGMA "{market_db.schema_name}".table_info("{name}")').all()
        return [
            (
                cid,
                column,
                "<type>" if column in schema.TRADE_TIMESTAMP_COLUMNS else kind,
                notnull,
                default,
                pk,
            )
            for cid, column, kind, notnull, default, pk in info
        ]


def on_mysql(market_db: MarketDatabase) -> bool:
    return market_db.engine.dialect.name in ("mysql", "mariadb")


def live_layout(market_db: MarketDatabase) -> layout.TimestampLayout:
    with market_db.connect() as connection:
        return layout.timestamp_layout(connection, market_db.schema_name)


def values_by_symbol(market_db: MarketDatabase, column: str) -> dict[str, Any]:
    with market_db.connect() as connection:
        table = reflect(connection, market_db, layout.ORIGINAL_TABLE)
        return dict(connection.execute(sa.select(table.c.symbol, table.c[column])).all())


def trade_timestamp_types(market_db: MarketDatabase) -> set[str]:
    with market_db.connect() as connection:
        table = reflect(connection, market_db, layout.ORIGINAL_TABLE)
        return {str(table.c[name].type) for name in schema.TRADE_TIMESTAMP_COLUMNS}


# --- The migration itself -------------------------------------------------------------------------


def test_migration_converts_every_value_keeps_the_rest_and_a_backup(legacy_db: MarketDatabase) -> None:
    original_rows = rows_of(legacy_db)
    original_definition = definition(legacy_db, layout.ORIGINAL_TABLE)

    result = run_migration(legacy_db, **SMALL_CHUNKS)

    assert result.success
    backup = f"{layout.BACKUP_TABLE_PREFIX}{utc_now():%Y%m%d}"
    assert backup_tables(legacy_db) == [backup]
    assert rows_of(legacy_db, backup) == original_rows
    assert rows_of(legacy_db) == converted(original_rows)
    assert trade_timestamp_types(legacy_db) == {"DATETIME"}
    assert definition(legacy_db, layout.ORIGINAL_TABLE) == original_definition
    assert definition(legacy_db, backup) == original_definition
    assert layout.MIGRATING_TABLE not in table_names(legacy_db)
    rows = sum(original_rows.values())
    assert output_metadata(result, "copy_verify_and_swap")["dagster/row_count"] == rows
    assert output_metadata(result, "copy_verify_and_swap")["backup_table"] == backup


def test_second_run_is_a_no_op(legacy_db: MarketDatabase) -> None:
    assert run_migration(legacy_db).success
    migrated, backups = rows_of(legacy_db), backup_tables(legacy_db)

    result = run_migration(legacy_db)

    assert result.success
    assert steps(result, "STEP_SUCCESS") == {"inspect_ohlcv_table"}
    assert steps(result, "STEP_SKIPPED") == {
        "create_migrating_table",
        "copy_verify_and_swap",
        "clean_up_migration",
    }
    assert rows_of(legacy_db) == migrated
    assert backup_tables(legacy_db) == backups


def test_table_created_in_datetime_form_is_left_alone(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        connection.execute(
            schema.cc_ohlcv_spot_1d_raw.insert(),
            [legacy_row(DAY, **dict.fromkeys(schema.TRADE_TIMESTAMP_COLUMNS, DAY))],
        )
    before = rows_of(market_db)

    result = run_migration(market_db)

    assert result.success
    assert steps(result, "STEP_SUCCESS") == {"inspect_ohlcv_table"}
    assert rows_of(market_db) == before
    assert backup_tables(market_db) == []


def test_keep_backup_false_drops_the_backup_after_the_swap(legacy_db: MarketDatabase) -> None:
    original_rows = rows_of(legacy_db)

    assert run_migration(legacy_db, keep_backup=False).success

    assert backup_tables(legacy_db) == []
    assert rows_of(legacy_db) == converted(original_rows)


def test_a_taken_backup_name_gets_a_suffix(market_db: MarketDatabase) -> None:
    for _ in range(2):
        with market_db.begin() as connection:
            table = replace_with_legacy_table(connection, primary_key=True)
            insert_rows(connection, table, [legacy_row(DAY)])
        assert run_migration(market_db).success
    stamp = f"{layout.BACKUP_TABLE_PREFIX}{utc_now():%Y%m%d}"
    assert backup_tables(market_db) == [stamp, f"{stamp}_2"]


def test_empty_legacy_table_is_migrated(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        replace_with_legacy_table(connection, primary_key=False)

    assert run_migration(market_db).success

    assert trade_timestamp_types(market_db) == {"DATETIME"}
    assert rows_of(market_db) == Counter()


# --- Time zones -----------------------------------------------------------------------------------


@contextmanager
def process_time_zone(posix_zone: str) -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = posix_zone
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


@contextmanager
def mysql_time_zones(market_db: MarketDatabase, zone: str) -> Iterator[None]:
    """The server's global zone and every new session's set to `zone` (the engine pins UTC, and a
    connect listener overrides it), restored afterwards.
    """
    engine = market_db.engine

    def set_session_zone(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET time_zone = %s", (zone,))
        cursor.close()

    with engine.begin() as connection:
        previous_global = connection.exec_driver_sql("SELECT @@GLOBAL.time_zone").scalar_one()
        connection.exec_driver_sql("SET GLOBAL time_zone = %s", (zone,))
    sa.event.listen(engine.pool, "connect", set_session_zone)
    engine.pool.dispose()  # connections opened from now on get the session zone
    try:
        yield
    finally:
        sa.event.remove(engine.pool, "connect", set_session_zone)
        engine.pool.dispose()
        with engine.begin() as connection:
            connection.exec_driver_sql("SET GLOBAL time_zone = %s", (previous_global,))


def _named_zones_loaded(market_db: MarketDatabase) -> bool:
    with market_db.connect() as connection:
        probe = "SELECT CONVERT_TZ('2024-01-01 00:00:00', 'UTC', 'America/New_York')"
        return connection.exec_driver_sql(probe).scalar() is not None


@pytest.mark.parametrize(
    ("zone", "posix_zone"), [("America/New_York", "America/New_York"), ("+05:30", "Asia/Kolkata")]
)
def test_conversion_is_utc_whatever_the_server_session_and_process_zones(
    legacy_db: MarketDatabase, zone: str, posix_zone: str
) -> None:
    if zone.startswith("America") and on_mysql(legacy_db) and not _named_zones_loaded(legacy_db):
        pytest.skip("MariaDB has no time zone tables: load them with mysql_tzinfo_to_sql /usr/share/zoneinfo")
    original_rows = rows_of(legacy_db)

    server_zones = mysql_time_zones(legacy_db, zone) if on_mysql(legacy_db) else nullcontext()
    with process_time_zone(posix_zone), server_zones:
        assert time.localtime(DST_EPOCHS[1]).tm_gmtoff != 0
        if on_mysql(legacy_db):
            with legacy_db.connect() as connection:
                assert connection.exec_driver_sql("SELECT @@session.time_zone").scalar_one() == zone
                local = connection.exec_driver_sql(f"SELECT FROM_UNIXTIME({DST_EPOCHS[1]})").scalar_one()
                assert local != ORIGIN + dt.timedelta(seconds=DST_EPOCHS[1])  # the zone is really in effect
        result = run_migration(legacy_db, **SMALL_CHUNKS)

    assert result.success
    assert rows_of(legacy_db) == converted(original_rows)


# --- Invalid epochs and unexpected shapes ---------------------------------------------------------

INVALID = {"zero": 0, "negative": -86_400, "milliseconds": 1_710_054_000_123, "out of range": 99_999_999_999}


@pytest.fixture
def invalid_epochs_db(market_db: MarketDatabase) -> MarketDatabase:
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=True)
        rows = [legacy_row(DAY, symbol="BTC-USD")]
        rows += [
            legacy_row(DAY, symbol=f"X{index}-USD", last_trade_timestamp=value)
            for index, value in enumerate(INVALID.values())
        ]
        insert_rows(connection, table, rows)
    return market_db


def test_invalid_epochs_stop_the_job_before_anything_is_touched(invalid_epochs_db: MarketDatabase) -> None:
    before, tables = rows_of(invalid_epochs_db), table_names(invalid_epochs_db)

    result = run_migration(invalid_epochs_db)

    assert not result.success
    error = step_error(result)
    assert "4 trade timestamps are not seconds since 1970" in error
    assert "last_trade_timestamp: 1 zero, 1 negative, 1 milliseconds, 1 out of range" in error
    assert "The 1 zeros are what the old loader wrote for a day without trades" in error
    assert "set invalid_epochs to 'null'" in error
    assert "X0-USD last_trade_timestamp=0" in error
    assert rows_of(invalid_epochs_db) == before
    assert table_names(invalid_epochs_db) == tables


def test_null_policy_stores_null_for_invalid_epochs(invalid_epochs_db: MarketDatabase) -> None:
    before = rows_of(invalid_epochs_db)

    assert run_migration(invalid_epochs_db, invalid_epochs="null").success

    valid = ORIGIN + dt.timedelta(seconds=legacy_row(DAY)["last_trade_timestamp"])
    assert values_by_symbol(invalid_epochs_db, "last_trade_timestamp") == {"BTC-USD": valid} | {
        f"X{index}-USD": None for index in range(len(INVALID))
    }
    assert rows_of(invalid_epochs_db, backup_tables(invalid_epochs_db)[0]) == before


def test_milliseconds_policy_converts_milliseconds_and_stops_on_the_rest(
    invalid_epochs_db: MarketDatabase,
) -> None:
    result = run_migration(invalid_epochs_db, invalid_epochs="milliseconds")
    assert not result.success
    assert "3 trade timestamps" in step_error(result)

    with invalid_epochs_db.begin() as connection:
        table = reflect(connection, invalid_epochs_db, layout.ORIGINAL_TABLE)
        connection.execute(sa.delete(table).where(table.c.symbol.in_(["X0-USD", "X1-USD", "X3-USD"])))
    assert run_migration(invalid_epochs_db, invalid_epochs="milliseconds").success

    converted_milliseconds = ORIGIN + dt.timedelta(seconds=INVALID["milliseconds"] // 1000)
    assert values_by_symbol(invalid_epochs_db, "last_trade_timestamp")["X2-USD"] == converted_milliseconds


def test_lossy_policies_require_the_backup() -> None:
    with pytest.raises(ValueError, match="keep keep_backup true"):
        MigrationConfig(invalid_epochs="null", keep_backup=False)


def test_dry_run_reports_and_writes_nothing(invalid_epochs_db: MarketDatabase) -> None:
    before, tables = rows_of(invalid_epochs_db), table_names(invalid_epochs_db)

    result = run_migration(invalid_epochs_db, dry_run=True, invalid_epochs="null")

    assert result.success
    assert steps(result, "STEP_SUCCESS") == {"inspect_ohlcv_table"}
    report = output_metadata(result, "inspect_ohlcv_table")
    assert report["dagster/row_count"] == 5
    assert report["dry_run_outcome"].startswith("would copy and convert 5 rows")
    assert rows_of(invalid_epochs_db) == before
    assert table_names(invalid_epochs_db) == tables


@pytest.mark.parametrize(
    ("alterations", "message"),
    [
        (
            ["DROP COLUMN low_trade_timestamp", "ADD COLUMN low_trade_timestamp DATETIME"],
            "mixes trade timestamp types",
        ),
        (["ADD COLUMN note VARCHAR(20)"], "unexpected columns ['note']"),
        (["DROP COLUMN quote_volume_unknown"], "missing columns ['quote_volume_unknown']"),
    ],
    ids=["mixed_types", "extra_column", "missing_column"],
)
def test_unexpected_shape_fails_before_anything_is_touched(
    market_db: MarketDatabase, alterations: list[str], message: str
) -> None:
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=True)
        insert_rows(connection, table, [legacy_row(DAY)])
        for alteration in alterations:
            connection.exec_driver_sql(f"ALTER TABLE {market_db.schema_name}.{table.name} {alteration}")
    before, tables = rows_of_raw(market_db), table_names(market_db)

    result = run_migration(market_db)

    assert not result.success
    assert message in step_error(result)
    assert rows_of_raw(market_db) == before
    assert table_names(market_db) == tables


def rows_of_raw(market_db: MarketDatabase) -> list[tuple[Any, ...]]:
    with market_db.connect() as connection:
        return list(connection.execute(sa.select(reflect(connection, market_db, layout.ORIGINAL_TABLE))))


# --- Crashes and re-runs --------------------------------------------------------------------------


class InjectedCrash(RuntimeError):
    pass


def crash(*_args: Any, **_kwargs: Any) -> None:
    raise InjectedCrash("injected crash")


def crash_on_second_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    copy_statement = copying._copy_statement
    calls = iter(range(1_000))

    def copy_then_crash(*args: Any) -> sa.Insert:
        if next(calls) == 1:
            crash()
        return copy_statement(*args)

    monkeypatch.setattr(copying, "_copy_statement", copy_then_crash)


CRASH_POINTS = {
    "inspect": lambda monkeypatch: monkeypatch.setattr(preflight, "survey_epochs", crash),
    "create": lambda monkeypatch: monkeypatch.setattr(layout, "_check_same_definition", crash),
    "copy": crash_on_second_chunk,
    "verify": lambda monkeypatch: monkeypatch.setattr(copying, "_verify", crash),
    "swap": lambda monkeypatch: monkeypatch.setattr(swap, "swap_tables", crash),
}


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_crash_at_any_step_keeps_the_original_and_a_rerun_converges(
    legacy_db: MarketDatabase, crash_point: str
) -> None:
    original_rows = rows_of(legacy_db)
    with pytest.MonkeyPatch.context() as monkeypatch:
        CRASH_POINTS[crash_point](monkeypatch)
        result = run_migration(legacy_db, **SMALL_CHUNKS)

    assert not result.success
    assert "injected crash" in step_error(result)
    assert rows_of(legacy_db) == original_rows  # intact and queryable
    assert live_layout(legacy_db) is layout.TimestampLayout.BIGINT
    assert backup_tables(legacy_db) == []

    assert run_migration(legacy_db, **SMALL_CHUNKS).success
    assert rows_of(legacy_db) == converted(original_rows)
    assert layout.MIGRATING_TABLE not in table_names(legacy_db)


def test_a_failed_chunk_stops_the_chunks_not_yet_started(
    legacy_db: MarketDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_statement = copying._copy_statement
    started: list[chunks.Chunk] = []

    def crash_on_first_chunk(*args: Any) -> sa.Insert:
        started.append(args[1])
        if len(started) == 1:
            crash()
        return copy_statement(*args)

    monkeypatch.setattr(copying, "_copy_statement", crash_on_first_chunk)
    result = run_migration(legacy_db, chunk_rows=1, parallel_chunks=2)

    assert not result.success
    assert "injected crash" in step_error(result)
    planned_chunks = sum(rows_of(legacy_db).values())  # chunk_rows=1
    # At most the chunks running, or picked up, before the failure was seen.
    assert len(started) <= 6 < planned_chunks


def test_chunks_are_ranges_of_an_index_or_one_pass_over_the_table() -> None:
    assert chunks.chunk_count(1_000_000, None, datetime_indexed=True) == 20
    assert chunks.chunk_count(1_000_000, 100_000, datetime_indexed=True) == 10
    # Without an index every chunk reads the whole table: one chunk unless the config asks otherwise.
    assert chunks.chunk_count(1_000_000, None, datetime_indexed=False) == 1
    assert chunks.chunk_count(1_000_000, 100_000, datetime_indexed=False) == 10
    assert chunks.chunk_count(0, None, datetime_indexed=True) == 1


def test_inspection_reports_whether_chunks_read_only_their_range(legacy_db: MarketDatabase) -> None:
    inspection = preflight.inspect_original(legacy_db.engine, legacy_db.schema_name)
    assert inspection.datetime_indexed is bool(inspection.primary_key)


def test_crash_while_dropping_the_backup_leaves_a_migrated_table_and_the_backup(
    legacy_db: MarketDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_rows = rows_of(legacy_db)
    monkeypatch.setattr(swap, "drop_backup", crash)

    assert not run_migration(legacy_db, keep_backup=False).success
    monkeypatch.undo()

    assert rows_of(legacy_db) == converted(original_rows)
    assert [rows_of(legacy_db, name) for name in backup_tables(legacy_db)] == [original_rows]
    assert run_migration(legacy_db).success


def test_leftover_migrating_table_is_rebuilt_not_trusted(legacy_db: MarketDatabase) -> None:
    original_rows = rows_of(legacy_db)
    with legacy_db.begin() as connection:
        layout.create_migrating_table(connection, legacy_db.schema_name)
        migrating = reflect(connection, legacy_db, layout.MIGRATING_TABLE)
        bogus = legacy_row(DAY, "bogus", **dict.fromkeys(schema.TRADE_TIMESTAMP_COLUMNS, DAY))
        connection.execute(migrating.insert(), [bogus])

    result = run_migration(legacy_db)

    assert result.success
    assert output_metadata(result, "inspect_ohlcv_table")["leftover_migrating_table"] is True
    assert output_metadata(result, "create_migrating_table")["rebuilt_leftover"] is True
    assert rows_of(legacy_db) == converted(original_rows)


def copy_into_migrating_table(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        layout.create_migrating_table(connection, market_db.schema_name)
    rows = sum(rows_of(market_db).values())
    copying.copy_and_verify(market_db.engine, market_db.schema_name, "stop", chunk_rows=3, rows=rows)


def test_epochs_invalid_by_the_time_of_the_copy_stop_it_and_leave_their_chunk_uncopied(
    legacy_db: MarketDatabase,
) -> None:
    late_day = DAY + dt.timedelta(days=3)
    with legacy_db.begin() as connection:
        layout.create_migrating_table(connection, legacy_db.schema_name)
        # Written after the inspection: a millisecond epoch the default policy does not handle.
        original = reflect(connection, legacy_db, layout.ORIGINAL_TABLE)
        in_milliseconds = legacy_row(late_day, "bitstamp", "BTC-USD", first_trade_timestamp=1_709_942_400_000)
        insert_rows(connection, original, [in_milliseconds])
    original_rows = rows_of(legacy_db)

    with pytest.raises(epochs.InvalidEpochsFound, match="1 trade timestamps are not seconds"):
        copying.copy_and_verify(
            legacy_db.engine, legacy_db.schema_name, "stop", chunk_rows=1, rows=20, connections=2
        )

    assert rows_of(legacy_db) == original_rows
    copied = rows_of(legacy_db, layout.MIGRATING_TABLE)
    assert not [row for row in copied if row[1] == "bitstamp"]  # its chunk was rolled back


def test_a_failed_swap_changes_nothing(legacy_db: MarketDatabase) -> None:
    original_rows = rows_of(legacy_db)
    copy_into_migrating_table(legacy_db)
    with legacy_db.begin() as connection:
        reflect(connection, legacy_db, layout.MIGRATING_TABLE).drop(connection)

    # The second rename has no table to rename: on both dialects the first one must not stay done.
    with pytest.raises(sa.exc.DBAPIError), legacy_db.begin() as connection:
        swap.swap_tables(connection, legacy_db.schema_name, "cc_ohlcv_spot_1d_raw_bigint_backup_x")

    assert rows_of(legacy_db) == original_rows
    assert backup_tables(legacy_db) == []


def test_verification_catches_a_wrong_copy(legacy_db: MarketDatabase) -> None:
    copy_into_migrating_table(legacy_db)
    with legacy_db.begin() as connection:
        migrating = reflect(connection, legacy_db, layout.MIGRATING_TABLE)
        earliest = connection.execute(sa.select(sa.func.min(migrating.c.first_trade_timestamp))).scalar_one()
        connection.execute(
            sa.update(migrating)
            .where(migrating.c.first_trade_timestamp == earliest)
            .values(first_trade_timestamp=earliest + dt.timedelta(hours=5))
        )

    with legacy_db.connect() as connection:
        verification = copying.verify_chunk(connection, legacy_db.schema_name, chunks.Chunk(), "stop")

    assert not verification.matches
    assert verification.rows_original == verification.rows_migrated
    assert verification.differences


# --- Concurrent writers ---------------------------------------------------------------------------


def writer_row(index: int) -> dict[str, Any]:
    """A candle as ingestion would write it; trade timestamps NULL so it fits either layout."""
    return legacy_row(
        DAY + dt.timedelta(days=100 + index),
        "writer",
        "BTC-USD",
        **dict.fromkeys(schema.TRADE_TIMESTAMP_COLUMNS),
    )


def write_under_lock(market_db: MarketDatabase, rows: list[dict[str, Any]]) -> None:
    with market_db.write_lock(schema.cc_ohlcv_spot_1d_raw), market_db.begin() as connection:
        upsert_rows(connection, schema.cc_ohlcv_spot_1d_raw, rows, LEGACY_KEY)


@pytest.fixture
def keyed_legacy_db(market_db: MarketDatabase) -> MarketDatabase:
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=True)
        insert_rows(connection, table, legacy_rows(primary_key=True))
    return market_db


def lock_is_free(market_db: MarketDatabase) -> bool:
    try:
        with market_db.write_lock(schema.cc_ohlcv_spot_1d_raw, wait_seconds=0.2):
            return True
    except TableLockTimeout:
        return False


@pytest.fixture
def lock_probe(keyed_legacy_db: MarketDatabase) -> Iterator[Callable[[], bool]]:
    """Tries the write lock from another thread, as a concurrent writer would; always the same thread,
    since on SQLite each thread has a connection of its own.
    """
    with ThreadPoolExecutor(max_workers=1) as writer_thread:
        yield lambda: writer_thread.submit(lock_is_free, keyed_legacy_db).result()


def test_writers_are_locked_out_from_the_first_copied_chunk_to_the_swap(
    keyed_legacy_db: MarketDatabase, lock_probe: Callable[[], bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_free_at: list[bool] = []
    copy_and_verify = copying.copy_and_verify

    def copy_and_verify_probing(*args: Any, on_chunk: Any, **kwargs: Any) -> copying.CopyReport:
        def probe_after_chunk(*progress: int) -> None:
            lock_free_at.append(lock_probe())
            on_chunk(*progress)

        report = copy_and_verify(*args, on_chunk=probe_after_chunk, **kwargs)
        lock_free_at.append(lock_probe())  # right before the swap
        return report

    monkeypatch.setattr(copying, "copy_and_verify", copy_and_verify_probing)

    assert run_migration(keyed_legacy_db, **SMALL_CHUNKS).success

    assert len(lock_free_at) > 2
    assert not any(lock_free_at)
    assert lock_probe()


def test_concurrent_writer_loses_no_row(keyed_legacy_db: MarketDatabase) -> None:
    written: dict[tuple[Any, ...], float] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        index = 0
        try:
            while not stop.is_set() or index < 5:
                row = {**writer_row(index % 7), "close": float(index)}  # new rows, then updates of them
                write_under_lock(keyed_legacy_db, [row])
                written[tuple(row[key] for key in LEGACY_KEY)] = row["close"]
                index += 1
                time.sleep(0.02)  # let the job's steps take the lock between writes
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        result = run_migration(keyed_legacy_db, chunk_rows=2)
    finally:
        stop.set()
        writer.join(timeout=60)

    assert not errors
    assert result.success
    with keyed_legacy_db.connect() as connection:
        table = reflect(connection, keyed_legacy_db, layout.ORIGINAL_TABLE)
        stored = {
            (row.datetime, row.exchange, row.symbol): float(row.close)
            for row in connection.execute(sa.select(table).where(table.c.exchange == "writer"))
        }
    assert stored == written
    assert trade_timestamp_types(keyed_legacy_db) == {"DATETIME"}


# --- Definitions ----------------------------------------------------------------------------------


def test_job_and_schedule_load_as_definitions_and_the_schedule_is_off(tmp_path: Any) -> None:
    market_db = MarketDatabase(url=f"sqlite:///{tmp_path / 'market.sqlite'}")
    resources = dg.Definitions(resources={"market_db": market_db})
    dg.Definitions.validate_loadable(dg.Definitions.merge(definitions.defs, resources))
    assert list(definitions.defs.jobs or []) == [migrate_ohlcv_timestamps_job]
    assert list(definitions.defs.schedules or []) == [migrate_ohlcv_timestamps_schedule]
    assert migrate_ohlcv_timestamps_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {node.name for node in migrate_ohlcv_timestamps_job.graph.nodes} == {
        "inspect_ohlcv_table",
        "create_migrating_table",
        "copy_verify_and_swap",
        "clean_up_migration",
    }
