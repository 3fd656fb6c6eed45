"""UTC time helpers: every timestamp in the pipeline goes through these, never through a local zone."""

from __future__ import annotations

import datetime as dt

UTC = dt.UTC


def utc_now() -> dt.datetime:
    """The current time as a naive UTC datetime (what DATETIME columns store), to the second."""
    return dt.datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def utc_from_epoch(seconds: int | float | None) -> dt.datetime | None:
    """Unix seconds to a naive UTC datetime; None stays None."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def day_start(day: dt.date) -> dt.datetime:
    """00:00 UTC of a calendar day, as a naive UTC datetime."""
    return dt.datetime(day.year, day.month, day.day)


def utc_today() -> dt.date:
    return dt.datetime.now(UTC).date()


def epoch_seconds(moment: dt.datetime) -> int:
    """Unix seconds of a naive UTC datetime (never interpreted in the local zone)."""
    return int(moment.replace(tzinfo=UTC).timestamp())


def utc_day_start(moment: dt.datetime) -> dt.datetime:
    """Midnight UTC of the day holding a naive UTC datetime."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
