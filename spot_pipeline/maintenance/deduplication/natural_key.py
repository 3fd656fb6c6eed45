"""The natural key of `cc_ohlcv_spot_1d_raw`: its duplicates, their removal, and the keys that prevent them.

A candle is identified by (datetime, exchange, symbol_unmapped): the exchange's own instrument id is
stable while the mapped `symbol` can change. Duplicates are removed with `deduplicate_table`, keeping
the latest `collected_at`. Once the table is clean the database can enforce the key: the UNIQUE key
`uq_cc_ohlcv_spot_1d_raw_unmapped`, and on legacy copies with no primary key at all, PRIMARY KEY
(datetime, exchange, symbol), which ingestion's upserts rely on as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from spot_pipeline.db.dialect import is_mysql, row_count
from spot_pipeline.db.inspection import inspect_table, reflect_table
from spot_pipeline.db.schema import MAPPED_KEY, NATURAL_KEY, NATURAL_UNIQUE_KEY, cc_ohlcv_spot_1d_raw
from spot_pipeline.maintenance.deduplication.table_deduplication import (
    BatchResult,
    DeduplicationResult,
    DuplicateCount,
    count_duplicates,
    deduplicate_table,
)

TABLE = cc_ohlcv_spot_1d_raw.name
ORDER_COLUMN = "collected_at"
GROUP_COLUMN = "exchange"
PRIMARY_KEY = "PRIMARY KEY"


@dataclass(frozen=True)
class KeyStatus:
    """Whether one key exists on the live table, whether this call added it, and if missing, why."""

    name: str
    columns: tuple[str, ...]
    present: bool
    added: bool = False
    reason: str = ""

    @property
    def state(self) -> str:
        return "added" if self.added else "present" if self.present else f"missing: {self.reason}"

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.columns)}): {self.state}"


def count_ohlcv_duplicates(connection: sa.Connection, schema: str) -> DuplicateCount:
    """Rows of the table, and rows beyond the first of their natural key, per exchange."""
    table = reflect_table(connection, schema, TABLE)
    return count_duplicates(connection, table, NATURAL_KEY, group_column=GROUP_COLUMN)


def deduplicate_ohlcv(
    engine: sa.Engine,
    schema: str,
    *,
    batch_days: int | None = None,
    dry_run: bool = False,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> DeduplicationResult:
    """One row per natural key, the latest `collected_at` (see `deduplicate_table`), counted per exchange."""
    return deduplicate_table(
        engine,
        schema,
        TABLE,
        NATURAL_KEY,
        ORDER_COLUMN,
        batch_column="datetime",
        batch_days=batch_days,
        group_column=GROUP_COLUMN,
        dry_run=dry_run,
        on_batch=on_batch,
    )


def ohlcv_key_statuses(connection: sa.Connection, schema: str) -> list[KeyStatus]:
    """Whether the live table has its primary key and its natural unique key; changes nothing."""
    table = reflect_table(connection, schema, TABLE)
    return [_reported(key, key.is_present(connection, table)) for key in _KEYS]


def add_ohlcv_keys(engine: sa.Engine, schema: str) -> list[KeyStatus]:
    """Add each missing key that the data allows; the statuses say what was added, and why not otherwise.

    Call it holding the table's write lock. On MySQL these are DDL statements (each commits at once);
    adding the primary key also makes `symbol` NOT NULL, which the check for NULLs allows.
    """
    with engine.connect() as connection:
        table = reflect_table(connection, schema, TABLE)
        statuses = [_added_when_possible(connection, table, key) for key in _KEYS]
        connection.commit()
    return statuses


@dataclass(frozen=True)
class _Key:
    name: str
    columns: tuple[str, ...]
    is_present: Callable[[sa.Connection, sa.Table], bool]
    blocker: Callable[[sa.Connection, sa.Table], str]
    add: Callable[[sa.Connection, sa.Table], None]


def _reported(key: _Key, present: bool) -> KeyStatus:
    reason = "" if present else "run the job with add_unique_key: true to add it once the table is clean"
    return KeyStatus(key.name, key.columns, present=present, reason=reason)


def _added_when_possible(connection: sa.Connection, table: sa.Table, key: _Key) -> KeyStatus:
    if key.is_present(connection, table):
        return KeyStatus(key.name, key.columns, present=True)
    reason = key.blocker(connection, table)
    if reason:
        return KeyStatus(key.name, key.columns, present=False, reason=reason)
    key.add(connection, table)
    return KeyStatus(key.name, key.columns, present=True, added=True)


def _has_mapped_primary_key(_connection: sa.Connection, table: sa.Table) -> bool:
    return {column.name for column in table.primary_key.columns} == set(MAPPED_KEY)


def _has_natural_unique_key(connection: sa.Connection, table: sa.Table) -> bool:
    return inspect_table(connection, table.schema, table.name).has_unique_key(NATURAL_KEY)


def _primary_key_blocker(connection: sa.Connection, table: sa.Table) -> str:
    """Why PRIMARY KEY (datetime, exchange, symbol) cannot be added now, or '' when it can."""
    existing = [column.name for column in table.primary_key.columns]
    if existing:
        return f"the table has another primary key ({', '.join(existing)}); change it by hand if intended"
    if not is_mysql(connection):
        return "SQLite cannot add a primary key to an existing table"
    null_symbols = row_count(connection, table, table.c.symbol.is_(None))
    if null_symbols:
        return f"{null_symbols} rows have no symbol (NULL): map or delete them first"
    shared = count_duplicates(connection, table, MAPPED_KEY).duplicates
    if shared:
        return (
            f"{shared} rows share (datetime, exchange, symbol) with a row of another instrument: two "
            "exchange instruments map to one symbol on the same day; resolve them by hand"
        )
    return ""


def _natural_key_blocker(connection: sa.Connection, table: sa.Table) -> str:
    """Why the natural unique key cannot be added now, or '' when it can."""
    duplicates = count_duplicates(connection, table, NATURAL_KEY).duplicates
    return (
        f"{duplicates} rows duplicate a natural key: run the job without dry_run first" if duplicates else ""
    )


def _add_primary_key(connection: sa.Connection, table: sa.Table) -> None:
    connection.execute(
        sa.schema.AddConstraint(sa.PrimaryKeyConstraint(*(table.c[name] for name in MAPPED_KEY)))
    )


def _add_natural_unique_key(connection: sa.Connection, table: sa.Table) -> None:
    # A unique index rather than ALTER TABLE ... ADD CONSTRAINT: SQLite supports only the former.
    sa.Index(NATURAL_UNIQUE_KEY, *(table.c[name] for name in NATURAL_KEY), unique=True).create(connection)


# Primary key first: the natural key is added even when the primary key cannot be.
_KEYS = (
    _Key(PRIMARY_KEY, MAPPED_KEY, _has_mapped_primary_key, _primary_key_blocker, _add_primary_key),
    _Key(
        NATURAL_UNIQUE_KEY,
        NATURAL_KEY,
        _has_natural_unique_key,
        _natural_key_blocker,
        _add_natural_unique_key,
    ),
)
