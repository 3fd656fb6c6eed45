"""Turn CCData reference payloads into rows of the market tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spot_pipeline.ccdata.payload import (
    PayloadValueError,
    as_bool,
    as_datetime,
    as_float,
    as_int,
    as_text,
    mapping,
    required,
)
from spot_pipeline.ccdata.vocabulary import INSTRUMENT_STATUSES
from spot_pipeline.db.schema import GRADE_POINT_PARTS, Row

# The min-api's GradePointsSplit field of each grade_points_<part> column, in the schema's order.
EXCHANGE_GRADE_POINT_PARTS = dict(
    zip(
        GRADE_POINT_PARTS,
        (
            "Legal",
            "KYCAndTransactionRisk",
            "Team",
            "DataProvision",
            "AssetQualityAndDiversity",
            "MarketQuality",
            "Security",
            "NegativeReportsPenalty",
        ),
        strict=True,
    )
)

ASSET_MARKET_FIELDS = {
    "price_usd": "PRICE_USD",
    "mkt_cap_penalty": "MKT_CAP_PENALTY",
    "circulating_mkt_cap_usd": "CIRCULATING_MKT_CAP_USD",
    "total_mkt_cap_usd": "TOTAL_MKT_CAP_USD",
    **{
        f"spot_moving_{window.lower()}_quote_volume{tier.lower()}_usd": (
            f"SPOT_MOVING_{window}_QUOTE_VOLUME{tier}_USD"
        )
        for window in ("24_HOUR", "7_DAY", "30_DAY")
        for tier in ("_TOP_TIER", "")
    },
}


@dataclass
class Parsed:
    """Rows that can be stored, and why the other records of the payload could not be."""

    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: Parsed) -> None:
        self.rows += other.rows
        self.skipped += other.skipped


def parse_each(records: Iterable[Any], parse: Callable[[Any], Row]) -> Parsed:
    """Parse every record; one that cannot be stored is skipped with its reason, not fatal."""
    parsed = Parsed()
    for record in records:
        try:
            parsed.rows.append(parse(record))
        except PayloadValueError as error:
            parsed.skipped.append(str(error))
    return parsed


def exchange_rows(data: Any, now: dt.datetime) -> Parsed:
    """Rows of cc_exchanges_general from the min-api `/data/exchanges/general` Data object."""
    return parse_each(
        mapping(data, "exchanges/general Data").items(),
        lambda item: _exchange_row(mapping(item[1], f"exchange {item[0]}"), f"exchange {item[0]}", now),
    )


def _exchange_row(record: Mapping[str, Any], context: str, now: dt.datetime) -> Row:
    split = record.get("GradePointsSplit") or {}
    rating = record.get("Rating") or {}
    volumes = record.get("TOTALVOLUME24H") or {}
    internal_name = str(required(record, "InternalName", context))
    context = f"exchange {internal_name}"
    return {
        "exchange_api_id": str(required(record, "Id", context)),
        "name": str(record.get("Name") or internal_name),
        "internal_name": internal_name,
        "api_url_path": as_text(record.get("Url")),
        "logo_url_path": as_text(record.get("LogoUrl")),
        "item_types": list(record.get("ItemType") or []),
        "centralization_type": as_text(record.get("CentralizationType")),
        "grade_points": as_float(record.get("GradePoints"), f"{context} GradePoints"),
        "grade": (as_text(record.get("Grade")) or "").strip() or None,
        **{
            f"grade_points_{column}": as_float(split.get(key), f"{context} GradePointsSplit.{key}")
            for column, key in EXCHANGE_GRADE_POINT_PARTS.items()
        },
        "affiliate_url": as_text(record.get("AffiliateURL")),
        "country": as_text(record.get("Country")),
        "has_orderbook": as_bool(record.get("OrderBook"), f"{context} OrderBook"),
        "has_trades": as_bool(record.get("Trades"), f"{context} Trades"),
        "description": as_text(record.get("Description")),
        "full_address": as_text(record.get("FullAddress")),
        "is_sponsored": as_bool(record.get("Sponsored"), f"{context} Sponsored"),
        "is_recommended": as_bool(record.get("Recommended"), f"{context} Recommended"),
        "rating_avg": as_float(rating.get("Avg"), f"{context} Rating.Avg"),
        "rating_total_users": as_int(rating.get("TotalUsers"), f"{context} Rating.TotalUsers"),
        "sort_order": as_int(record.get("SortOrder"), f"{context} SortOrder"),
        "total_volume_24h_usd": as_float(volumes.get("USD"), f"{context} TOTALVOLUME24H.USD"),
        "created_at": now,
        "updated_at": now,
    }


def instrument_rows(data: Any, now: dt.datetime) -> Parsed:
    """Rows of cc_instruments_spot from a `/spot/v1/markets/instruments` Data object."""
    parsed = Parsed()
    for market, market_record in mapping(data, "markets/instruments Data").items():
        instruments = mapping(market_record, f"market {market}").get("instruments") or {}
        parsed.extend(
            parse_each(
                mapping(instruments, f"market {market} instruments").items(),
                lambda item, market=market: _instrument_row(
                    market, item[0], mapping(item[1], f"instrument {market}/{item[0]}"), now
                ),
            )
        )
    return parsed


def _instrument_row(market: str, mapped: str, record: Mapping[str, Any], now: dt.datetime) -> Row:
    context = f"instrument {market}/{mapped}"
    instrument_mapping = record.get("INSTRUMENT_MAPPING") or {}
    return {
        "exchange_internal_name": market,
        "mapped_instrument_symbol": str(record.get("MAPPED_INSTRUMENT") or mapped),
        "api_instrument_type": as_text(record.get("TYPE")),
        "instrument_status_on_exchange": as_text(record.get("INSTRUMENT_STATUS")),
        "exchange_instrument_symbol_raw": as_text(record.get("INSTRUMENT")),
        "base_asset_symbol": as_text(instrument_mapping.get("BASE")),
        "base_asset_id": as_int(instrument_mapping.get("BASE_ID"), f"{context} BASE_ID"),
        "quote_asset_symbol": as_text(instrument_mapping.get("QUOTE")),
        "quote_asset_id": as_int(instrument_mapping.get("QUOTE_ID"), f"{context} QUOTE_ID"),
        "transform_function": as_text(instrument_mapping.get("TRANSFORM_FUNCTION")),
        "instrument_mapping_created_datetime": as_datetime(
            instrument_mapping.get("CREATED_ON"), f"{context} CREATED_ON"
        ),
        "has_trades": as_bool(record.get("HAS_TRADES_SPOT"), f"{context} HAS_TRADES_SPOT"),
        "first_trade_datetime": as_datetime(
            record.get("FIRST_TRADE_SPOT_TIMESTAMP"), f"{context} FIRST_TRADE_SPOT_TIMESTAMP"
        ),
        "last_trade_datetime": as_datetime(
            record.get("LAST_TRADE_SPOT_TIMESTAMP"), f"{context} LAST_TRADE_SPOT_TIMESTAMP"
        ),
        "total_trades_instrument_level": as_int(
            record.get("TOTAL_TRADES_SPOT"), f"{context} TOTAL_TRADES_SPOT"
        ),
        "created_at": now,
        "updated_at": now,
    }


def one_row_per_mapped_symbol(rows: Iterable[Row]) -> list[Row]:
    """Keep one instrument per (market, mapped symbol), the key of cc_instruments_spot.

    A market can list a retired instrument and its active successor under the same mapped symbol;
    the row with the better status (ACTIVE first, in INSTRUMENT_STATUSES order) wins.
    """
    chosen: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row["exchange_internal_name"], row["mapped_instrument_symbol"])
        if key not in chosen or _status_rank(row) < _status_rank(chosen[key]):
            chosen[key] = row
    return list(chosen.values())


def _status_rank(row: Row) -> int:
    status = row["instrument_status_on_exchange"]
    return INSTRUMENT_STATUSES.index(status) if status in INSTRUMENT_STATUSES else len(INSTRUMENT_STATUSES)


def asset_rows(items: Iterable[Mapping[str, Any]], now: dt.datetime) -> Parsed:
    """Rows of cc_assets from `/asset/v1/top/list` LIST items."""
    return parse_each(items, lambda item: _asset_row(item, now))


def _asset_row(item: Mapping[str, Any], now: dt.datetime) -> Row:
    asset_id = as_int(required(item, "ID", "top list item"), "top list item ID")
    context = f"asset {asset_id}"
    return {
        "asset_id": asset_id,
        "symbol": str(required(item, "SYMBOL", context)),
        "name": str(item.get("NAME") or item["SYMBOL"]),
        "uri": str(item.get("URI") or ""),
        "asset_type": str(item.get("ASSET_TYPE") or ""),
        "cc_internal_type": str(item.get("TYPE") or ""),
        "id_legacy": as_int(required(item, "ID_LEGACY", context), f"{context} ID_LEGACY"),
        "id_parent_asset": as_int(item.get("ID_PARENT_ASSET"), f"{context} ID_PARENT_ASSET"),
        "id_asset_issuer": as_int(item.get("ID_ASSET_ISSUER"), f"{context} ID_ASSET_ISSUER"),
        "asset_issuer_name": as_text(item.get("ASSET_ISSUER_NAME")),
        "parent_asset_symbol": as_text(item.get("PARENT_ASSET_SYMBOL")),
        "cc_created_on": as_datetime(required(item, "CREATED_ON", context), f"{context} CREATED_ON"),
        "cc_updated_on": as_datetime(required(item, "UPDATED_ON", context), f"{context} UPDATED_ON"),
        "public_notice": as_text(item.get("PUBLIC_NOTICE")),
        "logo_url": as_text(item.get("LOGO_URL")),
        "launch_date": as_datetime(item.get("LAUNCH_DATE"), f"{context} LAUNCH_DATE"),
        "description_summary": as_text(item.get("ASSET_DESCRIPTION_SNIPPET")),
        "decimal_points": as_int(item.get("ASSET_DECIMAL_POINTS"), f"{context} ASSET_DECIMAL_POINTS"),
        "symbol_glyph": as_text(item.get("SYMBOL_GLYPH")),
        "created_at": now,
        "updated_at": now,
    }


def asset_market_data_rows(
    items: Iterable[Mapping[str, Any]], snapshot_ts: dt.datetime, now: dt.datetime
) -> Parsed:
    """Rows of cc_asset_market_data: one volume snapshot per asset, dated `snapshot_ts`."""
    return parse_each(items, lambda item: _asset_market_data_row(item, snapshot_ts, now))


def _asset_market_data_row(item: Mapping[str, Any], snapshot_ts: dt.datetime, now: dt.datetime) -> Row:
    asset_id = as_int(required(item, "ID", "top list item"), "top list item ID")
    values = {
        column: as_float(item.get(field), f"asset {asset_id} {field}")
        for column, field in ASSET_MARKET_FIELDS.items()
    }
    return {
        "asset_id": asset_id,
        "snapshot_ts": snapshot_ts,
        "price_usd_source": as_text(item.get("PRICE_USD_SOURCE")),
        **values,
        "created_at": now,
        "updated_at": now,
    }
