"""Candle rows made up for benchmarks: every column of `cc_ohlcv_spot_1d_raw` filled, values varied
by a number so that rows differ, no API involved."""

from __future__ import annotations

import datetime as dt

from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, Row


def synthetic_candle(
    pair: int, moment: dt.datetime, variety: int, *, market: str, prefix: str, collected_at: dt.datetime
) -> Row:
    """The candle of pair number `pair` (instrument `<prefix><pair>USD` on `market`) at `moment`;
    `variety` varies its price, trade counts and volumes."""
    price = 100.0 + variety % 97 * 0.37
    return {
        "datetime": moment,
        "exchange": market,
        "symbol_unmapped": f"{prefix}{pair}USD",
        "symbol": f"{prefix}{pair}-USD",
        "base": f"{prefix}{pair}",
        "quote": "USD",
        "base_id": 10_000 + pair,
        "quote_id": 5,
        "transform_function": "",
        **dict.fromkeys(("open", "high", "low", "close"), price),
        **dict.fromkeys(TRADE_TIMESTAMP_COLUMNS, moment + dt.timedelta(hours=3)),
        **{f"{side}_trade_price": price for side in ("first", "high", "low", "last")},
        **dict.fromkeys(("total_trades", "total_trades_buy", "total_trades_sell"), 1234 + variety % 11),
        "total_trades_unknown": 0,
        **{
            f"{flow}volume{side}": 17.5 * (1 + variety % 13)
            for side in ("", "_buy", "_sell", "_unknown")
            for flow in ("", "quote_")
        },
        "collected_at": collected_at,
    }
