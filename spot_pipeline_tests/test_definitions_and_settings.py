"""The code location loads as Dagster tools load it, and configuration errors name their variable."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from spot_pipeline.live_tables import DEDUPLICATION_JOB, KEY_REPAIR_JOB, MIGRATION_JOB
from spot_pipeline.ohlcv.schedules import (
    MAX_RETRIES_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    ohlcv_daily_job,
    ohlcv_daily_schedule,
)
from spot_pipeline.settings import SETTINGS, SettingsError, build_resources

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_cli_validates_the_definitions(tmp_path: Path) -> None:
    environment = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    # Run from an empty folder: dagster loads a .env of its working directory, and a developer's
    # local .env must not change what the suite checks.
    completed = subprocess.run(
        [Path(sys.executable).parent / "dagster", "definitions", "validate", "-w", ROOT / "workspace.yaml"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_definitions_expose_the_assets_jobs_and_schedules() -> None:
    from spot_pipeline.definitions import defs

    definitions = defs()
    keys = {key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()}
    assert {"cc_exchanges_general", "cc_instruments_spot", "cc_assets", "cc_asset_market_data"} <= keys
    assert {"spot_universe", "cc_ohlcv_spot_1d_raw"} <= keys
    assert definitions.resolve_job_def("refresh_reference_data_job")
    assert definitions.resolve_job_def("ohlcv_daily_job")
    assert definitions.resolve_schedule_def("ohlcv_daily_schedule")
    assert definitions.resolve_job_def("migrate_ohlcv_timestamps_job")
    assert definitions.resolve_job_def("deduplicate_ohlcv_job")
    assert definitions.resolve_schedule_def("deduplicate_ohlcv_schedule")


def test_the_ui_describes_every_job_schedule_and_sensor_and_names_every_assets_owner() -> None:
    from spot_pipeline.definitions import defs

    repository = defs().get_repository_def()
    jobs = [job for job in repository.get_all_jobs() if not job.name.startswith("__")]
    automations = [*repository.schedule_defs, *repository.sensor_defs]
    assert len(jobs) == 8 and len(automations) == 7
    assert all(item.description for item in [*jobs, *automations])
    assert all(job.owners and {"team", "layer", "source"} <= set(job.tags) for job in jobs)
    for spec in defs().resolve_all_asset_specs():
        assert spec.owners and {"team", "layer", "source"} <= set(spec.tags), spec.key
        columns = spec.metadata["dagster/column_schema"].columns
        assert columns and all(column.type != "" for column in columns), spec.key
    candles = next(
        spec for spec in defs().resolve_all_asset_specs() if spec.key.path == ["cc_ohlcv_spot_1d_raw"]
    )
    assert candles.freshness_policy.deadline_cron == "0 3 * * *"


def test_the_readme_names_every_job_schedule_and_sensor() -> None:
    from spot_pipeline.definitions import defs

    repository = defs().get_repository_def()
    jobs = [job.name for job in repository.get_all_jobs() if not job.name.startswith("__")]
    automations = [item.name for item in [*repository.schedule_defs, *repository.sensor_defs]]
    readme = (ROOT / "README.md").read_text()
    assert [name for name in [*jobs, *automations] if f"| `{name}` |" not in readme] == []


def test_loading_the_code_location_prints_no_warning() -> None:
    """Beta parameters used knowingly are silenced in the project, and no superseded API is used."""
    code = "import spot_pipeline.definitions as d; d.defs()"
    completed = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, check=True
    )
    assert "Warning" not in completed.stderr, completed.stderr


def test_the_jobs_that_ingestion_errors_send_users_to_exist() -> None:
    from spot_pipeline.definitions import defs

    definitions = defs()
    for job_name in (MIGRATION_JOB, DEDUPLICATION_JOB, KEY_REPAIR_JOB):
        assert definitions.resolve_job_def(job_name)


def test_daily_schedule_asks_for_yesterday_and_the_revision_days() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 10, 0, 15, tzinfo=dt.UTC)
    )
    request = ohlcv_daily_schedule(context)
    assert request.tags[PARTITION_RANGE_START_TAG] == "2026-03-06"
    assert request.tags[PARTITION_RANGE_END_TAG] == "2026-03-09"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CCDATA_CALLS_PER_SECOND", "fast", "CCDATA_CALLS_PER_SECOND='fast' is invalid: expected a number"),
        ("CCDATA_MAX_CONCURRENCY", "0", "CCDATA_MAX_CONCURRENCY='0' is invalid"),
        ("CCDATA_DATA_API_URL", "data-api.coindesk.com", "expected an http(s) URL"),
        ("CCDATA_MIN_API_URL", "https://min-api.example/?a=1", "without a query string"),
        ("OHLCV_START_DATE", "01/02/2020", "expected a date as YYYY-MM-DD"),
        ("MARKET_DB_SCHEMA", "market; DROP", "not a plain identifier"),
        ("MARKET_DB_SCHEMA", "m" * 65, "has 65 characters"),
        ("MARKET_DB_URL", "mysql://pipeline@db.internal/market", "needs the driver 'mysqldb'"),
        (
            "ALERT_WEBHOOK_URL",
            "hooks.slack.com/services/T0/B0/x",
            "ALERT_WEBHOOK_URL is invalid: expected the",
        ),
        ("ALERT_WEBHOOK_URL", "https://hooks.slack.com:port/x", "URL of an incoming webhook"),
        (
            "DAGSTER_WEBSERVER_URL",
            "dagster.desk:3000",
            "DAGSTER_WEBSERVER_URL='dagster.desk:3000' is invalid",
        ),
        ("DAGSTER_WEBSERVER_URL", "https://dagster.desk/?tab=runs", "without a query string"),
    ],
)
def test_invalid_settings_fail_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_resources({name: value})


def test_every_invalid_setting_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        build_resources({"CCDATA_MAX_CONCURRENCY": "0", "OHLCV_START_DATE": "soon"})
    assert "CCDATA_MAX_CONCURRENCY" in str(error.value) and "OHLCV_START_DATE" in str(error.value)


def test_the_database_a_mysql_url_names_is_the_schema_unless_another_is_set() -> None:
    url = "mysql+mysqlconnector://pipeline@127.0.0.1:3306/desk_market"
    assert build_resources({"MARKET_DB_URL": url})["market_db"].schema_name == "desk_market"
    assert build_resources({"MARKET_DB_URL": url, "MARKET_DB_SCHEMA": "desk_market"})["market_db"].schema_name
    with pytest.raises(
        SettingsError, match="names the database 'desk_market' but MARKET_DB_SCHEMA is 'other'"
    ):
        build_resources({"MARKET_DB_URL": url, "MARKET_DB_SCHEMA": "other"})
    assert build_resources({})["market_db"].schema_name == "market"


def test_database_url_errors_never_show_the_password() -> None:
    with pytest.raises(SettingsError) as error:
        build_resources({"MARKET_DB_URL": "postgresql://pipeline:s3cret-pw@db.internal/market"})
    assert "MARKET_DB_URL" in str(error.value)
    assert "s3cret-pw" not in str(error.value)


def test_webhook_url_errors_never_show_the_url() -> None:
    with pytest.raises(SettingsError) as error:
        build_resources({"ALERT_WEBHOOK_URL": "ftp://hooks.example/services/T0/B0/s3cret-token"})
    assert "ALERT_WEBHOOK_URL" in str(error.value) and "s3cret-token" not in str(error.value)


def test_secrets_reach_resources_as_env_vars_not_values() -> None:
    resources = build_resources(
        {
            "CCDATA_API_KEY": "key-123",
            "MARKET_DB_URL": "mysql+mysqlconnector://u:pw@127.0.0.1/market",
            "ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/token-456",
        }
    )
    assert isinstance(resources["ccdata"].api_key, dg.EnvVar)
    assert isinstance(resources["market_db"].url, dg.EnvVar)
    assert isinstance(resources["alert_webhook"].url, dg.EnvVar)
    assert "key-123" not in repr(resources["ccdata"])
    assert "token-456" not in repr(resources["alert_webhook"])


def test_without_a_webhook_url_alerts_are_off_and_links_point_at_the_local_ui() -> None:
    webhook = build_resources({})["alert_webhook"]
    assert webhook.url is None and webhook.run_url("r1") == "http://127.0.0.1:3000/runs/r1"


def test_every_setting_is_documented() -> None:
    readme, example = (ROOT / "README.md").read_text(), (ROOT / ".env.example").read_text()
    for name in SETTINGS:
        assert f"`{name}`" in readme and f"{name}=" in example, name


def test_the_production_instance_reads_its_storage_credentials_from_documented_variables() -> None:
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    fields = instance["storage"]["mysql"]["mysql_db"]
    assert set(fields) == {"hostname", "port", "username", "password", "db_name"}
    readme, example = (ROOT / "README.md").read_text(), (ROOT / ".env.example").read_text()
    for value in fields.values():
        assert set(value) == {"env"}, "a credential is written in deploy/dagster.yaml"
        assert value["env"].startswith("DAGSTER_MYSQL_"), value
        assert f"`{value['env']}`" in readme and f"{value['env']}=" in example, value


def test_the_daily_job_is_retried_where_the_instance_enables_run_retries() -> None:
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    assert instance["run_retries"]["enabled"] is True
    assert int(ohlcv_daily_job.tags[MAX_RETRIES_TAG]) > 0
