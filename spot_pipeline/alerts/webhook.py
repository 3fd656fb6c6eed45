"""How an alert reaches the on-call engineer: one POST of Slack-compatible JSON to an incoming webhook.

`AlertWebhook` is the resource the alert sensors use. Its URL (`ALERT_WEBHOOK_URL`) is a secret:
incoming-webhook URLs carry their token in the path, so the resource gets it as a `dg.EnvVar` (the UI
shows the variable's name), and no outcome, log line or exception text ever holds more of it than the
receiver's host name. Every POST has a timeout and no redirect is followed; its outcome is one of
three: delivered (2xx), worth retrying later (no connection, timeout, 408, 429, 5xx), or refused for
good (any other answer: a revoked or mistyped URL will not start working by itself). The sensors
decide what each outcome does to their cursor (`sensors.py`).

Dagster's Slack and Teams integrations post from run-status sensors, which move their cursor past a
run even when the post fails (see `sensors.py`), and need a bot token or a Teams-only payload: a plain
POST through `requests` fits a Slack-compatible webhook better.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import requests
from pydantic import Field

DEFAULT_WEBSERVER_URL = "http://127.0.0.1:3000"
WEBHOOK_URL_VARIABLE = "ALERT_WEBHOOK_URL"
ALERTS_OFF = (
    f"{WEBHOOK_URL_VARIABLE} is not set: alerts are off (no message for failed runs or candle checks); "
    "set it to a Slack-compatible incoming webhook URL to turn them on"
)
# Answers that may succeed later; any other non-2xx answer means the URL itself is wrong.
RETRYABLE_STATUSES = frozenset({408, 429})
# How much of a receiver's refusal (e.g. Slack's "no_service") a log line shows.
MAX_ANSWER_CHARS = 120

logger = dg.get_dagster_logger("alerts")


def check_webhook_url(url: str) -> str:
    """An incoming-webhook URL, or a ValueError that never repeats it (its path is a secret)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "expected the http(s) URL of an incoming webhook, such as https://hooks.slack.com/services/..."
        )
    return url


def check_webserver_url(url: str) -> str:
    """The base URL of the Dagster UI without its trailing slash, or a ValueError saying what it must be."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"expected the http(s) address the Dagster UI is reached at, such as {DEFAULT_WEBSERVER_URL} "
            "or https://dagster.example.com/prefix, without a query string"
        )
    return url.rstrip("/")


class Delivery(Enum):
    DELIVERED = "delivered"
    RETRY_LATER = "retry later"
    REFUSED = "refused"


@dataclass(frozen=True)
class PostOutcome:
    """What became of one POST; `detail` names the receiver's host and the answer, never the URL."""

    delivery: Delivery
    detail: str


class AlertWebhook(dg.ConfigurableResource):
    """Posts alerts to a Slack-compatible incoming webhook; without a URL, alerts are off."""

    url: str | None = Field(
        default=None,
        description=f"Incoming-webhook URL (from {WEBHOOK_URL_VARIABLE}, a secret); unset: alerts off.",
    )
    webserver_url: str = Field(
        default=DEFAULT_WEBSERVER_URL,
        description="Base URL of the Dagster UI, for the run links in messages (DAGSTER_WEBSERVER_URL).",
    )
    timeout_seconds: float = Field(
        default=10, gt=0, le=30, description="Timeout of each POST (connecting, then waiting for the answer)."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def run_url(self, run_id: str) -> str:
        """The run's page in the Dagster UI."""
        return f"{self.webserver_url.rstrip('/')}/runs/{run_id}"

    def post(self, message: dict[str, Any]) -> PostOutcome:
        """POST one message; the outcome says whether to count it delivered, retry it, or give it up."""
        if not self.url:
            raise RuntimeError(ALERTS_OFF)
        receiver = urlsplit(self.url).hostname
        try:
            answer = requests.post(
                self.url, json=message, timeout=self.timeout_seconds, allow_redirects=False
            )
        except requests.Timeout:
            return PostOutcome(
                Delivery.RETRY_LATER, f"{receiver} did not answer within {self.timeout_seconds} s"
            )
        except requests.RequestException as error:  # its text holds the URL: only its kind is shown
            return PostOutcome(Delivery.RETRY_LATER, f"{receiver} is unreachable ({type(error).__name__})")
        status = f"{receiver} answered HTTP {answer.status_code}"
        if 200 <= answer.status_code < 300:
            return PostOutcome(Delivery.DELIVERED, status)
        if answer.status_code >= 500 or answer.status_code in RETRYABLE_STATUSES:
            return PostOutcome(Delivery.RETRY_LATER, status)
        said = answer.text.strip()[:MAX_ANSWER_CHARS]
        return PostOutcome(Delivery.REFUSED, f"{status}" + (f" ({said})" if said else ""))


def announce_when_off(webhook: AlertWebhook) -> None:
    """Say once, when the code location loads, that alerts are off (the sensors' ticks then skip)."""
    if not webhook.enabled:
        logger.info(ALERTS_OFF)
