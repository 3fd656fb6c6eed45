"""Adopting a market database the old loader filled, by the runbook (docs/operations.md, section 1):
preflight, migration, dedupe, key repair, reference refresh, a backfill over the old days and past
them, then the daily run. On SQLite and on both MariaDB servers (one imitating MySQL 8's defaults),
with the old tables in each legacy collation beside the pipeline's own in the schema's default."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.inspection import reflect_table
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import NATURAL_KEY, TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw
from spot_pipeline.maintenance.adoption.findings import Stage, ordered, render_report
from spot_pipeline.maintenance.adoption.schedules import adoption_preflight_job
from spot_pipeline.maintenance.adoption.survey import adoption_findings
from spot_pipeline.maintenance.deduplication.ops import DeduplicationConfig
from spot_pipeline.maintenance.deduplication.schedules import deduplicate_ohlcv_job
from spot_pipeline.maintenance.table_keys.schedules import repair_table_keys_job
from spot_pipeline.maintenance.timestamp_migration.ops import MigrationConfig
from spot_pipeline.maintenance.timestamp_migration.schedules import migrate_ohlcv_timestamps_job
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.ohlcv.schedules import revision_range
from spot_pipeline.timeutils import utc_now, utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_dev.legacy_loader import LEGACY_COLLATIONS
from spot_pipeline_dev.legacy_tables import legacy_ohlcv_table
from spot_pipeline_tests.conftest import MYSQL_SERVERS
from spot_pipeline_tests.legacy_database import OLD_LAST_RUN, LegacyDatabase, legacy_database
from spot_pipeline_tests.pipeline import (
    REFERENCE_ASSETS,
    failure_description,
    materialize_candles,
    materialize_reference_and_universe,
    output_metadata,
)

ROOT = Path(__file__).resolve().parents[1]
TODAY = utc_today()
YESTERDAY = TODAY - dt.timedelta(days=1)
# The adoption's backfill: over the old loader's last days and past them, up to yesterday.
BACKFILL_FIRST = TODAY - dt.timedelta(days=OLD_LAST_RUN + 6)
UNIVERSE = {"top_assets": 3}
Key = tuple[Any, ...]

BACKENDS = [
    pytest.param(("sqlite", None), id="sqlite"),
    *(
        pytest.param((server, collation), id=f"{server}-{collation}", marks=pytest.mark.mysql)
        for server in MYSQL_SERVERS
        for collation in LEGACY_COLLATIONS
    ),
]


@pytest.fixture(params=BACKENDS)
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LegacyDatabase]:
    backend, collation = request.param
    with legacy_database(backend, collation, tmp_path) as database:
        yield database


@pytest.fixture
def clean(fake_api: FakeCCDataServer, tmp_path: Path) -> Iterator[MarketDatabase]:
    """The universe and the adoption window's candles as a fresh installation stores them."""
    database = MarketDatabase(url=f"sqlite:///{tmp_path / 'clean.sqlite'}")
    client = fake_api.client(calls_per_second=500)
    assert materialize_reference_and_universe(client, database, **UNIVERSE).success
    assert materialize_candles(client, database, BACKFILL_FIRST, YESTERDAY).success
    fake_api.reset_log()
    yield database
    database.dispose()


def universe_of(database: MarketDatabase) -> list[Pair]:
    with database.connect() as connection:
        return queries.load_universe(connection)


def rows_of(database: MarketDatabase, table: sa.Table | str) -> list[dict[str, Any]]:
    """Every row of a live table (read as `table` declares it, or as reflected), read without letting
    the pipeline create anything."""
    with database.untouched_engine() as engine, engine.connect() as connection:
        if isinstance(table, str):
            table = reflect_table(connection, database.schema_name, table)
        return [dict(row) for row in connection.execute(sa.select(table)).mappings()]


def candles(database: MarketDatabase, table: sa.Table = cc_ohlcv_spot_1d_raw) -> dict[Key, dict[str, Any]]:
    return {tuple(row[name] for name in NATURAL_KEY): row for row in rows_of(database, table)}


