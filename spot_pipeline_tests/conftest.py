"""Shared fixtures: the market database on SQLite and on MariaDB/MySQL, the fake CCData API, and the
production deployment (webserver, daemon, MariaDB storage) with the runs made on it.

Every test that takes `market_db` runs twice: on an SQLite file, and on MariaDB/MySQL when
SPOT_PIPELINE_TEST_MYSQL_URL is set (e.g. mysql+mysqlconnector://root@127.0.0.1:3306/test).
With SPOT_PIPELINE_REQUIRE_MYSQL=1 (as in CI) a missing or unreachable server fails the run
instead of skipping the MySQL half.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Generator, Iterator

import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.engine import prepare_schema
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.settings import SETTINGS
from spot_pipeline.timeutils import utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_tests import scorecard
from spot_pipeline_tests.deployment import DEPLOYMENT_PARTITION_DAYS, Deployment, running_deployment
from spot_pipeline_tests.pipeline import materialize_reference_and_universe
from spot_pipeline_tests.production_runs import ProductionRuns, run_production_scenario


def pytest_sessionfinish(session: pytest.Session) -> None:
    scorecard.write_if_asked()


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs on the pipeline's defaults: a developer's own settings (shell variables such as
    MARKET_DB_URL or CCDATA_API_KEY) must neither change nor fail it. Cleared before any test module
    is imported, since the partitions read OHLCV_START_DATE at import time."""
    for name in SETTINGS:
        os.environ.pop(name, None)


MYSQL_URL_VARIABLE = "SPOT_PIPELINE_TEST_MYSQL_URL"
REQUIRE_MYSQL_VARIABLE = "SPOT_PIPELINE_REQUIRE_MYSQL"
# The servers the MariaDB/MySQL half runs on: one with the server's defaults, and one imitating MySQL
# 8's (sql_mode with ONLY_FULL_GROUP_BY and the strict modes, local_infile off, a non-UTC global time
# zone, a default collation unlike the legacy tables'), which .ci/run starts beside the first.
MYSQL_SERVERS = {"mysql": MYSQL_URL_VARIABLE, "mysql8": "SPOT_PIPELINE_TEST_MYSQL8_URL"}


def mysql_url(server: str = "mysql") -> str | None:
    variable = MYSQL_SERVERS[server]
    url = os.environ.get(variable)
    if url:
        return url
    if os.environ.get(REQUIRE_MYSQL_VARIABLE) == "1":
        pytest.fail(f"{REQUIRE_MYSQL_VARIABLE}=1 but {variable} is not set")
    pytest.skip(f"set {variable} to run the MariaDB/MySQL half of the suite on that server")
    return None


def server_name(market_db: MarketDatabase) -> str:
    """SQLite, MariaDB, or MariaDB imitating MySQL 8's defaults: where a `market_db` test ran."""
    if market_db.engine.dialect.name == "sqlite":
        return "SQLite"
    mysql8 = market_db.url == os.environ.get(MYSQL_SERVERS["mysql8"])
    return "MariaDB (MySQL 8 defaults)" if mysql8 else "MariaDB"


@pytest.fixture(scope="session")
def mysql_test_schema() -> Iterator[str]:
    """A database private to this test session on each server, dropped at the end."""
    schema_name = f"market_test_{uuid.uuid4().hex[:8]}"
    yield schema_name
    for variable in MYSQL_SERVERS.values():
        url = os.environ.get(variable)
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
    prepare_schema(database.engine, database.schema_name)


@pytest.fixture(
    params=["sqlite", *(pytest.param(server, marks=pytest.mark.mysql) for server in MYSQL_SERVERS)]
)
def market_db(request: pytest.FixtureRequest, tmp_path, mysql_test_schema: str) -> Iterator[MarketDatabase]:
    """An empty market database with every table created, on each dialect and server in turn."""
    if request.param == "sqlite":
        database = MarketDatabase(url=f"sqlite:///{tmp_path / 'market.sqlite'}")
    else:
        database = MarketDatabase(url=mysql_url(request.param), schema_name=mysql_test_schema)
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


@pytest.fixture(scope="session")
def dagster_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """deploy/dagster.yaml on private MariaDB databases, served by a real webserver and daemon."""
    server_url = mysql_url()
    today = utc_today()
    first_partition = today - dt.timedelta(days=DEPLOYMENT_PARTITION_DAYS)
    work_dir = tmp_path_factory.mktemp("deployment")
    with running_deployment(server_url, work_dir, today, first_partition) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def production_runs(dagster_deployment: Deployment) -> ProductionRuns:
    """The runs of production_runs.run_production_scenario, made once for every test that reads them."""
    return run_production_scenario(dagster_deployment)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """A failed test on the deployment shows the end of the webserver's and the daemon's logs."""
    outcome = yield
    report = outcome.get_result()
    deployment = getattr(item, "funcargs", {}).get("dagster_deployment")
    if report.failed and deployment is not None:
        report.sections.append(("Dagster webserver and daemon logs", deployment.logs()))
