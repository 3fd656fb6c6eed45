"""The swap: one atomic rename puts the verified copy in place and keeps the original as a dated
backup; the backup is dropped only on request."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from spot_pipeline.db.dialect import is_mysql, quote_identifier
from spot_pipeline.maintenance.timestamp_migration.layout import (
    BACKUP_TABLE_PREFIX,
    MIGRATING_TABLE,
    ORIGINAL_TABLE,
    drop_table,
    qualified_table_name,
)


def backup_table_name(connection: sa.Connection, schema_name: str, today: dt.date) -> str:
    """`cc_ohlcv_spot_1d_raw_bigint_backup_YYYYMMDD`, with `_2`, `_3`, ... when that name is taken."""
    base = f"{BACKUP_TABLE_PREFIX}{today:%Y%m%d}"
    existing = set(sa.inspect(connection).get_table_names(schema=schema_name))
    suffix = 1
    name = base
    while name in existing:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def swap_tables(connection: sa.Connection, schema_name: str, backup_name: str) -> None:
    """Rename the original to `backup_name` and the migrating table to the original, atomically.

    MySQL/MariaDB: one RENAME TABLE statement, all or nothing. SQLite: two renames in the caller's
    transaction (the engine opens real transactions, and DDL is transactional there).
    """
    original = qualified_table_name(connection, schema_name, ORIGINAL_TABLE)
    migrating = qualified_table_name(connection, schema_name, MIGRATING_TABLE)
    if is_mysql(connection):
        backup = qualified_table_name(connection, schema_name, backup_name)
        connection.exec_driver_sql(f"RENAME TABLE {original} TO {backup}, {migrating} TO {original}")
        return
    # SQLite renames within the table's own schema: the new name takes no schema prefix.
    connection.exec_driver_sql(
        f"ALTER TABLE {original} RENAME TO {quote_identifier(connection, backup_name)}"
    )
    connection.exec_driver_sql(
        f"ALTER TABLE {migrating} RENAME TO {quote_identifier(connection, ORIGINAL_TABLE)}"
    )


def drop_backup(connection: sa.Connection, schema_name: str, backup_name: str) -> bool:
    """Drop a backup made by this migration (only those names are accepted); False if it was gone."""
    if not backup_name.startswith(BACKUP_TABLE_PREFIX):
        raise ValueError(f"{backup_name!r} is not a migration backup table; refusing to drop it")
    return drop_table(connection, schema_name, backup_name)
