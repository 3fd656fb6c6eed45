"""Every difference between the SQLite and MySQL/MariaDB dialects that the pipeline relies on, and
the generic table helpers built on them (names, counts, temporary and staging tables).

Writes are the main difference: SQLite's `ON CONFLICT DO UPDATE` against MySQL's
`ON DUPLICATE KEY UPDATE`, rendered here as typed literals for speed, and MySQL's bulk path,
`LOAD DATA LOCAL INFILE ... REPLACE` (or `IGNORE`) from tab-separated files. Everything else a
domain writes is dialect-neutral SQLAlchemy Core.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain, count, islice
from operator import itemgetter
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from spot_pipeline.db.engine import BULK_LOAD_DIRECTORY_OPTION, MYSQL_DRIVERS

SQLITE_ROWS_PER_BATCH = 1000
# About 1 MB per statement for a candle row: far below MariaDB's default 16 MB max_allowed_packet.
MYSQL_ROWS_PER_STATEMENT = 2000
# Rows per LOAD DATA file: a thread writes the next file while the server loads this one. The
# first file is smaller, so that the server starts sooner.
MYSQL_ROWS_PER_FILE = 5000
MYSQL_ROWS_IN_FIRST_FILE = 1000
# How soon (seconds) a thread waiting for the GIL gets it from one that computes (Python's default 0.005).
PROMPT_SWITCH_INTERVAL = 0.0002
# The warning MySQL gives for a row that IGNORE skipped because a unique key already holds it.
DUPLICATE_ENTRY = 1062


def is_mysql(bind: sa.Connection | sa.Engine) -> bool:
    return bind.dialect.name in MYSQL_DRIVERS


def upsert_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    key_columns: Sequence[str],
    *,
    keep_on_update: Sequence[str] = (),
) -> int:
    """Upsert rows on their natural key; returns the number of rows sent.

    Every row carries the same columns (those of the first row). Columns in `keep_on_update`
    (e.g. created_at) keep their stored value when the row exists. Runs inside the caller's
    transaction, so the caller decides what is all-or-nothing. An upsert relies on the table's
    unique key, which the caller checks on the live table first (`spot_pipeline.live_tables`); it
    never falls back to a plain INSERT.
    """
    if not key_columns:
        raise ValueError(f"an upsert into {table.name} needs its key columns: without them it would append")
    if not rows:
        return 0
    columns = _columns_of(table, rows[0])
    updated = [name for name in columns if name not in key_columns and name not in keep_on_update]
    if is_mysql(connection):
        _mysql_insert(connection, table, rows, columns, updated)
    else:
        _sqlite_insert(connection, table, rows, key_columns, updated)
    return len(rows)


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
    load_directory = _bulk_load_directory(connection)
    if rows and load_directory:
        _mysql_load_data(connection, table, rows, load_directory, on_conflict="REPLACE")
        return len(rows)
    return upsert_rows(connection, table, rows, key_columns)


def insert_if_all_new(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Insert rows (all with the columns of the first) when none of them meets a stored row, or
    another of them, on any unique key, and return True; otherwise store none and return False.

    Runs in the caller's transaction, under a savepoint that is rolled back when a row conflicted.
    The rows go in by the bulk path where there is one (`LOAD DATA ... IGNORE`), with nothing to
    check beforehand: the server's count of inserted rows tells whether everything was new.
    """
    if not rows:
        return True
    with connection.begin_nested() as savepoint:
        if _insert_skipping_conflicts(connection, table, rows) == len(rows):
            return True
        savepoint.rollback()
    return False


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert rows (all with the columns of the first) into a table without keys, such as a staging
    table, by the bulk path where there is one; returns how many went in."""
    return _insert_skipping_conflicts(connection, table, rows) if rows else 0


def _insert_skipping_conflicts(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Insert the rows that conflict with no stored row; returns how many went in."""
    load_directory = _bulk_load_directory(connection)
    if load_directory:
        return _mysql_load_data(connection, table, rows, load_directory, on_conflict="IGNORE")
    if is_mysql(connection):
        return _mysql_insert(connection, table, rows, _columns_of(table, rows[0]), updated=None)
    changes_before = connection.exec_driver_sql("SELECT total_changes()").scalar_one()
    _sqlite_insert(connection, table, rows, key_columns=None, updated=())
    return connection.exec_driver_sql("SELECT total_changes()").scalar_one() - changes_before


def _bulk_load_directory(connection: sa.Connection) -> str | None:
    """The directory this process loads files from, when the connection can take LOAD DATA LOCAL."""
    load_directory = connection.get_execution_options().get(BULK_LOAD_DIRECTORY_OPTION)
    if load_directory and connection.exec_driver_sql("SELECT @@local_infile").scalar():
        return load_directory
    return None


def _columns_of(table: sa.Table, row: Mapping[str, Any]) -> list[str]:
    return [column.name for column in table.columns if column.name in row]


