"""The fake server's endpoints: each one turns a query and the dataset into the `Data` of its answer,
or raises `ApiError` as the real API would answer (status, message, offending parameter)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from spot_pipeline.ccdata.key_limits import WINDOW_SPANS
from spot_pipeline.ccdata.vocabulary import INSTRUMENT_STATUSES, MAX_CANDLES_PER_CALL
from spot_pipeline.timeutils import day_start, epoch_seconds, utc_from_epoch
from spot_pipeline_dev.fake_ccdata.dataset import FakeDataset
from spot_pipeline_dev.fake_ccdata.records import FakeAsset, FakeExchange, FakeInstrument, uniforms

DEFAULT_CANDLES_PER_CALL = 30
TOP_LIST_SORTS = (
    "SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD",
    "SPOT_MOVING_24_HOUR_QUOTE_VOLUME_USD",
    "CIRCULATING_MKT_CAP_USD",
)
_STATUS_COUNT_KEYS = ("ACTIVE", "IGNORED", "RETIRED", "EXPIRED", "RETIRED_UNMAPPED")


class ApiError(Exception):
    """An error answer; rendered as a data-api `Err` envelope or a min-api `Response: Error`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        values: Iterable[object] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.values = list(values)
        self.retry_after = retry_after


# ---- data-api endpoints


def historical_days(
    dataset: FakeDataset, query: Mapping[str, str], now: float, variant: int
) -> list[dict[str, Any]]:
    """Daily candles of one instrument, `limit` of them ending with the day of `to_ts`."""
    market_key = _required_param(query, "market")
    market = dataset.market(market_key)
    if market is None:
        raise ApiError(
            400,
            f"market parameter is invalid: {market_key} is not a market",
            param="market",
            values=[market_key],
        )
    symbol = _required_param(query, "instrument")
    instrument = market.find_instrument(symbol)
    if instrument is None:
        raise ApiError(
            404,
            f"No instrument {symbol} on market {market_key}.",
            param="instrument",
            values=[symbol],
        )
    limit = _int_param(query, "limit", DEFAULT_CANDLES_PER_CALL, low=1, high=MAX_CANDLES_PER_CALL)
    to_ts = _int_param(query, "to_ts", int(now), low=0, high=None)
    last_day = min(utc_from_epoch(to_ts).date(), utc_from_epoch(now).date())
    if last_day < market.history_start:
        raise ApiError(404, f"No data for {symbol} on {market_key} up to {last_day}.")
    return dataset.daily_candles(
        market_key, instrument, last_day=last_day, limit=limit, now=now, variant=variant
    )


def markets_instruments(dataset: FakeDataset, query: Mapping[str, str], now: float) -> dict[str, Any]:
    """Instruments per market, filtered by market, status and instrument like the real endpoint."""
    keys = _list_param(query, "market") or list(dataset.markets)
    unknown = [key for key in keys if key not in dataset.markets]
    if unknown:
        raise ApiError(
            400, f"market parameter is invalid: {', '.join(unknown)}", param="market", values=unknown
        )
    status = query.get("instrument_status") or None
    if status is not None and status not in INSTRUMENT_STATUSES:
        raise ApiError(
            400,
            f"instrument_status must be one of {', '.join(INSTRUMENT_STATUSES)}",
            param="instrument_status",
            values=[status],
        )
    wanted = set(_list_param(query, "instruments"))
    return {key: _market_entry(dataset, key, status, wanted, now) for key in keys}


def _market_entry(
    dataset: FakeDataset, key: str, status: str | None, wanted: set[str], now: float
) -> dict[str, Any]:
    market = dataset.markets[key]
    listed = [
        instrument
        for instrument in market.instruments
        if status in (None, instrument.status)
        and (not wanted or wanted & {instrument.instrument, instrument.mapped_instrument})
    ]
    counts = Counter(instrument.status for instrument in market.instruments)
    entries = {
        instrument.mapped_instrument: _instrument_entry(dataset, key, instrument, now)
        for instrument in listed
    }
    return {
        "TYPE": "602",
        "EXCHANGE_STATUS": market.exchange_status,
        "MAPPED_INSTRUMENTS_TOTAL": len(market.instruments),
        "UNMAPPED_INSTRUMENTS_TOTAL": 0,
        "INSTRUMENT_STATUS": {name: counts.get(name, 0) for name in _STATUS_COUNT_KEYS},
        "TOTAL_TRADES_SPOT": sum(_total_trades(instrument, now) for instrument in market.instruments),
        "HAS_ORDERBOOK_L2_MINUTE_SNAPSHOTS_ENABLED": True,
        "instruments": entries,
    }


