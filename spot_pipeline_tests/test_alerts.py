"""Alerts end to end: real runs of the candle job on a persistent Dagster instance (SQLite, or MariaDB
storage beside the MariaDB market tables), the alert sensors evaluated through Dagster's testing API
as the daemon would, tick after tick with the cursor each tick leaves, and a real local webhook
receiver that goes down, answers 5xx, stalls or refuses.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.alerts import sensors
from spot_pipeline.alerts.definitions import defs as alert_defs
from spot_pipeline.alerts.events import job_label
from spot_pipeline.alerts.messages import (
    MAX_DETAIL_LINES,
    MAX_TEXT_CHARS,
    RunFailure,
    retry_note,
    run_failure_message,
    run_window,
)
from spot_pipeline.alerts.sensors import (
    AlertReceiverUnavailable,
    candle_check_alert_sensor,
    run_failure_alert_sensor,
)
from spot_pipeline.alerts.webhook import ALERTS_OFF, AlertWebhook, Delivery
from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import HISTORICAL_DAYS_PATH
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.assets import cc_ohlcv_spot_1d_raw as candle_asset
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.ohlcv.definitions import defs as candle_defs
from spot_pipeline.ohlcv.schedules import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from spot_pipeline.timeutils import utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_dev.webhook_receiver import WebhookReceiver
from spot_pipeline_tests.conftest import mysql_url

YESTERDAY = utc_today() - dt.timedelta(days=1)
FIRST_DAY = YESTERDAY - dt.timedelta(days=2)
FIVE_DAYS_AGO = YESTERDAY - dt.timedelta(days=4)
WEBSERVER = "http://dagster.desk.test:3000"
# The values the fault suite's secret scan looks for.
SECRET_KEY = "key-0123-RECOGNISABLE-4567"
SECRET_PASSWORD = "pw-RECOGNISABLE-89"
OTHER_PASSWORD = "pw-nowhere-in-the-environment"
STORAGE_PASSWORD = "pw-dagster-storage-RECOGNISABLE"


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as webhook_receiver:
        yield webhook_receiver


@pytest.fixture
def dagster_instance(market_db: MarketDatabase, tmp_path) -> Iterator[dg.DagsterInstance]:
    """A persistent instance with run retries on, stored like the market tables: SQLite files, or a
    private database of the MariaDB server (as deploy/dagster.yaml stores it)."""
    overrides: dict[str, object] = {"run_retries": {"enabled": True}}
    home = tmp_path / "dagster_home"
    home.mkdir()
    if market_db.engine.dialect.name != "mysql":
        with dg.instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
            yield instance
        return
    server = sa.make_url(mysql_url())
    database = f"alerts_dagster_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{database}`")
    storage_url = server.set(database=database).render_as_string(hide_password=False)
    try:
        overrides["storage"] = {"mysql": {"mysql_url": storage_url}}
        with dg.instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
            yield instance
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
        engine.dispose()


@dataclass
class Ticker:
    """Evaluates a sensor as the daemon does: each tick gets the cursor the last successful tick left."""

    sensor: dg.SensorDefinition
    instance: dg.DagsterInstance
    definitions: dg.Definitions
    cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.definitions,
            resources={"alert_webhook": self.definitions.resources["alert_webhook"]},
        ) as context:
            result = self.sensor(context)
        self.cursor = result.cursor
        return result

    def said(self) -> str:
        """Tick, and return the tick's skip reason (an alert sensor requests no run)."""
        return self.tick().skip_reason.skip_message


