"""What an operator does on a fresh production instance, over GraphQL, and what the storage recorded.

On the running deployment: the reference data job (a small universe), the run the daily schedule
requests, then two ranged backfills of the candle asset over overlapping days, launched together. The
fake API holds its answers until both backfills have a run, so one run is caught in the middle of its
API calls, holding the `ohlcv_table_writes` pool slot, while the other one has to wait for it.
The storage queries read Dagster's MySQL tables directly, not through Dagster, so the tests see what
was really recorded there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import HISTORICAL_DAYS_PATH
from spot_pipeline_tests.deployment import (
    Deployment,
    backfill_state,
    launch_asset_backfill,
    schedule_run_tags,
    stop_sensor,
)

CANDLE_ASSET = "cc_ohlcv_spot_1d_raw"
TOP_ASSETS = 3
RUN_TIMEOUT_SECONDS = 180
BACKFILL_TIMEOUT_SECONDS = 240
FINISHED_RUN_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
FINISHED_BACKFILL_STATUSES = frozenset(
    {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
)


@dataclass(frozen=True)
class DayRange:
    first: dt.date
    last: dt.date

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class BackfillRun:
    backfill_id: str
    status: str
    run_id: str
    days: DayRange


@dataclass(frozen=True)
class ProductionRuns:
    reference_run_id: str
    scheduled_run_id: str
    scheduled_days: DayRange
    first_backfill: BackfillRun
    second_backfill: BackfillRun
    # Both backfill runs' statuses while one of them was fetching, hence holding the pool slot.
    backfill_run_statuses_while_one_fetched: dict[str, str]
    candle_requests: int  # to the fake API's historical days endpoint, by every run together

    def candle_run_ids(self) -> list[str]:
        return [self.scheduled_run_id, self.first_backfill.run_id, self.second_backfill.run_id]

    def all_run_ids(self) -> list[str]:
        return [self.reference_run_id, *self.candle_run_ids()]

    def candle_days(self) -> set[dt.date]:
        ranges = (self.scheduled_days, self.first_backfill.days, self.second_backfill.days)
        return {day for days in ranges for day in days.days()}


# --- the operator's actions -------------------------------------------------------------------------


def run_production_scenario(deployment: Deployment) -> ProductionRuns:
    # The scenario's candle runs are the ones it launches: the history sensor (which would fetch the
    # whole history of every new pair) is turned off, as a desk would before its own first backfill.
    stop_sensor(deployment.graphql, "ohlcv_pair_history_sensor")
    reference_run_id = deployment.graphql.submit_job_execution(
        "refresh_reference_data_job",
        run_config={"universe": {"top_assets": TOP_ASSETS}},
    )
    wait_for_run(deployment, reference_run_id)
    scheduled_run_id, scheduled_days = launch_scheduled_candle_run(deployment)
    wait_for_run(deployment, scheduled_run_id)
    first_days = DayRange(deployment.day(6), deployment.day(4))
    second_days = DayRange(deployment.day(5), deployment.day(3))
    first_id, second_id, statuses = launch_overlapping_backfills(deployment, first_days, second_days)
    first_backfill = wait_for_backfill(deployment, first_id, first_days)
    second_backfill = wait_for_backfill(deployment, second_id, second_days)
    return ProductionRuns(
        reference_run_id,
        scheduled_run_id,
        scheduled_days,
        first_backfill,
        second_backfill,
        statuses,
        deployment.fake_api.request_count(HISTORICAL_DAYS_PATH),
    )


def launch_scheduled_candle_run(deployment: Deployment) -> tuple[str, DayRange]:
    """The run ohlcv_daily_schedule requests at today's 00:15 UTC tick, launched as the daemon would."""
    tick = dt.datetime.combine(deployment.today, dt.time(0, 15), tzinfo=dt.UTC)
    tags = schedule_run_tags(deployment.graphql, "ohlcv_daily_schedule", tick)
    days = DayRange(
        dt.date.fromisoformat(tags["dagster/asset_partition_range_start"]),
        dt.date.fromisoformat(tags["dagster/asset_partition_range_end"]),
    )
    return deployment.graphql.submit_job_execution("ohlcv_daily_job", tags=tags), days


