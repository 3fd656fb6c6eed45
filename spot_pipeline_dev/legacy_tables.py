"""The legacy `cc_ohlcv_spot_1d_raw`, as deployed before the timestamp migration, for tests and benchmarks.

The legacy form has the project's columns in the deployed order, except that the four trade
timestamps are BIGINT unix seconds and `symbol` may be NULL. Some deployed copies have no primary key
(and hold duplicates), later ones have PRIMARY KEY (datetime, exchange, symbol); neither has the
unique key on (datetime, exchange, symbol_unmapped). Tables are declared in the `market` schema, so the
engine's schema translation places them in whichever schema a `MarketDatabase` uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from spot_pipeline.db import schema

LEGACY_KEY = ("datetime", "exchange", "symbol")
COLLECTED_AT = dt.datetime(2024, 6, 1, 3, 4, 5)


def legacy_ohlcv_table(*, primary_key: bool) -> sa.Table:
    """The legacy table (own MetaData), with or without PRIMARY KEY (datetime, exchange, symbol)."""
    columns = [_legacy_column(column, primary_key) for column in schema.cc_ohlcv_spot_1d_raw.columns]
    constraints = [sa.PrimaryKeyConstraint(*LEGACY_KEY)] if primary_key else []
    return sa.Table(
        schema.cc_ohlcv_spot_1d_raw.name,
        sa.MetaData(schema=schema.DEFAULT_SCHEMA),
        *columns,
        *constraints,
        **schema.MYSQL_TABLE_OPTIONS,
    )


def _legacy_column(column: sa.Column, primary_key: bool) -> sa.Column:
    default = column.server_default
    return sa.Column(
        column.name,
        sa.BigInteger() if column.name in schema.TRADE_TIMESTAMP_COLUMNS else column.type,
        nullable=not primary_key if column.name == "symbol" else column.nullable,
        server_default=default.arg if isinstance(default, sa.DefaultClause) else None,
    )


def replace_with_legacy_table(connection: sa.Connection, *, primary_key: bool) -> sa.Table:
    """Drop the (new-form) `cc_ohlcv_spot_1d_raw` and create the legacy form in its place."""
    table = legacy_ohlcv_table(primary_key=primary_key)
    table.drop(connection, checkfirst=True)
    table.create(connection)
    return table


def legacy_row(
    day: dt.datetime, exchange: str = "kraken", symbol: str = "BTC-USD", **values: Any
) -> dict[str, Any]:
    """A complete legacy row for one candle; trade timestamps default to instants inside the day."""
    start = int(day.replace(tzinfo=dt.UTC).timestamp())
    base, quote = symbol.split("-")
    row: dict[str, Any] = {
        "datetime": day,
        "exchange": exchange,
        "symbol_unmapped": base + quote,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "base_id": 1,
        "quote_id": 5,
        "transform_function": None,
        "open": 100.0,
        "high": 110.5,
        "low": 95.25,
        "close": 105.125,
        "first_trade_timestamp": start + 1,
        "last_trade_timestamp": start + 86_399,
        "first_trade_price": 100.0,
        "high_trade_price": 110.5,
        "high_trade_timestamp": start + 3_600,
        "low_trade_price": 95.25,
        "low_trade_timestamp": start + 7_200,
        "last_trade_price": 105.125,
        "total_trades": 1_000,
        "total_trades_buy": 600,
        "total_trades_sell": 399,
        "total_trades_unknown": 1,
        "volume": 12.5,
        "quote_volume": 1_312.5,
        "volume_buy": 7.5,
        "quote_volume_buy": 787.5,
        "volume_sell": 5.0,
        "quote_volume_sell": 525.0,
        "volume_unknown": 0.0,
        "quote_volume_unknown": 0.0,
        "collected_at": COLLECTED_AT,
    }
    unknown = set(values) - set(row)
    if unknown:
        raise KeyError(f"not columns of the legacy table: {sorted(unknown)}")
    return row | values


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """Plain INSERT of the rows (duplicates included when the table has no key); returns how many."""
    batch = [dict(row) for row in rows]
    if batch:
        connection.execute(table.insert(), batch)
    return len(batch)


def keyless_copy(table: sa.Table, name: str | None = None) -> sa.Table:
    """`table`'s columns under `name` (its own by default), without any key: what the old clean-up's
    `CREATE TABLE ... AS SELECT` left."""
    return sa.Table(
        name or table.name,
        sa.MetaData(),
        *(sa.Column(column.name, column.type, nullable=column.nullable) for column in table.columns),
        schema=table.schema,
        **schema.MYSQL_TABLE_OPTIONS,
    )


def replace_with_keyless_table(connection: sa.Connection, table: sa.Table) -> sa.Table:
    """Drop `table` and create it again without its keys."""
    table.drop(connection, checkfirst=True)
    keyless = keyless_copy(table)
    keyless.create(connection)
    return keyless