@dataclass
class Desk:
    """The candle domain and the alerts on one instance, the fake API and the receiver: what a test
    needs to make runs fail or warn and to watch the alerts arrive."""

    instance: dg.DagsterInstance
    market_db: MarketDatabase
    fake_api: FakeCCDataServer
    receiver: WebhookReceiver

    def location(self, webhook: AlertWebhook | None = None) -> dg.Definitions:
        """The candle domain and the alerts, with their resources, as the code location merges them.
        The client fetches one pair at a time with two fast retries, so that `failed_run` fails one."""
        client = self.fake_api.client(
            calls_per_second=500, max_concurrency=1, max_retries=2, backoff_base_seconds=0.01
        )
        webhook = webhook if webhook is not None else self.webhook()
        resources = {"ccdata": client, "market_db": self.market_db, "alert_webhook": webhook}
        return dg.Definitions.merge(candle_defs, alert_defs, dg.Definitions(resources=resources))

    def webhook(self, **settings: object) -> AlertWebhook:
        return AlertWebhook(url=self.receiver.url, webserver_url=WEBSERVER, **settings)

    def watching(self, sensor: dg.SensorDefinition, definitions: dg.Definitions | None = None) -> Ticker:
        """The sensor after its first tick, which starts it from the newest run."""
        ticker = Ticker(sensor, self.instance, definitions or self.location())
        ticker.tick()
        return ticker

    def run(self, definitions: dg.Definitions, first: dt.date = FIRST_DAY) -> dg.ExecuteInProcessResult:
        """One run of ohlcv_daily_job over first..yesterday, as the schedule launches it."""
        return definitions.resolve_job_def("ohlcv_daily_job").execute_in_process(
            instance=self.instance,
            tags={
                PARTITION_RANGE_START_TAG: first.isoformat(),
                PARTITION_RANGE_END_TAG: YESTERDAY.isoformat(),
            },
            raise_on_error=False,
        )

    def failed_run(self, definitions: dg.Definitions) -> dg.ExecuteInProcessResult:
        """A run that fails its first pair: that pair's attempt and both retries get 503."""
        self.fake_api.fail_next(3, status=503, path=HISTORICAL_DAYS_PATH)
        result = self.run(definitions)
        assert not result.success
        return result


@pytest.fixture
def desk(
    universe: list[Pair],
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    dagster_instance: dg.DagsterInstance,
    receiver: WebhookReceiver,
) -> Desk:
    return Desk(dagster_instance, market_db, fake_api, receiver)


# --- the run-failure sensor -------------------------------------------------------------------------


def test_a_failed_candle_run_posts_one_message_with_its_job_window_failed_pair_and_link(
    desk: Desk, universe: list[Pair]
) -> None:
    definitions = desk.location()
    sensor = desk.watching(run_failure_alert_sensor, definitions)

    failed = desk.failed_run(definitions)
    assert sensor.said() == "posted 1 alert(s)"
    assert sensor.said() == "nothing to report"

    [text] = desk.receiver.texts()
    assert "Run failed: ohlcv_daily_job" in text
    assert f"Window: {FIRST_DAY} to {YESTERDAY}" in text
    assert "attempt 1 of 3, a retry follows" in text
    assert "1 pair(s) failed" in text and str(universe[0]) in text and "HTTP 503" in text
    assert text.endswith(f"{WEBSERVER}/runs/{failed.run_id}")


def test_runs_that_succeed_post_nothing(desk: Desk) -> None:
    definitions = desk.location()
    sensors = [desk.watching(sensor, definitions) for sensor in alert_defs.sensors]

    desk.fake_api.dataset.no_trade_day_one_in = 0  # every pair trades every day: every check passes
    result = desk.run(definitions, first=YESTERDAY)

    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert [sensor.said() for sensor in sensors] == ["nothing to report"] * 2
    assert desk.receiver.attempts == 0


def test_a_receiver_down_then_up_gets_the_message_exactly_once(desk: Desk) -> None:
    definitions = desk.location()
    sensor = desk.watching(run_failure_alert_sensor, definitions)
    desk.receiver.stop()

    failed = desk.failed_run(definitions)
    for _ in range(2):  # the tick fails, and Dagster keeps the cursor of the last tick that ended
        with pytest.raises(AlertReceiverUnavailable, match=f"run {failed.run_id} .* stays pending") as down:
            sensor.tick()
        assert "127.0.0.1 is unreachable" in str(down.value) and "local-token" not in str(down.value)
    desk.receiver.start()
    sensor.tick()
    sensor.tick()

    assert [failed.run_id in text for text in desk.receiver.texts()] == [True]