@contextmanager
def staging_table(
    connection: sa.Connection, table: sa.Table, name: str, columns: Sequence[str]
) -> Iterator[sa.Table]:
    """A session-private temporary table of some of `table`'s columns, with no keys, in the caller's
    transaction (creating and dropping a temporary table commits nothing on MySQL). On MySQL/MariaDB
    its columns are defined as the live table defines them (type, character set, collation), so that
    a join with the table compares text as the table's own keys do, whatever collation a DBA chose.
    A leftover of a failed earlier use in a pooled session is dropped first.
    """
    staging = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(name, table.c[name].type, autoincrement=False) for name in columns),
        schema=temporary_schema(connection, table.schema),
        prefixes=["TEMPORARY"],
    )
    drop_temporary_table(connection, staging)
    if is_mysql(connection):
        definitions = ", ".join(_live_column_definitions(connection, table, columns))
        created = f"CREATE TEMPORARY TABLE {qualified_name(connection, staging)} ({definitions})"
        connection.exec_driver_sql(created)
    else:
        staging.create(connection)
    yield staging
    drop_temporary_table(connection, staging)


# A column type as information_schema spells it (varchar(255), bigint(20) unsigned, double, datetime).
_COLUMN_TYPE = re.compile(r"^[a-z]+(\(\d+(,\d+)?\))?( unsigned)?$")


def _live_column_definitions(connection: sa.Connection, table: sa.Table, columns: Sequence[str]) -> list[str]:
    """`name type [CHARACTER SET cs COLLATE c]` of each column, read from the live table."""
    rows = connection.execute(
        sa.text(
            "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :table"
        ),
        {"schema": live_schema(connection, table), "table": table.name},
    )
    live = {name: (kind, charset, collation) for name, kind, charset, collation in rows}
    definitions = []
    for name in columns:
        kind, charset, collation = live[name]
        if not _COLUMN_TYPE.fullmatch(kind):
            raise ValueError(f"{table.name}.{name} has the type {kind!r}, which the pipeline does not write")
        text = f" CHARACTER SET {charset} COLLATE {collation}" if collation else ""
        definitions.append(f"{quote_identifier(connection, name)} {kind}{text}")
    return definitions


def _sqlite_insert(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    key_columns: Sequence[str] | None,
    updated: Sequence[str],
) -> None:
    """INSERT, updating `updated` on a conflict of `key_columns` (none: skipping any conflicting row)."""
    statement = sqlite.insert(table)
    if key_columns is None:
        statement = statement.on_conflict_do_nothing()
    elif key_columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(key_columns), set_={name: statement.excluded[name] for name in updated}
        )
    for batch in batched(rows, SQLITE_ROWS_PER_BATCH):
        connection.execute(statement, batch)


def _mysql_insert(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    updated: Sequence[str] | None,
) -> int:
    """Multi-row `INSERT` (with `ON DUPLICATE KEY UPDATE c = VALUES(c)` for the `updated` columns;
    `INSERT IGNORE` when `updated` is None) with values rendered as literals; returns the rows the
    server counts as affected.

    The pure-Python MySQL drivers spend most of an executemany converting each parameter; rendering
    typed literals directly is several times faster. Strings become `_utf8mb4 X'<hex>'` literals,
    which no value can escape from and which mean the same under every sql_mode.
    """
    quoted = [quote_identifier(connection, name) for name in columns]
    verb = "INSERT IGNORE" if updated is None else "INSERT"
    prefix = f"{verb} INTO {qualified_name(connection, table)} ({', '.join(quoted)}) VALUES "
    assignments = ", ".join(
        f"{quote_identifier(connection, name)} = VALUES({quote_identifier(connection, name)})"
        for name in updated or ()
    )
    suffix = f" ON DUPLICATE KEY UPDATE {assignments}" if assignments else ""
    values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)

    def render(batch: list[Mapping[str, Any]]) -> str:
        return ",".join(f"({','.join(map(mysql_literal, values_of(row)))})" for row in batch)

    affected = 0
    # Rendering the next statement on another thread overlaps it with the server executing this one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mysql-render") as renderer:
        for values in renderer.map(render, batched(rows, MYSQL_ROWS_PER_STATEMENT)):
            statement = prefix + values + suffix
            if updated is None:
                # INSERT IGNORE turns what INSERT refuses into warnings.
                affected += _execute_refusing_warnings(connection, table, statement)
            else:
                # An upsert raises by itself, and may warn of harmless things (MySQL 8.0.20+: VALUES()
                # is deprecated).
                affected += connection.exec_driver_sql(statement).rowcount
    return affected


