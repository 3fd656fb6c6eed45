"""All SQL of the key repair: what a table holds per natural key, and its rebuild with the key.

`survey_keys` reads only. `rebuild_with_key` copies the latest row of every key into a copy of the
live table that has the key, verifies the copy and swaps it in, keeping the original as a backup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from spot_pipeline.db import tables
from spot_pipeline.db.dialect import is_mysql, row_count
from spot_pipeline.db.inspection import inspect_table, reflect_table
from spot_pipeline.db.schema import Row
from spot_pipeline.live_tables import upsert_key
from spot_pipeline.maintenance.deduplication.table_deduplication import count_duplicates, survivor_order

REPAIRED_SUFFIX = "_keyed"
BACKUP_INFIX = "_keyless_backup_"
EXAMPLE_KEYS = 5
RANK = "key_repair_rank"


class KeyRepairRefused(RuntimeError):
    """The table cannot be rebuilt with its key as it is; the message names what to change by hand."""


@dataclass(frozen=True)
class KeySurvey:
    """What a table holds per natural key, read without changing anything."""

    table: str
    key: tuple[str, ...]
    exists: bool
    key_present: bool = False
    rows: int = 0
    duplicates: int = 0  # rows beyond the first of their key
    null_keys: int = 0  # rows with NULL in a key column, which no key can hold
    examples: list[Row] = field(default_factory=list)

    @property
    def needs_repair(self) -> bool:
        return self.exists and not self.key_present

    @property
    def status(self) -> str:
        if not self.exists:
            return "missing (created with its key on first use)"
        return "key present" if self.key_present else "no key"


@dataclass(frozen=True)
class RebuildReport:
    table: str
    rows_before: int
    rows_after: int
    backup: str

    @property
    def removed(self) -> int:
        return self.rows_before - self.rows_after


def survey_keys(connection: sa.Connection, schema: str, declared: sa.Table, order_column: str) -> KeySurvey:
    """Whether the live table has its key; if not, its rows, duplicates, NULL keys and a few examples."""
    key = upsert_key(declared)
    shape = inspect_table(connection, schema, declared.name)
    if not shape.exists or shape.has_unique_key(key):
        return KeySurvey(declared.name, key, shape.exists, key_present=shape.exists)
    live = reflect_table(connection, schema, declared.name)
    key_columns = [live.c[name] for name in key]
    return KeySurvey(
        declared.name,
        key,
        exists=True,
        rows=row_count(connection, live),
        duplicates=count_duplicates(connection, live, key).duplicates,
        null_keys=row_count(connection, live, sa.or_(*(column.is_(None) for column in key_columns))),
        examples=_duplicated_keys(connection, live, key, order_column),
    )


def _duplicated_keys(
    connection: sa.Connection, live: sa.Table, key: tuple[str, ...], order_column: str
) -> list[Row]:
    """A few keys held by several rows: how many, and their oldest and latest `order_column`."""
    key_columns = [live.c[name] for name in key]
    order = live.c[order_column]
    query = (
        sa.select(
            *key_columns,
            sa.func.count().label("rows"),
            sa.func.min(order).label("oldest"),
            sa.func.max(order).label("latest"),
        )
        .group_by(*key_columns)
        .having(sa.func.count() > 1)
        .order_by(sa.func.count().desc(), *key_columns)
        .limit(EXAMPLE_KEYS)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def rebuild_with_key(
    connection: sa.Connection, schema: str, declared: sa.Table, order_column: str, today: dt.date
) -> RebuildReport:
    """Swap the live table for a verified copy holding the latest row of each key, with the key.

    Runs in the caller's transaction on SQLite; on MySQL each DDL statement commits by itself, so
    the steps are each safe to repeat and the live table is untouched until the one atomic rename.
    """
    name = declared.name
    _refuse_what_a_swap_would_break(connection, schema, name)
    _refuse_null_keys(connection, schema, declared)
    copy_name = f"{name}{REPAIRED_SUFFIX}"
    tables.drop_table(connection, schema, copy_name)  # a leftover of a failed run is never trusted
    key = upsert_key(declared)
    copy = tables.create_like(connection, schema, name, copy_name, key, _unique_key_name(declared))
    live = reflect_table(connection, schema, name)
    columns = [column.name for column in live.c]
    connection.execute(sa.insert(copy).from_select(columns, _latest_per_key(live, key, order_column)))
    rows_before = row_count(connection, live)
    rows_after = _verified_row_count(connection, live, copy, key, order_column)
    backup = tables.dated_backup_name(connection, schema, f"{name}{BACKUP_INFIX}", today)
    tables.swap_tables(connection, schema, name, copy_name, backup)
    return RebuildReport(name, rows_before, rows_after, backup)


def drop_backup(connection: sa.Connection, schema: str, backup: str) -> bool:
    """Drop a backup this job made (only those names are accepted); False if it was gone."""
    if BACKUP_INFIX not in backup:
        raise ValueError(f"{backup!r} is not a key repair backup; refusing to drop it")
    return tables.drop_table(connection, schema, backup)


def _refuse_null_keys(connection: sa.Connection, schema: str, declared: sa.Table) -> None:
    """A row with NULL in a key column fits no key: dropping it would lose a user's row."""
    live = reflect_table(connection, schema, declared.name)
    key = upsert_key(declared)
    nulls = row_count(connection, live, sa.or_(*(live.c[name].is_(None) for name in key)))
    if nulls:
        raise KeyRepairRefused(
            f"{schema}.{declared.name} has {nulls} row(s) with NULL in ({', '.join(key)}), which no key "
            "can hold: fill or delete them by hand, then run the job again"
        )


