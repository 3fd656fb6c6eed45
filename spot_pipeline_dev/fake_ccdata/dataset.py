"""The world behind the fake CCData server: exchanges, markets, instruments, assets and their candles.

Everything is a plain mutable dataclass: tests add, retire or remap instruments and the server reflects
the change on its next request. Candle values are a pure function of (market, exchange instrument id,
day) derived from a BLAKE2 hash of those values, so they never change between runs or processes. Only
the candle of the current UTC day varies from one request to the next, like the real incomplete candle.
"""

import hashlib
import math
import struct
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

SECONDS_PER_DAY = 86_400
# Below this many seconds into the current day the current candle has no trade yet.
_FIRST_LIVE_TRADE_AFTER_SECONDS = 2
_MIN_TRADES_PER_TRADED_DAY = 4
_STABLECOINS = frozenset({"USDT", "USDC", "DAI"})


@dataclass
class FakeExchange:
    """An exchange as the min-api `/data/exchanges/general` lists it (grades live there)."""

    id: int
    name: str
    internal_name: str
    grade: str | None  # "" = ungraded; None = the Grade field is missing altogether
    grade_points: float
    country: str
    volume_24h_usd: float
    centralization_type: str = "Centralized"
    order_book: bool = True
    trades: bool = True


@dataclass
class FakeInstrument:
    """One spot instrument of a data-api market and its current mapping."""

    instrument: str  # the exchange's own id, e.g. XXBTZUSD
    mapped_instrument: str  # BASE-QUOTE, e.g. BTC-USD
    base: str
    base_id: int
    quote: str
    quote_id: int
    first_trade_day: date
    status: str = "ACTIVE"
    last_trade_day: date | None = None  # set for delisted instruments; later days have no trades
    transform_function: str = ""
    reference_price: float = 1.0  # typical price level, in quote units
    volatility: float = 0.5  # 0 for a flat price; stablecoin pairs use ~0.002
    daily_quote_volume: float = 1_000_000.0  # typical daily volume, in quote units
    daily_trades: int = 5_000
    mapping_created_on: int = 1_646_900_000
    histo_shard: str = "PG_COLLECT_01"


@dataclass
class FakeMarket:
    """A data-api market (exchange), keyed by its lowercase name in `FakeDataset.markets`."""

    history_start: date  # the market has no candle at all before this day
    instruments: list[FakeInstrument] = field(default_factory=list)
    exchange_status: str = "ACTIVE"
    reports_trade_side: bool = True  # False: every trade and volume is counted as UNKNOWN side

    def find_instrument(self, symbol: str) -> FakeInstrument | None:
        """The instrument whose exchange id or mapped symbol is `symbol`, if any."""
        for instrument in self.instruments:
            if symbol in (instrument.instrument, instrument.mapped_instrument):
                return instrument
        return None

    def remove_instrument(self, symbol: str) -> None:
        """Forget the instrument whose exchange id or mapped symbol is `symbol`."""
        self.instruments = [
            instrument
            for instrument in self.instruments
            if symbol not in (instrument.instrument, instrument.mapped_instrument)
        ]


@dataclass
class FakeAsset:
    """An asset of the `/asset/v1/top/list` ranking (symbols are not unique; ids are)."""

    id: int
    symbol: str
    name: str
    asset_type: str  # BLOCKCHAIN, TOKEN or FIAT
    price_usd: float
    volume_30d_usd: float
    volume_7d_usd: float
    volume_24h_usd: float
    circulating_mkt_cap_usd: float
    launch_date: date | None = None
    parent_asset_symbol: str | None = None
    decimal_points: int = 8


