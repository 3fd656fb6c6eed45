"""`repair_table_keys_job`: per table that lost its key, the latest updated_at of every key in a
verified copy with the key, swapped in all or nothing, the original kept; a dry run changes nothing;
a second run changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.db import schema
from spot_pipeline.db.inspection import inspect_table
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.maintenance.table_keys.schedules import repair_table_keys_job
from spot_pipeline_dev.legacy_tables import replace_with_keyless_table
from spot_pipeline_tests.pipeline import output_metadata, step_error

EARLIER = dt.datetime(2025, 1, 1, 8, 0, 0)
LATER = dt.datetime(2025, 3, 1, 8, 0, 0)
TABLES = [schema.cc_exchanges_general.name, schema.cc_assets.name]


def exchange(name: str, grade: str | None, updated_at: dt.datetime) -> dict[str, Any]:
    return {
        "exchange_api_id": name,
        "name": name.title(),
        "internal_name": name,
        "grade": grade,
        "created_at": EARLIER,
        "updated_at": updated_at,
    }


def asset(asset_id: int, symbol: str, updated_at: dt.datetime) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "symbol": symbol,
        "name": symbol,
        "uri": symbol.lower(),
        "asset_type": "BLOCKCHAIN",
        "cc_internal_type": "162",
        "id_legacy": asset_id,
        "cc_created_on": EARLIER,
        "cc_updated_on": updated_at,
        "created_at": EARLIER,
        "updated_at": updated_at,
    }


def keyless_with_duplicates(market_db: MarketDatabase) -> None:
    """Two reference tables as the old clean-up left them: no key, several rows for some keys."""
    with market_db.begin() as connection:
        exchanges = replace_with_keyless_table(connection, schema.cc_exchanges_general)
        connection.execute(
            exchanges.insert(),
            [
                exchange("kraken", "B", EARLIER),
                exchange("kraken", "AA", LATER),
                exchange("kraken", "A", EARLIER + dt.timedelta(days=1)),
                exchange("bitstamp", "BB", EARLIER),
            ],
        )
        assets = replace_with_keyless_table(connection, schema.cc_assets)
        connection.execute(
            assets.insert(), [asset(1, "BTC", EARLIER), asset(1, "XBT", LATER), asset(2, "ETH", LATER)]
        )


def rows(market_db: MarketDatabase, table: sa.Table) -> list[tuple[Any, ...]]:
    with market_db.connect() as connection:
        return sorted(map(tuple, connection.execute(sa.select(table))), key=repr)


def table_names(market_db: MarketDatabase) -> set[str]:
    with market_db.connect() as connection:
        return set(sa.inspect(connection).get_table_names(schema=market_db.schema_name))


def repair(market_db: MarketDatabase, **config: Any) -> dg.ExecuteInProcessResult:
    return repair_table_keys_job.execute_in_process(
        run_config={"tables": TABLES, **config}, resources={"market_db": market_db}, raise_on_error=False
    )


def has_key(market_db: MarketDatabase, table: sa.Table, key: tuple[str, ...]) -> bool:
    with market_db.connect() as connection:
        return inspect_table(connection, market_db.schema_name, table.name).has_unique_key(key)


def test_a_dry_run_counts_what_would_go_and_changes_nothing(market_db: MarketDatabase) -> None:
    keyless_with_duplicates(market_db)
    before = {table: rows(market_db, table) for table in (schema.cc_exchanges_general, schema.cc_assets)}
    names = table_names(market_db)
    result = repair(market_db, dry_run=True)
    assert result.success
    metadata = output_metadata(result, "survey_table_keys")
    assert metadata["tables_without_key"] == 2 and metadata["rows_to_remove"] == 3
    assert {table: rows(market_db, table) for table in before} == before
    assert table_names(market_db) == names


def test_each_key_keeps_its_latest_row_and_the_key_is_added_with_the_original_kept(
    market_db: MarketDatabase,
) -> None:
    keyless_with_duplicates(market_db)
    original = rows(market_db, schema.cc_exchanges_general)
    result = repair(market_db)
    assert result.success, step_error(result)
    with market_db.connect() as connection:
        grades = dict(
            connection.execute(
                sa.select(schema.cc_exchanges_general.c.internal_name, schema.cc_exchanges_general.c.grade)
            ).all()
        )
        symbols = dict(
            connection.execute(sa.select(schema.cc_assets.c.asset_id, schema.cc_assets.c.symbol)).all()
        )
    assert grades == {"kraken": "AA", "bitstamp": "BB"}
    assert symbols == {1: "XBT", 2: "ETH"}
    assert has_key(market_db, schema.cc_exchanges_general, ("internal_name",))
    assert has_key(market_db, schema.cc_assets, ("asset_id",))
    assert output_metadata(result, "repair_table_keys")["rows_removed"] == 3
    backups = sorted(name for name in table_names(market_db) if "_keyless_backup_" in name)
    assert len(backups) == 2
    backup = sa.Table(
        next(name for name in backups if name.startswith("cc_exchanges_general")),
        sa.MetaData(),
        *(sa.Column(column.name, column.type) for column in schema.cc_exchanges_general.columns),
        schema=market_db.schema_name,
    )
    with market_db.connect() as connection:
        assert sorted(map(tuple, connection.execute(sa.select(backup))), key=repr) == original

    again = repair(market_db)
    assert again.success
    assert output_metadata(again, "survey_table_keys")["tables_without_key"] == 0
    assert sorted(name for name in table_names(market_db) if "_keyless_backup_" in name) == backups


def test_a_row_without_a_key_value_is_never_dropped_and_only_its_table_is_left_as_it_was(
    market_db: MarketDatabase,
) -> None:
    keyless_with_duplicates(market_db)
    nullable_ids = sa.Table(
        schema.cc_assets.name,
        sa.MetaData(),
        *(
            sa.Column(column.name, column.type, nullable=column.name == "asset_id" or column.nullable)
            for column in schema.cc_assets.columns
        ),
        schema=schema.DEFAULT_SCHEMA,
    )
    with market_db.begin() as connection:
        schema.cc_assets.drop(connection)
        nullable_ids.create(connection)
        connection.execute(
            nullable_ids.insert(), [asset(1, "BTC", EARLIER), {**asset(0, "NOID", LATER), "asset_id": None}]
        )
    before = rows(market_db, nullable_ids)
    result = repair(market_db)
    assert not result.success
    assert "1 row(s) with NULL in (asset_id)" in step_error(result)
    assert rows(market_db, nullable_ids) == before, "cc_assets was left as it was"
    assert has_key(market_db, schema.cc_exchanges_general, ("internal_name",)), "the other table was repaired"


def test_without_keep_backup_the_original_is_dropped_after_the_swap(market_db: MarketDatabase) -> None:
    keyless_with_duplicates(market_db)
    assert repair(market_db, keep_backup=False).success
    assert not [name for name in table_names(market_db) if "_keyless_backup_" in name]