def _refuse_what_a_swap_would_break(connection: sa.Connection, schema: str, name: str) -> None:
    """Triggers stay with the renamed original and foreign keys of other tables would follow it."""
    if not is_mysql(connection):
        return
    attached = connection.execute(
        sa.text(
            "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS "
            " WHERE EVENT_OBJECT_SCHEMA = :schema AND EVENT_OBJECT_TABLE = :name), "
            "(SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
            " WHERE UNIQUE_CONSTRAINT_SCHEMA = :schema AND REFERENCED_TABLE_NAME = :name)"
        ),
        {"schema": schema, "name": name},
    ).one()
    triggers, references = attached
    if triggers or references:
        raise KeyRepairRefused(
            f"{schema}.{name} has {triggers} trigger(s) and {references} foreign key(s) of other tables "
            "pointing at it, which a rebuilt copy would not carry: remove them, run the job, add them again"
        )


def _unique_key_name(declared: sa.Table) -> str | None:
    """The name of the declared unique key the upserts rely on; None when that is the primary key."""
    unique = [c for c in declared.constraints if isinstance(c, sa.UniqueConstraint)]
    return str(unique[0].name) if unique else None


def _latest_per_key(live: sa.Table, key: tuple[str, ...], order_column: str) -> sa.Select:
    """The first row of every key by the dedupe's order (the latest `order_column`, then the others)."""
    key_columns = [live.c[name] for name in key]
    ranked = (
        sa.select(
            *live.c,
            sa.func.row_number()
            .over(partition_by=key_columns, order_by=survivor_order(list(live.c), key, order_column))
            .label(RANK),
        )
        .where(*(column.is_not(None) for column in key_columns))
        .subquery("ranked")
    )
    return sa.select(*(ranked.c[column.name] for column in live.c)).where(ranked.c[RANK] == 1)


def _verified_row_count(
    connection: sa.Connection, live: sa.Table, copy: sa.Table, key: tuple[str, ...], order_column: str
) -> int:
    """The copy's rows, once it holds one row per key of the original and none older than it holds."""
    live_keys = [live.c[name] for name in key]
    keys = sa.select(*live_keys).where(*(column.is_not(None) for column in live_keys)).distinct().subquery()
    expected, copied = row_count(connection, keys), row_count(connection, copy)
    same_key = sa.and_(*(copy.c[name] == live.c[name] for name in key))
    newer_left_out = row_count(
        connection, live.join(copy, same_key), live.c[order_column] > copy.c[order_column]
    )
    if copied != expected or newer_left_out:
        raise KeyRepairRefused(
            f"the rebuilt copy of {live.name} holds {copied} rows for {expected} keys and misses "
            f"{newer_left_out} newer rows: nothing was swapped; run the job again"
        )
    return copied
