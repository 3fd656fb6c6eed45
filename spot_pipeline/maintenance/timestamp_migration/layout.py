"""The layouts of the candle table: the legacy one (BIGINT trade timestamps), the migrated one
(DATETIME), and the migrating copy, built from the live definition with the four columns DATETIME.

`timestamp_layout` tells which layout the live table has, or names what fits neither; the copy
differs from the original in those four column types only, which `create_migrating_table` checks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from spot_pipeline.db.dialect import is_mysql, quote_identifier
from spot_pipeline.db.inspection import inspect_table, reflect_table
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw
from spot_pipeline.db.tables import create_like, drop_table, qualified_table_name

ORIGINAL_TABLE = cc_ohlcv_spot_1d_raw.name
MIGRATING_TABLE = f"{ORIGINAL_TABLE}_migrating"
BACKUP_TABLE_PREFIX = f"{ORIGINAL_TABLE}_bigint_backup_"
CHUNK_COLUMN = "datetime"
# Rows named in messages and metadata: their identifying columns, and how many at most.
EXAMPLE_KEY_COLUMNS = ("datetime", "exchange", "symbol_unmapped", "symbol")
EXAMPLE_ROWS = 10


class TimestampLayout(StrEnum):
    BIGINT = "BIGINT unix seconds"
    DATETIME = "DATETIME (UTC)"


class MigrationError(RuntimeError):
    """The migration cannot go on. Raised before the rename, so the original table is untouched."""


class UnexpectedTableShape(MigrationError):
    """The live table is neither the legacy BIGINT layout nor the migrated DATETIME one."""


def timestamp_layout(connection: sa.Connection, schema_name: str) -> TimestampLayout:
    """The layout of the live table, or UnexpectedTableShape naming what does not fit either layout."""
    shape = inspect_table(connection, schema_name, ORIGINAL_TABLE)
    where = f"{schema_name}.{ORIGINAL_TABLE}"
    if not shape.exists:
        raise UnexpectedTableShape(f"{where} does not exist: there is nothing to migrate")
    expected = [column.name for column in cc_ohlcv_spot_1d_raw.columns]
    missing = [name for name in expected if name not in shape.column_types]
    unexpected = [name for name in shape.column_types if name not in expected]
    if missing or unexpected:
        raise UnexpectedTableShape(
            f"{where} has missing columns {missing} and unexpected columns {unexpected}: this job converts "
            "only the layout documented in database_schema.md; bring the table to it first"
        )
    families = shape.type_families(TRADE_TIMESTAMP_COLUMNS)
    if set(families.values()) == {"DATETIME"}:
        return TimestampLayout.DATETIME
    if set(families.values()) != {"INTEGER"}:
        raise UnexpectedTableShape(
            f"{where} mixes trade timestamp types {families}: expected all four BIGINT (legacy) or all "
            "four DATETIME (migrated); fix the odd columns by hand before running the migration"
        )
    _check_legacy_details(connection, schema_name, shape.type_family(CHUNK_COLUMN))
    return TimestampLayout.BIGINT


def _check_legacy_details(connection: sa.Connection, schema_name: str, chunk_column_family: str) -> None:
    """What the copy relies on beyond the column types; each failure names what to change by hand."""
    inspector = sa.inspect(connection)
    columns = {column["name"]: column for column in inspector.get_columns(ORIGINAL_TABLE, schema=schema_name)}
    problems = [
        f"{name} must be nullable with no default, as the legacy BIGINT columns are"
        for name in TRADE_TIMESTAMP_COLUMNS
        if not columns[name]["nullable"] or columns[name]["default"] is not None
    ]
    if chunk_column_family != "DATETIME":
        problems.append(f"{CHUNK_COLUMN} must be a DATETIME column (the copy is ordered and chunked by it)")
    if inspector.get_foreign_keys(ORIGINAL_TABLE, schema=schema_name):
        problems.append(
            "foreign keys are not carried over by the copy: drop them, migrate, then re-create them"
        )
    if not is_mysql(connection) and inspector.get_indexes(ORIGINAL_TABLE, schema=schema_name):
        problems.append(
            "SQLite index names are unique per database, so the migrated table cannot keep its named "
            "indexes: drop them (DROP INDEX), migrate, then re-create them"
        )
    if problems:
        raise UnexpectedTableShape(
            f"{schema_name}.{ORIGINAL_TABLE} cannot be migrated as it is: " + "; ".join(problems)
        )


def require_legacy_layout(connection: sa.Connection, schema_name: str) -> None:
    """Stop a step whose table was migrated meanwhile (by another run) instead of converting twice."""
    if timestamp_layout(connection, schema_name) is not TimestampLayout.BIGINT:
        raise MigrationError(
            f"{schema_name}.{ORIGINAL_TABLE} is already DATETIME: another run migrated it; "
            "re-run the job to confirm (it is a no-op)"
        )


def create_migrating_table(connection: sa.Connection, schema_name: str) -> bool:
    """(Re)create the empty migrating table from the live definition; True when a leftover was dropped."""
    require_legacy_layout(connection, schema_name)
    leftover = drop_table(connection, schema_name, MIGRATING_TABLE)
    if is_mysql(connection):
        _create_like_mysql(connection, schema_name)
    else:
        _create_from_reflection(connection, schema_name)
    _check_same_definition(connection, schema_name)
    return leftover


def _create_like_mysql(connection: sa.Connection, schema_name: str) -> None:
    create_like(connection, schema_name, ORIGINAL_TABLE, MIGRATING_TABLE)
    migrating = qualified_table_name(connection, schema_name, MIGRATING_TABLE)
    comments = {
        column["name"]: column.get("comment")
        for column in sa.inspect(connection).get_columns(ORIGINAL_TABLE, schema=schema_name)
    }
    modifications = ", ".join(
        f"MODIFY COLUMN {quote_identifier(connection, name)} DATETIME NULL"
        + _comment_clause(connection, comments[name])
        for name in TRADE_TIMESTAMP_COLUMNS
    )
    connection.exec_driver_sql(f"ALTER TABLE {migrating} {modifications}")


def _comment_clause(connection: sa.Connection, comment: str | None) -> str:
    if not comment:
        return ""
    literal = sa.literal(comment).compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    return f" COMMENT {literal}"


def _create_from_reflection(connection: sa.Connection, schema_name: str) -> None:
    original = reflect_table(connection, schema_name, ORIGINAL_TABLE)
    migrating = original.to_metadata(sa.MetaData(), name=MIGRATING_TABLE)
    for name in TRADE_TIMESTAMP_COLUMNS:
        migrating.c[name].type = sa.DateTime()
    migrating.create(connection)


def _check_same_definition(connection: sa.Connection, schema_name: str) -> None:
    """The migrating table must differ from the original in the four column types only."""
    original = _definition(connection, schema_name, ORIGINAL_TABLE)
    migrating = _definition(connection, schema_name, MIGRATING_TABLE)
    if original != migrating:
        differences = {
            key: (original[key], migrating[key]) for key in original if original[key] != migrating[key]
        }
        raise MigrationError(f"the migrating table was not created as a copy of the original: {differences}")


def _definition(connection: sa.Connection, schema_name: str, table_name: str) -> dict[str, Any]:
    inspector = sa.inspect(connection)
    columns = [
        (
            column["name"],
            "" if column["name"] in TRADE_TIMESTAMP_COLUMNS else str(column["type"]),
            column["nullable"],
            str(column["default"]),
            column.get("comment"),
        )
        for column in inspector.get_columns(table_name, schema=schema_name)
    ]
    return {
        "columns": columns,
        "primary key": inspector.get_pk_constraint(table_name, schema=schema_name)["constrained_columns"],
        "unique keys": sorted(
            tuple(key["column_names"])
            for key in inspector.get_unique_constraints(table_name, schema=schema_name)
        ),
        "indexes": sorted(
            (tuple(index["column_names"]), bool(index["unique"]))
            for index in inspector.get_indexes(table_name, schema=schema_name)
        ),
        "options": inspector.get_table_options(table_name, schema=schema_name),
    }


def has_rows(connection: sa.Connection, schema: str, table_name: str) -> bool:
    table = sa.table(table_name, schema=schema)
    return connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None
