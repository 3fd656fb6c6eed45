"""What the alert sensors read from Dagster's storage: finished runs after a storage id, and what a
finished run reported (its failed steps, its check evaluations).

Both sensors follow run status changes (`RUN_FAILURE`, and for checks every end of a run) through
`DagsterInstance.fetch_run_status_changes`, whose storage ids grow across runs on every storage
(MySQL, and the SQLite instance's index shard, where run status changes are mirrored). Check
evaluations are read per finished run (`get_records_for_run`): reading them by event type after a
storage id needs a run-sharded cursor on the SQLite instance and goes through a deprecated API, while
a run's own records are the same on every storage. An evaluation is final once its run has ended, so
nothing is missed: a freshness check, launched in a run of its own, is read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from spot_pipeline.alerts.messages import CheckAlert, RunFailure, retry_note, run_window

# Dagster's tag on the runs of a backfill.
BACKFILL_TAG = "dagster/backfill"
FAILED_RUN = (dg.DagsterEventType.RUN_FAILURE,)
ENDED_RUN = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)


def run_ends_after(
    instance: dg.DagsterInstance,
    event_types: Sequence[dg.DagsterEventType],
    after_storage_id: int,
    limit: int,
) -> list[dg.EventLogRecord]:
    """Run status changes of these types after the storage id, oldest first. With several types, a
    page of one type that was cut at `limit` bounds the others, so no later record jumps a gap."""
    pages = [
        instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after_storage_id),
            limit=limit,
            ascending=True,
        )
        for event_type in event_types
    ]
    complete_up_to = min((page.records[-1].storage_id for page in pages if page.has_more), default=None)
    records = sorted((record for page in pages for record in page.records), key=lambda r: r.storage_id)
    return [r for r in records if complete_up_to is None or r.storage_id <= complete_up_to]


def latest_storage_id(instance: dg.DagsterInstance, event_types: Sequence[dg.DagsterEventType]) -> int:
    """The storage id of the newest run status change of these types, -1 when there is none."""
    newest = [
        page.records[0].storage_id
        for page in (instance.fetch_run_status_changes(event_type, limit=1) for event_type in event_types)
        if page.records
    ]
    return max(newest, default=-1)


def run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun, failure: dg.EventLogEntry) -> RunFailure:
    """The failed run as its alert tells it: Dagster's summary and each failed step's own report."""
    steps = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    failed_steps = [
        (record.event_log_entry.step_key or "?", _step_report(record.event_log_entry))
        for record in steps
        if record.event_log_entry.dagster_event is not None
    ]
    return RunFailure(
        job_name=job_label(run),
        window=run_window(run.tags, run.run_config),
        attempt=retry_note(run.tags),
        summary=_run_summary(failure, with_error=not failed_steps),
        failed_steps=failed_steps,
    )


def failed_checks(
    instance: dg.DagsterInstance, run: dg.DagsterRun, asset_key: dg.AssetKey
) -> list[CheckAlert]:
    """The run's check evaluations of the asset that failed or warned, in the order it made them."""
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [
        record.event_log_entry.dagster_event.asset_check_evaluation_data
        for record in records.records
        if record.event_log_entry.dagster_event is not None
    ]
    return [
        CheckAlert(
            asset=asset_key.to_user_string(),
            check_name=evaluation.check_name,
            severity=evaluation.severity.value,
            job_name=job_label(run),
            window=evaluation.partition or run_window(run.tags, run.run_config),
            description=evaluation.description,
            metadata=evaluation.metadata,
        )
        for evaluation in evaluations
        if evaluation.asset_key == asset_key and not evaluation.passed
    ]


def job_label(run: dg.DagsterRun) -> str:
    """The run's job; for the UI's hidden asset jobs (`__ASSET_JOB`), the assets it materialized
    instead; and the backfill it belongs to."""
    label = run.job_name
    assets = sorted(key.to_user_string() for key in run.asset_selection or ())
    if label.startswith("__") and assets:
        label = "assets " + ", ".join(assets)
    backfill = run.tags.get(BACKFILL_TAG)
    return f"{label} (backfill {backfill})" if backfill else label


def _run_summary(failure: dg.EventLogEntry, with_error: bool) -> str:
    """Dagster's own words for the run's failure, with its error when no step reported one (a worker
    that died, a start that timed out)."""
    event = failure.dagster_event
    summary = (event.message if event is not None else None) or failure.user_message
    data = event.job_failure_data if event is not None else None
    if with_error and data is not None and data.error is not None:
        summary += "\n" + data.error.message
    return summary


def _step_report(entry: dg.EventLogEntry) -> str:
    """What a failed step said: a `dg.Failure`'s description (the failed pairs, one a line), else its
    error and the error's cause."""
    data = entry.get_dagster_event().step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    if data.error is None:
        return "failed without an error message: see the run's log"
    report = data.error.message
    if data.error.cause is not None:
        report += f"\ncaused by {data.error.cause.message}"
    return report
