"""The swap: one atomic rename puts the verified copy in place and keeps the original as a dated
backup; the backup is dropped only on request."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from spot_pipeline.db import tables
from spot_pipeline.maintenance.timestamp_migration.layout import (
    BACKUP_TABLE_PREFIX,
    MIGRATING_TABLE,
    ORIGINAL_TABLE,
)


def backup_table_name(connection: sa.Connection, schema_name: str, today: dt.date) -> str:
    """`cc_ohlcv_spot_1d_raw_bigint_backup_YYYYMMDD`, with `_2`, `_3`, ... when that name is taken."""
    return tables.dated_backup_name(connection, schema_name, BACKUP_TABLE_PREFIX, today)


def swap_tables(connection: sa.Connection, schema_name: str, backup_name: str) -> None:
    """Rename the original to `backup_name` and the migrating table to the original, atomically."""
    tables.swap_tables(connection, schema_name, ORIGINAL_TABLE, MIGRATING_TABLE, backup_name)


def drop_backup(connection: sa.Connection, schema_name: str, backup_name: str) -> bool:
    """Drop a backup made by this migration (only those names are accepted); False if it was gone."""
    if not backup_name.startswith(BACKUP_TABLE_PREFIX):
        raise ValueError(f"{backup_name!r} is not a migration backup table; refusing to drop it")
    return tables.drop_table(connection, schema_name, backup_name)
