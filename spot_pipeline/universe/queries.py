"""All SQL of the universe: the rules that pick the pairs to ingest, as set-based SQL over the
reference tables, and the questions its metadata and checks ask.

- Exchanges graded `min_grade` or better (grades best first: AA, A, BB, B, C, D, E, F).
- Exchange names matched case-insensitively: min-api says `Kraken`, data-api markets say `kraken`
  (whatever collation each table has: see `db.collation`).
- Top N base assets by their latest snapshot's 30-day spot quote volume, selected by asset id
  (symbols are not unique across assets).
- ACTIVE instruments only, optionally only those quoted in `quote_assets`.
- One row per exchange instrument: should the listing ever hold one raw id under two mapped
  symbols, the most recently updated wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import ACTIVE_STATUS, GRADE_SCALE, qualifying_grades
from spot_pipeline.db.collation import same_text_ignoring_case
from spot_pipeline.db.schema import (
    UtcDateTime,
    cc_asset_market_data,
    cc_assets,
    cc_exchanges_general,
    cc_instruments_spot,
    spot_universe,
)


def _normalized_grade() -> sa.ColumnElement[str]:
    return sa.func.upper(sa.func.trim(cc_exchanges_general.c.grade))


def _grade_rank(grade: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    return sa.case({name: rank for rank, name in enumerate(GRADE_SCALE)}, value=grade)


def qualified_exchanges(min_grade: str) -> sa.Subquery:
    """One row per lowercased exchange name graded `min_grade` or better, with its best grade."""
    grade = _normalized_grade()
    market = sa.func.lower(cc_exchanges_general.c.internal_name)
    best_rank = sa.func.min(_grade_rank(grade))
    return (
        sa.select(
            market.label("market"),
            sa.case({rank: name for rank, name in enumerate(GRADE_SCALE)}, value=best_rank).label("grade"),
        )
        .where(grade.in_(qualifying_grades(min_grade)))
        .group_by(market)
        .subquery("qualified_exchanges")
    )


def top_assets(limit: int) -> sa.Subquery:
    """The `limit` assets with the largest 30-day spot quote volume in their latest snapshot."""
    snapshots = cc_asset_market_data
    latest = (
        sa.select(snapshots.c.asset_id, sa.func.max(snapshots.c.snapshot_ts).label("snapshot_ts"))
        .group_by(snapshots.c.asset_id)
        .subquery("latest_snapshots")
    )
    volume = snapshots.c.spot_moving_30_day_quote_volume_usd
    ranked = (
        sa.select(
            snapshots.c.asset_id,
            cc_assets.c.symbol,
            volume.label("volume_30d_usd"),
            sa.func.row_number().over(order_by=(volume.desc(), snapshots.c.asset_id)).label("asset_rank"),
        )
        .join(
            latest,
            sa.and_(
                latest.c.asset_id == snapshots.c.asset_id, latest.c.snapshot_ts == snapshots.c.snapshot_ts
            ),
        )
        .outerjoin(cc_assets, cc_assets.c.asset_id == snapshots.c.asset_id)
        .where(volume.is_not(None))
        .subquery("ranked_assets")
    )
    return sa.select(ranked).where(ranked.c.asset_rank <= limit).subquery("top_assets")


def universe_query(
    connection: sa.Connection,
    min_grade: str,
    top_asset_count: int,
    quote_assets: Sequence[str],
    selected_at: dt.datetime,
) -> sa.Select:
    """One row per ACTIVE exchange instrument that the rules select, shaped like `spot_universe`."""
    instruments = latest_mapping_per_instrument()
    exchanges = qualified_exchanges(min_grade)
    assets = top_assets(top_asset_count)
    query = (
        sa.select(
            instruments.c.exchange_internal_name.label("exchange"),
            instruments.c.exchange_instrument_symbol_raw.label("exchange_instrument_id"),
            instruments.c.mapped_instrument_symbol.label("mapped_instrument"),
            instruments.c.base_asset_id,
            instruments.c.base_asset_symbol,
            instruments.c.quote_asset_id,
            instruments.c.quote_asset_symbol,
            exchanges.c.grade.label("exchange_grade"),
            assets.c.asset_rank.label("base_asset_rank"),
            sa.literal(selected_at, UtcDateTime).label("selected_at"),
        )
        .join(
            exchanges,
            same_text_ignoring_case(connection, exchanges.c.market, instruments.c.exchange_internal_name),
        )
        .join(assets, assets.c.asset_id == instruments.c.base_asset_id)
    )
    if quote_assets:
        query = query.where(
            sa.func.upper(instruments.c.quote_asset_symbol).in_([q.upper() for q in quote_assets])
        )
    return query


def latest_mapping_per_instrument() -> sa.Subquery:
    """The ACTIVE rows of cc_instruments_spot, one per (market, raw id): the latest updated."""
    listed = cc_instruments_spot.c
    newest_first = sa.func.row_number().over(
        partition_by=(sa.func.lower(listed.exchange_internal_name), listed.exchange_instrument_symbol_raw),
        order_by=(listed.updated_at.desc(), listed.mapped_instrument_symbol),
    )
    ranked = (
        sa.select(cc_instruments_spot, newest_first.label("mapping_rank"))
        .where(
            sa.func.upper(listed.instrument_status_on_exchange) == ACTIVE_STATUS,
            listed.exchange_instrument_symbol_raw.is_not(None),
        )
        .subquery("ranked_instruments")
    )
    return sa.select(ranked).where(ranked.c.mapping_rank == 1).subquery("active_instruments")


def replace_universe(connection: sa.Connection, query: sa.Select) -> None:
    """Swap the stored universe for the query's result inside the caller's transaction."""
    connection.execute(sa.delete(spot_universe))
    connection.execute(spot_universe.insert().from_select([c.name for c in spot_universe.columns], query))


def unmatched_graded_exchanges(connection: sa.Connection, min_grade: str) -> list[str]:
    """Qualified exchanges whose name matches no data-api market in cc_instruments_spot."""
    exchanges = qualified_exchanges(min_grade)
    listed = sa.exists().where(
        same_text_ignoring_case(connection, exchanges.c.market, cc_instruments_spot.c.exchange_internal_name)
    )
    query = sa.select(exchanges.c.market).where(~listed).order_by(exchanges.c.market)
    return list(connection.execute(query).scalars())


def pairs_per_exchange(connection: sa.Connection) -> list[dict[str, object]]:
    query = (
        sa.select(spot_universe.c.exchange, spot_universe.c.exchange_grade, sa.func.count().label("pairs"))
        .group_by(spot_universe.c.exchange, spot_universe.c.exchange_grade)
        .order_by(sa.desc("pairs"), spot_universe.c.exchange)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def selected_top_assets(connection: sa.Connection, top_asset_count: int) -> list[dict[str, object]]:
    assets = top_assets(top_asset_count)
    return [dict(row._mapping) for row in connection.execute(sa.select(assets).order_by(assets.c.asset_rank))]
