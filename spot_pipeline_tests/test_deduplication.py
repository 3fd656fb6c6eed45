"""`deduplicate_table` and `deduplicate_ohlcv_job`, on SQLite and MariaDB: which row survives, batches,
dry runs, failures mid-batch, identifier checks, the table's definition, the write lock and the keys."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, defaultdict
from functools import cmp_to_key
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spot_pipeline.db.dialect import is_mysql
from spot_pipeline.db.inspection import inspect_table
from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import (
    MAPPED_KEY,
    MYSQL_TABLE_OPTIONS,
    NATURAL_KEY,
    NATURAL_UNIQUE_KEY,
    TRADE_TIMESTAMP_COLUMNS,
    UtcDateTime,
    cc_ohlcv_spot_1d_raw,
)
from spot_pipeline.maintenance.deduplication import definitions, natural_key
from spot_pipeline.maintenance.deduplication.ops import (
    DeduplicationConfig,
    delete_duplicate_candles,
    enforce_natural_key,
)
from spot_pipeline.maintenance.deduplication.schedules import (
    deduplicate_ohlcv_job,
    deduplicate_ohlcv_schedule,
)
from spot_pipeline.maintenance.deduplication.table_deduplication import DeduplicationResult, deduplicate_table
from spot_pipeline_dev.legacy_tables import (
    insert_rows,
    legacy_ohlcv_table,
    legacy_row,
    replace_with_legacy_table,
)
from spot_pipeline_tests.pipeline import output_metadata, step_error, steps

DAY = dt.datetime(2024, 3, 9)
EARLY, LATE = dt.datetime(2024, 3, 10, 1), dt.datetime(2024, 3, 11, 2)

# A small table with nullable key and ordering columns; the tie-break columns follow collected_at
# in the table's column order: symbol, total_trades, close.
PROBE = sa.Table(
    "dedupe_probe",
    sa.MetaData(schema="market"),
    sa.Column("datetime", UtcDateTime, nullable=False),
    sa.Column("exchange", sa.String(32)),
    sa.Column("symbol_unmapped", sa.String(32), nullable=False),
    sa.Column("symbol", sa.String(32)),
    sa.Column("total_trades", sa.BigInteger),
    sa.Column("close", sa.Float(53)),
    sa.Column("collected_at", UtcDateTime),
    **MYSQL_TABLE_OPTIONS,
)
KEY = ("datetime", "exchange", "symbol_unmapped")
TIE_BREAK = ("collected_at", "symbol", "total_trades", "close")


@pytest.fixture
def probe_db(market_db: MarketDatabase) -> MarketDatabase:
    with market_db.begin() as connection:
        PROBE.create(connection)
    return market_db


def probe_row(unmapped: str, **values: Any) -> dict[str, Any]:
    row = {
        "datetime": DAY,
        "exchange": "kraken",
        "symbol_unmapped": unmapped,
        "symbol": "BTC-USD",
        "total_trades": 1,
        "close": 1.0,
        "collected_at": EARLY,
    }
    return row | values


def fill(database: MarketDatabase, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    with database.begin() as connection:
        connection.execute(table.delete())
        if rows:
            connection.execute(table.insert(), rows)


def stored(database: MarketDatabase, table: sa.Table = PROBE) -> Counter[tuple[Any, ...]]:
    with database.connect() as connection:
        return Counter(tuple(row) for row in connection.execute(sa.select(table)))


def as_stored(rows: list[dict[str, Any]], table: sa.Table = PROBE) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(row[column.name] for column in table.c) for row in rows)


def dedupe_probe(database: MarketDatabase, **options: Any) -> DeduplicationResult:
    return deduplicate_table(
        database.engine, database.schema_name, PROBE.name, KEY, "collected_at", **options
    )


def better_first(a: dict[str, Any], b: dict[str, Any]) -> int:
    """The documented order: each tie-break column descending, NULL last, text by its bytes."""
    for name in TIE_BREAK:
        x, y = a[name], b[name]
        if x == y:
            continue
        if x is None or y is None:
            return 1 if x is None else -1
        x, y = (x.encode(), y.encode()) if isinstance(x, str) else (x, y)
        return -1 if x > y else 1
    return 0


def expected_survivors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key (the first by `better_first`); rows with a NULL in their key all stay."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    kept = []
    for row in rows:
        key = tuple(row[name] for name in KEY)
        if None in key:
            kept.append(row)
        else:
            groups[key].append(row)
    return kept + [min(group, key=cmp_to_key(better_first)) for group in groups.values()]


def test_survivor_is_the_latest_then_the_documented_tie_break(probe_db: MarketDatabase) -> None:
    rows = [
        probe_row("LATEST", close=1.0),
        probe_row("LATEST", close=2.0, collected_at=LATE),
        probe_row("KNOWN_TIME", close=9.0, collected_at=None),
        probe_row("KNOWN_TIME", close=1.0),
        probe_row("NO_TIME", total_trades=None, collected_at=None),
        probe_row("NO_TIME", total_trades=5, collected_at=None),
        probe_row("CASE", symbol="BTC-USD"),
        probe_row("CASE", symbol="btc-usd"),
        *[probe_row("COPIES")] * 3,
        probe_row("ALONE"),
        *[probe_row("NULL_KEY", exchange=None)] * 2,
    ]
    fill(probe_db, PROBE, rows)
    result = dedupe_probe(probe_db)
    kept = [rows[i] for i in (1, 3, 5, 7, 8, 11, 12, 13)]
    assert stored(probe_db) == as_stored(kept)
    assert (result.examined, result.duplicates, result.deleted) == (len(rows), 6, 6)


def test_dry_run_counts_per_group_and_changes_nothing(probe_db: MarketDatabase) -> None:
    rows = [*[probe_row("A")] * 3, probe_row("B", exchange="binance"), probe_row("B", exchange="binance")]
    fill(probe_db, PROBE, rows)
    result = dedupe_probe(probe_db, dry_run=True, group_column="exchange")
    assert stored(probe_db) == as_stored(rows)
    assert (result.duplicates, result.deleted, result.by_group) == (3, 0, {"kraken": 2, "binance": 1})


def test_batches_cover_every_row_once(probe_db: MarketDatabase) -> None:
    """Rows at midnight on the first day, at the end of a window and on the last day are all seen."""
    moments = [
        DAY,
        DAY + dt.timedelta(days=2, seconds=-1),
        DAY + dt.timedelta(days=2),
        DAY + dt.timedelta(days=9),
    ]
    rows = [probe_row("A", datetime=moment) for moment in moments for _ in range(2)]
    fill(probe_db, PROBE, rows)
    seen: list[tuple[dt.date, dt.date]] = []
    result = dedupe_probe(
        probe_db, batch_days=2, on_batch=lambda batch: seen.append((batch.start, batch.end))
    )
    assert stored(probe_db) == as_stored(rows[::2])
    assert result.deleted == 4
    assert seen[0][0] == DAY.date() and seen[-1][1] > moments[-1].date() and len(seen) == result.batches == 5


def test_a_failure_mid_batch_rolls_that_batch_back_whole(probe_db: MarketDatabase) -> None:
    rows = [
        probe_row("A", datetime=DAY + dt.timedelta(days=day), close=float(n))
        for day in (0, 5)
        for n in (1, 2)
    ]
    fill(probe_db, PROBE, rows)
    restores = []

    def fail_second_restore(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO") and f"{PROBE.name} (" in statement:
            restores.append(statement)
            if len(restores) == 2:
                raise RuntimeError("connection lost while restoring the survivors")

    engine = probe_db.engine
    sa.event.listen(engine, "before_cursor_execute", fail_second_restore)
    try:
        with pytest.raises(RuntimeError, match="connection lost"):
            dedupe_probe(probe_db, batch_days=1)
    finally:
        sa.event.remove(engine, "before_cursor_execute", fail_second_restore)
    # The first window was deduplicated and committed; the failed one still has both its rows.
    assert stored(probe_db) == as_stored([rows[1], rows[2], rows[3]])
    assert dedupe_probe(probe_db, batch_days=1).deleted == 1
    assert stored(probe_db) == as_stored([rows[1], rows[3]])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"table_name": "dedupe_probe; DROP TABLE x"}, "not a plain identifier"),
        ({"schema": "market`.`x"}, "not a plain identifier"),
        ({"table_name": "no_such_table"}, "does not exist"),
        ({"key_columns": ("datetime", "exchange`")}, "not a plain identifier"),
        ({"key_columns": ("datetime", "venue")}, "is not a column of"),
        ({"key_columns": ()}, "key_columns is empty"),
        ({"order_column": "collected"}, "is not a column of"),
        ({"batch_column": "collected_at"}, "must be one of the key columns"),
        ({"batch_column": "exchange"}, "not DATE/DATETIME"),
        ({"group_column": "symbol"}, "must be one of the key columns"),
        ({"batch_days": 0}, "at least 1"),
    ],
)
def test_rejects_unsafe_or_unknown_names_before_any_sql(
    probe_db: MarketDatabase, options: dict[str, Any], message: str
) -> None:
    rows = [probe_row("A"), probe_row("A")]
    fill(probe_db, PROBE, rows)
    arguments = {
        "schema": probe_db.schema_name,
        "table_name": PROBE.name,
        "key_columns": KEY,
        "order_column": "collected_at",
    }
    with pytest.raises(ValueError, match=message):
        deduplicate_table(probe_db.engine, **(arguments | options))
    assert stored(probe_db) == as_stored(rows)


def test_refuses_to_delete_from_a_table_without_transactions(probe_db: MarketDatabase) -> None:
    if not uses_mysql(probe_db):
        pytest.skip("storage engines are a MySQL/MariaDB matter")
    rows = [probe_row("A"), probe_row("A")]
    fill(probe_db, PROBE, rows)
    with probe_db.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE `{probe_db.schema_name}`.`{PROBE.name}` ENGINE=MyISAM")
    with pytest.raises(ValueError, match=r"no transactions.*ENGINE=InnoDB"):
        dedupe_probe(probe_db)
    assert dedupe_probe(probe_db, dry_run=True).duplicates == 1
    assert stored(probe_db) == as_stored(rows)


MOMENTS = [
    DAY,
    DAY + dt.timedelta(hours=23, minutes=59),
    DAY + dt.timedelta(days=1),
    DAY + dt.timedelta(days=6),
]
probe_rows = st.fixed_dictionaries(
    {
        "datetime": st.sampled_from(MOMENTS),
        "exchange": st.sampled_from(["kraken", "binance", None]),
        "symbol_unmapped": st.sampled_from(["XXBTZUSD", "XETHZUSD"]),
        "symbol": st.sampled_from(["BTC-USD", "btc-usd", "XBT-USD", None]),
        "total_trades": st.sampled_from([None, 0, 7]),
        "close": st.sampled_from([None, 1.5, -2.25]),
        "collected_at": st.sampled_from([None, EARLY, LATE]),
    }
)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(probe_rows, max_size=14),
    copies=st.lists(st.integers(min_value=0, max_value=13), max_size=5),
    batch_days=st.integers(min_value=1, max_value=3),
)
def test_property_one_row_per_key_the_first_by_the_order_others_untouched(
    probe_db: MarketDatabase, rows: list[dict[str, Any]], copies: list[int], batch_days: int
) -> None:
    rows = rows + [rows[index % len(rows)] for index in copies] if rows else []
    fill(probe_db, PROBE, rows)
    result = dedupe_probe(probe_db, batch_days=batch_days)
    survivors = expected_survivors(rows)
    assert stored(probe_db) == as_stored(survivors)
    extra = len(rows) - len(survivors)
    assert (result.examined, result.duplicates, result.deleted) == (len(rows), extra, extra)
    assert dedupe_probe(probe_db, batch_days=batch_days).deleted == 0


# --- the OHLCV table and the job ---------------------------------------------------------------

LEGACY = legacy_ohlcv_table(primary_key=False)
LATER = dt.datetime(2024, 6, 2)


def duplicated_legacy_rows() -> list[dict[str, Any]]:
    """Legacy candles (BIGINT trade timestamps) holding every kind of duplicate, plus clean rows."""
    later_day = DAY + dt.timedelta(days=40)
    return [
        *(legacy_row(DAY + dt.timedelta(days=day), "coinbase", "ETH-USD") for day in range(3)),
        *[legacy_row(DAY)] * 3,  # exact copies (3-5)
        legacy_row(DAY, symbol="ETH-USD"),  # stored again later with revised values (6-7)
        legacy_row(DAY, symbol="ETH-USD", close=7.5, collected_at=LATER),
        legacy_row(later_day, "binance", "MATIC-USD"),  # remapped to a new symbol (8-9)
        legacy_row(later_day, "binance", "POL-USD", symbol_unmapped="MATICUSD", collected_at=LATER),
        legacy_row(DAY, "binance", total_trades=900),  # same collected_at: the tie-break decides (10-11)
        legacy_row(DAY, "binance", total_trades=1_200),
    ]


def legacy_survivors() -> list[dict[str, Any]]:
    rows = duplicated_legacy_rows()
    return [rows[index] for index in (0, 1, 2, 3, 7, 9, 11)]


@pytest.fixture
def duplicated_db(market_db: MarketDatabase) -> MarketDatabase:
    """`market_db` whose cc_ohlcv_spot_1d_raw is the legacy table without a key, holding duplicates."""
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=False)
        insert_rows(connection, table, duplicated_legacy_rows())
    return market_db


def run_job(database: MarketDatabase, **config: Any) -> dg.ExecuteInProcessResult:
    return deduplicate_ohlcv_job.execute_in_process(
        run_config=dg.RunConfig(ops={"count_duplicate_candles": DeduplicationConfig(**config)}),
        resources={"market_db": database},
        raise_on_error=False,
    )


def uses_mysql(database: MarketDatabase) -> bool:
    with database.connect() as connection:
        return is_mysql(connection)


def test_job_dry_run_reports_per_exchange_and_changes_nothing(duplicated_db: MarketDatabase) -> None:
    result = run_job(duplicated_db, dry_run=True)
    assert result.success
    assert stored(duplicated_db, LEGACY) == as_stored(duplicated_legacy_rows(), LEGACY)
    deleting = output_metadata(result, "delete_duplicate_candles")
    assert (deleting["duplicates"], deleting["deleted"]) == (5, 0)
    assert "| kraken | 3 |" in deleting["would_delete_per_exchange"]
    assert "| binance | 2 |" in deleting["would_delete_per_exchange"]
    assert output_metadata(result, "verify_no_duplicate_candles")["remaining_duplicates"] == 5
    assert output_metadata(result, "enforce_natural_key")["natural_unique_key_present"] is False


def test_job_keeps_the_latest_row_per_candle_and_a_second_run_deletes_nothing(
    duplicated_db: MarketDatabase,
) -> None:
    first = run_job(duplicated_db)
    assert first.success
    assert stored(duplicated_db, LEGACY) == as_stored(legacy_survivors(), LEGACY)
    assert output_metadata(first, "count_duplicate_candles")["duplicates"] == 5
    assert output_metadata(first, "delete_duplicate_candles")["deleted"] == 5
    assert output_metadata(first, "verify_no_duplicate_candles")["remaining_duplicates"] == 0
    second = run_job(duplicated_db, batch_days=1)
    assert second.success
    second_deleting = output_metadata(second, "delete_duplicate_candles")
    assert second_deleting["deleted"] == 0
    assert second_deleting["batches_read_whole_table"] is True  # no key starts with datetime here
    assert stored(duplicated_db, LEGACY) == as_stored(legacy_survivors(), LEGACY)


def test_job_adds_the_keys_once_the_table_is_clean(duplicated_db: MarketDatabase) -> None:
    result = run_job(duplicated_db, add_unique_key=True)
    assert result.success
    with duplicated_db.connect() as connection:
        shape = inspect_table(connection, duplicated_db.schema_name, LEGACY.name)
    assert shape.has_unique_key(NATURAL_KEY)
    keys = output_metadata(result, "enforce_natural_key")["keys"]
    if uses_mysql(duplicated_db):
        assert shape.has_unique_key(MAPPED_KEY) and keys.count("| added |") == 2
    else:
        assert "SQLite cannot add a primary key" in keys and keys.count("| added |") == 1
    with pytest.raises(sa.exc.IntegrityError), duplicated_db.begin() as connection:
        insert_rows(connection, LEGACY, [legacy_survivors()[-1]])


def must_not_run(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("the table was read for duplicates")


def test_a_table_whose_unique_key_rules_duplicates_out_is_not_read(
    duplicated_db: MarketDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_job(duplicated_db, add_unique_key=True).success
    monkeypatch.setattr(natural_key, "count_ohlcv_duplicates", must_not_run)
    monkeypatch.setattr(natural_key, "deduplicate_ohlcv", must_not_run)

    for config in ({}, {"dry_run": True}):
        result = run_job(duplicated_db, **config)
        assert result.success
        assert steps(result, "STEP_START") == {"count_duplicate_candles"}
        assert output_metadata(result, "count_duplicate_candles")["duplicates"] == 0
    # SQLite cannot add the primary key, so asking for keys again reads the table there (and fails here).
    again = run_job(duplicated_db, add_unique_key=True)
    if uses_mysql(duplicated_db):
        assert again.success and steps(again, "STEP_START") == {"count_duplicate_candles"}
    else:
        assert "the table was read for duplicates" in step_error(again)
    assert stored(duplicated_db, LEGACY) == as_stored(legacy_survivors(), LEGACY)


@pytest.mark.parametrize(
    ("extra_row", "mysql_reason"),
    [
        (legacy_row(DAY, "kraken", "SOL-USD") | {"symbol": None}, "have no symbol"),
        (
            legacy_row(DAY, "kraken", "BTC-USD", symbol_unmapped="XBTUSD"),
            "share (datetime, exchange, symbol)",
        ),
    ],
    ids=["null_symbol", "two_instruments_one_symbol"],
)
def test_primary_key_is_added_only_when_the_data_allows_it(
    market_db: MarketDatabase, extra_row: dict[str, Any], mysql_reason: str
) -> None:
    with market_db.begin() as connection:
        insert_rows(
            connection, replace_with_legacy_table(connection, primary_key=False), [legacy_row(DAY), extra_row]
        )
    statuses = {key.name: key for key in natural_key.add_ohlcv_keys(market_db.engine, market_db.schema_name)}
    primary = statuses[natural_key.PRIMARY_KEY]
    assert not primary.present
    assert (mysql_reason if uses_mysql(market_db) else "SQLite cannot") in primary.reason
    assert statuses[NATURAL_UNIQUE_KEY].added


def test_the_project_table_reports_both_keys_present(market_db: MarketDatabase) -> None:
    with market_db.connect() as connection:
        statuses = natural_key.ohlcv_key_statuses(connection, market_db.schema_name)
    assert [(key.name, key.present) for key in statuses] == [
        (natural_key.PRIMARY_KEY, True),
        (NATURAL_UNIQUE_KEY, True),
    ]


def table_definition(database: MarketDatabase) -> dict[str, Any]:
    name, schema_name = cc_ohlcv_spot_1d_raw.name, database.schema_name
    with database.connect() as connection:
        inspector = sa.inspect(connection)
        return {
            "columns": [
                (column["name"], str(column["type"]), column["nullable"], str(column.get("default")))
                for column in inspector.get_columns(name, schema=schema_name)
            ],
            "primary_key": inspector.get_pk_constraint(name, schema=schema_name)["constrained_columns"],
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), index["unique"])
                for index in inspector.get_indexes(name, schema=schema_name)
            ),
        }


def test_keys_indexes_and_defaults_survive_deduplication(market_db: MarketDatabase) -> None:
    remap_day = DAY + dt.timedelta(days=1)
    with market_db.begin() as connection:
        table = replace_with_legacy_table(connection, primary_key=True)
        sa.Index("ix_cc_ohlcv_spot_1d_raw_exchange", table.c.exchange).create(connection)
        insert_rows(
            connection,
            table,
            [
                legacy_row(remap_day, "binance", "MATIC-USD"),
                legacy_row(remap_day, "binance", "POL-USD", symbol_unmapped="MATICUSD", collected_at=LATER),
            ],
        )
    before = table_definition(market_db)
    assert natural_key.deduplicate_ohlcv(market_db.engine, market_db.schema_name).deleted == 1
    assert table_definition(market_db) == before
    with market_db.begin() as connection:
        connection.execute(table.insert().values(datetime=DAY, exchange="x", symbol_unmapped="U", symbol="S"))
        defaulted = connection.execute(sa.select(table.c.collected_at).where(table.c.exchange == "x"))
        assert defaulted.scalar_one() is not None


def test_deleting_waits_for_the_write_lock_of_another_writer(duplicated_db: MarketDatabase) -> None:
    held, seen_while_held = threading.Event(), []

    def other_writer() -> None:
        with duplicated_db.write_lock(cc_ohlcv_spot_1d_raw):
            held.set()
            time.sleep(1.0)
            seen_while_held.append(stored(duplicated_db, LEGACY))

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert held.wait(10)
    result = run_job(duplicated_db)
    writer.join()
    assert result.success
    assert seen_while_held == [as_stored(duplicated_legacy_rows(), LEGACY)]
    assert stored(duplicated_db, LEGACY) == as_stored(legacy_survivors(), LEGACY)


def test_verification_fails_when_duplicates_remain(
    duplicated_db: MarketDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    def delete_nothing(*_args: Any, **_kwargs: Any) -> DeduplicationResult:
        return DeduplicationResult(0, 0, 0, batches=0, by_group={}, dry_run=False, range_reads=True)

    monkeypatch.setattr(natural_key, "deduplicate_ohlcv", delete_nothing)
    result = run_job(duplicated_db, add_unique_key=True)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "verify_no_duplicate_candles"
    assert "5 duplicate rows remain" in failure.step_failure_data.error.to_string()
    assert not [event for event in result.events_for_node("enforce_natural_key") if event.is_step_success]


def test_weekly_schedule_pools_and_exports() -> None:
    assert deduplicate_ohlcv_schedule.cron_schedule == "0 3 * * 0"
    assert deduplicate_ohlcv_schedule.execution_timezone == "UTC"
    assert deduplicate_ohlcv_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert list(definitions.defs.jobs or []) == [deduplicate_ohlcv_job]
    assert list(definitions.defs.schedules or []) == [deduplicate_ohlcv_schedule]
    assert delete_duplicate_candles.pool == enforce_natural_key.pool == OHLCV_WRITE_POOL
    resources = dg.Definitions(resources={"market_db": MarketDatabase(url="sqlite://")})
    dg.Definitions.validate_loadable(dg.Definitions.merge(definitions.defs, resources))
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        DeduplicationConfig(batch_days=0)


@pytest.mark.parametrize(("legacy", "expected_batches"), [(True, 1), (False, 4)])
def test_default_batches_follow_the_indexes(
    market_db: MarketDatabase, legacy: bool, expected_batches: int
) -> None:
    """Without an index starting with `datetime` each batch would read the whole table: one batch."""
    first_day = dt.datetime(2024, 1, 1)
    days = [first_day + dt.timedelta(days=offset) for offset in range(100)]
    with market_db.begin() as connection:
        if legacy:
            table = replace_with_legacy_table(connection, primary_key=False)
            connection.execute(table.insert(), [legacy_row(day) for day in days] * 2)
        else:
            rows = [{**legacy_row(day), **dict.fromkeys(TRADE_TIMESTAMP_COLUMNS)} for day in days]
            connection.execute(cc_ohlcv_spot_1d_raw.insert(), rows)
    result = natural_key.deduplicate_ohlcv(market_db.engine, market_db.schema_name)
    assert result.batches == expected_batches
    assert result.deleted == (100 if legacy else 0)
