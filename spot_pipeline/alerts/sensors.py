"""The alert sensors: one message per failed run, one per failed or warning candle check evaluation,
each delivered once, however long the receiver is down.

Why plain sensors with a cursor of their own, not `dg.run_failure_sensor`: a run-status sensor
moves its cursor past a run even when its function raises (the daemon keeps the cursor of such a
failed tick, since "run status sensors have side effects"), so a post that failed would never be
retried. Here the cursor is a `Position` in the run status changes the sensor follows (storage ids,
see `events.py`), and it only moves past an alert once the receiver has taken it:

- receiver down (no connection, timeout, 408, 429, 5xx) before anything was posted in the tick: the
  tick fails naming the waiting alert, Dagster keeps the previous cursor, and the next tick (every
  `TICK_INTERVAL_SECONDS`) posts it again; after some were posted: the tick ends with the cursor
  after the last one taken, so none is posted twice;
- receiver refuses (any other 4xx, a redirect): the URL is wrong or revoked and stays so until an
  operator fixes `ALERT_WEBHOOK_URL`; the alert is logged as refused on the tick and given up, so one
  bad URL does not turn every later tick into a failure;
- a tick posts at most `MAX_POSTS_PER_TICK` alerts and starts none after `POSTING_BUDGET_SECONDS`
  (each POST times out on its own), so it stays well inside the daemon's sensor timeout; a backlog
  drains over the next ticks.

A receiver that took a message but answered after the timeout gets it again (at least once, in that
case only). Sensors run in the daemon and the code server, never in a run: a run never waits for an
alert. Without a webhook URL the sensors skip, keeping their cursor at the newest run, so alerts turned
on later start from then instead of replaying history; their first tick starts from the newest run too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from spot_pipeline.alerts.events import (
    ENDED_RUN,
    FAILED_RUN,
    failed_checks,
    latest_storage_id,
    run_ends_after,
    run_failure,
)
from spot_pipeline.alerts.messages import check_message, redact, run_failure_message
from spot_pipeline.alerts.webhook import WEBHOOK_URL_VARIABLE, AlertWebhook, Delivery, PostOutcome
from spot_pipeline.db.schema import cc_ohlcv_spot_1d_raw
from spot_pipeline.settings import secret_values

TICK_INTERVAL_SECONDS = 30
MAX_RECORDS_PER_TICK = 100
MAX_POSTS_PER_TICK = 20
POSTING_BUDGET_SECONDS = 30
CANDLE_ASSET = dg.AssetKey(cc_ohlcv_spot_1d_raw.name)


class AlertReceiverUnavailable(Exception):
    """The webhook receiver did not take an alert; it stays pending for the next tick."""


@dataclass(frozen=True)
class Alert:
    about: str
    body: dict[str, str]


@dataclass(frozen=True)
class Position:
    """Every run status change before `next_event` is handled, and so are the first `sent` alerts of
    `next_event` itself (a run with several failed checks may have been posted in part)."""

    next_event: int
    sent: int = 0

    def to_cursor(self) -> str:
        return json.dumps({"next_event": self.next_event, "sent": self.sent})

    @classmethod
    def from_cursor(cls, cursor: str | None) -> Position | None:
        try:
            saved = json.loads(cursor or "")
            return cls(int(saved["next_event"]), int(saved["sent"]))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class Feed:
    """What a sensor alerts on: the run status changes it follows, and the alerts each one makes."""

    event_types: Sequence[dg.DagsterEventType]
    alerts: Callable[[dg.SensorEvaluationContext, AlertWebhook, dg.EventLogRecord], list[Alert]]


@dataclass
class Tally:
    """What a tick posted, for its skip reason."""

    posted: int = 0
    refused: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.posted + len(self.refused)

    def result(self, position: Position, note: str = "") -> dg.SensorResult:
        said = f"posted {self.posted} alert(s)" if self.attempted else "nothing to report"
        if self.refused:
            said += f"; refused by the receiver, not sent again: {'; '.join(self.refused)}"
        return dg.SensorResult(skip_reason=said + (f"; {note}" if note else ""), cursor=position.to_cursor())


def alert_tick(context: dg.SensorEvaluationContext, webhook: AlertWebhook, feed: Feed) -> dg.SensorResult:
    """One tick of an alert sensor: post what ended since the cursor, or skip while alerts are off."""
    if not webhook.enabled:
        newest = Position(latest_storage_id(context.instance, feed.event_types) + 1)
        return dg.SensorResult(
            skip_reason=f"alerts are off: {WEBHOOK_URL_VARIABLE} is not set", cursor=newest.to_cursor()
        )
    position = Position.from_cursor(context.cursor)
    if position is None:
        start = Position(latest_storage_id(context.instance, feed.event_types) + 1)
        return dg.SensorResult(
            skip_reason="alerting on the runs that end from now on", cursor=start.to_cursor()
        )
    return _post_pending(context, webhook, feed, position)


def _post_pending(
    context: dg.SensorEvaluationContext, webhook: AlertWebhook, feed: Feed, position: Position
) -> dg.SensorResult:
    records = run_ends_after(
        context.instance, feed.event_types, position.next_event - 1, MAX_RECORDS_PER_TICK
    )
    tally, deadline = Tally(), time.monotonic() + POSTING_BUDGET_SECONDS
    for record in records:
        alerts = feed.alerts(context, webhook, record)
        first = position.sent if record.storage_id == position.next_event else 0
        for index in range(first, len(alerts)):
            if tally.attempted and (tally.attempted >= MAX_POSTS_PER_TICK or time.monotonic() > deadline):
                return tally.result(position, "the rest follows at the next tick")
            outcome = webhook.post(alerts[index].body)
            if outcome.delivery is Delivery.RETRY_LATER:
                if not tally.attempted:
                    raise AlertReceiverUnavailable(_still_pending(alerts[index], outcome))
                return tally.result(position, f"then {outcome.detail}: the rest is posted at the next tick")
            _count(context, tally, alerts[index], outcome)
            position = Position(record.storage_id, index + 1)
        position = Position(record.storage_id + 1)
    return tally.result(position)


def _count(context: dg.SensorEvaluationContext, tally: Tally, alert: Alert, outcome: PostOutcome) -> None:
    if outcome.delivery is Delivery.DELIVERED:
        tally.posted += 1
        return
    refusal = f"{alert.about}: {redact(outcome.detail, secret_values(os.environ))}"
    context.log.error(f"Alert refused for good, check {WEBHOOK_URL_VARIABLE}: {refusal}")
    tally.refused.append(refusal)


def _still_pending(alert: Alert, outcome: PostOutcome) -> str:
    return (
        f"The alert for {alert.about} was not delivered: {outcome.detail}. It stays pending and is "
        f"posted at the next tick (every {TICK_INTERVAL_SECONDS} s) once the receiver answers."
    )


def _run_of(context: dg.SensorEvaluationContext, record: dg.EventLogRecord) -> dg.DagsterRun | None:
    return context.instance.get_run_by_id(record.event_log_entry.run_id)


def _failed_run_alerts(
    context: dg.SensorEvaluationContext, webhook: AlertWebhook, record: dg.EventLogRecord
) -> list[Alert]:
    """The failed run's alert, for runs of this code location's jobs."""
    run = _run_of(context, record)
    repository = context.repository_def
    if run is None or (repository is not None and not repository.has_job(run.job_name)):
        return []
    failure = run_failure(context.instance, run, record.event_log_entry)
    body = run_failure_message(failure, webhook.run_url(run.run_id), secret_values(os.environ))
    return [Alert(f"failed run {run.run_id} of {run.job_name}", body)]


def _failed_check_alerts(
    context: dg.SensorEvaluationContext, webhook: AlertWebhook, record: dg.EventLogRecord
) -> list[Alert]:
    """An alert per failed or warning check evaluation of the candle asset in the run that ended."""
    run = _run_of(context, record)
    if run is None:
        return []
    secrets = secret_values(os.environ)
    return [
        Alert(
            f"check {alert.check_name} in run {run.run_id}",
            check_message(alert, webhook.run_url(run.run_id), secrets),
        )
        for alert in failed_checks(context.instance, run, CANDLE_ASSET)
    ]


RUN_FAILURES = Feed(FAILED_RUN, _failed_run_alerts)
CANDLE_CHECK_FAILURES = Feed(ENDED_RUN, _failed_check_alerts)


@dg.sensor(
    minimum_interval_seconds=TICK_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts one message per failed run of this code location to {WEBHOOK_URL_VARIABLE}: the job, "
    "its window, the failed pairs with their reasons, the run's link. A receiver that is down gets it later.",
)
def run_failure_alert_sensor(
    context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
) -> dg.SensorResult:
    """One message per failed run, posted to the alert webhook, retried until the receiver takes it."""
    return alert_tick(context, alert_webhook, RUN_FAILURES)


@dg.sensor(
    minimum_interval_seconds=TICK_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts one message per failed or warning check of {CANDLE_ASSET.to_user_string()} "
    f"(window checks, freshness) to {WEBHOOK_URL_VARIABLE}: the check, its severity, the window, its counts "
    "and first example rows, the run's link.",
)
def candle_check_alert_sensor(
    context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
) -> dg.SensorResult:
    """One message per failed or warning candle check evaluation, once the run that made it has ended."""
    return alert_tick(context, alert_webhook, CANDLE_CHECK_FAILURES)
