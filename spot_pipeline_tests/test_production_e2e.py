"""The production instance end to end: deploy/dagster.yaml on MariaDB, a real webserver and daemon,
runs launched over GraphQL against the fake API (see production_runs.py for what is launched)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline_tests.deployment import Deployment
from spot_pipeline_tests.pipeline import served_candles, utc
from spot_pipeline_tests.production_runs import (
    CANDLE_ASSET,
    ProductionRuns,
    candle_step_span,
    materialized_partitions,
    stored_run_statuses,
)

pytestmark = pytest.mark.mysql

CandleKey = tuple[str, str, dt.datetime]
WAITING_RUN_STATUSES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED"}


@pytest.fixture
def storage(dagster_deployment: Deployment) -> Iterator[sa.Connection]:
    """A connection to Dagster's own MySQL storage database."""
    engine = dagster_deployment.storage_engine()
    with engine.connect() as connection:
        yield connection
    engine.dispose()


@pytest.fixture
def market(dagster_deployment: Deployment) -> Iterator[sa.Connection]:
    """A connection to the database holding the market tables the runs wrote."""
    engine = dagster_deployment.market_engine()
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def universe_pairs(market: sa.Connection) -> list[Pair]:
    rows = market.execute(
        sa.text("SELECT exchange, exchange_instrument_id, mapped_instrument FROM spot_universe")
    )
    return [Pair(*row) for row in rows]


def stored_candles(market: sa.Connection) -> dict[CandleKey, tuple]:
    rows = market.execute(
        sa.text(
            f"SELECT exchange, symbol_unmapped, datetime, open, high, low, close, volume FROM {CANDLE_ASSET}"
        )
    )
    return {(exchange, symbol, day): tuple(values) for exchange, symbol, day, *values in rows}


def expected_candles(deployment: Deployment, pairs: list[Pair], days: set[dt.date]) -> dict[CandleKey, tuple]:
    """The candles the fake API serves for the pairs over the days, placeholders before listing left out."""
    expected = {}
    for pair in pairs:
        for candle in served_candles(deployment.fake_api, pair, max(days), len(days), deployment.api_key):
            if any(candle[price] for price in ("OPEN", "HIGH", "LOW", "CLOSE")):
                key = (candle["MARKET"], candle["INSTRUMENT"], utc(candle["TIMESTAMP"]))
                expected[key] = tuple(candle[field] for field in ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"))
    return expected


def test_every_run_succeeded_and_is_recorded_in_the_mysql_run_storage(
    production_runs: ProductionRuns, storage: sa.Connection
) -> None:
    assert production_runs.first_backfill.status == "COMPLETED_SUCCESS"
    assert production_runs.second_backfill.status == "COMPLETED_SUCCESS"
    run_ids = production_runs.all_run_ids()
    assert stored_run_statuses(storage, run_ids) == dict.fromkeys(run_ids, "SUCCESS")


def test_each_candle_day_is_materialized_once_per_run_covering_it_in_the_mysql_event_log(
    production_runs: ProductionRuns, storage: sa.Connection
) -> None:
    ranges = (
        production_runs.scheduled_days,
        production_runs.first_backfill.days,
        production_runs.second_backfill.days,
    )
    expected = Counter(day.isoformat() for days in ranges for day in days.days())
    assert Counter(materialized_partitions(storage, CANDLE_ASSET)) == expected
    assert len(expected) == 6 and max(expected.values()) == 2, "the backfills were meant to overlap"


def test_the_market_table_holds_exactly_the_served_candles_of_the_universe(
    production_runs: ProductionRuns, dagster_deployment: Deployment, market: sa.Connection
) -> None:
    pairs = universe_pairs(market)
    assert pairs, "the reference data run left an empty universe"
    expected = expected_candles(dagster_deployment, pairs, production_runs.candle_days())
    stored = stored_candles(market)
    assert stored.keys() == expected.keys()
    assert stored == expected
    assert {exchange for exchange, _, _ in stored} == {pair.exchange for pair in pairs}


def test_each_candle_run_sends_one_request_per_universe_pair(
    production_runs: ProductionRuns, market: sa.Connection
) -> None:
    runs = len(production_runs.candle_run_ids())
    assert production_runs.candle_requests == runs * len(universe_pairs(market))


def test_a_second_backfill_waits_for_the_pool_slot_and_the_candle_steps_never_overlap(
    production_runs: ProductionRuns, storage: sa.Connection
) -> None:
    backfill_runs = {production_runs.first_backfill.run_id, production_runs.second_backfill.run_id}
    statuses = production_runs.backfill_run_statuses_while_one_fetched
    assert statuses.keys() == backfill_runs
    assert set(statuses.values()) <= WAITING_RUN_STATUSES, "a run finished while the other one fetched"
    spans = sorted(
        (candle_step_span(storage, run_id) for run_id in production_runs.candle_run_ids()),
        key=lambda span: span.started,
    )
    assert len(spans) == 3
    for earlier, later in itertools.pairwise(spans):
        assert earlier.ended <= later.started, (earlier, later)


def test_no_candle_is_stored_twice(production_runs: ProductionRuns, market: sa.Connection) -> None:
    duplicates = market.execute(
        sa.text(
            f"SELECT datetime, exchange, symbol_unmapped FROM {CANDLE_ASSET} "
            "GROUP BY datetime, exchange, symbol_unmapped HAVING COUNT(*) > 1"
        )
    ).all()
    assert duplicates == []
    assert market.execute(sa.text(f"SELECT COUNT(*) FROM {CANDLE_ASSET}")).scalar_one() > 0


def test_the_api_key_reaches_neither_the_logs_nor_dagsters_storage(
    production_runs: ProductionRuns, dagster_deployment: Deployment, storage: sa.Connection
) -> None:
    key = dagster_deployment.api_key
    assert dagster_deployment.fake_api.requests, "the fake API saw no request"
    for process in dagster_deployment.processes:
        assert key not in process.log_path.read_text(errors="replace"), process.name
    pattern = {"pattern": f"%{key}%"}
    assert (
        storage.execute(
            sa.text("SELECT COUNT(*) FROM event_logs WHERE event LIKE :pattern"), pattern
        ).scalar_one()
        == 0
    )
    assert (
        storage.execute(
            sa.text("SELECT COUNT(*) FROM runs WHERE run_body LIKE :pattern"), pattern
        ).scalar_one()
        == 0
    )
