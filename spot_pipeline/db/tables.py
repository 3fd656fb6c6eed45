"""Whole tables known by name: a copy made from the live definition, a free name for a backup, an
atomic swap of a verified copy with the live table, and dropping.

The maintenance jobs that rebuild a table (the timestamp migration, the key repair) never alter the
live table: they fill a copy, verify it, then swap. `swap_tables` is one `RENAME TABLE` on
MySQL/MariaDB (all or nothing) and two renames in the caller's transaction on SQLite (the engine
opens real transactions, and DDL is transactional there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from spot_pipeline.db.dialect import is_mysql, qualified_name, quote_identifier
from spot_pipeline.db.inspection import check_identifier, reflect_table


def qualified_table_name(connection: sa.Connection, schema: str, table_name: str) -> str:
    """`schema`.`table` for a table known by name only, quoted."""
    return qualified_name(connection, sa.table(check_identifier(table_name, "table"), schema=schema))


def table_exists(connection: sa.Connection, schema: str, table_name: str) -> bool:
    return sa.inspect(connection).has_table(table_name, schema=schema)


def drop_table(connection: sa.Connection, schema: str, table_name: str) -> bool:
    """Drop a table if it exists; False when there was none."""
    if not table_exists(connection, schema, table_name):
        return False
    connection.exec_driver_sql(f"DROP TABLE {qualified_table_name(connection, schema, table_name)}")
    return True


def create_like(
    connection: sa.Connection,
    schema: str,
    source: str,
    copy: str,
    key: Sequence[str] = (),
    unique_key_name: str | None = None,
) -> sa.Table:
    """Create the empty table `copy` with `source`'s definition, plus `key` when given (the unique
    key `unique_key_name`, else the primary key), and return it, reflected.

    MySQL/MariaDB: `CREATE TABLE ... LIKE` copies every column attribute, key, index, character set,
    collation and table option; the key is added to the empty copy. SQLite: the reflected definition
    with the key; a source with named indexes is refused, as index names are unique per database there.
    """
    if is_mysql(connection):
        original, created = (qualified_table_name(connection, schema, name) for name in (source, copy))
        connection.exec_driver_sql(f"CREATE TABLE {created} LIKE {original}")
        if key:
            definition = reflect_table(connection, schema, copy)
            connection.execute(sa.schema.AddConstraint(_key_constraint(definition, key, unique_key_name)))
    else:
        original_definition = reflect_table(connection, schema, source)
        if original_definition.indexes:
            raise ValueError(
                f"{schema}.{source} has named indexes, which SQLite cannot give a copy of it under the "
                "same names: drop them (DROP INDEX), run the job, then create them again"
            )
        definition = original_definition.to_metadata(sa.MetaData(), name=copy)
        if key:
            definition.append_constraint(_key_constraint(definition, key, unique_key_name))
        definition.create(connection)
    return reflect_table(connection, schema, copy)


def _key_constraint(table: sa.Table, key: Sequence[str], unique_key_name: str | None) -> sa.Constraint:
    columns = [table.c[name] for name in key]
    if unique_key_name:
        return sa.UniqueConstraint(*columns, name=unique_key_name)
    return sa.PrimaryKeyConstraint(*columns)


def unused_name(connection: sa.Connection, schema: str, base: str) -> str:
    """`base`, or `base_2`, `base_3`, ... : the first name no table of the schema has."""
    existing = set(sa.inspect(connection).get_table_names(schema=schema))
    name, suffix = base, 1
    while name in existing:
        suffix += 1
        name = f"{base}_{suffix}"
    return check_identifier(name, "table")


def dated_backup_name(connection: sa.Connection, schema: str, prefix: str, today: dt.date) -> str:
    """`<prefix>YYYYMMDD` (UTC date), made unique in the schema."""
    return unused_name(connection, schema, f"{prefix}{today:%Y%m%d}")


def swap_tables(connection: sa.Connection, schema: str, live: str, replacement: str, backup: str) -> None:
    """Rename `live` to `backup` and `replacement` to `live`, atomically."""
    live_name, replacement_name = (qualified_table_name(connection, schema, n) for n in (live, replacement))
    if is_mysql(connection):
        backup_name = qualified_table_name(connection, schema, backup)
        connection.exec_driver_sql(
            f"RENAME TABLE {live_name} TO {backup_name}, {replacement_name} TO {live_name}"
        )
        return
    # SQLite renames within the table's own schema: the new name takes no schema prefix.
    for current, new in ((live_name, backup), (replacement_name, live)):
        connection.exec_driver_sql(f"ALTER TABLE {current} RENAME TO {quote_identifier(connection, new)}")
