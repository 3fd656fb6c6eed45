"""Converters for values in CCData payloads.

The provider sends numbers as strings in places, omits optional fields and uses null freely; every
value goes through a converter that accepts those forms and names the field when it cannot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from spot_pipeline.ccdata.vocabulary import MAX_EPOCH_SECONDS
from spot_pipeline.timeutils import utc_from_epoch


class PayloadValueError(ValueError):
    """A field of a CCData payload holds a value the pipeline cannot store; the message names it."""


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "N/A"))


def as_float(value: Any, field: str) -> float | None:
    if _blank(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PayloadValueError(f"{field} is {value!r}, not a number") from None


def as_int(value: Any, field: str) -> int | None:
    number = as_float(value, field)
    if number is None:
        return None
    if not number.is_integer():
        raise PayloadValueError(f"{field} is {value!r}, not a whole number")
    return int(number)


def as_bool(value: Any, field: str) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise PayloadValueError(f"{field} is {value!r}, not a boolean")


def as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def as_datetime(value: Any, field: str) -> dt.datetime | None:
    """Unix seconds (number or numeric string) to a naive UTC datetime."""
    seconds = as_int(value, field)
    if seconds is None:
        return None
    if not 0 <= seconds < MAX_EPOCH_SECONDS:
        raise PayloadValueError(f"{field} is {value!r}, not unix seconds between 1970 and 2100")
    return utc_from_epoch(seconds)


def required(record: Mapping[str, Any], field: str, context: str) -> Any:
    value = record.get(field)
    if _blank(value):
        raise PayloadValueError(f"{context}: required field {field} is missing or empty")
    return value


def mapping(value: Any, context: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadValueError(f"{context} is {type(value).__name__}, expected an object")
    return value