@dataclass
class FakeDataset:
    """Everything the fake server serves; mutate it freely between requests."""

    exchanges: list[FakeExchange]
    markets: dict[str, FakeMarket]
    assets: list[FakeAsset]
    no_trade_day_one_in: int = 29  # roughly one traded-period day in N has no trade at all

    @classmethod
    def default(cls) -> "FakeDataset":
        """A small realistic world: graded exchanges, ~30 assets, active, retired and odd instruments."""
        assets = _default_assets()
        by_id = {asset.id: asset for asset in assets}
        return cls(exchanges=_default_exchanges(), markets=_default_markets(by_id), assets=assets)

    @classmethod
    def synthetic(cls, markets: int, pairs_per_market: int, history_start: date) -> "FakeDataset":
        """A large uniform world for benchmarks: `markets` x `pairs_per_market` SYNnnnn-USD pairs."""
        assets = [_usd_asset(), *(_synthetic_asset(index) for index in range(pairs_per_market))]
        exchanges = [_synthetic_exchange(index) for index in range(markets)]
        market_map = {
            f"exchange{index:02d}": FakeMarket(
                history_start=history_start,
                instruments=[
                    _synthetic_instrument(f"exchange{index:02d}", asset, history_start)
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
        builder = _CandleBuilder(market_key, market, instrument, self.no_trade_day_one_in, now, variant)
        return [
            builder.candle(first_day + timedelta(days=offset))
            for offset in range((last_day - first_day).days + 1)
        ]

    def trade_bounds(self, market_key: str, instrument: FakeInstrument, now: float) -> tuple[int, int]:
        """Unix seconds of the first and the last trade of an instrument, consistent with its candles."""
        market = self.markets[market_key]
        builder = _CandleBuilder(market_key, market, instrument, self.no_trade_day_one_in, now, variant=0)
        first = builder.candle(instrument.first_trade_day).get(
            "FIRST_TRADE_TIMESTAMP", day_start_epoch(instrument.first_trade_day)
        )
        if instrument.last_trade_day is None:
            return first, max(first, int(now) - 1)
        last = builder.candle(instrument.last_trade_day).get("LAST_TRADE_TIMESTAMP", first)
        return first, last


def utc_day(timestamp: float) -> date:
    """The UTC calendar day containing a unix timestamp."""
    return datetime.fromtimestamp(timestamp, tz=UTC).date()


def day_start_epoch(day: date) -> int:
    """Unix seconds of 00:00 UTC of a day."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def uniforms(*parts: object) -> tuple[float, ...]:
    """Sixteen deterministic numbers in [0, 1) derived from `parts` (never Python's salted hash())."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=64).digest()
    return tuple(value / 2**32 for value in struct.unpack(">16I", digest))


class _CandleBuilder:
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
        self._today = utc_day(now)
        self._variant = variant
        phases = uniforms(self._seed, "phases")
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
        if day == self._today and self._now - day_start_epoch(day) < _FIRST_LIVE_TRADE_AFTER_SECONDS:
            return False
        if day in (instrument.first_trade_day, instrument.last_trade_day):
            return True
        return self._day_uniforms(day)[1] >= self._no_trade_probability

    def _closed_candle(self, day: date) -> dict[str, Any]:
        u = self._day_uniforms(day)
        start = day_start_epoch(day)
        first_ts = start + int(u[4] * 600)
        last_ts = start + SECONDS_PER_DAY - 1 - int(u[5] * 600)
        return self._traded_candle(day, self._close(day), u, (first_ts, last_ts), share_of_day=1.0)

    def _live_candle(self, day: date) -> dict[str, Any]:
        u = uniforms(self._seed, day, "live", self._variant)
        start = day_start_epoch(day)
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
            "TIMESTAMP": day_start_epoch(day),
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


# ---- the default world


def _asset(
    asset_id: int,
    symbol: str,
    name: str,
    asset_type: str,
    price_usd: float,
    volume_30d_usd: float,
    launched: str | None = None,
    parent: str | None = None,
) -> FakeAsset:
    return FakeAsset(
        id=asset_id,
        symbol=symbol,
        name=name,
        asset_type=asset_type,
        price_usd=price_usd,
        volume_30d_usd=volume_30d_usd,
        volume_7d_usd=round(volume_30d_usd * 0.24, 2),
        volume_24h_usd=round(volume_30d_usd * 0.031, 2),
        circulating_mkt_cap_usd=round(volume_30d_usd * 2.7, 2),
        launch_date=date.fromisoformat(launched) if launched else None,
        parent_asset_symbol=parent,
        decimal_points=2 if asset_type == "FIAT" else 8,
    )


def _default_assets() -> list[FakeAsset]:
    return [
        _asset(1, "BTC", "Bitcoin", "BLOCKCHAIN", 102_564.64, 631e9, "2009-01-03"),
        _asset(2, "ETH", "Ethereum", "BLOCKCHAIN", 2_480.12, 318e9, "2015-07-30"),
        _asset(5, "USD", "US Dollar", "FIAT", 1.0, 0.0),
        _asset(6, "EUR", "Euro", "FIAT", 1.14, 0.0),
        _asset(7, "USDT", "Tether", "TOKEN", 1.0, 905e9, "2014-10-06", parent="ETH"),
        _asset(8, "USDC", "USD Coin", "TOKEN", 0.9999, 152e9, "2018-09-26", parent="ETH"),
        _asset(9, "GBP", "British Pound", "FIAT", 1.35, 0.0),
        _asset(10, "SOL", "Solana", "BLOCKCHAIN", 152.3, 61e9, "2020-03-16"),
        _asset(11, "XRP", "XRP", "BLOCKCHAIN", 2.21, 52e9, "2012-06-02"),
        _asset(12, "DOGE", "Dogecoin", "BLOCKCHAIN", 0.187, 29e9, "2013-12-06"),
        _asset(13, "ADA", "Cardano", "BLOCKCHAIN", 0.66, 12.4e9, "2017-09-29"),
        _asset(14, "LTC", "Litecoin", "BLOCKCHAIN", 87.4, 8.1e9, "2011-10-07"),
        _asset(15, "BCH", "Bitcoin Cash", "BLOCKCHAIN", 402.0, 5.2e9, "2017-08-01"),
        _asset(16, "LINK", "Chainlink", "TOKEN", 13.9, 7.3e9, "2017-09-19", parent="ETH"),
        _asset(17, "DOT", "Polkadot", "BLOCKCHAIN", 4.05, 4.1e9, "2020-05-26"),
        _asset(18, "AVAX", "Avalanche", "BLOCKCHAIN", 20.4, 5.3e9, "2020-09-21"),
        _asset(19, "TRX", "TRON", "BLOCKCHAIN", 0.272, 9.2e9, "2017-09-13"),
        _asset(20, "XLM", "Stellar", "BLOCKCHAIN", 0.268, 3.1e9, "2014-07-31"),
        _asset(21, "BNB", "BNB", "BLOCKCHAIN", 651.0, 20.5e9, "2017-07-08"),
        _asset(22, "SHIB", "Shiba Inu", "TOKEN", 0.0000128, 4.4e9, "2020-08-01", parent="ETH"),
        _asset(23, "DAI", "Dai", "TOKEN", 1.0001, 2.1e9, "2019-11-18", parent="ETH"),
        _asset(24, "UNI", "Uniswap", "TOKEN", 6.48, 2.6e9, "2020-09-17", parent="ETH"),
        _asset(25, "ATOM", "Cosmos", "BLOCKCHAIN", 4.52, 1.5e9, "2019-03-14"),
        _asset(26, "ETC", "Ethereum Classic", "BLOCKCHAIN", 17.2, 1.2e9, "2016-07-20"),
        _asset(27, "XMR", "Monero", "BLOCKCHAIN", 321.0, 2.0e9, "2014-04-18"),
        _asset(28, "AAVE", "Aave", "TOKEN", 262.0, 2.2e9, "2020-10-02", parent="ETH"),
        _asset(29, "GMT", "STEPN", "TOKEN", 0.051, 612e6, "2022-03-09", parent="SOL"),
        _asset(30, "GMT", "GoMining Token", "TOKEN", 0.32, 1.2e6, "2021-10-01", parent="ETH"),
        _asset(31, "PEPE", "Pepe", "TOKEN", 0.0000112, 12.1e9, "2023-04-14", parent="ETH"),
        _asset(32, "BSV", "Bitcoin SV", "BLOCKCHAIN", 31.5, 0.2e9, "2018-11-15"),
        _asset(33, "ALGO", "Algorand", "BLOCKCHAIN", 0.184, 0.5e9, "2019-06-19"),
    ]


def _default_exchanges() -> list[FakeExchange]:
    rows = (
        (2431, "Kraken", "Kraken", "AA", 81.5, "United States", 1.4e9),
        (2416, "Coinbase", "Coinbase", "AA", 80.2, "United States", 2.9e9),
        (2436, "Bitstamp", "Bitstamp", "AA", 78.1, "Luxembourg", 3.1e8),
        (5294, "Gemini", "Gemini", "A", 72.3, "United States", 1.1e8),
        (4823, "Binance", "Binance", "A", 71.0, "Global", 1.2e10),
        (2443, "Bitfinex", "Bitfinex", "BB", 63.4, "British Virgin Islands", 2.3e8),
        (907421, "LMAX Digital", "LMAXDigital", "BB", 61.2, "Gibraltar", 4.4e8),  # no data-api market
        (2445, "Poloniex", "Poloniex", "B", 52.1, "Seychelles", 9.0e7),
        (2442, "HitBTC", "HitBTC", "C", 41.0, "Seychelles", 1.6e8),
        (2460, "YoBit", "Yobit", "", 0.0, "Russia", 2.1e7),
        (6011, "Tidex", "Tidex", None, 0.0, "United Kingdom", 3.0e5),  # no Grade field, no market
    )
    return [
        FakeExchange(
            id=exchange_id,
            name=name,
            internal_name=internal_name,
            grade=grade,
            grade_points=points,
            country=country,
            volume_24h_usd=volume,
        )
        for exchange_id, name, internal_name, grade, points, country, volume in rows
    ]


@dataclass(frozen=True)
class _Listing:
    instrument: str
    base_id: int
    quote_id: int
    first_trade: str
    status: str = "ACTIVE"
    last_trade: str | None = None
    transform_function: str = ""
    share_of_volume: float = 0.01


def _default_markets(assets: dict[int, FakeAsset]) -> dict[str, FakeMarket]:
    btc, eth, usd, eur, usdt, usdc = 1, 2, 5, 6, 7, 8
    listings = {
        ("kraken", "2013-09-01", True): (
            _Listing("XXBTZUSD", btc, usd, "2013-10-06", share_of_volume=0.012),
            _Listing("XXBTZEUR", btc, eur, "2013-09-10", share_of_volume=0.004),
            _Listing("XETHZUSD", eth, usd, "2015-08-07"),
            _Listing("SOLUSD", 10, usd, "2021-06-01"),
            _Listing("XXRPZUSD", 11, usd, "2017-05-18"),
            _Listing("XDGUSD", 12, usd, "2019-07-01"),
            _Listing("ADAUSD", 13, usd, "2018-10-01"),
            _Listing("XLTCZUSD", 14, usd, "2014-01-01"),
            _Listing("DOTUSD", 17, usd, "2020-08-18"),
            _Listing("USDTZUSD", usdt, usd, "2019-04-01", share_of_volume=0.001),
            _Listing("USDCUSD", usdc, usd, "2020-06-01", share_of_volume=0.001),
            _Listing("XXLMZEUR", 20, eur, "2016-01-01", status="RETIRED", last_trade="2023-06-30"),
            _Listing("BSVUSD", 32, usd, "2018-11-15", status="RETIRED", last_trade="2019-05-10"),
        ),
        ("coinbase", "2014-12-01", True): (
            _Listing("BTC-USD", btc, usd, "2015-01-26", share_of_volume=0.02),
            _Listing("BTC-EUR", btc, eur, "2015-04-23", share_of_volume=0.002),
            _Listing("ETH-USD", eth, usd, "2016-05-18", share_of_volume=0.02),
            _Listing("SOL-USD", 10, usd, "2021-06-01"),
            _Listing("DOGE-USD", 12, usd, "2021-06-03"),
            _Listing("ADA-USD", 13, usd, "2021-03-18"),
            _Listing("LINK-USD", 16, usd, "2019-06-26"),
            _Listing("AVAX-USD", 18, usd, "2021-09-30"),
            _Listing("UNI-USD", 24, usd, "2020-09-17"),
            _Listing("GMT-USD", 29, usd, "2022-04-15"),
            # The exchange lists USDT-USDC; the mapping reports the inverted USDC-USDT.
            _Listing(
                "USDT-USDC", usdc, usdt, "2021-05-01", transform_function="INVERT", share_of_volume=0.0005
            ),
            _Listing("DAI-USD", 23, usd, "2020-05-20", status="RETIRED", last_trade="2023-06-01"),
        ),
        ("bitstamp", "2011-08-01", True): (
            _Listing("btcusd", btc, usd, "2011-08-18", share_of_volume=0.003),
            _Listing("btceur", btc, eur, "2016-04-16"),
            _Listing("ethusd", eth, usd, "2017-08-16"),
            _Listing("xrpusd", 11, usd, "2017-01-17"),
            _Listing("ltcusd", 14, usd, "2016-08-01"),
            _Listing("bchusd", 15, usd, "2017-12-07"),
            _Listing("usdcusd", usdc, usd, "2021-03-01", share_of_volume=0.0002),
        ),
        ("binance", "2017-07-01", True): (
            _Listing("BTCUSDT", btc, usdt, "2017-08-17", share_of_volume=0.05),
            _Listing("ETHUSDT", eth, usdt, "2017-08-17", share_of_volume=0.05),
            _Listing("BNBUSDT", 21, usdt, "2017-11-06", share_of_volume=0.3),
            _Listing("SOLUSDT", 10, usdt, "2020-08-11", share_of_volume=0.05),
            _Listing("XRPUSDT", 11, usdt, "2018-05-04", share_of_volume=0.03),
            _Listing("DOGEUSDT", 12, usdt, "2019-07-05", share_of_volume=0.03),
            _Listing("ADAUSDT", 13, usdt, "2018-04-17"),
            _Listing("TRXUSDT", 19, usdt, "2018-06-11"),
            _Listing("AVAXUSDT", 18, usdt, "2020-09-22"),
            _Listing("SHIBUSDT", 22, usdt, "2021-05-10"),
            _Listing("PEPEUSDT", 31, usdt, "2023-05-05", share_of_volume=0.03),
            _Listing("GMTUSDT", 29, usdt, "2022-03-09", share_of_volume=0.1),
            _Listing("USDCUSDT", usdc, usdt, "2018-12-15", share_of_volume=0.002),
            _Listing("BTCEUR", btc, eur, "2020-01-03"),
            _Listing("BCHUSDT", 15, usdt, "2019-11-28"),
            _Listing("BCCUSDT", 15, usdt, "2017-11-13", status="RETIRED", last_trade="2018-11-20"),
        ),
        ("gemini", "2015-10-01", True): (
            _Listing("btcusd", btc, usd, "2015-10-08", share_of_volume=0.001),
            _Listing("ethusd", eth, usd, "2016-05-09"),
            _Listing("ltcusd", 14, usd, "2018-10-13"),
            _Listing("linkusd", 16, usd, "2020-08-21"),
            _Listing("solusd", 10, usd, "2022-03-01"),
        ),
        ("bitfinex", "2013-03-01", True): (
            _Listing("tBTCUSD", btc, usd, "2013-04-01", share_of_volume=0.002),
            _Listing("tETHUSD", eth, usd, "2016-03-09"),
            _Listing("tXMRUSD", 27, usd, "2016-11-22"),
            _Listing("tUSTUSD", usdt, usd, "2019-03-01", share_of_volume=0.0005),
            _Listing("tBTCUST", btc, usdt, "2019-03-01", status="IGNORED"),
        ),
        ("poloniex", "2014-01-01", False): (
            _Listing("BTC_USDT", btc, usdt, "2015-02-19"),
            _Listing("ETH_USDT", eth, usdt, "2016-05-01"),
            _Listing("XMR_USDT", 27, usdt, "2016-05-01"),
            _Listing("TRX_USDT", 19, usdt, "2019-01-15"),
            _Listing("ETC_USDT", 26, usdt, "2016-07-24"),
        ),
        ("hitbtc", "2014-01-01", True): (
            # HitBTC calls USDT "USD": the mapping fixes the quote.
            _Listing("BTCUSD", btc, usdt, "2015-05-01"),
            _Listing("ETHUSD", eth, usdt, "2016-04-01"),
            _Listing("ALGOUSD", 33, usdt, "2019-06-21"),
        ),
        ("yobit", "2015-01-01", True): (
            _Listing("btc_usd", btc, usd, "2015-03-01"),
            _Listing("gmt_usd", 30, usd, "2022-01-10"),  # GMT here is GoMining (id 30), not STEPN
        ),
    }
    return {
        key: FakeMarket(
            history_start=date.fromisoformat(history_start),
            instruments=[_listed_instrument(listing, assets) for listing in market_listings],
            reports_trade_side=reports_trade_side,
        )
        for (key, history_start, reports_trade_side), market_listings in listings.items()
    }


def _listed_instrument(listing: _Listing, assets: dict[int, FakeAsset]) -> FakeInstrument:
    base, quote = assets[listing.base_id], assets[listing.quote_id]
    quote_volume = base.volume_30d_usd / 30 * listing.share_of_volume / quote.price_usd
    return FakeInstrument(
        instrument=listing.instrument,
        mapped_instrument=f"{base.symbol}-{quote.symbol}",
        base=base.symbol,
        base_id=base.id,
        quote=quote.symbol,
        quote_id=quote.id,
        first_trade_day=date.fromisoformat(listing.first_trade),
        status=listing.status,
        last_trade_day=date.fromisoformat(listing.last_trade) if listing.last_trade else None,
        transform_function=listing.transform_function,
        reference_price=base.price_usd / quote.price_usd,
        volatility=0.002 if base.symbol in _STABLECOINS else 0.5,
        daily_quote_volume=round(max(quote_volume, 1_000.0), 2),
        daily_trades=max(20, int(quote_volume / 2_500)),
        histo_shard=f"PG_COLLECT_0{1 + listing.base_id % 4}",
    )


# ---- the synthetic world


def _usd_asset() -> FakeAsset:
    return _asset(5, "USD", "US Dollar", "FIAT", 1.0, 0.0)


def _synthetic_exchange(index: int) -> FakeExchange:
    grades = ("AA", "A", "BB", "B", "C", "")
    grade = grades[index % len(grades)]
    return FakeExchange(
        id=100 + index,
        name=f"Exchange {index:02d}",
        internal_name=f"Exchange{index:02d}",
        grade=grade,
        grade_points=85.0 - 8 * (index % len(grades)) if grade else 0.0,
        country="Global",
        volume_24h_usd=1e9 / (index + 1),
    )


def _synthetic_asset(index: int) -> FakeAsset:
    u = uniforms("synthetic-asset", index)
    return _asset(
        10_000 + index,
        f"SYN{index:04d}",
        f"Synthetic {index:04d}",
        "TOKEN" if index % 3 else "BLOCKCHAIN",
        price_usd=round(10 ** (4 * u[0] - 1), 6),
        volume_30d_usd=round(3e10 / (index + 1), 2),
    )


def _synthetic_instrument(market_key: str, base: FakeAsset, history_start: date) -> FakeInstrument:
    offset_days = int(uniforms(market_key, base.id)[0] * 365)
    return FakeInstrument(
        instrument=f"{base.symbol}USD",
        mapped_instrument=f"{base.symbol}-USD",
        base=base.symbol,
        base_id=base.id,
        quote="USD",
        quote_id=5,
        first_trade_day=history_start + timedelta(days=offset_days),
        reference_price=base.price_usd,
        daily_quote_volume=round(base.volume_30d_usd / 300, 2),
        daily_trades=1_000,
    )
