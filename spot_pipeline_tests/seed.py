"""Rows for the reference tables, written straight into the database for rule tests."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from spot_pipeline.db import schema

NOW = dt.datetime(2026, 11, 20, 12, 0, 0)
TODAY = dt.datetime(2026, 11, 20)


def exchange(connection: sa.Connection, internal_name: str, grade: str | None) -> None:
    connection.execute(
        schema.cc_exchanges_general.insert().values(
            exchange_api_id=str(abs(hash(internal_name)) % 10_000),
            name=internal_name,
            internal_name=internal_name,
            grade=grade,
            created_at=NOW,
            updated_at=NOW,
        )
    )


def asset(
    connection: sa.Connection,
    asset_id: int,
    symbol: str,
    volume_30d_usd: float | None,
    snapshot_ts: dt.datetime = TODAY,
) -> None:
    """An asset and one volume snapshot (call again with another date to add snapshots)."""
    exists = connection.execute(
        sa.select(schema.cc_assets.c.asset_id).where(schema.cc_assets.c.asset_id == asset_id)
    ).first()
    if not exists:
        connection.execute(
            schema.cc_assets.insert().values(
                asset_id=asset_id,
                symbol=symbol,
                name=symbol,
                uri=symbol.lower(),
                asset_type="BLOCKCHAIN",
                cc_internal_type="162",
                id_legacy=asset_id,
                cc_created_on=NOW,
                cc_updated_on=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    connection.execute(
        schema.cc_asset_market_data.insert().values(
            asset_id=asset_id,
            snapshot_ts=snapshot_ts,
            spot_moving_30_day_quote_volume_usd=volume_30d_usd,
            created_at=NOW,
            updated_at=NOW,
        )
    )


def instrument(
    connection: sa.Connection,
    market: str,
    mapped: str,
    *,
    raw: str | None = None,
    base_id: int,
    quote_id: int = 5,
    status: str = "ACTIVE",
) -> None:
    base, quote = mapped.split("-")
    connection.execute(
        schema.cc_instruments_spot.insert().values(
            exchange_internal_name=market,
            mapped_instrument_symbol=mapped,
            instrument_status_on_exchange=status,
            exchange_instrument_symbol_raw=raw or mapped.replace("-", ""),
            base_asset_symbol=base,
            base_asset_id=base_id,
            quote_asset_symbol=quote,
            quote_asset_id=quote_id,
            created_at=NOW,
            updated_at=NOW,
        )
    )
