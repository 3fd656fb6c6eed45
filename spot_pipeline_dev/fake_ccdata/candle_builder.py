"""Deterministic daily candles of one instrument: a pure function of (market, exchange instrument id,
day) derived from a BLAKE2 hash, except the candle of the current UTC day, which changes per request
like the real incomplete one."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from spot_pipeline.timeutils import day_start, epoch_seconds, utc_from_epoch
from spot_pipeline_dev.fake_ccdata.records import FakeInstrument, FakeMarket, uniforms

SECONDS_PER_DAY = 86_400


# Below this many seconds into the current day the current candle has no trade yet.
_FIRST_LIVE_TRADE_AFTER_SECONDS = 2


_MIN_TRADES_PER_TRADED_DAY = 4


class CandleBuilder:
    """Deterministic daily candles of one instrument on one market."""

    # (amplitude, period in days) of the slow waves that shape the price path
    _WAVES = ((1.0, 701.0), (0.35, 173.0), (0.12, 29.0))

    def __init__(
        self,
        market_key: str,
        market: FakeMarket,
        instrument: FakeInstrument,
        no_trade_day_one_in: int,
        now: float,
        variant: int,
    ) -> None:
        self._market_key = market_key
        self._market = market
        self._instrument = instrument
        self._seed = f"{market_key}|{instrument.instrument}"
        self._no_trade_probability = 1 / no_trade_day_one_in if no_trade_day_one_in > 0 else 0.0
        self._now = now
        self._today = utc_from_epoch(now).date()
        self._variant = variant
        # One price path per pair of assets, shared by every exchange listing it (each adds its own
        # daily noise), so that exchanges quote about the same price, as real ones do.
        phases = uniforms(instrument.base_id, instrument.quote_id, "phases")
        self._phases = tuple(2 * math.pi * phase for phase in phases[: len(self._WAVES)])
        self._uniforms_by_day: dict[date, tuple[float, ...]] = {}

    def _day_uniforms(self, day: date) -> tuple[float, ...]:
        """The deterministic draws of one day, computed once per builder (several fields use them)."""
        if day not in self._uniforms_by_day:
            self._uniforms_by_day[day] = uniforms(self._seed, day)
        return self._uniforms_by_day[day]

    def candle(self, day: date) -> dict[str, Any]:
        if day < self._instrument.first_trade_day:
            return self._untraded_candle(day, price=0)
        if not self._is_traded(day):
            return self._untraded_candle(day, price=self._previous_close(day))
        if day == self._today:
            return self._live_candle(day)
        return self._closed_candle(day)

    def _is_traded(self, day: date) -> bool:
        instrument = self._instrument
        if day < instrument.first_trade_day or day > self._today:
            return False
        if instrument.last_trade_day is not None and day > instrument.last_trade_day:
            return False
        if day == self._today and self._now - epoch_seconds(day_start(day)) < _FIRST_LIVE_TRADE_AFTER_SECONDS:
            return False
        if day in (instrument.first_trade_day, instrument.last_trade_day):
            return True
        return self._day_uniforms(day)[1] >= self._no_trade_probability

    def _closed_candle(self, day: date) -> dict[str, Any]:
        u = self._day_uniforms(day)
        start = epoch_seconds(day_start(day))
        first_ts = start + int(u[4] * 600)
        last_ts = start + SECONDS_PER_DAY - 1 - int(u[5] * 600)
        return self._traded_candle(day, self._close(day), u, (first_ts, last_ts), share_of_day=1.0)

    def _live_candle(self, day: date) -> dict[str, Any]:
        u = uniforms(self._seed, day, "live", self._variant)
        start = epoch_seconds(day_start(day))
        elapsed = self._now - start
        first_ts = start + int(u[4] * min(600.0, elapsed / 2))
        last_ts = max(first_ts, int(self._now) - 1)
        drift = 1 + (u[0] - 0.5) * 0.04 * self._instrument.volatility
        close = _round_price(self._anchor_price(day) * drift)
        return self._traded_candle(day, close, u, (first_ts, last_ts), share_of_day=elapsed / SECONDS_PER_DAY)

    def _traded_candle(
        self,
        day: date,
        close: float,
        u: tuple[float, ...],
        trade_window: tuple[int, int],
        share_of_day: float,
    ) -> dict[str, Any]:
        instrument = self._instrument
        open_ = self._open(day)
        swing = 0.05 * instrument.volatility
        high = _round_price(max(open_, close) * (1 + u[2] * swing))
        low = _round_price(min(open_, close) * (1 - u[3] * swing))
        high, low = max(high, open_, close), min(low, open_, close)
        first_ts, last_ts = trade_window
        candle = self._header(day)
        candle.update(
            OPEN=open_,
            HIGH=high,
            LOW=low,
            CLOSE=close,
            FIRST_TRADE_TIMESTAMP=first_ts,
            LAST_TRADE_TIMESTAMP=last_ts,
            FIRST_TRADE_PRICE=open_,
            HIGH_TRADE_PRICE=high,
            HIGH_TRADE_TIMESTAMP=first_ts + int(u[6] * (last_ts - first_ts)),
            LOW_TRADE_PRICE=low,
            LOW_TRADE_TIMESTAMP=first_ts + int(u[8] * (last_ts - first_ts)),
            LAST_TRADE_PRICE=close,
        )
        activity = (0.4 + 1.2 * u[7]) * share_of_day
        trades = max(_MIN_TRADES_PER_TRADED_DAY, round(instrument.daily_trades * activity))
        quote_volume = round(instrument.daily_quote_volume * activity, 8)
        average_price = low + (high - low) * (0.25 + 0.5 * u[9])
        volume = round(quote_volume / average_price, 8)
        candle.update(self._activity_fields(trades, volume, quote_volume, buy_share=0.35 + 0.3 * u[10]))
        return candle

    def _activity_fields(
        self, trades: int, volume: float, quote_volume: float, buy_share: float
    ) -> dict[str, int | float]:
        """Counts and volumes split by side; markets that do not report sides count everything UNKNOWN."""
        if not self._market.reports_trade_side:
            return {
                "TOTAL_TRADES": trades,
                "TOTAL_TRADES_BUY": 0,
                "TOTAL_TRADES_SELL": 0,
                "TOTAL_TRADES_UNKNOWN": trades,
                "VOLUME": volume,
                "QUOTE_VOLUME": quote_volume,
                "VOLUME_BUY": 0,
                "QUOTE_VOLUME_BUY": 0,
                "VOLUME_SELL": 0,
                "QUOTE_VOLUME_SELL": 0,
                "VOLUME_UNKNOWN": volume,
                "QUOTE_VOLUME_UNKNOWN": quote_volume,
            }
        trades_buy = round(trades * buy_share)
        volume_buy = round(volume * buy_share, 8)
        quote_buy = round(quote_volume * buy_share, 8)
        return {
            "TOTAL_TRADES": trades,
            "TOTAL_TRADES_BUY": trades_buy,
            "TOTAL_TRADES_SELL": trades - trades_buy,
            "TOTAL_TRADES_UNKNOWN": 0,
            "VOLUME": volume,
            "QUOTE_VOLUME": quote_volume,
            "VOLUME_BUY": volume_buy,
            "QUOTE_VOLUME_BUY": quote_buy,
            "VOLUME_SELL": round(volume - volume_buy, 8),
            "QUOTE_VOLUME_SELL": round(quote_volume - quote_buy, 8),
            "VOLUME_UNKNOWN": 0,
            "QUOTE_VOLUME_UNKNOWN": 0,
        }

    def _untraded_candle(self, day: date, price: float) -> dict[str, Any]:
        """A filled candle without trades: OHLC at `price` (0 before the first trade), no trade fields."""
        candle = self._header(day)
        candle.update(OPEN=price, HIGH=price, LOW=price, CLOSE=price)
        candle.update(
            dict.fromkeys(
                (
                    "TOTAL_TRADES",
                    "TOTAL_TRADES_BUY",
                    "TOTAL_TRADES_SELL",
                    "TOTAL_TRADES_UNKNOWN",
                    "VOLUME",
                    "QUOTE_VOLUME",
                    "VOLUME_BUY",
                    "QUOTE_VOLUME_BUY",
                    "VOLUME_SELL",
                    "QUOTE_VOLUME_SELL",
                    "VOLUME_UNKNOWN",
                    "QUOTE_VOLUME_UNKNOWN",
                ),
                0,
            )
        )
        return candle

    def _header(self, day: date) -> dict[str, Any]:
        instrument = self._instrument
        return {
            "UNIT": "DAY",
            "TIMESTAMP": epoch_seconds(day_start(day)),
            "TYPE": "954",
            "MARKET": self._market_key,
            "INSTRUMENT": instrument.instrument,
            "MAPPED_INSTRUMENT": instrument.mapped_instrument,
            "BASE": instrument.base,
            "QUOTE": instrument.quote,
            "BASE_ID": instrument.base_id,
            "QUOTE_ID": instrument.quote_id,
            "TRANSFORM_FUNCTION": instrument.transform_function,
        }

    def _open(self, day: date) -> float:
        if day == self._instrument.first_trade_day:
            nudge = 1 + (self._day_uniforms(day)[11] - 0.5) * 0.02 * self._instrument.volatility
            return _round_price(self._anchor_price(day) * nudge)
        return self._previous_close(day)

    def _previous_close(self, day: date) -> float:
        """Close of the last traded day before `day`; 0 when nothing traded before it."""
        previous = day - timedelta(days=1)
        last_trade_day = self._instrument.last_trade_day
        if last_trade_day is not None and previous > last_trade_day:
            previous = last_trade_day
        while previous >= self._instrument.first_trade_day and not self._is_traded(previous):
            previous -= timedelta(days=1)
        return self._close(previous) if previous >= self._instrument.first_trade_day else 0.0

    def _close(self, day: date) -> float:
        return _round_price(self._anchor_price(day))

    def _anchor_price(self, day: date) -> float:
        """A smooth deterministic price path with a little daily noise."""
        t = day.toordinal()
        wave = sum(
            amplitude * math.sin(2 * math.pi * t / period + phase)
            for (amplitude, period), phase in zip(self._WAVES, self._phases, strict=True)
        )
        noise = (self._day_uniforms(day)[0] - 0.5) * 0.1
        return self._instrument.reference_price * math.exp(self._instrument.volatility * (wave + noise))


def _round_price(price: float) -> float:
    """Round to about six significant digits, keeping at least two decimals."""
    if price <= 0:
        return 0.0
    decimals = max(2, min(12, 5 - math.floor(math.log10(price))))
    return round(price, decimals)