def test_a_5xx_after_some_messages_keeps_the_posted_ones_and_retries_the_rest(desk: Desk) -> None:
    definitions = desk.location()
    sensor = desk.watching(run_failure_alert_sensor, definitions)
    runs = [desk.failed_run(definitions).run_id for _ in range(2)]

    desk.receiver.fail_next(1, 503, after=1)
    interrupted = sensor.said()
    assert interrupted.startswith("posted 1 alert(s)") and "HTTP 503" in interrupted
    assert sensor.said() == "posted 1 alert(s)"

    assert [run_id for text in desk.receiver.texts() for run_id in runs if run_id in text] == runs


def test_a_receiver_that_refuses_the_url_is_logged_and_not_retried(desk: Desk) -> None:
    revoked = AlertWebhook(url=desk.receiver.url.replace("local-token", "revoked-token"))
    definitions = desk.location(revoked)
    sensor = desk.watching(run_failure_alert_sensor, definitions)
    desk.failed_run(definitions)

    said = sensor.said()
    assert "refused by the receiver, not sent again" in said and "HTTP 404 (no_service)" in said
    assert "revoked-token" not in said
    assert sensor.said() == "nothing to report"
    assert desk.receiver.attempts == 1 and desk.receiver.messages == []


def test_a_stalled_receiver_costs_a_tick_its_timeout_and_gets_the_message_later(desk: Desk) -> None:
    definitions = desk.location(desk.webhook(timeout_seconds=1))
    sensor = desk.watching(run_failure_alert_sensor, definitions)
    desk.failed_run(definitions)

    desk.receiver.stall_next(1, seconds=30)
    started = time.monotonic()
    with pytest.raises(AlertReceiverUnavailable, match=r"did not answer within 1\.0 s"):
        sensor.tick()
    assert time.monotonic() - started < 5
    sensor.tick()
    assert len(desk.receiver.messages) == 1


def test_no_job_waits_for_an_alert() -> None:
    """The webhook is a sensor resource only: no step of any job can block on the receiver."""
    from spot_pipeline.definitions import defs

    repository = defs().get_repository_def()
    assert all("alert_webhook" not in job.required_resource_keys for job in repository.get_all_jobs())


# --- secrets ----------------------------------------------------------------------------------------


@dg.op
def connect_to_the_market_database() -> None:
    raise RuntimeError(
        f"could not connect to mysql+mysqlconnector://spot:{SECRET_PASSWORD}@db.internal/market "
        f"(password {SECRET_PASSWORD} refused), nor to mysql://reader:{OTHER_PASSWORD}@replica.internal/market"
    )


@dg.op
def call_the_provider() -> None:
    raise dg.Failure(
        description=f"the provider refused 'authorization: Apikey {SECRET_KEY}' (key {SECRET_KEY}); "
        f"storage password {os.environ.get('DAGSTER_MYSQL_PASSWORD')}, webhook "
        f"{os.environ.get('ALERT_WEBHOOK_URL')}",
        metadata={"api_key": SECRET_KEY},
    )


@dg.job(description="A job whose failures carry the API key and the database password.")
def leaky_job() -> None:
    connect_to_the_market_database()
    call_the_provider()


@dg.job(description="A job of another code location.")
def elsewhere_job() -> None:
    call_the_provider()