def launch_overlapping_backfills(
    deployment: Deployment, first_days: DayRange, second_days: DayRange
) -> tuple[str, str, dict[str, str]]:
    """Both backfill ids, and the status of both runs at a moment when one of them was fetching (its
    API answers held back) and so held the pool slot."""
    fake_api, graphql = deployment.fake_api, deployment.graphql
    fake_api.hold_answers()
    try:
        first_id = launch_asset_backfill(graphql, CANDLE_ASSET, first_days.first, first_days.last)
        second_id = launch_asset_backfill(graphql, CANDLE_ASSET, second_days.first, second_days.last)
        runs = deployment.wait_until(
            lambda: both_runs_while_one_fetches(deployment, first_id, second_id),
            BACKFILL_TIMEOUT_SECONDS,
            "both backfills' runs, one of them fetching",
        )
    finally:
        fake_api.release_answers()
    return first_id, second_id, {run["runId"]: run["status"] for run in runs}


def both_runs_while_one_fetches(
    deployment: Deployment, first_id: str, second_id: str
) -> list[dict[str, Any]] | None:
    runs = [only_run(deployment, first_id), only_run(deployment, second_id)]
    if None in runs or deployment.fake_api.held_requests == 0:
        return None
    return runs


def only_run(deployment: Deployment, backfill_id: str) -> dict[str, Any] | None:
    runs = backfill_state(deployment.graphql, backfill_id)["runs"]
    assert len(runs) <= 1, f"a single-run backfill policy launched {len(runs)} runs"
    return runs[0] if runs else None


def wait_for_run(deployment: Deployment, run_id: str) -> str:
    def finished_status() -> str | None:
        status = deployment.graphql.get_run_status(run_id).value
        return status if status in FINISHED_RUN_STATUSES else None

    status = deployment.wait_until(finished_status, RUN_TIMEOUT_SECONDS, f"run {run_id} to finish")
    assert status == "SUCCESS", f"run {run_id} ended {status}\n{deployment.logs()}"
    return status


def wait_for_backfill(deployment: Deployment, backfill_id: str, days: DayRange) -> BackfillRun:
    def finished_state() -> dict[str, Any] | None:
        state = backfill_state(deployment.graphql, backfill_id)
        return state if state["status"] in FINISHED_BACKFILL_STATUSES else None

    state = deployment.wait_until(finished_state, BACKFILL_TIMEOUT_SECONDS, f"backfill {backfill_id}")
    (run,) = state["runs"]
    return BackfillRun(backfill_id, state["status"], run["runId"], days)


# --- what Dagster's MySQL storage holds -------------------------------------------------------------


@dataclass(frozen=True)
class StepSpan:
    run_id: str
    started: dt.datetime
    ended: dt.datetime


def stored_run_statuses(storage: sa.Connection, run_ids: list[str]) -> dict[str, str]:
    rows = storage.execute(
        sa.text("SELECT run_id, status FROM runs WHERE run_id IN :run_ids").bindparams(
            sa.bindparam("run_ids", expanding=True)
        ),
        {"run_ids": run_ids},
    )
    return dict(rows.all())


def materialized_partitions(storage: sa.Connection, asset: str) -> list[str]:
    """The partition of every ASSET_MATERIALIZATION event of the asset, duplicates kept."""
    rows = storage.execute(
        sa.text(
            "SELECT `partition` FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = :asset_key"
        ),
        {"asset_key": dg.AssetKey(asset).to_string()},
    )
    return list(rows.scalars())


def candle_step_span(storage: sa.Connection, run_id: str) -> StepSpan:
    """When the run's candle step started and succeeded, per the event log."""
    rows = storage.execute(
        sa.text(
            "SELECT dagster_event_type, timestamp FROM event_logs WHERE run_id = :run_id "
            "AND step_key = :step AND dagster_event_type IN ('STEP_START', 'STEP_SUCCESS')"
        ),
        {"run_id": run_id, "step": CANDLE_ASSET},
    )
    times = dict(rows.all())
    return StepSpan(run_id, times["STEP_START"], times["STEP_SUCCESS"])
