"""All SQL of the reference tables: upserting parsed rows and the questions their checks ask."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import GRADE_SCALE, INSTRUMENT_STATUSES
from spot_pipeline.db.dialect import batched, upsert_rows
from spot_pipeline.db.schema import Row, cc_asset_market_data, cc_exchanges_general, cc_instruments_spot

# Rows keep the time they were first stored; every other column follows the provider.
KEEP_ON_UPDATE = ("created_at",)
INSTRUMENT_KEY = ("exchange_internal_name", "mapped_instrument_symbol")
# The status given to a stored instrument that its listing no longer holds.
UNLISTED_STATUS = INSTRUMENT_STATUSES[2]  # RETIRED
KEYS_PER_STATEMENT = 500


def upsert_reference_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Row], key_columns: Sequence[str]
) -> int:
    """Upsert rows on the table's natural key, keeping `created_at`; returns the rows sent."""
    return upsert_rows(connection, table, rows, key_columns, keep_on_update=KEEP_ON_UPDATE)


def retire_unlisted_instruments(
    connection: sa.Connection,
    listed: Sequence[Row],
    statuses: Sequence[str],
    markets: Sequence[str] | None,
    now: dt.datetime,
) -> list[Row]:
    """Mark RETIRED the stored instruments of the fetched markets and statuses that the listing no
    longer holds, in the caller's transaction; returns them (exchange, mapped symbol, raw id).

    The provider keeps an instrument's raw id and may change its mapped symbol (POL reported as
    MATIC): the row of the old symbol is then no longer listed and is retired, so the same raw id is
    never ACTIVE twice. Rows are kept, not deleted: their history stays readable.
    """
    table = cc_instruments_spot.c
    key = sa.tuple_(table.exchange_internal_name, table.mapped_instrument_symbol)
    status = sa.func.upper(table.instrument_status_on_exchange)
    scope = sa.and_(status.in_([s.upper() for s in statuses]), status != UNLISTED_STATUS)
    if markets is not None:
        scope = sa.and_(scope, table.exchange_internal_name.in_(markets))
    columns = (*INSTRUMENT_KEY, "exchange_instrument_symbol_raw")
    stored = connection.execute(sa.select(*(table[name] for name in columns)).where(scope)).all()
    still_listed = {tuple(row[name] for name in INSTRUMENT_KEY) for row in listed}
    unlisted = [row for row in stored if tuple(row[:2]) not in still_listed]
    for chunk in batched([tuple(row[:2]) for row in unlisted], KEYS_PER_STATEMENT):
        connection.execute(
            sa.update(cc_instruments_spot)
            .where(key.in_(chunk))
            .values(instrument_status_on_exchange=UNLISTED_STATUS, updated_at=now)
        )
    return [dict(zip(columns, row, strict=True)) for row in unlisted]


def exchanges_per_grade(connection: sa.Connection) -> dict[str, int]:
    """How many exchanges carry each known grade (grades are compared trimmed and upper-case)."""
    grade = sa.func.upper(sa.func.trim(cc_exchanges_general.c.grade))
    query = (
        sa.select(grade.label("grade"), sa.func.count().label("exchanges"))
        .where(grade.in_(GRADE_SCALE))
        .group_by(grade)
    )
    return {row.grade: row.exchanges for row in connection.execute(query)}


def latest_snapshot_time(connection: sa.Connection) -> dt.datetime | None:
    """When the newest asset volume snapshot was taken (None before the first one)."""
    return connection.execute(sa.select(sa.func.max(cc_asset_market_data.c.snapshot_ts))).scalar_one()