def test_messages_never_carry_a_secret_even_when_the_failure_does(
    dagster_instance: dg.DagsterInstance, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCDATA_API_KEY", SECRET_KEY)
    monkeypatch.setenv("MARKET_DB_URL", f"mysql+mysqlconnector://spot:{SECRET_PASSWORD}@db.internal/market")
    monkeypatch.setenv("DAGSTER_MYSQL_PASSWORD", STORAGE_PASSWORD)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url)
    webhook = AlertWebhook(url=receiver.url)
    definitions = dg.Definitions(jobs=[leaky_job], resources={"alert_webhook": webhook})
    sensor = Ticker(run_failure_alert_sensor, dagster_instance, definitions)
    sensor.tick()
    leaky = leaky_job.execute_in_process(instance=dagster_instance, raise_on_error=False)
    elsewhere_job.execute_in_process(instance=dagster_instance, raise_on_error=False)

    sensor.tick()

    [message] = receiver.messages  # the other code location's job is not this sensor's to report
    posted = json.dumps(message)
    assert leaky.run_id in posted
    assert "Step connect_to_the_market_database" in posted and "Step call_the_provider" in posted
    assert SECRET_KEY not in posted and SECRET_PASSWORD not in posted and OTHER_PASSWORD not in posted
    assert STORAGE_PASSWORD not in posted and "local-token" not in posted
    assert "could not connect to *** (password *** refused)" in posted  # MARKET_DB_URL, whole
    assert "reader:***@replica.internal" in posted and "Apikey ***" in posted


# --- the check sensor -------------------------------------------------------------------------------


def plant_bad_candles(desk: Desk, universe: list[Pair]) -> None:
    """A mislabelled quote (a close 40 % above the other exchanges, a warning) and a stored row whose
    low is above its open (an error)."""
    quoted = Counter(pair.mapped_instrument for pair in universe)
    mapped = next(symbol for symbol, exchanges in quoted.most_common() if exchanges >= 4)
    planted = next(pair for pair in universe if pair.mapped_instrument == mapped)
    market = desk.fake_api.dataset.market(planted.exchange)
    market.find_instrument(planted.exchange_instrument_id).reference_price *= 1.4
    day = dt.datetime.combine(YESTERDAY, dt.time())
    row = {"datetime": day, "exchange": "elsewhere", "symbol_unmapped": "X", "symbol": "X-Y"}
    with desk.market_db.begin() as connection:
        connection.execute(
            cc_ohlcv_spot_1d_raw.insert().values(
                **row, open=5, high=6, low=5.5, close=5.8, volume=1, collected_at=day
            )
        )


def run_with_bad_candles(desk: Desk, universe: list[Pair], definitions: dg.Definitions) -> list[str]:
    """A run over five days with planted bad candles; the names of its checks that fail or warn."""
    plant_bad_candles(desk, universe)
    result = desk.run(definitions, first=FIVE_DAYS_AGO)
    assert result.success  # window checks do not fail the run
    return sorted(e.check_name for e in result.get_asset_check_evaluations() if not e.passed)


def check_named(text: str) -> str:
    return text.splitlines()[0].rsplit(" / ", 1)[1].rstrip("*")


def test_each_failed_or_warning_candle_check_posts_one_message_and_passing_ones_none(
    desk: Desk, universe: list[Pair]
) -> None:
    definitions = desk.location()
    checks, runs = (desk.watching(sensor, definitions) for sensor in alert_defs.sensors[::-1])

    failing = run_with_bad_candles(desk, universe, definitions)
    checks.tick()
    checks.tick()

    assert {"ohlc_consistent", "close_near_other_exchanges"} <= set(failing)
    assert sorted(map(check_named, desk.receiver.texts())) == failing
    assert runs.said() == "nothing to report"
    texts = {check_named(text): text for text in desk.receiver.texts()}
    error, warning = texts["ohlc_consistent"], texts["close_near_other_exchanges"]
    assert "Check failed (ERROR): cc_ohlcv_spot_1d_raw / ohlc_consistent" in error
    assert f"window: {FIVE_DAYS_AGO} to {YESTERDAY}" in error and "offending_rows_sampled: 1" in error
    assert "| datetime | exchange | symbol_unmapped |" in error and "| elsewhere | X |" in error
    assert "Check warns (WARN): cc_ohlcv_spot_1d_raw / close_near_other_exchanges" in warning
    assert "outliers: 5" in warning and "largest (first 3 of 5 rows):" in warning
    assert all(f"{WEBSERVER}/runs/" in text.splitlines()[-1] for text in texts.values())