def _instrument_entry(
    dataset: FakeDataset, market_key: str, instrument: FakeInstrument, now: float
) -> dict[str, Any]:
    has_trades = instrument.first_trade_day <= utc_from_epoch(now).date()
    entry: dict[str, Any] = {
        "TYPE": "612",
        "INSTRUMENT_STATUS": instrument.status,
        "INSTRUMENT": instrument.instrument,
        "HISTO_SHARD": instrument.histo_shard,
        "MAPPED_INSTRUMENT": instrument.mapped_instrument,
        "INSTRUMENT_MAPPING": {
            "MAPPED_INSTRUMENT": instrument.mapped_instrument,
            "BASE": instrument.base,
            "BASE_ID": instrument.base_id,
            "QUOTE": instrument.quote,
            "QUOTE_ID": instrument.quote_id,
            "TRANSFORM_FUNCTION": instrument.transform_function,
            "CREATED_ON": instrument.mapping_created_on,
        },
        "HAS_TRADES_SPOT": has_trades,
    }
    if has_trades:
        first_ts, last_ts = dataset.trade_bounds(market_key, instrument, now)
        entry["FIRST_TRADE_SPOT_TIMESTAMP"] = first_ts
        entry["LAST_TRADE_SPOT_TIMESTAMP"] = last_ts
    entry["TOTAL_TRADES_SPOT"] = _total_trades(instrument, now)
    return entry


def top_list(dataset: FakeDataset, query: Mapping[str, str], now: float) -> dict[str, Any]:
    """One page of assets, sorted and filtered like the real top list."""
    page = _int_param(query, "page", 1, low=1, high=1000)
    page_size = _int_param(query, "page_size", 100, low=10, high=100)
    sort_by = _choice_param(query, "sort_by", TOP_LIST_SORTS, default="CIRCULATING_MKT_CAP_USD")
    direction = _choice_param(query, "sort_direction", ("DESC", "ASC"), default="DESC")
    asset_type = query.get("asset_type") or None
    assets = [
        asset
        for asset in sorted(dataset.assets, key=lambda asset: asset.id)
        if (asset.asset_type == asset_type if asset_type else asset.asset_type != "FIAT")
    ]
    parent_ids = {asset.symbol: asset.id for asset in dataset.assets if asset.asset_type == "BLOCKCHAIN"}
    items = [_asset_item(asset, parent_ids, now) for asset in assets]
    _add_base_ranks(items)
    items.sort(key=lambda item: item[sort_by], reverse=direction == "DESC")
    first = (page - 1) * page_size
    return {
        "STATS": {"PAGE": page, "PAGE_SIZE": page_size, "TOTAL_ASSETS": len(items)},
        "LIST": items[first : first + page_size],
    }


# What the fake reports for a window it does not limit: the paid key of samples/admin_v2_rate_limit.
PAID_KEY_LIMITS = {"SECOND": 100, "MINUTE": 6_000, "HOUR": 300_000, "DAY": 5_000_000, "MONTH": 50_000_000}


def rate_limit_status(accepted: list[float], now: float, limits: Mapping[str, int]) -> dict[str, Any]:
    """The key's use and limits per window, counted from the accepted requests' arrival times
    (monotonic; the call being answered is among them, as it counts against the limit)."""
    used = {
        name: sum(1 for arrival in accepted if now - arrival < span) for name, span in WINDOW_SPANS.items()
    }
    maximum = {**PAID_KEY_LIMITS, **limits}
    return {
        "TYPE": "3000",
        "API_KEY": {
            "TYPE": "3001",
            "USED": {"TYPE": "3002", **used},
            "MAX": {"TYPE": "3003", **maximum, "SOFT_CAP_ALLOWANCE_MULTIPLIER": 1.1},
            "REMAINING": {
                "TYPE": "3004",
                **{name: max(0, maximum[name] - used[name]) for name in WINDOW_SPANS},
            },
        },
        "AUTH_KEY": {
            "TYPE": "3001",
            "USED": {"TYPE": "3002", **dict.fromkeys(WINDOW_SPANS, 0)},
            "MAX": {
                "TYPE": "3003",
                "MONTH": 200_000,
                "DAY": 40_000,
                "HOUR": 10_000,
                "MINUTE": 1_000,
                "SECOND": 20,
                "SOFT_CAP_ALLOWANCE_MULTIPLIER": 1.2,
            },
            "REMAINING": {
                "TYPE": "3004",
                "SECOND": 20,
                "MINUTE": 1_000,
                "HOUR": 10_000,
                "DAY": 40_000,
                "MONTH": 200_000,
            },
        },
    }


# ---- min-api endpoint


def exchanges_general(dataset: FakeDataset) -> dict[str, dict[str, Any]]:
    """Every exchange with its grade, in the min-api's shape (numbers as strings)."""
    btc_price = next((asset.price_usd for asset in dataset.assets if asset.id == 1), 100_000.0)
    return {
        str(exchange.id): _exchange_item(exchange, sort_order, btc_price)
        for sort_order, exchange in enumerate(dataset.exchanges, start=1)
    }


