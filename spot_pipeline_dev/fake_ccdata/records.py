"""The records of the fake world: exchanges, markets, instruments and assets, plain mutable dataclasses
that tests change between requests, and the deterministic numbers their values derive from."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from datetime import date


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


def uniforms(*parts: object) -> tuple[float, ...]:
    """Sixteen deterministic numbers in [0, 1) derived from `parts` (never Python's salted hash())."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=64).digest()
    return tuple(value / 2**32 for value in struct.unpack(">16I", digest))
