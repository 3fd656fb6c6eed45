"""Every run inspects the live tables it writes before its first request: a table that lacks the
key its upserts rely on (or a column, a type, a Unicode character set) stops it, named with the job
or statement that fixes it; and the SQL compares text whatever collation each table has."""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import EXCHANGES_GENERAL_PATH, SPOT_INSTRUMENTS_PATH, TOP_LIST_PATH
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import is_mysql, staging_table, upsert_rows
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.live_tables import KEY_REPAIR_JOB
from spot_pipeline.reference_data.assets import asset_top_list, cc_exchanges_general, cc_instruments_spot
from spot_pipeline.timeutils import utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_dev.legacy_tables import replace_with_keyless_table
from spot_pipeline_tests.pipeline import failure_description, materialize_candles

YESTERDAY = utc_today() - dt.timedelta(days=1)

REFERENCE_STEPS = [
    (cc_exchanges_general, "cc_exchanges_general", schema.cc_exchanges_general, EXCHANGES_GENERAL_PATH),
    (cc_instruments_spot, "cc_instruments_spot", schema.cc_instruments_spot, SPOT_INSTRUMENTS_PATH),
    (asset_top_list, "asset_top_list", schema.cc_assets, TOP_LIST_PATH),
    (asset_top_list, "asset_top_list", schema.cc_asset_market_data, TOP_LIST_PATH),
]


def mysql_only(market_db: MarketDatabase) -> None:
    if not is_mysql(market_db.engine):
        pytest.skip("MySQL/MariaDB only: SQLite has no collations or character sets to mix")


@pytest.mark.parametrize(
    ("asset", "step", "table", "path"), REFERENCE_STEPS, ids=[t[2].name for t in REFERENCE_STEPS]
)
def test_a_reference_table_without_its_key_stops_its_step_before_any_request(
    market_db: MarketDatabase,
    ccdata: CCDataClient,
    fake_api: FakeCCDataServer,
    asset: dg.AssetsDefinition,
    step: str,
    table: sa.Table,
    path: str,
) -> None:
    with market_db.begin() as connection:
        replace_with_keyless_table(connection, table)
    result = dg.materialize(
        [asset], resources={"ccdata": ccdata, "market_db": market_db}, raise_on_error=False
    )
    assert not result.success
    error = failure_description(result, step)
    assert f"{market_db.schema_name}.{table.name} has no unique key on" in error
    assert KEY_REPAIR_JOB in error
    assert fake_api.request_count(path) == 0
    with market_db.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_a_keyless_coverage_table_stops_a_candle_run_before_any_request(
    universe: list, market_db: MarketDatabase, ccdata: CCDataClient, fake_api: FakeCCDataServer
) -> None:
    with market_db.begin() as connection:
        replace_with_keyless_table(connection, schema.ohlcv_pair_coverage)
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert not result.success
    assert "ohlcv_pair_coverage has no unique key on (exchange, symbol_unmapped)" in failure_description(
        result
    )
    assert fake_api.request_count() == 0


def test_an_upsert_is_never_a_plain_insert(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection, pytest.raises(ValueError, match="needs its key columns"):
        upsert_rows(connection, schema.cc_assets, [{"asset_id": 1}], key_columns=())


def test_text_without_a_unicode_character_set_is_named_with_the_statement_that_converts_it(
    market_db: MarketDatabase, ccdata: CCDataClient, fake_api: FakeCCDataServer
) -> None:
    mysql_only(market_db)
    with market_db.begin() as connection:
        connection.exec_driver_sql(
            f"ALTER TABLE `{market_db.schema_name}`.cc_exchanges_general CONVERT TO CHARACTER SET latin1"
        )
    result = dg.materialize(
        [cc_exchanges_general], resources={"ccdata": ccdata, "market_db": market_db}, raise_on_error=False
    )
    error = failure_description(result, "cc_exchanges_general")
    assert "text columns without a Unicode character set" in error and "internal_name (latin1)" in error
    assert "CONVERT TO CHARACTER SET utf8mb4" in error
    assert fake_api.request_count() == 0


def test_a_not_null_column_the_pipeline_does_not_write_is_named(
    market_db: MarketDatabase, ccdata: CCDataClient
) -> None:
    mysql_only(market_db)
    with market_db.begin() as connection:
        connection.exec_driver_sql(
            f"ALTER TABLE `{market_db.schema_name}`.cc_assets ADD COLUMN desk_flag INT NOT NULL"
        )
    result = dg.materialize(
        [asset_top_list], resources={"ccdata": ccdata, "market_db": market_db}, raise_on_error=False
    )
    error = failure_description(result, "asset_top_list")
    assert "NOT NULL columns without a default that the pipeline does not write: desk_flag" in error


def test_tables_the_pipeline_creates_take_the_schemas_collation_unless_configured(
    market_db: MarketDatabase,
) -> None:
    mysql_only(market_db)
    schema_name = f"market_collated_{uuid.uuid4().hex[:8]}"
    with market_db.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{schema_name}` COLLATE utf8mb4_unicode_520_ci")
    try:
        own = MarketDatabase(url=market_db.url, schema_name=schema_name)
        configured = MarketDatabase(url=market_db.url, schema_name=schema_name, table_collation="utf8mb4_bin")
        assert set(table_collations(own).values()) == {"utf8mb4_unicode_520_ci"}
        own.dispose()
        with market_db.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE `{schema_name}`.spot_universe")
        assert table_collations(configured)["spot_universe"] == "utf8mb4_bin"
        configured.dispose()
    finally:
        with market_db.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{schema_name}`")


def table_collations(database: MarketDatabase) -> dict[str, str]:
    with database.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = :schema"
            ),
            {"schema": database.schema_name},
        )
        return dict(rows.all())


@pytest.mark.parametrize("collation", ["utf8mb4_bin", "utf8mb4_general_ci"])
def test_a_staging_table_takes_the_live_tables_column_collations(
    market_db: MarketDatabase, collation: str
) -> None:
    mysql_only(market_db)
    with market_db.begin() as connection:
        connection.exec_driver_sql(
            f"ALTER TABLE `{market_db.schema_name}`.cc_ohlcv_spot_1d_raw "
            f"CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
        )
        with staging_table(
            connection, schema.cc_ohlcv_spot_1d_raw, "staging_probe", ["datetime", "exchange"]
        ) as staged:
            definition = connection.exec_driver_sql(
                f"SHOW CREATE TABLE `{market_db.schema_name}`.{staged.name}"
            ).one()[1]
    assert f"COLLATE={collation}" in definition or f"COLLATE {collation}" in definition