def test_a_run_whose_check_messages_were_cut_short_resumes_after_the_last_one_posted(
    desk: Desk, universe: list[Pair]
) -> None:
    definitions = desk.location()
    checks = desk.watching(candle_check_alert_sensor, definitions)
    failing = run_with_bad_candles(desk, universe, definitions)

    desk.receiver.fail_next(1, 502, after=1)
    assert checks.said().startswith("posted 1 alert(s); then")
    checks.tick()

    assert sorted(map(check_named, desk.receiver.texts())) == failing  # each once, none twice


@pytest.mark.parametrize(("limit", "value"), [("MAX_POSTS_PER_TICK", 1), ("POSTING_BUDGET_SECONDS", 0)])
def test_a_backlog_beyond_a_ticks_limits_drains_over_the_next_ticks(
    desk: Desk, universe: list[Pair], monkeypatch: pytest.MonkeyPatch, limit: str, value: int
) -> None:
    monkeypatch.setattr(sensors, limit, value)
    definitions = desk.location()
    checks = desk.watching(candle_check_alert_sensor, definitions)
    failing = run_with_bad_candles(desk, universe, definitions)

    said = [checks.said() for _ in failing]

    assert all(text.startswith("posted 1 alert(s)") for text in said)
    assert sorted(map(check_named, desk.receiver.texts())) == failing
    assert checks.said() == "nothing to report"


@pytest.mark.filterwarnings("ignore::dagster.SupersessionWarning")  # the check another issue adopts
def test_a_missed_freshness_check_of_the_candles_posts_a_message(
    market_db: MarketDatabase, dagster_instance: dg.DagsterInstance, receiver: WebhookReceiver
) -> None:
    freshness = dg.build_time_partition_freshness_checks(assets=[candle_asset], deadline_cron="0 3 * * *")
    definitions = dg.Definitions(resources={"alert_webhook": AlertWebhook(url=receiver.url)})
    checks = Ticker(candle_check_alert_sensor, dagster_instance, definitions)
    checks.tick()

    result = dg.materialize(
        [candle_asset, *freshness],
        selection=dg.AssetSelection.checks(*freshness),
        instance=dagster_instance,
        resources={"ccdata": CCDataClient(), "market_db": market_db},
    )
    checks.tick()

    [evaluation] = result.get_asset_check_evaluations()
    [text] = receiver.texts()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert f"Check warns (WARN): cc_ohlcv_spot_1d_raw / {evaluation.check_name}" in text
    assert "We currently expect partition" in text and text.endswith(f"/runs/{result.run_id}")


# --- alerts off -------------------------------------------------------------------------------------


def test_without_a_webhook_the_sensors_skip_naming_the_variable_and_start_afresh_when_it_is_set(
    desk: Desk,
) -> None:
    off = desk.location(AlertWebhook())
    sensor = Ticker(run_failure_alert_sensor, desk.instance, off)
    assert sensor.said() == "alerts are off: ALERT_WEBHOOK_URL is not set"
    desk.failed_run(off)
    assert sensor.said() == "alerts are off: ALERT_WEBHOOK_URL is not set"

    sensor.definitions = desk.location()
    assert sensor.said() == "nothing to report"  # what failed while alerts were off
    later = desk.failed_run(sensor.definitions)
    sensor.tick()
    assert [later.run_id in text for text in desk.receiver.texts()] == [True]


