"""The world behind the fake CCData server: exchanges, markets, instruments, assets and their candles.

Everything is a plain mutable dataclass: tests add, retire or remap instruments and the server reflects
the change on its next request. Candle values are a pure function of (market, exchange instrument id,
day) derived from a BLAKE2 hash of those values, so they never change between runs or processes. Only
the candle of the current UTC day varies from one request to the next, like the real incomplete candle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from spot_pipeline.timeutils import day_start, epoch_seconds
from spot_pipeline_dev.fake_ccdata import catalogue
from spot_pipeline_dev.fake_ccdata.candle_builder import CandleBuilder
from spot_pipeline_dev.fake_ccdata.records import FakeAsset, FakeExchange, FakeInstrument, FakeMarket


@dataclass
class FakeDataset:
    """Everything the fake server serves; mutate it freely between requests."""

    exchanges: list[FakeExchange]
    markets: dict[str, FakeMarket]
    assets: list[FakeAsset]
    no_trade_day_one_in: int = 29  # roughly one traded-period day in N has no trade at all

    @classmethod
    def default(cls) -> FakeDataset:
        """A small realistic world: graded exchanges, ~30 assets, active, retired and odd instruments."""
        assets = catalogue.default_assets()
        by_id = {asset.id: asset for asset in assets}
        return cls(
            exchanges=catalogue.default_exchanges(), markets=catalogue.default_markets(by_id), assets=assets
        )

    @classmethod
    def synthetic(cls, markets: int, pairs_per_market: int, history_start: date) -> FakeDataset:
        """A large uniform world for benchmarks: `markets` x `pairs_per_market` SYNnnnn-USD pairs."""
        assets = [
            catalogue.usd_asset(),
            *(catalogue.synthetic_asset(index) for index in range(pairs_per_market)),
        ]
        exchanges = [catalogue.synthetic_exchange(index) for index in range(markets)]
        market_map = {
            f"exchange{index:02d}": FakeMarket(
                history_start=history_start,
                instruments=[
                    catalogue.synthetic_instrument(f"exchange{index:02d}", asset, history_start)
                    for asset in assets[1:]
                ],
            )
            for index in range(markets)
        }
        return cls(exchanges=exchanges, markets=market_map, assets=assets)

    def market(self, key: str) -> FakeMarket | None:
        """The market with this lowercase key, if any."""
        return self.markets.get(key)

    def daily_candles(
        self,
        market_key: str,
        instrument: FakeInstrument,
        *,
        last_day: date,
        limit: int,
        now: float,
        variant: int,
    ) -> list[dict[str, Any]]:
        """Up to `limit` candles ending with `last_day`, ascending, never before the market's history start.

        `variant` seeds the incomplete candle of the current UTC day (per `now`), so a new value per
        request makes that candle change on every request.
        """
        market = self.markets[market_key]
        first_day = max(last_day - timedelta(days=limit - 1), market.history_start)
        builder = CandleBuilder(market_key, market, instrument, self.no_trade_day_one_in, now, variant)
        return [
            builder.candle(first_day + timedelta(days=offset))
            for offset in range((last_day - first_day).days + 1)
        ]

    def trade_bounds(self, market_key: str, instrument: FakeInstrument, now: float) -> tuple[int, int]:
        """Unix seconds of the first and the last trade of an instrument, consistent with its candles."""
        market = self.markets[market_key]
        builder = CandleBuilder(market_key, market, instrument, self.no_trade_day_one_in, now, variant=0)
        first = builder.candle(instrument.first_trade_day).get(
            "FIRST_TRADE_TIMESTAMP", epoch_seconds(day_start(instrument.first_trade_day))
        )
        if instrument.last_trade_day is None:
            return first, max(first, int(now) - 1)
        last = builder.candle(instrument.last_trade_day).get("LAST_TRADE_TIMESTAMP", first)
        return first, last
