"""Copy and verify: every row converted into the migrating table in chunks, each chunk compared with
the original right after it is copied, several chunks at once on MySQL/MariaDB."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from spot_pipeline.concurrency import bounded_map
from spot_pipeline.db.dialect import is_mysql, row_count
from spot_pipeline.db.engine import max_parallel_connections
from spot_pipeline.db.inspection import leads_an_index, reflect_table
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, Row
from spot_pipeline.maintenance.timestamp_migration.chunks import Chunk, chunk_count, datetime_ranges
from spot_pipeline.maintenance.timestamp_migration.epochs import (
    EpochToUtcDatetime,
    InvalidEpochPolicy,
    InvalidEpochsFound,
    UtcDatetimeToEpoch,
    count_where,
    expected_epoch,
    invalid_epochs_message,
    unhandled_row,
)
from spot_pipeline.maintenance.timestamp_migration.layout import (
    CHUNK_COLUMN,
    EXAMPLE_KEY_COLUMNS,
    EXAMPLE_ROWS,
    MIGRATING_TABLE,
    ORIGINAL_TABLE,
    MigrationError,
    create_migrating_table,
    has_rows,
    require_legacy_layout,
)
from spot_pipeline.maintenance.timestamp_migration.preflight import survey_epochs


class VerificationFailed(MigrationError):
    """The migrated copy does not match the original."""


class _UnhandledEpochsInChunk(Exception):
    """A chunk holds epochs the policy does not handle; the caller surveys the table to say which."""


@dataclass(frozen=True)
class _Tables:
    """The reflected original and migrating tables, and the policy the copy converts under."""

    original: sa.Table
    migrating: sa.Table
    policy: InvalidEpochPolicy


@dataclass(frozen=True)
class Verification:
    """One chunk of the migrated copy compared with the original, row by row.

    With a primary key the tables are joined on it and every column compared (the trade timestamps
    mapped back to epochs, text byte for byte); without one, the rows are compared as multisets,
    duplicates counted. `differences` holds some keys of rows that do not match.
    """

    method: str
    rows_original: int
    rows_migrated: int
    unhandled_invalid_epochs: int
    differences: list[Row]

    @property
    def matches(self) -> bool:
        return self.rows_original == self.rows_migrated and not self.differences


@dataclass(frozen=True)
class CopyReport:
    """The whole copy, every chunk of it verified."""

    rows: int
    chunks: int
    parallel_chunks: int
    seconds: float
    verification_method: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def copy_and_verify(
    engine: sa.Engine,
    schema_name: str,
    policy: InvalidEpochPolicy,
    chunk_rows: int | None,
    rows: int,
    connections: int = 1,
    on_chunk: Callable[[int, int, int], None] | None = None,
) -> CopyReport:
    """Copy and convert every row into the migrating table, one transaction per chunk, verifying each
    chunk against the original right after copying it (while its pages are still in the cache).
    Up to `connections` chunks are worked on at once, each on its own connection (1 on SQLite).

    Run it under the table's write lock and swap under the same hold: the verification holds only as
    long as no one writes the original. `rows` (the original's row count as last seen) and
    `chunk_rows` size the chunks (see `chunk_count`). A migrating table that already holds rows is
    rebuilt first, never added to.
    `on_chunk(done, total, rows_so_far)` reports progress. Raises InvalidEpochsFound or
    VerificationFailed; either way the original is untouched.
    """
    started = time.perf_counter()
    with engine.begin() as connection:
        require_legacy_layout(connection, schema_name)
        if has_rows(connection, schema_name, MIGRATING_TABLE):
            create_migrating_table(connection, schema_name)
        tables = _reflect(connection, schema_name, policy)
        count = chunk_count(rows, chunk_rows, leads_an_index(tables.original, CHUNK_COLUMN))
        chunks = datetime_ranges(connection, tables.original, count)

    def copy(chunk: Chunk) -> Verification:
        with engine.begin() as connection:
            return _copy_chunk(connection, tables, chunk)

    copied = verified = 0

    def record(verification: Verification) -> Verification:
        nonlocal copied, verified
        copied += verification.rows_migrated
        verified += 1
        if on_chunk:
            on_chunk(verified, len(chunks), copied)
        return verification

    workers = min(max_parallel_connections(engine, connections), len(chunks))
    try:
        verifications = [record(verification) for verification in bounded_map(copy, chunks, workers)]
    except _UnhandledEpochsInChunk:
        # Surveyed once every chunk has stopped, so that the message counts the whole table.
        survey = survey_epochs(engine, tables.original)
        raise InvalidEpochsFound(invalid_epochs_message(survey, policy)) from None
    seconds = time.perf_counter() - started
    return CopyReport(copied, len(chunks), workers, seconds, verifications[0].method)


def _reflect(connection: sa.Connection, schema_name: str, policy: InvalidEpochPolicy) -> _Tables:
    original = reflect_table(connection, schema_name, ORIGINAL_TABLE)
    return _Tables(original, reflect_table(connection, schema_name, MIGRATING_TABLE), policy)


def _copy_chunk(connection: sa.Connection, tables: _Tables, chunk: Chunk) -> Verification:
    connection.execute(_copy_statement(tables, chunk))
    verification = _verify(connection, tables, chunk)
    if verification.unhandled_invalid_epochs:
        raise _UnhandledEpochsInChunk()  # rolls this chunk back and stops the others
    if not verification.matches:
        raise VerificationFailed(
            f"the migrated copy of {tables.original.schema}.{ORIGINAL_TABLE} does not match it "
            f"({verification.method}) "
            f"for datetime in [{chunk.start or '-inf'}, {chunk.end or '+inf'}): "
            f"{verification.rows_original} rows in the original, {verification.rows_migrated} in the copy, "
            f"rows that differ (up to {EXAMPLE_ROWS}): {verification.differences or 'none'}. "
            f"The original is untouched; {MIGRATING_TABLE} is rebuilt by the next run"
        )
    return verification


def _copy_statement(tables: _Tables, chunk: Chunk) -> sa.Insert:
    original = tables.original
    converted = [
        EpochToUtcDatetime(expected_epoch(column, tables.policy)).label(column.name)
        if column.name in TRADE_TIMESTAMP_COLUMNS
        else column
        for column in original.columns
    ]
    rows = sa.select(*converted).where(chunk.where(original))
    return sa.insert(tables.migrating).from_select([column.name for column in original.columns], rows)


def verify_chunk(
    connection: sa.Connection, schema_name: str, chunk: Chunk, policy: InvalidEpochPolicy
) -> Verification:
    """Compare one chunk (`Chunk()`: the whole table) of the migrated copy with the original: row
    counts, every converted value mapped back to the epoch it came from, every other column equal.
    """
    return _verify(connection, _reflect(connection, schema_name, policy), chunk)


def _verify(connection: sa.Connection, tables: _Tables, chunk: Chunk) -> Verification:
    compare = _compare_by_key if tables.original.primary_key.columns else _compare_as_multisets
    return compare(connection, tables, chunk)


def _compare_by_key(connection: sa.Connection, tables: _Tables, chunk: Chunk) -> Verification:
    original, migrating, policy = tables.original, tables.migrating, tables.policy
    key = [column.name for column in original.primary_key.columns]
    joined = original.outerjoin(migrating, sa.and_(*(original.c[name] == migrating.c[name] for name in key)))
    pairs = zip(
        _comparable(connection, original, policy), _comparable(connection, migrating, None), strict=True
    )
    differs = sa.or_(
        migrating.c[key[0]].is_(None), *(sa.not_(left.is_not_distinct_from(right)) for left, right in pairs)
    )
    in_chunk = chunk.where(original)
    rows, different, unhandled = connection.execute(
        sa.select(sa.func.count(), count_where(differs), count_where(unhandled_row(original, policy)))
        .select_from(joined)
        .where(in_chunk)
    ).one()
    differences = []
    if different:
        example = sa.select(*(original.c[name] for name in key)).select_from(joined).where(in_chunk, differs)
        differences = [dict(row._mapping) for row in connection.execute(example.limit(EXAMPLE_ROWS))]
    return Verification(
        method=f"join on the primary key ({', '.join(key)})",
        rows_original=rows,
        rows_migrated=row_count(connection, migrating, chunk.where(migrating)),
        unhandled_invalid_epochs=int(unhandled),
        differences=differences,
    )


def _compare_as_multisets(connection: sa.Connection, tables: _Tables, chunk: Chunk) -> Verification:
    original, migrating, policy = tables.original, tables.migrating, tables.policy
    both = sa.union_all(
        sa.select(*_comparable(connection, original, policy), *_side_flags(1, 0)).where(
            chunk.where(original)
        ),
        sa.select(*_comparable(connection, migrating, None), *_side_flags(0, 1)).where(
            chunk.where(migrating)
        ),
    ).subquery()
    values = [column for column in both.c if column.name not in ("in_original", "in_migrated")]
    different = (
        sa.select(*(both.c[name] for name in EXAMPLE_KEY_COLUMNS))
        .group_by(*values)
        .having(sa.func.sum(both.c.in_original) != sa.func.sum(both.c.in_migrated))
        .limit(EXAMPLE_ROWS)
    )
    rows, unhandled = connection.execute(
        sa.select(sa.func.count(), count_where(unhandled_row(original, policy))).where(chunk.where(original))
    ).one()
    return Verification(
        method="comparison of all rows as multisets (the table has no primary key)",
        rows_original=rows,
        rows_migrated=row_count(connection, migrating, chunk.where(migrating)),
        unhandled_invalid_epochs=int(unhandled),
        differences=[dict(row._mapping) for row in connection.execute(different)],
    )


def _side_flags(in_original: int, in_migrated: int) -> tuple[sa.ColumnElement[int], ...]:
    return sa.literal(in_original).label("in_original"), sa.literal(in_migrated).label("in_migrated")


def _comparable(
    connection: sa.Connection, table: sa.Table, policy: InvalidEpochPolicy | None
) -> list[sa.ColumnElement[Any]]:
    """Every column in a form that compares exactly: epochs for the trade timestamps (those expected
    under `policy` for the original, mapped back for the copy when `policy` is None), and on MySQL
    text as bytes, since its collations equate 'a' with 'A' and ignore trailing spaces.
    """
    columns = []
    for column in table.columns:
        if column.name in TRADE_TIMESTAMP_COLUMNS:
            value = UtcDatetimeToEpoch(column) if policy is None else expected_epoch(column, policy)
        elif is_mysql(connection) and isinstance(column.type, sa.String):
            value = sa.cast(column, mysql.BINARY())
        else:
            value = column
        columns.append(value.label(column.name))
    return columns
