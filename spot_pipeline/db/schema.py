"""The `market` schema: every table the pipeline reads or writes, in SQLAlchemy Core.

Column names, types and order follow the tables deployed by the earlier scripts, so the pipeline
works on existing databases as they are. `database_schema.md` documents this module; a test keeps
the two in step. Tables are created when missing and never altered here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

DEFAULT_SCHEMA = "market"

Row = dict[str, Any]


class SqliteDateTime(sqlite.DATETIME):
    """SQLite keeps DATETIME as text: one second-precision format everywhere, the one SQLite's own
    datetime() produces, so values written by SQLAlchemy and values computed in SQL compare equal.
    Engines also use it for reflected DATETIME columns (see `spot_pipeline.db.engine`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "storage_format", "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d"
        )
        super().__init__(*args, **kwargs)


UtcDateTime = sa.DateTime().with_variant(SqliteDateTime(), "sqlite")

metadata = sa.MetaData(schema=DEFAULT_SCHEMA)

# Tables are utf8mb4; created ones take the schema's collation (see `engine.prepare_schema`).
MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4"}


# The parts of an exchange's grade (the min-api's GradePointsSplit), each stored as grade_points_<part>.
GRADE_POINT_PARTS = ("legal", "kyc_risk", "team", "data_provision", "asset_quality", "market_quality")
GRADE_POINT_PARTS += ("security", "neg_reports_penalty")


def _text(name: str, nullable: bool = True, **kwargs: object) -> sa.Column:
    return sa.Column(name, sa.String(255), nullable=nullable, **kwargs)


def _audit_columns() -> list[sa.Column]:
    """created_at / updated_at (UTC), set by the pipeline on every write."""
    return [
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    ]


cc_exchanges_general = sa.Table(
    "cc_exchanges_general",
    metadata,
    _text("exchange_api_id", nullable=False),
    _text("name", nullable=False),
    _text("internal_name", nullable=False),
    _text("api_url_path"),
    _text("logo_url_path"),
    sa.Column("item_types", sa.JSON),
    _text("centralization_type"),
    sa.Column("grade_points", sa.Float(53)),
    _text("grade"),
    *(sa.Column(f"grade_points_{part}", sa.Float(53)) for part in GRADE_POINT_PARTS),
    _text("affiliate_url"),
    _text("country"),
    sa.Column("has_orderbook", sa.Boolean),
    sa.Column("has_trades", sa.Boolean),
    sa.Column("description", sa.Text),
    _text("full_address"),
    sa.Column("is_sponsored", sa.Boolean),
    sa.Column("is_recommended", sa.Boolean),
    sa.Column("rating_avg", sa.Float(53)),
    sa.Column("rating_total_users", sa.Integer),
    sa.Column("sort_order", sa.Integer),
    sa.Column("total_volume_24h_usd", sa.Float(53)),
    *_audit_columns(),
    sa.UniqueConstraint("internal_name", name="uq_cc_exchanges_general_internal_name"),
    **MYSQL_TABLE_OPTIONS,
)

cc_instruments_spot = sa.Table(
    "cc_instruments_spot",
    metadata,
    _text("exchange_internal_name", nullable=False),
    _text("mapped_instrument_symbol", nullable=False),
    _text("api_instrument_type"),
    _text("instrument_status_on_exchange"),
    _text("exchange_instrument_symbol_raw"),
    _text("base_asset_symbol"),
    sa.Column("base_asset_id", sa.BigInteger),
    _text("quote_asset_symbol"),
    sa.Column("quote_asset_id", sa.BigInteger),
    _text("transform_function"),
    sa.Column("instrument_mapping_created_datetime", UtcDateTime),
    sa.Column("has_trades", sa.Boolean),
    sa.Column("first_trade_datetime", UtcDateTime),
    sa.Column("last_trade_datetime", UtcDateTime),
    sa.Column("total_trades_instrument_level", sa.BigInteger),
    *_audit_columns(),
    sa.PrimaryKeyConstraint("exchange_internal_name", "mapped_instrument_symbol"),
    **MYSQL_TABLE_OPTIONS,
)

cc_assets = sa.Table(
    "cc_assets",
    metadata,
    sa.Column("asset_id", sa.BigInteger, nullable=False, autoincrement=False),
    _text("symbol", nullable=False),
    _text("name", nullable=False),
    _text("uri", nullable=False),
    _text("asset_type", nullable=False),
    _text("cc_internal_type", nullable=False),
    sa.Column("id_legacy", sa.BigInteger, nullable=False),
    sa.Column("id_parent_asset", sa.BigInteger),
    sa.Column("id_asset_issuer", sa.BigInteger),
    _text("asset_issuer_name"),
    _text("parent_asset_symbol"),
    sa.Column("cc_created_on", UtcDateTime, nullable=False),
    sa.Column("cc_updated_on", UtcDateTime, nullable=False),
    sa.Column("public_notice", sa.Text),
    _text("logo_url"),
    sa.Column("launch_date", UtcDateTime),
    sa.Column("description_summary", sa.Text),
    sa.Column("decimal_points", sa.Integer),
    _text("symbol_glyph"),
    *_audit_columns(),
    sa.PrimaryKeyConstraint("asset_id"),
    **MYSQL_TABLE_OPTIONS,
)