def old_rows_as_adopted(legacy_rows: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """What each old candle must become: the latest copy of its key, its epochs as UTC datetimes and
    the old loader's zeros ('no trade') as NULL."""
    latest: dict[Key, dict[str, Any]] = {}
    for row in legacy_rows:
        key = tuple(row[name] for name in NATURAL_KEY)
        if key not in latest or row["collected_at"] > latest[key]["collected_at"]:
            latest[key] = row
    return {key: {**row, **_as_datetimes(row)} for key, row in latest.items()}


def _as_datetimes(row: dict[str, Any]) -> dict[str, Any]:
    epoch = dt.datetime(1970, 1, 1)
    return {
        name: None if not row[name] else epoch + dt.timedelta(seconds=row[name])
        for name in TRADE_TIMESTAMP_COLUMNS
    }


def fingerprint(database: MarketDatabase) -> dict[str, list[str]]:
    """Every table of the schema with every row: what 'changes nothing' must leave equal."""
    with database.untouched_engine() as engine, engine.connect() as connection:
        names = sorted(sa.inspect(connection).get_table_names(schema=database.schema_name))
    return {name: sorted(map(repr, rows_of(database, name))) for name in names}


def pair_outside(fake_api: FakeCCDataServer, universe: list[Pair]) -> Pair:
    """A listed, traded instrument the universe leaves out, as the old loader's own lists had."""
    chosen = {(pair.exchange, pair.exchange_instrument_id) for pair in universe}
    for market_key, market in sorted(fake_api.dataset.markets.items()):
        for instrument in market.instruments:
            if (market_key, instrument.instrument) not in chosen and instrument.last_trade_day is None:
                return Pair(market_key, instrument.instrument, instrument.mapped_instrument)
    raise AssertionError("the fake dataset lists no instrument outside the universe")


def run(job: dg.JobDefinition, database: MarketDatabase, **config: Any) -> dg.ExecuteInProcessResult:
    resources = {"market_db": database}
    return job.execute_in_process(run_config=config or None, resources=resources, raise_on_error=False)


def test_the_runbook_adopts_the_old_loaders_database_exactly(
    legacy: LegacyDatabase, clean: MarketDatabase, fake_api: FakeCCDataServer, ccdata: CCDataClient
) -> None:
    pairs = universe_of(clean)
    legacy.fill_as_the_old_loader_did(ccdata, [*pairs, pair_outside(fake_api, pairs)], TODAY)
    database = legacy.market_db
    old = old_rows_as_adopted(rows_of(database, legacy_ohlcv_table(primary_key=False)))
    started = utc_now().replace(microsecond=0)
    fake_api.reset_log()

    preflight_changes_nothing_and_orders_the_steps(database)
    migrate_with_the_option_the_dry_run_names(database)
    dedupe = {"count_duplicate_candles": {"config": DeduplicationConfig(add_unique_key=True).model_dump()}}
    assert run(deduplicate_ohlcv_job, database, ops=dedupe).success
    refresh_is_refused_before_any_request_until_the_keys_are_back(database, ccdata, fake_api)
    assert run(repair_table_keys_job, database, dry_run=True).success
    assert run(repair_table_keys_job, database).success
    assert materialize_reference_and_universe(ccdata, database, **UNIVERSE).success
    assert set(universe_of(database)) == set(pairs)
    assert materialize_candles(ccdata, database, BACKFILL_FIRST, YESTERDAY).success
    first, last = (dt.date.fromisoformat(day) for day in revision_range(YESTERDAY, 3))
    assert materialize_candles(ccdata, database, first, last).success

    stored, expected = candles(database), candles(clean)
    universe = {(pair.exchange, pair.exchange_instrument_id) for pair in pairs}
    window = {key for key in stored if key[0].date() >= BACKFILL_FIRST and key[1:] in universe}
    assert window == set(expected), "the window holds exactly the universe's served candles"
    for key in window:
        assert _values(stored[key]) == _values(expected[key]), key
        assert stored[key]["collected_at"] >= started
    untouched = {key: row for key, row in old.items() if key not in window}
    assert untouched, "the scenario keeps old rows outside the window"
    assert {key: _values(stored[key]) for key in untouched} == {
        key: _values(row) for key, row in untouched.items()
    }
    assert set(stored) == window | set(untouched), "nothing added twice, nothing else added"


def _values(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "collected_at"}


def preflight_changes_nothing_and_orders_the_steps(database: MarketDatabase) -> None:
    before = fingerprint(database)
    result = run(adoption_preflight_job, database)
    assert result.success
    with database.untouched_engine() as engine:
        findings = adoption_findings(engine, database.schema_name)
    steps = [finding for finding in ordered(findings) if finding.needs_action]
    stages = [finding.stage for finding in steps]
    assert stages[:3] == [Stage.MIGRATE, Stage.DEDUPLICATE, Stage.REPAIR_KEYS], stages
    migration = steps[0].step
    assert (
        "invalid_epochs: 'null'" in migration
        and "zeros are the old loader's days without trades" in migration
    )
    assert {finding.subject for finding in steps if finding.stage is Stage.REPAIR_KEYS} == {
        "cc_exchanges_general",
        "cc_instruments_spot",
        "cc_assets",
        "cc_asset_market_data",
    }
    assert output_metadata(result, "order_adoption_steps")["steps_to_take"] == len(steps)
    assert cli_report(database) == render_report(findings)
    assert fingerprint(database) == before, "the preflight wrote something"


def cli_report(database: MarketDatabase) -> str:
    """The report `python -m spot_pipeline.maintenance.adoption` prints for the same database."""
    url = sa.make_url(database.url)
    if url.get_backend_name() != "sqlite":
        url = url.set(database=database.schema_name)
    environment = {**os.environ, "MARKET_DB_URL": url.render_as_string(hide_password=False)}
    completed = subprocess.run(
        [sys.executable, "-m", "spot_pipeline.maintenance.adoption"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.rstrip("\n")


def migrate_with_the_option_the_dry_run_names(database: MarketDatabase) -> None:
    def migration(**config: Any) -> dg.ExecuteInProcessResult:
        run_config = {"ops": {"inspect_ohlcv_table": {"config": MigrationConfig(**config).model_dump()}}}
        return run(migrate_ohlcv_timestamps_job, database, **run_config)

    dry_run = migration(dry_run=True)
    outcome = output_metadata(dry_run, "inspect_ohlcv_table")["dry_run_outcome"]
    assert "zeros are what the old loader wrote for a day without trades" in outcome
    assert "set invalid_epochs to 'null'" in outcome
    assert migration(invalid_epochs="null").success


def refresh_is_refused_before_any_request_until_the_keys_are_back(
    database: MarketDatabase, ccdata: CCDataClient, fake_api: FakeCCDataServer
) -> None:
    refused = dg.materialize(
        REFERENCE_ASSETS, resources={"ccdata": ccdata, "market_db": database}, raise_on_error=False
    )
    assert not refused.success
    assert fake_api.request_count() == 0, "a refused table is named before any request"
    assert "repair_table_keys_job" in failure_description(refused, "cc_exchanges_general")
