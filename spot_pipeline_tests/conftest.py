"""Shared fixtures: the market database on SQLite and on MariaDB/MySQL, and the fake CCData API.

Every test that takes `market_db` runs twice: on an SQLite file, and on MariaDB/MySQL when
SPOT_PIPELINE_TEST_MYSQL_URL is set (e.g. mysql+mysqlconnector://root@127.0.0.1:3306/test).
With SPOT_PIPELINE_REQUIRE_MYSQL=1 (as in CI) a missing or unreachable server fails the run
instead of skipping the MySQL half.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import metadata
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.settings import SETTINGS
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_tests.pipeline import materialize_reference_and_universe


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs on the pipeline's defaults: a developer's own settings (shell variables such as
    MARKET_DB_URL or CCDATA_API_KEY) must neither change nor fail it. Cleared before any test module
    is imported, since the partitions read OHLCV_START_DATE at import time."""
    for name in SETTINGS:
        os.environ.pop(name, None)


MYSQL_URL_VARIABLE = "SPOT_PIPELINE_TEST_MYSQL_URL"
REQUIRE_MYSQL_VARIABLE = "SPOT_PIPELINE_REQUIRE_MYSQL"


def mysql_url() -> str | None:
    url = os.environ.get(MYSQL_URL_VARIABLE)
    if url:
        return url
    if os.environ.get(REQUIRE_MYSQL_VARIABLE) == "1":
        pytest.fail(f"{REQUIRE_MYSQL_VARIABLE}=1 but {MYSQL_URL_VARIABLE} is not set")
    pytest.skip(f"set {MYSQL_URL_VARIABLE} to run the MariaDB/MySQL half of the suite")
    return None


@pytest.fixture(scope="session")
def mysql_test_schema() -> Iterator[str]:
    """A database private to this test session, dropped at the end."""
    schema_name = f"market_test_{uuid.uuid4().hex[:8]}"
    yield schema_name
    url = os.environ.get(MYSQL_URL_VARIABLE)
    if url:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{schema_name}`")
        engine.dispose()


def _empty_schema(database: MarketDatabase) -> None:
    """Drop every table of the schema (including ones a test created), then create the market tables."""
    with database.begin() as connection:
        for table_name in sa.inspect(connection).get_table_names(schema=database.schema_name):
            connection.exec_driver_sql(f"DROP TABLE `{database.schema_name}`.`{table_name}`")
    metadata.create_all(database.engine)


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def market_db(request: pytest.FixtureRequest, tmp_path, mysql_test_schema: str) -> Iterator[MarketDatabase]:
    """An empty market database with every table created, on each dialect in turn."""
    if request.param == "sqlite":
        database = MarketDatabase(url=f"sqlite:///{tmp_path / 'market.sqlite'}")
    else:
        database = MarketDatabase(url=mysql_url(), schema_name=mysql_test_schema)
        _empty_schema(database)
    yield database
    database.dispose()


@pytest.fixture
def fake_api() -> Iterator[FakeCCDataServer]:
    with FakeCCDataServer() as server:
        yield server


@pytest.fixture
def universe(ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer) -> list[Pair]:
    """The reference data and the universe stored from the fake API, whose log is then cleared."""
    assert materialize_reference_and_universe(ccdata, market_db).success
    fake_api.reset_log()
    with market_db.connect() as connection:
        return queries.load_universe(connection)


@pytest.fixture
def ccdata(fake_api: FakeCCDataServer) -> CCDataClient:
    """A client of the fake API with fast retries."""
    return fake_api.client(
        calls_per_second=500,
        max_retries=3,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
        timeout_seconds=5,
    )
