"""The fault suite: each fault an independent run found, injected again on SQLite and MariaDB, and
the candle table compared with a clean run of the same window (rows lost, duplicates). Every
scenario records its outcome for the reliability scorecard (`spot_pipeline_tests.scorecard`)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_shared.serdes import serialize_value

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import EXCHANGES_GENERAL_PATH, HISTORICAL_DAYS_PATH, RATE_LIMIT_PATH
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import MAPPED_KEY, NATURAL_KEY, cc_exchanges_general, cc_ohlcv_spot_1d_raw
from spot_pipeline.maintenance.deduplication.schedules import deduplicate_ohlcv_job
from spot_pipeline.maintenance.timestamp_migration.layout import MIGRATING_TABLE
from spot_pipeline.maintenance.timestamp_migration.schedules import migrate_ohlcv_timestamps_job
from spot_pipeline.ohlcv import assets as candle_assets
from spot_pipeline.settings import SettingsError, build_resources
from spot_pipeline.timeutils import utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_dev.legacy_tables import insert_rows, legacy_row, replace_with_legacy_table
from spot_pipeline_tests.conftest import mysql_url, server_name
from spot_pipeline_tests.pipeline import (
    candle_metadata,
    failure_description,
    materialize_candles,
    materialize_reference_and_universe,
)
from spot_pipeline_tests.scorecard import SCENARIOS, Outcome, record
from spot_pipeline_tests.tcp_proxy import RestartableProxy
from spot_pipeline_tests.test_database_faults import kill_the_first_candle_write

YESTERDAY = utc_today() - dt.timedelta(days=1)
LEGACY_TABLE = cc_ohlcv_spot_1d_raw.name
LATER = dt.datetime(2024, 6, 2)
FIRST = YESTERDAY - dt.timedelta(days=9)
UNIVERSE = {"top_assets": 5}
VALUES = ("symbol", "open", "high", "low", "close", "volume", "quote_volume", "total_trades")

Snapshot = dict[tuple[Any, ...], tuple[Any, ...]]


# --- measuring a table against a clean run ---


def snapshot(market_db: MarketDatabase) -> Snapshot:
    columns = [cc_ohlcv_spot_1d_raw.c[name] for name in (*NATURAL_KEY, *VALUES)]
    with market_db.connect() as connection:
        rows = connection.execute(sa.select(*columns)).all()
    return {tuple(row[:3]): tuple(row[3:]) for row in rows}


def duplicate_keys(market_db: MarketDatabase) -> int:
    counted = 0
    with market_db.connect() as connection:
        for key in (NATURAL_KEY, MAPPED_KEY):
            columns = [cc_ohlcv_spot_1d_raw.c[name] for name in key]
            groups = sa.select(*columns).group_by(*columns).having(sa.func.count() > 1).subquery()
            counted += connection.execute(sa.select(sa.func.count()).select_from(groups)).scalar_one()
    return counted


def clean_run(fake_api: FakeCCDataServer, tmp_path: Path, first: dt.date = FIRST) -> Snapshot:
    """The same window, fetched without any fault into a fresh SQLite database."""
    database = MarketDatabase(url=f"sqlite:///{tmp_path / 'clean.sqlite'}")
    client = fake_api.client(calls_per_second=200)
    try:
        assert materialize_reference_and_universe(client, database, **UNIVERSE).success
        assert materialize_candles(client, database, first, YESTERDAY).success
        return snapshot(database)
    finally:
        database.dispose()
        fake_api.reset_log()


def score(scenario: str, market_db: MarketDatabase, clean: Snapshot, observed: str) -> None:
    """Record the outcome, then require nothing lost and nothing twice (or beyond the clean run)."""
    assert clean, "the clean run stored nothing to compare with"
    stored = snapshot(market_db)
    lost = sum(1 for key, values in clean.items() if stored.get(key) != values)
    duplicates = duplicate_keys(market_db) + len(set(stored) - set(clean))
    record(Outcome(scenario, server_name(market_db), observed, lost, duplicates))
    assert (lost, duplicates) == (0, 0)


def patient_client(fake_api: FakeCCDataServer, **settings: Any) -> CCDataClient:
    """A client that outlasts the injected faults (Retry-After honoured up to 1.5 s)."""
    defaults = {"calls_per_second": 50, "max_retries": 10, "backoff_base_seconds": 0.02}
    return fake_api.client(**{**defaults, "backoff_max_seconds": 1.5, "timeout_seconds": 5, **settings})


@pytest.fixture
def small_universe(ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer) -> None:
    assert materialize_reference_and_universe(ccdata, market_db, **UNIVERSE).success
    fake_api.reset_log()


def candle_run_under(
    fault: Callable[[], None], fake_api: FakeCCDataServer, market_db: MarketDatabase
) -> tuple[dg.ExecuteInProcessResult, dict[str, Any]]:
    """A candle run over the window with `fault` injected; its result and its metadata."""
    fault()
    result = materialize_candles(patient_client(fake_api), market_db, FIRST, YESTERDAY)
    return result, candle_metadata(result)


# --- API faults ---


def test_random_5xx(
    small_universe: None, market_db: MarketDatabase, fake_api: FakeCCDataServer, tmp_path: Path
) -> None:
    result, metadata = candle_run_under(lambda: fake_api.fail_randomly(0.3, seed=7), fake_api, market_db)
    fake_api.fail_randomly(0)
    assert result.success and metadata["api_retries"] > 0
    observed = f"run succeeded; {metadata['api_retries']} retries"
    score("random_5xx", market_db, clean_run(fake_api, tmp_path), observed)


def test_rate_limit_below_pace(
    small_universe: None, market_db: MarketDatabase, fake_api: FakeCCDataServer, tmp_path: Path
) -> None:
    result, metadata = candle_run_under(lambda: fake_api.limit_key(second=5), fake_api, market_db)
    assert result.success and fake_api.over_limit_requests == 0
    observed = (
        f"paced at {metadata['api_pace_per_second']:g}/s from the key's limits; "
        f"{fake_api.over_limit_requests} requests over the limit"
    )
    fake_api.limit_key()
    score("rate_limit_below_pace", market_db, clean_run(fake_api, tmp_path), observed)


def test_malformed_bodies(
    small_universe: None, market_db: MarketDatabase, fake_api: FakeCCDataServer, tmp_path: Path
) -> None:
    result, metadata = candle_run_under(
        lambda: fake_api.malformed_next(4, path=HISTORICAL_DAYS_PATH), fake_api, market_db
    )
    assert result.success and metadata["api_retries"] == 4
    score("malformed_bodies", market_db, clean_run(fake_api, tmp_path), "run succeeded; 4 retries")


def test_min_api_error_200(
    ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer, tmp_path: Path
) -> None:
    fake_api.fail_next(3, 429, path=EXCHANGES_GENERAL_PATH)
    client = patient_client(fake_api)
    assert materialize_reference_and_universe(client, market_db, **UNIVERSE).success
    assert fake_api.request_count(EXCHANGES_GENERAL_PATH) == 4
    assert materialize_candles(client, market_db, FIRST, YESTERDAY).success
    exchanges = count_rows(market_db, cc_exchanges_general)
    observed = f"3 errors retried; {exchanges} exchanges stored"
    assert exchanges == len(fake_api.dataset.exchanges)
    score("min_api_error_200", market_db, clean_run(fake_api, tmp_path), observed)


def count_rows(market_db: MarketDatabase, table: sa.Table) -> int:
    with market_db.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


# --- the provider changes its mind ---


def test_remap_then_rerun(
    small_universe: None,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    tmp_path: Path,
) -> None:
    assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    market = next(key for key, market in fake_api.dataset.markets.items() if market.instruments)
    instrument = fake_api.dataset.market(market).instruments[0]
    instrument.mapped_instrument = f"RENAMED-{instrument.quote}"
    assert materialize_reference_and_universe(ccdata, market_db, **UNIVERSE).success
    assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    score("remap_then_rerun", market_db, clean_run(fake_api, tmp_path), "re-run succeeded")


def test_revisions(
    small_universe: None,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    tmp_path: Path,
) -> None:
    assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    for market in fake_api.dataset.markets.values():
        for instrument in market.instruments:
            instrument.daily_quote_volume *= 1.5
    assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    score("revisions", market_db, clean_run(fake_api, tmp_path), "re-run succeeded; values replaced")


# --- the run or the database dies ---


def backfill_in_child(url: str, schema_name: str, data_api_url: str, min_api_url: str) -> None:
    """A candle run in a process of its own (spawned: nothing inherited but its arguments)."""
    database = MarketDatabase(url=url, schema_name=schema_name)
    client = CCDataClient(data_api_url=data_api_url, min_api_url=min_api_url, calls_per_second=50)
    materialize_candles(client, database, FIRST, YESTERDAY, write_batch_rows=100)


def test_sigkill_mid_backfill(
    small_universe: None,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    tmp_path: Path,
) -> None:
    fake_api.latency_seconds = 0.2  # a run long enough to be caught in the middle
    child = multiprocessing.get_context("spawn").Process(
        target=backfill_in_child,
        args=(market_db.url, market_db.schema_name, fake_api.data_api_url, fake_api.min_api_url),
    )
    child.start()
    kill_when(child, lambda: bool(snapshot(market_db)))  # once the first batch is stored
    fake_api.latency_seconds = 0
    stored_when_killed = len(snapshot(market_db))
    assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    observed = f"killed with {stored_when_killed} candles stored; the re-run succeeded"
    score("sigkill_mid_backfill", market_db, clean_run(fake_api, tmp_path), observed)


@pytest.mark.parametrize("market_db", ["mysql"], indirect=True)
def test_connection_killed_mid_batch(
    small_universe: None,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    tmp_path: Path,
) -> None:
    year_ago = YESTERDAY - dt.timedelta(days=364)  # a write long enough to be caught
    with kill_the_first_candle_write(market_db.schema_name) as killed:
        result = materialize_candles(ccdata, market_db, year_ago, YESTERDAY)
    assert killed and result.success
    clean = clean_run(fake_api, tmp_path, first=year_ago)
    score("connection_killed_mid_batch", market_db, clean, "connection killed once; the batch was retried")


def test_overlapping_backfills(
    small_universe: None,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    tmp_path: Path,
) -> None:
    results: list[bool] = []

    def backfill(first: dt.date, last: dt.date) -> None:
        results.append(materialize_candles(ccdata, market_db, first, last).success)

    runs = [
        threading.Thread(target=backfill, args=(FIRST, YESTERDAY - dt.timedelta(days=3))),
        threading.Thread(target=backfill, args=(FIRST + dt.timedelta(days=3), YESTERDAY)),
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert results == [True, True]
    score(
        "overlapping_backfills",
        market_db,
        clean_run(fake_api, tmp_path),
        "both succeeded, one after the other",
    )


# --- bad inputs and secrets ---

BAD_SETTINGS = {
    "MARKET_DB_URL": "mysql://spot@db/market",  # no driver named
    "MARKET_DB_SCHEMA": "m" * 65,
    "CCDATA_CALLS_PER_SECOND": "-1",
    "OHLCV_START_DATE": "2017-13-01",
}


@pytest.mark.parametrize("market_db", ["sqlite"], indirect=True)
def test_bad_inputs(small_universe: None, market_db: MarketDatabase, fake_api: FakeCCDataServer) -> None:
    with pytest.raises(SettingsError) as settings:
        build_resources(BAD_SETTINGS)
    assert all(name in str(settings.value) for name in BAD_SETTINGS)
    with pytest.raises(SettingsError, match="MARKET_DB_SCHEMA"):
        build_resources({"MARKET_DB_SCHEMA": "ma`rket'"})
    from spot_pipeline.definitions import defs

    job = defs().resolve_job_def("refresh_reference_data_job")
    for run_config in ({"universe": {"top_assets": -1}}, {"universe": {"min_grade": "ZZ"}}):
        with pytest.raises(dg.DagsterError):
            dg.validate_run_config(job, run_config)
    outside = materialize_candles(fake_api.client(), market_db, dt.date(1999, 1, 1), dt.date(1999, 1, 2))
    assert "before the first partition" in failure_description(outside)
    assert fake_api.request_count() == 0
    observed = (
        "4 bad settings named at once; quoted names, bad run config and days before the first "
        "partition refused; no request sent"
    )
    record(Outcome("bad_inputs", "SQLite", observed, 0, duplicate_keys(market_db)))


SECRET_KEY = "key-0123-RECOGNISABLE-4567"
SECRET_PASSWORD = "pw-RECOGNISABLE-89"


def test_secret_scan(market_db: MarketDatabase, password_protected: MarketDatabase) -> None:
    database = password_protected
    with FakeCCDataServer(api_key=SECRET_KEY) as fake_api:
        client = fake_api.client(api_key=SECRET_KEY, calls_per_second=200)
        fake_api.fail_next(2, 503, path=HISTORICAL_DAYS_PATH)  # retries log their requests
        fake_api.fail_next(1, 503, path=RATE_LIMIT_PATH)
        instance = dg.DagsterInstance.ephemeral()
        assert materialize_reference_and_universe(client, database, instance, **UNIVERSE).success
        result = dg.materialize(
            [candle_assets.cc_ohlcv_spot_1d_raw],
            resources={"ccdata": client, "market_db": database},
            instance=instance,
            partition_key=YESTERDAY.isoformat(),
        )
        assert result.success
        wrong = fake_api.client(api_key="wrong-" + SECRET_KEY, max_retries=0)
        refused = materialize_candles(wrong, database, YESTERDAY, YESTERDAY, instance=instance)
        assert not refused.success  # its error text is scanned too
    logged = [
        serialize_value(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)
    ]
    leaks = [text for text in logged if SECRET_KEY in text or (SECRET_PASSWORD in text)]
    observed = f"{len(logged)} log entries and events scanned, {len(leaks)} with a secret"
    record(Outcome("secret_scan", server_name(market_db), observed, 0, 0))
    assert logged and not leaks


@pytest.fixture
def password_protected(market_db: MarketDatabase) -> Iterator[MarketDatabase]:
    """The same database reached with a password: a user of its own on MariaDB; SQLite has none."""
    if market_db.engine.dialect.name != "mysql":
        yield market_db
        return
    user = f"spot_{market_db.schema_name[-8:]}"
    with market_db.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{SECRET_PASSWORD}'"
        )
        connection.exec_driver_sql(f"GRANT ALL ON `{market_db.schema_name}`.* TO '{user}'@'%'")
    url = sa.make_url(market_db.url).set(
        username=user, password=SECRET_PASSWORD, database=market_db.schema_name
    )
    database = MarketDatabase(
        url=url.render_as_string(hide_password=False), schema_name=market_db.schema_name
    )
    yield database
    database.dispose()
    with market_db.begin() as connection:
        connection.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%'")


def test_the_committed_scorecard_shows_every_scenario() -> None:
    """docs/reliability.md is regenerated (`make scorecard`) whenever a scenario is added."""
    committed = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    missing = [name for name, (fault, _) in SCENARIOS.items() if f"| {fault} |" not in committed]
    assert not missing, f"run `make scorecard`: docs/reliability.md lacks {missing}"


# --- maintenance jobs killed mid-way ---

LEGACY_DAYS = [dt.datetime(2023, 1, 1) + dt.timedelta(days=day) for day in range(400)]
LEGACY_PAIRS = (("kraken", "BTC-USD"), ("kraken", "ETH-USD"), ("coinbase", "BTC-USD"))


def legacy_candles() -> list[dict[str, Any]]:
    return [legacy_row(day, exchange, symbol) for day in LEGACY_DAYS for exchange, symbol in LEGACY_PAIRS]


def maintenance_in_child(job_name: str, url: str, schema_name: str, config: dict[str, Any]) -> None:
    """A maintenance job in a process of its own (spawned: nothing inherited but its arguments)."""
    from spot_pipeline.definitions import defs

    job = defs().resolve_job_def(job_name)
    database = MarketDatabase(url=url, schema_name=schema_name)
    job.execute_in_process(
        run_config={"ops": config}, resources={"market_db": database}, raise_on_error=False
    )


def kill_when(child: multiprocessing.process.BaseProcess, reached: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not reached() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.is_alive(), "the job finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.join()


def start_child(job_name: str, market_db: MarketDatabase, config: dict[str, Any]) -> multiprocessing.Process:
    child = multiprocessing.get_context("spawn").Process(
        target=maintenance_in_child, args=(job_name, market_db.url, market_db.schema_name, config)
    )
    child.start()
    return child


def rows_in(market_db: MarketDatabase, name: str) -> int:
    with market_db.connect() as connection:
        if name not in sa.inspect(connection).get_table_names(schema=market_db.schema_name):
            return 0
        table = sa.table(name, schema=market_db.schema_name)
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_sigkill_mid_migration_copy(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        insert_rows(connection, replace_with_legacy_table(connection, primary_key=True), legacy_candles())
    original = snapshot_legacy(market_db)
    child = start_child(
        "migrate_ohlcv_timestamps_job",
        market_db,
        {"inspect_ohlcv_table": {"config": {"chunk_rows": 3, "parallel_chunks": 1}}},
    )
    kill_when(child, lambda: rows_in(market_db, MIGRATING_TABLE) > 30)
    copied_when_killed = rows_in(market_db, MIGRATING_TABLE)
    assert trade_timestamps_are_bigint(market_db), "the live table must be the untouched original"
    rerun = migrate_ohlcv_timestamps_job.execute_in_process(resources={"market_db": market_db})
    assert rerun.success
    migrated = snapshot(market_db)
    lost = sum(1 for key in original if key not in migrated)
    observed = f"killed with {copied_when_killed} rows copied, original live; the re-run migrated all"
    record(
        Outcome("sigkill_mid_migration", server_name(market_db), observed, lost, duplicate_keys(market_db))
    )
    assert lost == 0 and len(migrated) == len(original) and not trade_timestamps_are_bigint(market_db)


def snapshot_legacy(market_db: MarketDatabase) -> set[tuple[Any, ...]]:
    with market_db.connect() as connection:
        table = sa.Table(LEGACY_TABLE, sa.MetaData(), schema=market_db.schema_name, autoload_with=connection)
        return {tuple(row) for row in connection.execute(sa.select(*(table.c[name] for name in NATURAL_KEY)))}


def trade_timestamps_are_bigint(market_db: MarketDatabase) -> bool:
    with market_db.connect() as connection:
        columns = sa.inspect(connection).get_columns(LEGACY_TABLE, schema=market_db.schema_name)
    types = {column["name"]: column["type"] for column in columns}
    return isinstance(types["first_trade_timestamp"], sa.Integer)


def test_sigkill_mid_dedupe(market_db: MarketDatabase) -> None:
    rows = legacy_candles()
    revised = [{**row, "close": row["close"] + 1, "collected_at": LATER} for row in rows]
    with market_db.begin() as connection:
        insert_rows(connection, replace_with_legacy_table(connection, primary_key=False), rows + revised)
    child = start_child(
        "deduplicate_ohlcv_job", market_db, {"count_duplicate_candles": {"config": {"batch_days": 1}}}
    )
    kill_when(child, lambda: rows_in(market_db, LEGACY_TABLE) < len(rows) * 2 - 30)
    deleted_when_killed = len(rows) * 2 - rows_in(market_db, LEGACY_TABLE)
    rerun = deduplicate_ohlcv_job.execute_in_process(resources={"market_db": market_db})
    assert rerun.success
    with market_db.connect() as connection:
        table = sa.Table(LEGACY_TABLE, sa.MetaData(), schema=market_db.schema_name, autoload_with=connection)
        survivors = connection.execute(
            sa.select(table.c.datetime, table.c.symbol_unmapped, table.c.close)
        ).all()
    lost = len(rows) - sum(1 for *_, close in survivors if close == rows[0]["close"] + 1)
    observed = f"killed after {deleted_when_killed} rows deleted; the re-run kept the latest of each candle"
    record(Outcome("sigkill_mid_dedupe", server_name(market_db), observed, lost, len(survivors) - len(rows)))
    assert len(survivors) == len(rows) and lost == 0


def test_ingestion_while_dedupe_adds_the_unique_key(
    small_universe: None,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    tmp_path: Path,
) -> None:
    assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    make_unkeyed_with_duplicates(market_db)
    outcomes: dict[str, dg.ExecuteInProcessResult] = {}

    def dedupe() -> None:
        config = {"count_duplicate_candles": {"config": {"add_unique_key": True}}}
        outcomes["dedupe"] = deduplicate_ohlcv_job.execute_in_process(
            run_config={"ops": config}, resources={"market_db": market_db}, raise_on_error=False
        )

    def ingest() -> None:
        outcomes["ingestion"] = materialize_candles(ccdata, market_db, FIRST, YESTERDAY)

    jobs = [threading.Thread(target=dedupe), threading.Thread(target=ingest)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert outcomes["dedupe"].success
    ingestion = outcomes["ingestion"]
    if ingestion.success:
        observed = "ingestion waited for the dedupe, then wrote"
    else:
        assert "add_unique_key: true" in failure_description(ingestion)
        observed = "ingestion refused the unkeyed table, naming the dedupe; re-run after it"
        assert materialize_candles(ccdata, market_db, FIRST, YESTERDAY).success
    score("ingestion_during_dedupe", market_db, clean_run(fake_api, tmp_path), observed)


def make_unkeyed_with_duplicates(market_db: MarketDatabase) -> None:
    """The candle table without its keys (as legacy writers left it), each candle stored twice."""
    with market_db.begin() as connection:
        rows = [dict(row) for row in connection.execute(sa.select(cc_ohlcv_spot_1d_raw)).mappings()]
        unkeyed = sa.Table(
            LEGACY_TABLE,
            sa.MetaData(),
            *(sa.Column(column.name, column.type) for column in cc_ohlcv_spot_1d_raw.columns),
            schema=market_db.schema_name,
        )
        connection.execute(sa.text(f"DROP TABLE {market_db.schema_name}.{LEGACY_TABLE}"))
        unkeyed.create(connection)
        older = [
            {**row, "close": -1.0, "collected_at": row["collected_at"] - dt.timedelta(days=1)} for row in rows
        ]
        connection.execute(unkeyed.insert(), rows + older)


@pytest.mark.parametrize("market_db", ["mysql"], indirect=True)
def test_database_restarted_between_batches(
    small_universe: None, market_db: MarketDatabase, fake_api: FakeCCDataServer, tmp_path: Path
) -> None:
    url = sa.make_url(mysql_url())
    with RestartableProxy(url.host or "127.0.0.1", url.port or 3306) as proxy:
        proxied_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        through_proxy = MarketDatabase(url=proxied_url, schema_name=market_db.schema_name)
        fake_api.latency_seconds = 0.05  # batches spread over a few seconds
        outcome: list[dg.ExecuteInProcessResult] = []
        writer = threading.Thread(
            target=lambda: outcome.append(
                materialize_candles(
                    patient_client(fake_api), through_proxy, FIRST, YESTERDAY, write_batch_rows=100
                )
            )
        )
        writer.start()
        deadline = time.monotonic() + 60
        while len(snapshot(market_db)) < 100 and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_before = len(snapshot(market_db))
        proxy.restart(down_seconds=2.0)
        writer.join()
        fake_api.latency_seconds = 0
        through_proxy.dispose()
    assert outcome[0].success, "the writes did not resume once the database was back"
    observed = f"restarted with {stored_before} candles stored; the writes resumed and the run succeeded"
    score("database_restarted", market_db, clean_run(fake_api, tmp_path), observed)
