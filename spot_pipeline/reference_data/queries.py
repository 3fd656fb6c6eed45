"""All SQL of the reference tables: upserting parsed rows and the questions their checks ask."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import GRADE_SCALE
from spot_pipeline.db.dialect import upsert_rows
from spot_pipeline.db.schema import Row, cc_asset_market_data, cc_exchanges_general

# Rows keep the time they were first stored; every other column follows the provider.
KEEP_ON_UPDATE = ("created_at",)


def upsert_reference_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Row], key_columns: Sequence[str]
) -> int:
    """Upsert rows on the table's natural key, keeping `created_at`; returns the rows sent."""
    return upsert_rows(connection, table, rows, key_columns, keep_on_update=KEEP_ON_UPDATE)


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