def test_loading_without_a_webhook_says_once_that_alerts_are_off(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    from spot_pipeline.definitions import defs

    with caplog.at_level(logging.INFO):
        definitions = defs()
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            sensor = Ticker(run_failure_alert_sensor, instance, definitions)
            sensor.tick(), sensor.tick()
    assert [record.getMessage() for record in caplog.records].count(ALERTS_OFF) == 1


# --- the transport and the message, alone -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "delivery"),
    [
        (408, Delivery.RETRY_LATER),
        (429, Delivery.RETRY_LATER),
        (500, Delivery.RETRY_LATER),
        (503, Delivery.RETRY_LATER),
        (301, Delivery.REFUSED),
        (400, Delivery.REFUSED),
        (403, Delivery.REFUSED),
        (410, Delivery.REFUSED),
    ],
)
def test_each_answer_of_the_receiver_is_retried_or_given_up(
    receiver: WebhookReceiver, status: int, delivery: Delivery
) -> None:
    receiver.fail_next(1, status)
    webhook = AlertWebhook(url=receiver.url)
    outcome = webhook.post({"text": "a test"})
    assert outcome.delivery is delivery and f"HTTP {status}" in outcome.detail
    assert webhook.post({"text": "a test"}).delivery is Delivery.DELIVERED


def test_a_run_with_hundreds_of_failed_pairs_makes_a_short_message_that_keeps_its_link() -> None:
    report = "500 pair(s) failed; re-run the partition(s) to fill them:\n" + "\n".join(
        f"- binance:PAIR{n}USDT (PAIR{n}-USDT): CCDataUnavailableError: {'x' * 300}" for n in range(500)
    )
    failure = RunFailure("ohlcv_daily_job", "2026-01-01", None, "Execution failed.", [("step", report)])
    text = run_failure_message(failure, f"{WEBSERVER}/runs/r1", [])["text"]
    assert len(text) <= MAX_TEXT_CHARS and text.endswith(f"{WEBSERVER}/runs/r1")
    shown = MAX_DETAIL_LINES - 1  # the report's first line, then the first pairs
    assert f"PAIR{shown - 1}USDT" in text and f"PAIR{shown}USDT" not in text
    assert f"and {501 - MAX_DETAIL_LINES} more line(s) in the run's log" in text


@pytest.mark.parametrize(
    ("tags", "run_config", "window"),
    [
        (
            {PARTITION_RANGE_START_TAG: "2026-03-06", PARTITION_RANGE_END_TAG: "2026-03-09"},
            {},
            "2026-03-06 to 2026-03-09",
        ),
        ({"dagster/partition": "2026-03-09"}, {}, "2026-03-09"),
        (
            {},
            {"ops": {"repair_pairs": {"config": {"first_day": "2024-03-01", "last_day": "2024-03-31"}}}},
            "2024-03-01 to 2024-03-31 (run config)",
        ),
        ({}, {"ops": {"fetch_missing_history": {"config": {}}}}, None),
    ],
)
def test_the_window_comes_from_the_partition_tags_or_a_repairs_day_range(
    tags: dict[str, str], run_config: dict[str, object], window: str | None
) -> None:
    assert run_window(tags, run_config) == window


def test_the_attempt_says_whether_a_retry_follows() -> None:
    assert retry_note({}) is None
    assert retry_note({"dagster/max_retries": "2"}) == "attempt 1 of 3"
    last = {"dagster/max_retries": "2", "dagster/retry_number": "2", "dagster/will_retry": "false"}
    assert retry_note(last) == "attempt 3 of 3, no retry follows"


def test_a_run_of_the_uis_asset_job_is_named_by_its_assets_and_its_backfill() -> None:
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        asset_selection=frozenset({dg.AssetKey("cc_ohlcv_spot_1d_raw")}),
        tags={"dagster/backfill": "abcdefgh"},
    )
    assert job_label(run) == "assets cc_ohlcv_spot_1d_raw (backfill abcdefgh)"
    assert job_label(dg.DagsterRun(job_name="ohlcv_daily_job")) == "ohlcv_daily_job"