def _mysql_load_data(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    directory: str,
    on_conflict: Literal["REPLACE", "IGNORE"],
) -> int:
    """`LOAD DATA LOCAL INFILE ... REPLACE` (or `IGNORE`) of the rows, written to private files as
    MySQL's tab-separated text (NULL as \\N; backslash, tab and line breaks escaped); returns the
    rows the server counts as affected. A thread writes the next file while the server loads this one."""
    columns = _columns_of(table, rows[0])
    values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    plain_line = "\t".join(["%s"] * len(columns)) + "\n"
    if not all(isinstance(table.c[name].type, _PLAIN_TYPES) for name in columns):
        plain_line = None
    _switch_threads_promptly()
    quoted = ", ".join(quote_identifier(connection, name) for name in columns)
    load = f"{on_conflict} INTO TABLE {qualified_name(connection, table)} CHARACTER SET utf8mb4 ({quoted})"
    affected = 0
    with tempfile.TemporaryDirectory(dir=directory) as files:

        def write_file(number: int, chunk: list[Mapping[str, Any]]) -> str:
            path = f"{files}/{number}.tsv"
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(_tsv_text(list(map(values_of, chunk)), plain_line))
            return path

        first = MYSQL_ROWS_IN_FIRST_FILE
        chunks = chain([rows[:first]], batched(rows[first:], MYSQL_ROWS_PER_FILE))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mysql-load") as writer:
            for path in writer.map(write_file, count(), chunks):
                affected += _execute_refusing_warnings(
                    connection, table, f"LOAD DATA LOCAL INFILE '{path}' {load}"
                )
    return affected


def _switch_threads_promptly() -> None:
    """Let the thread that sends a file get the GIL back promptly from the one writing the next.

    The driver (pure Python) needs the GIL after every 128 KB it sends: with Python's default
    interval it waits up to 5 ms each time the writer holds it, and the server idles meanwhile.
    The process keeps the shorter interval (restoring it would race with another thread's load);
    other threads only hand the GIL over more often.
    """
    sys.setswitchinterval(min(sys.getswitchinterval(), PROMPT_SWITCH_INTERVAL))


def _execute_refusing_warnings(connection: sa.Connection, table: sa.Table, statement: str) -> int:
    """Run a write statement; returns the rows the server counts as affected.

    LOAD DATA LOCAL and INSERT IGNORE store a value a column cannot hold as something else, with
    a warning instead of an error: such a warning is refused as INSERT would refuse the value.
    Only a row skipped by IGNORE for a key it meets (`DUPLICATE_ENTRY`) is no error.
    Each statement is checked on its own, as the next one clears the server's list of warnings.
    """
    affected = connection.exec_driver_sql(statement).rowcount
    if connection.exec_driver_sql("SELECT @@warning_count").scalar():
        warnings = connection.exec_driver_sql("SHOW WARNINGS").all()
        refused = [warning for warning in warnings if warning[1] != DUPLICATE_ENTRY]
        if refused:
            raise ValueError(f"rows for {table.name} hold values its columns cannot store: {refused[:3]}")
    return affected


# Columns whose values print as MySQL reads them (str() of float, int, text, second-precision datetime).
_PLAIN_TYPES = (sa.Float, sa.Integer, sa.String, sa.DateTime)
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _tsv_text(rows: list[tuple[Any, ...]], plain_line: str | None) -> str:
    """Rows of values as MySQL's tab-separated text, one line each, in their order (for REPLACE,
    the later of two rows with one key wins, as in an upsert).

    Rows without NULL whose columns all print as MySQL reads them are formatted by `plain_line`
    ("%s\\t%s...\\n") in one step each and checked all at once: kept when no value brought a
    tab, line break, backslash or NUL. Other rows have each value escaped (NULL as \\N).
    """
    if plain_line is None:
        return _escaped_text(rows)
    lines = [None if None in values else plain_line % values for values in rows]
    plain = [line for line in lines if line is not None]
    text = "".join(plain)
    if not _prints_plainly(text, len(plain), len(rows[0])):
        return _escaped_text(rows)
    if len(plain) == len(rows):
        return text
    return "".join([line or _escaped_line(values) for line, values in zip(lines, rows, strict=True)])


def _escaped_text(rows: list[tuple[Any, ...]]) -> str:
    return "".join(map(_escaped_line, rows))


def _escaped_line(values: tuple[Any, ...]) -> str:
    return "\t".join(map(_tsv_field, values)) + "\n"


def _prints_plainly(text: str, lines: int, columns: int) -> bool:
    separators = text.count("\t") == lines * (columns - 1) and text.count("\n") == lines
    return separators and not any(character in text for character in "\\\r\0")


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
    schema = live_schema(connection, table)
    return f"{quote_identifier(connection, schema)}.{quote_identifier(connection, table.name)}"


def live_schema(connection: sa.Connection, table: sa.TableClause) -> str | None:
    """The schema that holds `table` on this connection (`market` translated to the real name)."""
    translate = connection.get_execution_options().get("schema_translate_map") or {}
    return translate.get(table.schema, table.schema)


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
