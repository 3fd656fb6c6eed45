"""What an alert says, built from plain values: pure functions, no I/O.

A message is Slack-compatible JSON, `{"text": ...}`: Slack's own incoming webhooks take it, and so do
the chat services that accept Slack-compatible webhooks. It names what failed (the job, or the asset
and check with its severity), the window the run covered, what went wrong (the failed pairs with their
reasons, or the check's counts and its first example rows), and the link to the run in the Dagster UI.
It stays small: long reasons and tables are cut to their first lines, and the whole text to
`MAX_TEXT_CHARS`.

No secret leaves in a message: the text is redacted last, replacing every secret value the process
knows (`settings.secret_values`) and masking URL passwords and `Apikey` headers, whatever produced it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from spot_pipeline.ohlcv.schedules import MAX_RETRIES_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

# Dagster's own run tags: the single partition of a run, and the retry daemon's bookkeeping.
PARTITION_TAG = "dagster/partition"
RETRY_NUMBER_TAG = "dagster/retry_number"
WILL_RETRY_TAG = "dagster/will_retry"

PRODUCT = "spot-pipeline"
MAX_TEXT_CHARS = 3000
# One failed step's report fits whole within the text's limit.
MAX_DETAIL_LINES = 8
MAX_LINE_CHARS = 300
EXAMPLE_ROWS = 3
REDACTED = "***"
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s/]+@")
_API_KEY_HEADER = re.compile(r"(Apikey\s+)\S+", re.IGNORECASE)


@dataclass(frozen=True)
class RunFailure:
    """A failed run as an alert tells it: which job, over which days, what each failed step reported."""

    job_name: str
    window: str | None
    attempt: str | None
    summary: str
    failed_steps: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class CheckAlert:
    """A failed or warning asset check evaluation, with the run that evaluated it."""

    asset: str
    check_name: str
    severity: str
    job_name: str
    window: str | None
    description: str | None
    metadata: Mapping[str, dg.MetadataValue]


def run_window(tags: Mapping[str, str], run_config: Mapping[str, Any]) -> str | None:
    """The days a run covered: its partition range or partition, else a day range in its run config
    (`first_day`/`last_day` of a repair), else None."""
    start, end = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start} to {end}"
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    for op_config in (run_config.get("ops") or {}).values():
        config = op_config.get("config") if isinstance(op_config, Mapping) else None
        if isinstance(config, Mapping) and config.get("first_day") and config.get("last_day"):
            return f"{config['first_day']} to {config['last_day']} (run config)"
    return None


def retry_note(tags: Mapping[str, str]) -> str | None:
    """ "attempt 1 of 3, a retry follows" from the run's retry tags; None for a job without retries."""
    if MAX_RETRIES_TAG not in tags:
        return None
    note = f"attempt {int(tags.get(RETRY_NUMBER_TAG, '0')) + 1} of {int(tags[MAX_RETRIES_TAG]) + 1}"
    will_retry = tags.get(WILL_RETRY_TAG)
    if will_retry is None:
        return note
    return note + (", a retry follows" if will_retry == "true" else ", no retry follows")


def run_failure_message(failure: RunFailure, run_url: str, secrets: Sequence[str]) -> dict[str, str]:
    lines = [f"*[{PRODUCT}] Run failed: {failure.job_name}*"]
    lines.append(f"Window: {failure.window or 'not a partitioned run'}")
    if failure.attempt:
        lines.append(f"Run: {failure.attempt}")
    lines += _cut(failure.summary, 2, secrets)
    for step_key, report in failure.failed_steps:
        lines.append(f"Step {step_key}:")
        lines += ["  " + line for line in _cut(report, MAX_DETAIL_LINES, secrets)]
    lines.append(run_url)
    return _message(lines, secrets)


def check_message(alert: CheckAlert, run_url: str, secrets: Sequence[str]) -> dict[str, str]:
    verdict = "failed" if alert.severity == "ERROR" else "warns"
    lines = [f"*[{PRODUCT}] Check {verdict} ({alert.severity}): {alert.asset} / {alert.check_name}*"]
    lines.append(f"Job: {alert.job_name}, window: {alert.window or 'not a partitioned run'}")
    if alert.description:
        lines += _cut(alert.description, 3, secrets)
    lines += [_shorten(redact(line, secrets)) for line in metadata_summary(alert.metadata)]
    lines.append(run_url)
    return _message(lines, secrets)


def metadata_summary(metadata: Mapping[str, dg.MetadataValue]) -> list[str]:
    """One line per count or value, then the first rows of each Markdown table (examples)."""
    values: list[str] = []
    tables: list[str] = []
    for name, value in metadata.items():
        if isinstance(value, dg.MarkdownMetadataValue):
            tables += _table_head(name, value.value)
        elif isinstance(value, dg.TimestampMetadataValue):
            values.append(f"{name}: {dt.datetime.fromtimestamp(value.value, dt.UTC).isoformat()}")
        elif isinstance(value, dg.JsonMetadataValue):
            values.append(f"{name}: {json.dumps(value.value, default=str, separators=(',', ':'))}")
        elif isinstance(value.value, str | int | float | bool):
            values.append(f"{name}: {value.value}")
    return values + tables


def _table_head(name: str, markdown: str) -> list[str]:
    """A Markdown table's header and first rows; empty tables say nothing."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    body = [line for line in rows[1:] if not set(line) <= set("|-: ")]
    if not rows or not body:
        return []
    shown = body[:EXAMPLE_ROWS]
    heading = f"{name} (first {len(shown)} of {len(body)} rows):" if len(body) > len(shown) else f"{name}:"
    return [heading, *(f"  {line}" for line in [rows[0], *shown])]


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret value replaced, longest first, and URL passwords and API key
    headers masked whatever their value."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _API_KEY_HEADER.sub(rf"\1{REDACTED}", text)


def _cut(text: str, max_lines: int, secrets: Sequence[str]) -> list[str]:
    """The text's first lines, each shortened; redacted first, so that no cut leaves part of a secret."""
    lines = [line for line in redact(text, secrets).strip().splitlines() if line.strip()]
    kept = [_shorten(line) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        kept.append(f"... and {len(lines) - max_lines} more line(s) in the run's log")
    return kept


def _shorten(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."


def _message(lines: list[str], secrets: Sequence[str]) -> dict[str, str]:
    """The JSON body: the redacted text, cut to MAX_TEXT_CHARS but keeping its last line (the link)."""
    text = redact("\n".join(lines), secrets)
    if len(text) > MAX_TEXT_CHARS:
        link = text.rsplit("\n", 1)[-1]
        text = text[: MAX_TEXT_CHARS - len(link) - 5] + "\n...\n" + link
    return {"text": text}
