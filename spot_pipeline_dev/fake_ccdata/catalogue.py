"""The contents of the fake world: the default one (graded exchanges, ~30 assets, active, retired and
odd instruments) and large synthetic ones for benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from spot_pipeline_dev.fake_ccdata.records import (
    FakeAsset,
    FakeExchange,
    FakeInstrument,
    FakeMarket,
    uniforms,
)

_STABLECOINS = frozenset({"USDT", "USDC", "DAI"})


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


def default_assets() -> list[FakeAsset]:
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


def default_exchanges() -> list[FakeExchange]:
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


def default_markets(assets: dict[int, FakeAsset]) -> dict[str, FakeMarket]:
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


def usd_asset() -> FakeAsset:
    return _asset(5, "USD", "US Dollar", "FIAT", 1.0, 0.0)


def synthetic_exchange(index: int) -> FakeExchange:
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


def synthetic_asset(index: int) -> FakeAsset:
    u = uniforms("synthetic-asset", index)
    return _asset(
        10_000 + index,
        f"SYN{index:04d}",
        f"Synthetic {index:04d}",
        "TOKEN" if index % 3 else "BLOCKCHAIN",
        price_usd=round(10 ** (4 * u[0] - 1), 6),
        volume_30d_usd=round(3e10 / (index + 1), 2),
    )


def synthetic_instrument(market_key: str, base: FakeAsset, history_start: date) -> FakeInstrument:
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
