"""Configuration from environment variables, validated when the definitions load.

Secrets and URLs reach the resources as `dg.EnvVar`, so the Dagster UI shows the variable's name
and never its value; tuning numbers are validated here and passed as plain values. `secret_values`
lists the secrets the process holds, for what must never repeat them (alert messages).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.alerts.webhook import (
    DEFAULT_WEBSERVER_URL,
    AlertWebhook,
    check_webhook_url,
    check_webserver_url,
)
from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.transport import check_base_url
from spot_pipeline.ccdata.vocabulary import DEFAULT_DATA_API_URL, DEFAULT_MIN_API_URL
from spot_pipeline.db.engine import parse_market_url
from spot_pipeline.db.inspection import check_identifier
from spot_pipeline.db.resource import MarketDatabase

DEFAULT_DB_FILE = Path("data") / "market.sqlite"
# Variables named like these hold secrets too (DAGSTER_MYSQL_PASSWORD), whether or not they are settings.
SECRET_NAME_PARTS = ("PASSWORD", "API_KEY", "SECRET", "TOKEN")
# Shorter values are not masked: they would match ordinary text.
MIN_SECRET_CHARS = 4


class SettingsError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


def _number(value: str, kind: type[int] | type[float], minimum: float, wanted: str) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"expected {wanted}") from None
    if number < minimum or (kind is float and number <= 0):
        raise ValueError(f"expected {wanted}")
    return number


def _positive_float(value: str) -> float:
    return _number(value, float, 0, "a number greater than 0")


def _positive_int(value: str) -> int:
    return _number(value, int, 1, "a whole number of at least 1")


def _non_negative_int(value: str) -> int:
    return _number(value, int, 0, "a whole number of at least 0")


def _iso_date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("expected a date as YYYY-MM-DD") from None


def _schema_name(value: str) -> str:
    return check_identifier(value, "schema name")


def _collation_name(value: str) -> str:
    if not value.startswith("utf8mb4_"):
        raise ValueError("expected a utf8mb4 collation, e.g. utf8mb4_unicode_ci")
    return check_identifier(value, "collation")


def _market_db_url(value: str) -> str:
    parse_market_url(value)
    return value


@dataclass(frozen=True)
class EnvSetting:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    secret: bool = False


SETTINGS = {
    setting.name: setting
    for setting in (
        EnvSetting("CCDATA_API_KEY", None, str, secret=True),
        EnvSetting("CCDATA_DATA_API_URL", DEFAULT_DATA_API_URL, check_base_url),
        EnvSetting("CCDATA_MIN_API_URL", DEFAULT_MIN_API_URL, check_base_url),
        EnvSetting("MARKET_DB_URL", None, _market_db_url, secret=True),
        EnvSetting("MARKET_DB_SCHEMA", "market", _schema_name),
        EnvSetting("MARKET_DB_COLLATION", None, _collation_name),
        EnvSetting("CCDATA_CALLS_PER_SECOND", "20", _positive_float),
        EnvSetting("CCDATA_MAX_CONCURRENCY", "8", _positive_int),
        EnvSetting("CCDATA_TIMEOUT_SECONDS", "30", _positive_float),
        EnvSetting("CCDATA_MAX_RETRIES", "5", _non_negative_int),
        EnvSetting("OHLCV_START_DATE", "2017-01-01", _iso_date),
        EnvSetting("OHLCV_REVISION_DAYS", "3", _non_negative_int),
        EnvSetting("ALERT_WEBHOOK_URL", None, check_webhook_url, secret=True),
        EnvSetting("DAGSTER_WEBSERVER_URL", DEFAULT_WEBSERVER_URL, check_webserver_url),
    )
}


def read_setting(name: str, environ: Mapping[str, str]) -> Any:
    """The parsed value of one setting (its default when unset), or a SettingsError naming it."""
    setting = SETTINGS[name]
    raw = environ.get(name) or setting.default
    if raw is None:
        return None
    try:
        return setting.parse(raw.strip())
    except ValueError as error:  # DatabaseConfigError included: its message masks passwords
        shown = "" if setting.secret else f"={raw!r}"
        raise SettingsError(f"Environment variable {name}{shown} is invalid: {error}") from None


def default_market_db_url() -> str:
    """The embedded default: an SQLite file in ./data, absolute so every Dagster process agrees."""
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB_FILE).resolve()}"


def _from_env(name: str, environ: Mapping[str, str]) -> Any:
    """`dg.EnvVar(name)` when the variable is set (after validating it), else the default value."""
    value = read_setting(name, environ)
    return dg.EnvVar(name) if environ.get(name) else value


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources every asset and job uses, configured from the environment."""
    environ = os.environ if environ is None else environ
    problems = []
    for name in SETTINGS:
        try:
            read_setting(name, environ)
        except SettingsError as error:
            problems.append(str(error))
    if not problems:
        try:
            schema_name = _market_schema(environ)
        except SettingsError as error:
            problems.append(str(error))
    if problems:
        raise SettingsError("\n".join(problems))
    return {
        "ccdata": CCDataClient(
            api_key=dg.EnvVar("CCDATA_API_KEY") if environ.get("CCDATA_API_KEY") else None,
            data_api_url=_from_env("CCDATA_DATA_API_URL", environ),
            min_api_url=_from_env("CCDATA_MIN_API_URL", environ),
            calls_per_second=read_setting("CCDATA_CALLS_PER_SECOND", environ),
            max_concurrency=read_setting("CCDATA_MAX_CONCURRENCY", environ),
            timeout_seconds=read_setting("CCDATA_TIMEOUT_SECONDS", environ),
            max_retries=read_setting("CCDATA_MAX_RETRIES", environ),
        ),
        "market_db": MarketDatabase(
            url=dg.EnvVar("MARKET_DB_URL") if environ.get("MARKET_DB_URL") else default_market_db_url(),
            schema_name=schema_name,
            table_collation=read_setting("MARKET_DB_COLLATION", environ),
        ),
        "alert_webhook": AlertWebhook(
            url=dg.EnvVar("ALERT_WEBHOOK_URL") if environ.get("ALERT_WEBHOOK_URL") else None,
            webserver_url=_from_env("DAGSTER_WEBSERVER_URL", environ),
        ),
    }


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Every secret the environment holds: the secret settings' values, the password inside
    MARKET_DB_URL, and the value of any variable named like a secret."""
    names = {name for name, setting in SETTINGS.items() if setting.secret}
    names |= {name for name in environ if any(part in name.upper() for part in SECRET_NAME_PARTS)}
    values = [environ[name].strip() for name in names if environ.get(name)]
    url = environ.get("MARKET_DB_URL")
    if url:
        try:
            password = sa.make_url(url.strip()).password or ""
        except sa.exc.ArgumentError:
            password = ""  # not a URL: its whole value is masked already
        values += [password, quote_plus(password)]  # as decoded, and as written in the URL
    return [value for value in values if len(value) >= MIN_SECRET_CHARS]


def _market_schema(environ: Mapping[str, str]) -> str:
    """MARKET_DB_SCHEMA; else the database a MySQL URL names; else the default. A URL naming another
    database than MARKET_DB_SCHEMA is refused rather than silently ignored."""
    schema = environ.get("MARKET_DB_SCHEMA")
    url = environ.get("MARKET_DB_URL")
    named = parse_market_url(url).database if url and not url.startswith("sqlite") else None
    if named and schema and named != schema:
        raise SettingsError(
            f"Environment variable MARKET_DB_URL names the database {named!r} but MARKET_DB_SCHEMA is "
            f"{schema!r}: the tables go to one schema, make the two agree (or leave MARKET_DB_SCHEMA unset)"
        )
    return read_setting("MARKET_DB_SCHEMA", {"MARKET_DB_SCHEMA": schema or named or ""})