# ---- query parameters


def _required_param(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "").strip()
    if not value:
        raise ApiError(400, f"{name} is a required parameter.", param=name)
    return value


def _int_param(query: Mapping[str, str], name: str, default: int, *, low: int, high: int | None) -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer.", param=name, values=[raw]) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be {bounds}.", param=name, values=[value])
    return value


def _choice_param(query: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = query.get(name) or default
    if value not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}.", param=name, values=[value])
    return value


def _list_param(query: Mapping[str, str], name: str) -> list[str]:
    return [part.strip() for part in query.get(name, "").split(",") if part.strip()]


# ---- payload pieces


def _total_trades(instrument: FakeInstrument, now: float) -> int:
    end_day = min(instrument.last_trade_day or utc_from_epoch(now).date(), utc_from_epoch(now).date())
    days = (end_day - instrument.first_trade_day).days + 1
    return max(0, days) * instrument.daily_trades


def _exchange_item(exchange: FakeExchange, sort_order: int, btc_price: float) -> dict[str, Any]:
    slug = exchange.internal_name.lower()
    item: dict[str, Any] = {
        "Id": str(exchange.id),
        "SortOrder": str(sort_order),
        "Name": exchange.name,
        "Url": f"/exchanges/{slug}/overview",
        "LogoUrl": f"/media/{exchange.id}/{slug}.png",
        "ItemType": ["Cryptocurrency", "Stable Coins", "Tokens", "Fiat"],
        "CentralizationType": exchange.centralization_type,
        "InternalName": exchange.internal_name,
    }
    if exchange.grade is not None:
        item["GradePoints"] = f"{exchange.grade_points:g}"
        item["Grade"] = exchange.grade
        item["GradePointsSplit"] = _grade_points_split(exchange.grade_points)
    u = uniforms("exchange", exchange.id)
    ratings = [int(share * 20) for share in u[:5]]
    item.update(
        {
            "AffiliateURL": f"https://www.{slug}.com/",
            "Country": exchange.country,
            "OrderBook": exchange.order_book,
            "Trades": exchange.trades,
            "Description": f"{exchange.name} is a cryptocurrency exchange.",
            "FullAddress": f"{exchange.name} Ltd., {exchange.country}",
            "Sponsored": False,
            "Recommended": False,
            "Rating": {
                "One": ratings[0],
                "Two": ratings[1],
                "Three": ratings[2],
                "Four": ratings[3],
                "Five": ratings[4],
                "Avg": round(1 + 4 * u[5], 2),
                "TotalUsers": sum(ratings),
            },
            "TOTALVOLUME24H": {
                "BTC": round(exchange.volume_24h_usd / btc_price, 8),
                "USD": exchange.volume_24h_usd,
            },
        }
    )
    return item


def _grade_points_split(points: float) -> dict[str, str]:
    weights = {
        "Legal": 0.15,
        "KYCAndTransactionRisk": 0.15,
        "Team": 0.1,
        "DataProvision": 0.1,
        "AssetQualityAndDiversity": 0.1,
        "MarketQuality": 0.2,
        "Security": 0.2,
        "NegativeReportsPenalty": 0.0,
    }
    return {name: f"{round(points * weight, 2):g}" for name, weight in weights.items()}


