"""Run the project's assets the way Dagster does, against the fake API and a test database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import requests

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import HISTORICAL_DAYS_PATH
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.ohlcv.assets import CandleRunConfig, cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.ohlcv.schedules import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from spot_pipeline.reference_data.assets import asset_top_list, cc_exchanges_general, cc_instruments_spot
from spot_pipeline.universe.assets import UniverseConfig, spot_universe
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer

REFERENCE_ASSETS = [cc_exchanges_general, cc_instruments_spot, asset_top_list]


def materialize_reference_and_universe(
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    instance: dg.DagsterInstance | None = None,
    **universe_config: Any,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*REFERENCE_ASSETS, spot_universe],
        resources={"ccdata": ccdata, "market_db": market_db},
        run_config=dg.RunConfig({"spot_universe": UniverseConfig(**universe_config)}),
        instance=instance,
    )


def materialize_candles(
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    first: dt.date,
    last: dt.date,
    instance: dg.DagsterInstance | None = None,
    **config: Any,
) -> dg.ExecuteInProcessResult:
    """One run over the partitions first..last (inclusive), as a backfill or the schedule launches it."""
    return dg.materialize(
        [cc_ohlcv_spot_1d_raw],
        resources={"ccdata": ccdata, "market_db": market_db},
        tags={PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: last.isoformat()},
        run_config=dg.RunConfig({"cc_ohlcv_spot_1d_raw": CandleRunConfig(**config)}),
        raise_on_error=False,
        instance=instance,
    )


def candle_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The metadata of the run's materialization, or of its failure."""
    materializations = result.asset_materializations_for_node("cc_ohlcv_spot_1d_raw")
    if materializations:
        return {key: value.value for key, value in materializations[0].metadata.items()}
    failure = result.failure_data_for_node("cc_ohlcv_spot_1d_raw")
    assert failure is not None and failure.user_failure_data is not None
    return {key: value.value for key, value in failure.user_failure_data.metadata.items()}


def failure_description(result: dg.ExecuteInProcessResult, node: str = "cc_ohlcv_spot_1d_raw") -> str:
    return result.failure_data_for_node(node).user_failure_data.description


def served_candles(
    fake_api: FakeCCDataServer, pair: Pair, last_day: dt.date, days: int, api_key: str | None = None
) -> list[dict[str, object]]:
    """What the API serves for a pair, fetched without the project's client."""
    to_ts = int(dt.datetime(last_day.year, last_day.month, last_day.day, tzinfo=dt.UTC).timestamp())
    response = requests.get(
        f"{fake_api.data_api_url}{HISTORICAL_DAYS_PATH}",
        params={
            "market": pair.exchange,
            "instrument": pair.exchange_instrument_id,
            "limit": days,
            "to_ts": to_ts,
        },
        headers={"authorization": f"Apikey {api_key}"} if api_key else {},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["Data"]


def utc(seconds: object) -> dt.datetime | None:
    """Unix seconds as the naive UTC DATETIME the tables hold."""
    return None if seconds is None else dt.datetime.fromtimestamp(int(seconds), dt.UTC).replace(tzinfo=None)


# --- Job and step results ---------------------------------------------------------------------------


def step_error(result: dg.ExecuteInProcessResult) -> str:
    """The error of the first failed step, as text."""
    failures = [event for event in result.all_events if event.is_step_failure]
    assert failures, "expected a failed step"
    return failures[0].step_failure_data.error.to_string()


def steps(result: dg.ExecuteInProcessResult, event_type: str) -> set[str]:
    """The steps that emitted `event_type` (STEP_START, STEP_SUCCESS, STEP_SKIPPED, ...)."""
    return {event.step_key for event in result.all_events if event.event_type_value == event_type}


def output_metadata(result: dg.ExecuteInProcessResult, step: str) -> dict[str, Any]:
    """The metadata of every output of one step, merged, as plain values."""
    return {
        key: value.value
        for event in result.all_events
        if event.event_type_value == "STEP_OUTPUT" and event.step_key == step
        for key, value in event.event_specific_data.metadata.items()
    }
