"""Every difference between the SQLite and MySQL/MariaDB dialects that the pipeline relies on, and
the generic table helpers built on them (names, counts, temporary and staging tables).

Writes are the main difference: SQLite's `ON CONFLICT DO UPDATE` against MySQL's
`ON DUPLICATE KEY UPDATE`, rendered here as typed literals for speed, and MySQL's bulk path,
`LOAD DATA LOCAL INFILE ... REPLACE` from tab-separated files. Everything else a domain writes is
dialect-neutral SQLAlchemy Core.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain, count, islice
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from spot_pipeline.db.engine import BULK_LOAD_DIRECTORY_OPTION, MYSQL_DRIVERS

SQLITE_ROWS_PER_BATCH = 1000
# About 1 MB per statement for a candle row: far below MariaDB's default 16 MB max_allowed_packet.
MYSQL_ROWS_PER_STATEMENT = 2000


def is_mysql(bind: sa.Connection | sa.Engine) -> bool:
    return bind.dialect.name in MYSQL_DRIVERS


def upsert_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]],
    key_columns: Sequence[str],
    *,
    keep_on_update: Sequence[str] = (),
) -> int:
    """Upsert rows on their natural key (no key: a plain INSERT); returns the number of rows sent.

    Every row carries the same columns (those of the first row). Columns in `keep_on_update`
    (e.g. created_at) keep their stored value when the row exists. Runs inside the caller's
    transaction, so the caller decides what is all-or-nothing.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = [column.name for column in table.columns if column.name in first]
    updated = [name for name in columns if name not in key_columns and name not in keep_on_update]
    all_rows = chain([first], iterator)
    if is_mysql(connection):
        return _mysql_insert(connection, table, all_rows, columns, updated)
    return _sqlite_upsert(connection, table, all_rows, key_columns, updated)


def replace_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], key_columns: Sequence[str]
) -> int:
    """Store rows (all with the columns of the first) so that each replaces the stored row it
    conflicts with, in the caller's transaction; returns the number of rows sent. Write whole rows:
    a column a row leaves out is reset to its default by REPLACE, kept by the upsert.

    On MySQL/MariaDB with mysql-connector and `local_infile` on, by the server's own bulk path,
    `LOAD DATA LOCAL INFILE ... REPLACE`, several times faster than INSERT statements; elsewhere an
    upsert on `key_columns`. REPLACE acts on every unique key, so the caller makes sure that only
    `key_columns` can conflict (the candle writer checks the other key first).
    """
    load_directory = connection.get_execution_options().get(BULK_LOAD_DIRECTORY_OPTION)
    if rows and load_directory and connection.exec_driver_sql("SELECT @@local_infile").scalar():
        return _mysql_load_data(connection, table, rows, load_directory)
    return upsert_rows(connection, table, rows, key_columns)


@contextmanager
def staging_table(
    connection: sa.Connection, table: sa.Table, name: str, columns: Sequence[str]
) -> Iterator[sa.Table]:
    """A session-private temporary table of some of `table`'s columns, with no keys, in the caller's
    transaction (creating and dropping a temporary table commits nothing on MySQL). A leftover of a
    failed earlier use in a pooled session is dropped first.
    """
    staging = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(name, table.c[name].type, autoincrement=False) for name in columns),
        schema=temporary_schema(connection, table.schema),
        prefixes=["TEMPORARY"],
        # Same character set and collation as the table, so joins on text compare like its keys.
        **table.dialect_kwargs,
    )
    drop_temporary_table(connection, staging)
    staging.create(connection)
    yield staging
    drop_temporary_table(connection, staging)


def _sqlite_upsert(
    connection: sa.Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]],
    key_columns: Sequence[str],
    updated: Sequence[str],
) -> int:
    statement = sqlite.insert(table)
    if key_columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(key_columns), set_={name: statement.excluded[name] for name in updated}
        )
    sent = 0
    for batch in batched(rows, SQLITE_ROWS_PER_BATCH):
        connection.execute(statement, batch)
        sent += len(batch)
    return sent


def _mysql_insert(
    connection: sa.Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    updated: Sequence[str],
) -> int:
    """Multi-row `INSERT` (with `ON DUPLICATE KEY UPDATE c = VALUES(c)` for the `updated` columns)
    with values rendered as literals.

    The pure-Python MySQL drivers spend most of an executemany converting each parameter; rendering
    typed literals directly is several times faster. Strings become `_utf8mb4 X'<hex>'` literals,
    which no value can escape from and which mean the same under every sql_mode.
    """
    quoted = [quote_identifier(connection, name) for name in columns]
    prefix = f"INSERT INTO {qualified_name(connection, table)} ({', '.join(quoted)}) VALUES "
    assignments = ", ".join(
        f"{quote_identifier(connection, name)} = VALUES({quote_identifier(connection, name)})"
        for name in updated
    )
    suffix = f" ON DUPLICATE KEY UPDATE {assignments}" if updated else ""
    values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)

    def render(batch: list[Mapping[str, Any]]) -> tuple[str, int]:
        return ",".join(f"({','.join(map(mysql_literal, values_of(row)))})" for row in batch), len(batch)

    sent = 0
    # Rendering the next statement on another thread overlaps it with the server executing this one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mysql-render") as renderer:
        for values, count in renderer.map(render, batched(rows, MYSQL_ROWS_PER_STATEMENT)):
            connection.exec_driver_sql(prefix + values + suffix)
            sent += count
    return sent