ASSET_VOLUME_COLUMNS = tuple(
    f"spot_moving_{window}_quote_volume{tier}_usd"
    for window in ("24_hour", "7_day", "30_day")
    for tier in ("_top_tier", "")
)

cc_asset_market_data = sa.Table(
    "cc_asset_market_data",
    metadata,
    sa.Column("asset_id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("snapshot_ts", UtcDateTime, nullable=False),
    sa.Column("price_usd", sa.Float(53)),
    _text("price_usd_source"),
    sa.Column("mkt_cap_penalty", sa.Float(53)),
    sa.Column("circulating_mkt_cap_usd", sa.Float(53)),
    sa.Column("total_mkt_cap_usd", sa.Float(53)),
    *(sa.Column(name, sa.Float(53)) for name in ASSET_VOLUME_COLUMNS),
    *_audit_columns(),
    sa.PrimaryKeyConstraint("asset_id", "snapshot_ts"),
    **MYSQL_TABLE_OPTIONS,
)

# A candle is identified by the exchange's own instrument id, which is stable; the mapped symbol of
# the primary key can change when the provider remaps an instrument.
NATURAL_KEY = ("datetime", "exchange", "symbol_unmapped")
MAPPED_KEY = ("datetime", "exchange", "symbol")
NATURAL_UNIQUE_KEY = "uq_cc_ohlcv_spot_1d_raw_unmapped"

TRADE_TIMESTAMP_COLUMNS = (
    "first_trade_timestamp",
    "last_trade_timestamp",
    "high_trade_timestamp",
    "low_trade_timestamp",
)

cc_ohlcv_spot_1d_raw = sa.Table(
    "cc_ohlcv_spot_1d_raw",
    metadata,
    sa.Column("datetime", UtcDateTime, nullable=False),
    _text("exchange", nullable=False),
    _text("symbol_unmapped", nullable=False),
    _text("symbol", nullable=False),
    _text("base"),
    _text("quote"),
    sa.Column("base_id", sa.BigInteger),
    sa.Column("quote_id", sa.BigInteger),
    _text("transform_function"),
    *(sa.Column(price, sa.Float(53)) for price in ("open", "high", "low", "close")),
    sa.Column("first_trade_timestamp", UtcDateTime),
    sa.Column("last_trade_timestamp", UtcDateTime),
    sa.Column("first_trade_price", sa.Float(53)),
    sa.Column("high_trade_price", sa.Float(53)),
    sa.Column("high_trade_timestamp", UtcDateTime),
    sa.Column("low_trade_price", sa.Float(53)),
    sa.Column("low_trade_timestamp", UtcDateTime),
    sa.Column("last_trade_price", sa.Float(53)),
    *(
        sa.Column(count, sa.BigInteger)
        for count in ("total_trades", "total_trades_buy", "total_trades_sell", "total_trades_unknown")
    ),
    *(
        sa.Column(f"{prefix}volume{side}", sa.Float(53))
        for side in ("", "_buy", "_sell", "_unknown")
        for prefix in ("", "quote_")
    ),
    # The pipeline always writes collected_at in UTC; the default only serves older writers.
    sa.Column("collected_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
    sa.PrimaryKeyConstraint(*MAPPED_KEY),
    sa.UniqueConstraint(*NATURAL_KEY, name=NATURAL_UNIQUE_KEY),
    **MYSQL_TABLE_OPTIONS,
)

spot_universe = sa.Table(
    "spot_universe",
    metadata,
    _text("exchange", nullable=False, comment="data-api market key (lowercase)"),
    _text("exchange_instrument_id", nullable=False, comment="the exchange's own instrument id"),
    _text("mapped_instrument", nullable=False),
    sa.Column("base_asset_id", sa.BigInteger, nullable=False),
    _text("base_asset_symbol"),
    sa.Column("quote_asset_id", sa.BigInteger),
    _text("quote_asset_symbol"),
    _text("exchange_grade", nullable=False),
    sa.Column("base_asset_rank", sa.Integer, nullable=False),
    sa.Column("selected_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("exchange", "exchange_instrument_id"),
    **MYSQL_TABLE_OPTIONS,
)

# Per exchange instrument: which days the candle table holds, and from which day on a run has
# fetched it (a pair has its history once that is the first partition day).
ohlcv_pair_coverage = sa.Table(
    "ohlcv_pair_coverage",
    metadata,
    _text("exchange", nullable=False, comment="data-api market key (lowercase)"),
    _text("symbol_unmapped", nullable=False, comment="the exchange's own instrument id"),
    sa.Column("first_day", UtcDateTime, comment="first stored candle (NULL: none stored)"),
    sa.Column("last_day", UtcDateTime, comment="last stored candle (NULL: none stored)"),
    sa.Column("fetched_from", UtcDateTime, nullable=False, comment="earliest day a run fetched"),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("exchange", "symbol_unmapped"),
    **MYSQL_TABLE_OPTIONS,
)
