"""Daily candles in plain Python: the pairs and windows a run covers, the requests that cover them,
and which candles of the answers become rows. No I/O here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spot_pipeline.ccdata.payload import PayloadValueError, as_datetime, as_float, as_int, as_text, required
from spot_pipeline.ccdata.vocabulary import MAX_CANDLES_PER_CALL
from spot_pipeline.db.schema import Row
from spot_pipeline.timeutils import day_start, epoch_seconds

SECONDS_PER_DAY = 86_400
PRICE_FIELDS = ("OPEN", "HIGH", "LOW", "CLOSE")
TRADE_PRICE_FIELDS = ("FIRST_TRADE_PRICE", "HIGH_TRADE_PRICE", "LOW_TRADE_PRICE", "LAST_TRADE_PRICE")
TRADE_TIME_FIELDS = (
    "FIRST_TRADE_TIMESTAMP",
    "LAST_TRADE_TIMESTAMP",
    "HIGH_TRADE_TIMESTAMP",
    "LOW_TRADE_TIMESTAMP",
)
COUNT_FIELDS = ("TOTAL_TRADES", "TOTAL_TRADES_BUY", "TOTAL_TRADES_SELL", "TOTAL_TRADES_UNKNOWN")
VOLUME_FIELDS = tuple(
    f"{prefix}VOLUME{side}" for side in ("", "_BUY", "_SELL", "_UNKNOWN") for prefix in ("", "QUOTE_")
)


@dataclass(frozen=True, order=True)
class Pair:
    """One exchange instrument of the universe."""

    exchange: str
    exchange_instrument_id: str
    mapped_instrument: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.exchange_instrument_id} ({self.mapped_instrument})"


@dataclass(frozen=True)
class DayWindow:
    """Closed UTC days from `start` (inclusive) to `end` (exclusive)."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return max(0, (self.end - self.start).days)

    def before(self, day: dt.date) -> DayWindow:
        """This window cut so that it ends no later than `day` (e.g. today, which is not closed yet)."""
        return DayWindow(self.start, min(self.end, day))

    def __str__(self) -> str:
        return f"{self.start} .. {self.end - dt.timedelta(days=1)} ({self.days} days)"


@dataclass(frozen=True)
class CandleRequest:
    """One `/spot/v1/historical/days` call: `limit` candles ending with the day containing `to_ts`."""

    to_ts: int
    limit: int


def plan_requests(window: DayWindow, max_per_request: int = MAX_CANDLES_PER_CALL) -> list[CandleRequest]:
    """The fewest requests covering the window: ceil(days / max_per_request), newest first.

    `to_ts` is inclusive, so each request ends on the day before the previous one started and no
    boundary candle is requested twice.
    """
    requests = []
    last_day, remaining = window.end - dt.timedelta(days=1), window.days
    while remaining > 0:
        limit = min(remaining, max_per_request)
        requests.append(CandleRequest(to_ts=epoch_seconds(day_start(last_day)), limit=limit))
        last_day -= dt.timedelta(days=limit)
        remaining -= limit
    return requests


def candle_rows(
    candles: Iterable[Mapping[str, Any]], pair: Pair, window: DayWindow, collected_at: dt.datetime
) -> list[Row]:
    """Rows for the candles of closed days inside the window, one per day, in day order.

    Dropped: candles outside the window (an inclusive `to_ts` boundary, earlier history), and
    zero-filled placeholders from before the instrument's first trade. A day without trades keeps
    its candle with NULL trade fields.
    """
    rows: dict[dt.datetime, Row] = {}
    first, end = day_start(window.start), day_start(window.end)
    for candle in candles:
        row = candle_row(candle, pair, collected_at)
        if first <= row["datetime"] < end and not _is_placeholder(row):
            rows[row["datetime"]] = row
    return [rows[day] for day in sorted(rows)]


def candle_row(candle: Mapping[str, Any], pair: Pair, collected_at: dt.datetime) -> Row:
    """One candle as a row of cc_ohlcv_spot_1d_raw (trade times as UTC datetimes)."""
    context = f"{pair} candle"
    timestamp = as_int(required(candle, "TIMESTAMP", context), f"{context} TIMESTAMP")
    if timestamp is None or timestamp % SECONDS_PER_DAY:
        raise PayloadValueError(f"{context} TIMESTAMP {timestamp!r} is not 00:00 UTC of a day")
    context = f"{pair} candle {as_datetime(timestamp, context):%Y-%m-%d}"
    return {
        "datetime": as_datetime(timestamp, f"{context} TIMESTAMP"),
        "exchange": str(candle.get("MARKET") or pair.exchange).lower(),
        "symbol_unmapped": str(candle.get("INSTRUMENT") or pair.exchange_instrument_id),
        "symbol": str(candle.get("MAPPED_INSTRUMENT") or pair.mapped_instrument),
        "base": as_text(candle.get("BASE")),
        "quote": as_text(candle.get("QUOTE")),
        "base_id": as_int(candle.get("BASE_ID"), f"{context} BASE_ID"),
        "quote_id": as_int(candle.get("QUOTE_ID"), f"{context} QUOTE_ID"),
        "transform_function": as_text(candle.get("TRANSFORM_FUNCTION")),
        **_columns(candle, PRICE_FIELDS + TRADE_PRICE_FIELDS + VOLUME_FIELDS, as_float, context),
        **_columns(candle, COUNT_FIELDS, as_int, context),
        **_columns(candle, TRADE_TIME_FIELDS, as_datetime, context),
        "collected_at": collected_at,
    }


def _columns(
    candle: Mapping[str, Any], fields: Iterable[str], convert: Callable[[Any, str], Any], context: str
) -> Row:
    return {field.lower(): convert(candle.get(field), f"{context} {field}") for field in fields}


def _is_placeholder(row: Row) -> bool:
    """A zero-filled candle (all prices 0 or missing) is not real data."""
    return all(not row[field.lower()] for field in PRICE_FIELDS)
