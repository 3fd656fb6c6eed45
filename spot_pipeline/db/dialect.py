"""Every difference between the SQLite and MySQL/MariaDB dialects that the pipeline relies on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite

UPSERT_BATCH_ROWS = 1000


def is_mysql(connection: sa.Connection) -> bool:
    return connection.dialect.name in ("mysql", "mariadb")


def upsert_statement(
    connection: sa.Connection, table: sa.Table, key_columns: Sequence[str], update_columns: Sequence[str]
) -> sa.Insert:
    """INSERT that updates `update_columns` of the row already holding the same key.

    On MySQL the `VALUES(col)` form is used on purpose: the MySQL 8 row-alias form that SQLAlchemy
    would otherwise pick makes drivers fall back to one statement per row in executemany.
    """
    if is_mysql(connection):
        statement = mysql.insert(table)
        assignments = {
            name: sa.literal_column(f"VALUES({_quote(connection, name)})") for name in update_columns
        }
        return statement.on_duplicate_key_update(assignments)
    statement = sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={name: statement.excluded[name] for name in update_columns},
    )


def upsert_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]],
    key_columns: Sequence[str],
    *,
    keep_on_update: Sequence[str] = (),
    batch_rows: int = UPSERT_BATCH_ROWS,
) -> int:
    """Upsert rows on their natural key in batches of `batch_rows`; returns the number of rows sent.

    Columns in `keep_on_update` (e.g. created_at) keep their stored value when the row exists.
    Runs inside the caller's transaction, so the caller decides what is all-or-nothing.
    """
    update_columns = [
        column.name
        for column in table.columns
        if column.name not in key_columns and column.name not in keep_on_update
    ]
    statement = upsert_statement(connection, table, key_columns, update_columns)
    sent = 0
    for batch in batched(rows, batch_rows):
        connection.execute(statement, batch)
        sent += len(batch)
    return sent


def add_days(connection: sa.Connection, moment: sa.ColumnElement[Any], days: int) -> sa.ColumnElement[Any]:
    """`moment` plus a whole number of days, computed in SQL."""
    if is_mysql(connection):
        return sa.func.date_add(moment, sa.text(f"INTERVAL {int(days)} DAY"))
    return sa.func.datetime(moment, f"{int(days):+d} days")


def batched(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    """Consecutive lists of at most `size` rows (itertools.batched arrived only in Python 3.12)."""
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _quote(connection: sa.Connection, identifier: str) -> str:
    return connection.dialect.identifier_preparer.quote(identifier)