def _mysql_load_data(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], directory: str
) -> int:
    """`LOAD DATA LOCAL INFILE ... REPLACE` of the rows, written to private files as MySQL's
    tab-separated text (NULL as \\N; backslash, tab and line breaks escaped). A thread writes the
    next file while the server loads this one."""
    columns = [column.name for column in table.columns if column.name in rows[0]]
    values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    plain = all(isinstance(table.c[name].type, _PLAIN_TYPES) for name in columns)
    quoted = ", ".join(quote_identifier(connection, name) for name in columns)
    load = f"REPLACE INTO TABLE {qualified_name(connection, table)} CHARACTER SET utf8mb4 ({quoted})"
    sent = 0
    with tempfile.TemporaryDirectory(dir=directory) as files:

        def write_file(number: int, chunk: list[Mapping[str, Any]]) -> tuple[str, int]:
            path = f"{files}/{number}.tsv"
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("".join(_tsv_line(values_of(row), plain) for row in chunk))
            return path, len(chunk)

        chunks = batched(rows, MYSQL_ROWS_PER_STATEMENT)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mysql-load") as writer:
            for path, rows_in_file in writer.map(write_file, count(), chunks):
                connection.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{path}' {load}")
                sent += rows_in_file
    # LOCAL turns values a column cannot hold into warnings: refuse them as INSERT would.
    warnings = connection.exec_driver_sql("SHOW WARNINGS LIMIT 3").all()
    if warnings:
        raise ValueError(f"rows for {table.name} hold values its columns cannot store: {warnings}")
    return sent


# Columns whose values print as MySQL reads them (str() of float, int, text, second-precision datetime).
_PLAIN_TYPES = (sa.Float, sa.Integer, sa.String, sa.DateTime)
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_NEEDS_ESCAPING = re.compile(r"[\\\n\r\0]")


def _tsv_line(values: tuple[Any, ...], plain: bool) -> str:
    """One row as a line of MySQL's tab-separated text; plain rows without NULL take the fast path."""
    if plain and None not in values:
        line = "\t".join(map(str, values))
        if line.count("\t") == len(values) - 1 and not _NEEDS_ESCAPING.search(line):
            return line + "\n"
    return "\t".join(map(_tsv_field, values)) + "\n"


def _tsv_field(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return _float_literal(value)
    if kind is str:
        return value.translate(_TSV_ESCAPES)
    if value is None:
        return "\\N"
    if kind is dt.datetime:
        return value.isoformat(sep=" ")
    if kind is bool:
        return "1" if value else "0"
    if kind in (list, dict):
        return json.dumps(value).translate(_TSV_ESCAPES)
    return str(value)  # int, date


def _float_literal(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be stored in a MySQL DOUBLE column")
    return repr(value)


def _text_literal(value: str) -> str:
    return "_utf8mb4 X'" + value.encode().hex() + "'"


_MYSQL_LITERALS: dict[type, Callable[[Any], str]] = {
    float: _float_literal,
    int: str,
    bool: lambda value: "1" if value else "0",
    str: _text_literal,
    dt.datetime: lambda value: f"'{value.isoformat(sep=' ')}'",
    dt.date: lambda value: f"'{value.isoformat()}'",
    list: lambda value: _text_literal(json.dumps(value)),
    dict: lambda value: _text_literal(json.dumps(value)),
    type(None): lambda _: "NULL",
}


def mysql_literal(value: Any) -> str:
    """A MySQL literal for a Python value of the types the pipeline stores."""
    try:
        return _MYSQL_LITERALS[type(value)](value)
    except KeyError:
        raise TypeError(f"cannot render {type(value).__name__} value {value!r} as a MySQL literal") from None


def qualified_name(connection: sa.Connection, table: sa.TableClause) -> str:
    """`schema`.`table` as the connection addresses it (schema translation applied), quoted."""
    translate = connection.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(table.schema, table.schema)
    return f"{quote_identifier(connection, schema)}.{quote_identifier(connection, table.name)}"


def temporary_schema(connection: sa.Connection, schema: str | None) -> str | None:
    # SQLite keeps temporary tables in its `temp` schema; MySQL in the session, under any database.
    return schema if is_mysql(connection) else "temp"


def drop_temporary_table(connection: sa.Connection, table: sa.Table) -> None:
    # DROP TEMPORARY can never reach a real table of the same name, and commits nothing on MySQL.
    keyword = "TEMPORARY TABLE" if is_mysql(connection) else "TABLE"
    connection.exec_driver_sql(f"DROP {keyword} IF EXISTS {qualified_name(connection, table)}")


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


def quote_identifier(connection: sa.Connection, identifier: str) -> str:
    return connection.dialect.identifier_preparer.quote(identifier)


def row_count(connection: sa.Connection, table: sa.FromClause, *where: sa.ColumnElement[bool]) -> int:
    """How many rows of `table` meet every condition of `where` (all rows without one)."""
    return connection.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