def _asset_item(asset: FakeAsset, parent_ids: Mapping[str, int], now: float) -> dict[str, Any]:
    u = uniforms("asset", asset.id)
    created_on = 1_659_708_643 + asset.id * 3_607
    supply = asset.circulating_mkt_cap_usd / asset.price_usd if asset.price_usd else 0.0
    item: dict[str, Any] = {
        "ID": asset.id,
        "TYPE": "162",
        "ID_LEGACY": 1_000 + asset.id,
        "ID_PARENT_ASSET": parent_ids.get(asset.parent_asset_symbol or ""),
        "ID_ASSET_ISSUER": None,
        "SYMBOL": asset.symbol,
        "URI": asset.name.lower().replace(" ", "-"),
        "ASSET_TYPE": asset.asset_type,
        "ASSET_ISSUER_NAME": None,
        "PARENT_ASSET_SYMBOL": asset.parent_asset_symbol,
        "CREATED_ON": created_on,
        "UPDATED_ON": int(now) - 3_600,
        "PUBLIC_NOTICE": None,
        "NAME": asset.name,
        "LOGO_URL": f"https://resources.cryptocompare.com/asset-management/{asset.id}/logo.png",
        "LAUNCH_DATE": _launch_timestamp(asset),
        "PREVIOUS_ASSET_SYMBOLS": None,
        "ASSET_ALTERNATIVE_IDS": [],
        "ASSET_DESCRIPTION_SNIPPET": f"{asset.name} ({asset.symbol}) is a {asset.asset_type.lower()} asset.",
        "ASSET_DECIMAL_POINTS": asset.decimal_points,
        "SUPPLY_MAX": round(supply * 1.1, 4),
        "SUPPLY_ISSUED": round(supply, 4),
        "SUPPLY_TOTAL": round(supply, 4),
        "SUPPLY_CIRCULATING": round(supply, 4),
        "SUPPLY_FUTURE": round(supply * 0.1, 4),
        "SUPPLY_LOCKED": 0,
        "SUPPLY_BURNT": 0,
        "SUPPLY_STAKED": 0,
        "LAST_BLOCK_MINT": None,
        "LAST_BLOCK_BURN": None,
        "PRICE_USD": asset.price_usd,
        "PRICE_USD_SOURCE": "cadli",
        "PRICE_USD_LAST_UPDATE_TS": int(now) - 60,
        "PRICE_CONVERSION_ASSET": {"ID": 5, "SYMBOL": "USD", "ASSET_TYPE": "FIAT"},
        "PRICE_CONVERSION_RATE": 1,
        "PRICE_CONVERSION_VALUE": asset.price_usd,
        "PRICE_CONVERSION_SOURCE": "cadli",
        "PRICE_CONVERSION_LAST_UPDATE_TS": int(now) - 60,
        "MKT_CAP_PENALTY": 0,
        "CIRCULATING_MKT_CAP_USD": asset.circulating_mkt_cap_usd,
        "TOTAL_MKT_CAP_USD": asset.circulating_mkt_cap_usd,
        "CIRCULATING_MKT_CAP_CONVERSION": asset.circulating_mkt_cap_usd,
        "TOTAL_MKT_CAP_CONVERSION": asset.circulating_mkt_cap_usd,
    }
    volumes = {"24_HOUR": asset.volume_24h_usd, "7_DAY": asset.volume_7d_usd, "30_DAY": asset.volume_30d_usd}
    for window, volume in volumes.items():
        item.update(_volume_fields(f"SPOT_MOVING_{window}_QUOTE_VOLUME", volume))
    for index, window in enumerate(volumes):
        item.update(_change_fields(f"SPOT_MOVING_{window}_CHANGE", asset.price_usd, (u[index] - 0.5) * 20))
    return item


def _volume_fields(prefix: str, volume_usd: float) -> dict[str, float]:
    top_tier = round(volume_usd * 0.55, 4)
    return {
        f"{prefix}_TOP_TIER_DIRECT_USD": round(volume_usd * 0.1, 4),
        f"{prefix}_DIRECT_USD": round(volume_usd * 0.12, 4),
        f"{prefix}_TOP_TIER_USD": top_tier,
        f"{prefix}_USD": volume_usd,
        f"{prefix}_TOP_TIER_CONVERSION": top_tier,
        f"{prefix}_CONVERSION": volume_usd,
    }


def _change_fields(prefix: str, price: float, percentage: float) -> dict[str, float]:
    change = round(price * percentage / 100, 10)
    return {
        f"{prefix}_USD": change,
        f"{prefix}_PERCENTAGE_USD": round(percentage, 8),
        f"{prefix}_CONVERSION": change,
        f"{prefix}_PERCENTAGE_CONVERSION": round(percentage, 8),
    }


def _launch_timestamp(asset: FakeAsset) -> int | None:
    return epoch_seconds(day_start(asset.launch_date)) if asset.launch_date else None


def _add_base_ranks(items: list[dict[str, Any]]) -> None:
    """Set TOPLIST_BASE_RANK: 1 is the largest value, or the earliest date for CREATED_ON/LAUNCH_DATE."""
    rankings: dict[str, dict[int, int]] = {}
    for field_name in ("CREATED_ON", "LAUNCH_DATE"):
        ordered = sorted(items, key=lambda item: (item[field_name] is None, item[field_name] or 0))
        rankings[field_name] = {item["ID"]: rank for rank, item in enumerate(ordered, start=1)}
    for field_name in (
        "CIRCULATING_MKT_CAP_USD",
        "TOTAL_MKT_CAP_USD",
        "SPOT_MOVING_24_HOUR_QUOTE_VOLUME_USD",
        "SPOT_MOVING_7_DAY_QUOTE_VOLUME_USD",
        "SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD",
    ):
        ordered = sorted(items, key=lambda item: item[field_name], reverse=True)
        rankings[field_name] = {item["ID"]: rank for rank, item in enumerate(ordered, start=1)}
    for item in items:
        item["TOPLIST_BASE_RANK"] = {field_name: ranks[item["ID"]] for field_name, ranks in rankings.items()}
