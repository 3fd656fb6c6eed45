"""The timestamp migration of `cc_ohlcv_spot_1d_raw`: BIGINT unix seconds to DATETIME (UTC), in SQL.

The live table is never altered. `cc_ohlcv_spot_1d_raw_migrating` is made from the live definition
(same columns in the same order, defaults, nullability, charset, collation, keys and indexes) with the
four trade timestamps as DATETIME. The database then copies and converts the rows in datetime-ordered
chunks (ranges of `datetime`, which every legacy copy has, keyed or not), verifying each chunk against
the original right after copying it; on MySQL/MariaDB several chunks are worked on at once, each on its
own connection. One atomic rename finally puts the copy in place and keeps the original as
`cc_ohlcv_spot_1d_raw_bigint_backup_YYYYMMDD` (UTC date).

Time zones: the conversion is arithmetic on a fixed origin and never goes through a zone. MySQL and
MariaDB compute `TIMESTAMP'1970-01-01 00:00:00' + INTERVAL n SECOND` (FROM_UNIXTIME would render in
the session zone, and fails past 2038); SQLite uses `strftime(..., n, 'unixepoch')`, which is UTC.
Verification maps every value back with the inverse (TIMESTAMPDIFF, strftime('%s')).

Valid epochs are whole seconds from 1 (1970-01-01 00:00:01) to 4102444800 (2100-01-01). Anything else
is counted by category (zero or negative, milliseconds, out of range) and handled by an
`InvalidEpochPolicy`: "stop" (the default: nothing is swapped while any remain), "null" (stored as
NULL) or "milliseconds" (values in the millisecond range are divided by 1000, truncating to the
second; any other invalid value stops). The lossy policies are safe only because the backup keeps the
original values.

Re-running is always safe: until the rename the original is untouched, and a migrating table left by
a failed run is dropped and rebuilt, never trusted. A verification only holds while no one else
writes the original, so `copy_and_verify` and `swap_tables` must run under one hold of the table's
write lock (see `spot_pipeline.maintenance.migration`).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from spot_pipeline.db.dialect import is_mysql, qualified_name, quote_identifier
from spot_pipeline.db.engine import max_parallel_connections, read_only_connection
from spot_pipeline.db.inspection import inspect_table, leads_an_index
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw
from spot_pipeline.db.utils import reflect_table

ORIGINAL_TABLE = cc_ohlcv_spot_1d_raw.name
MIGRATING_TABLE = f"{ORIGINAL_TABLE}_migrating"
BACKUP_TABLE_PREFIX = f"{ORIGINAL_TABLE}_bigint_backup_"
CHUNK_COLUMN = "datetime"
EXAMPLE_KEY_COLUMNS = ("datetime", "exchange", "symbol_unmapped", "symbol")
EXAMPLE_ROWS = 10
DEFAULT_CHUNK_ROWS = 50_000
# The survey splits the table into this many ranges per connection, so that uneven ranges still
# keep every connection busy to the end.
SURVEY_RANGES_PER_CONNECTION = 4

MIN_EPOCH_SECONDS = 1
MAX_EPOCH_SECONDS = 4_102_444_800  # 2100-01-01 00:00:00 UTC
MIN_EPOCH_MILLISECONDS = 100_000_000_000  # 1973-03-03 in milliseconds; smaller values are ambiguous
MAX_EPOCH_MILLISECONDS = MAX_EPOCH_SECONDS * 1000

InvalidEpochPolicy = Literal["stop", "null", "milliseconds"]
LOSSY_POLICIES: tuple[InvalidEpochPolicy, ...] = ("null", "milliseconds")


class TimestampLayout(StrEnum):
    BIGINT = "BIGINT unix seconds"
    DATETIME = "DATETIME (UTC)"


class MigrationError(RuntimeError):
    """The migration cannot go on. Raised before the rename, so the original table is untouched."""


class UnexpectedTableShape(MigrationError):
    """The live table is neither the legacy BIGINT layout nor the migrated DATETIME one."""


class InvalidEpochsFound(MigrationError):
    """Trade timestamps that are not seconds since 1970, which the chosen policy does not handle."""


class VerificationFailed(MigrationError):
    """The migrated copy does not match the original."""


class _UnhandledEpochsInChunk(Exception):
    """A chunk holds epochs the policy does not handle; the caller surveys the table to say which."""


# --- Dialect differences: epoch <-> UTC DATETIME -------------------------------------------------


class EpochToUtcDatetime(FunctionElement[dt.datetime]):
    """Unix seconds to the UTC DATETIME they denote; NULL stays NULL."""

    type = sa.DateTime()
    inherit_cache = True


class UtcDatetimeToEpoch(FunctionElement[int]):
    """A UTC DATETIME back to unix seconds (the inverse of `EpochToUtcDatetime`); NULL stays NULL."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(EpochToUtcDatetime, "mysql")
@compiles(EpochToUtcDatetime, "mariadb")
def _epoch_to_datetime_mysql(element: EpochToUtcDatetime, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(TIMESTAMP'1970-01-01 00:00:00' + INTERVAL ({compiler.process(element.clauses, **kw)}) SECOND)"


@compiles(EpochToUtcDatetime, "sqlite")
def _epoch_to_datetime_sqlite(element: EpochToUtcDatetime, compiler: SQLCompiler, **kw: Any) -> str:
    # The text form the schema's SQLite DATETIME stores, so values compare equal to the pipeline's own.
    return f"datetime({compiler.process(element.clauses, **kw)}, 'unixepoch')"


@compiles(UtcDatetimeToEpoch, "mysql")
@compiles(UtcDatetimeToEpoch, "mariadb")
def _datetime_to_epoch_mysql(element: UtcDatetimeToEpoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"TIMESTAMPDIFF(SECOND, TIMESTAMP'1970-01-01 00:00:00', {compiler.process(element.clauses, **kw)})"


@compiles(UtcDatetimeToEpoch, "sqlite")
def _datetime_to_epoch_sqlite(element: UtcDatetimeToEpoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


# --- Valid and invalid epochs --------------------------------------------------------------------


def _is_epoch_seconds(value: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    return value.between(MIN_EPOCH_SECONDS, MAX_EPOCH_SECONDS)


def _is_epoch_milliseconds(value: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    return value.between(MIN_EPOCH_MILLISECONDS, MAX_EPOCH_MILLISECONDS)


# Each is NULL for a NULL value, which SQL counts as not met.
_INVALID_CATEGORIES: dict[str, Callable[[sa.ColumnElement[int]], sa.ColumnElement[bool]]] = {
    "zero or negative": lambda value: value < MIN_EPOCH_SECONDS,
    "milliseconds": _is_epoch_milliseconds,
    "out of range": lambda value: sa.and_(value > MAX_EPOCH_SECONDS, sa.not_(_is_epoch_milliseconds(value))),
}
INVALID_EPOCH_CATEGORIES = tuple(_INVALID_CATEGORIES)
# The categories each policy cannot handle: the job stops while any value falls in one.
_UNHANDLED_CATEGORIES: dict[InvalidEpochPolicy, tuple[str, ...]] = {
    "stop": INVALID_EPOCH_CATEGORIES,
    "null": (),
    "milliseconds": ("zero or negative", "out of range"),
}


def _expected_epoch(value: sa.ColumnElement[int], policy: InvalidEpochPolicy) -> sa.ColumnElement[int]:
    """The epoch the migrated value must denote under `policy`; NULL for NULL and for invalid values."""
    whens = [(_is_epoch_seconds(value), value)]
    if policy == "milliseconds":
        whens.append((_is_epoch_milliseconds(value), value // 1000))
    return sa.case(*whens, else_=sa.null())


def _unhandled_epoch(value: sa.ColumnElement[int], policy: InvalidEpochPolicy) -> sa.ColumnElement[bool]:
    return sa.or_(sa.false(), *(_INVALID_CATEGORIES[name](value) for name in _UNHANDLED_CATEGORIES[policy]))


def _count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """How many rows meet `condition`: SUM of the comparison itself (1, 0 or NULL on both dialects),
    which is cheaper than a CASE per row.
    """
    return sa.func.coalesce(sa.func.sum(sa.type_coerce(condition, sa.Integer)), 0)


# --- Inspect --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochSurvey:
    """Row count and invalid trade timestamps of the legacy table, per column and category."""

    rows: int
    invalid: dict[str, dict[str, int]]
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def invalid_total(self) -> int:
        return sum(sum(counts.values()) for counts in self.invalid.values())

    def blocking(self, policy: InvalidEpochPolicy) -> int:
        """How many invalid values `policy` does not handle (the job stops while any remain)."""
        return sum(
            counts[category] for counts in self.invalid.values() for category in _UNHANDLED_CATEGORIES[policy]
        )

    def describe_examples(self) -> str:
        return "; ".join(
            " ".join(str(example[key]) for key in EXAMPLE_KEY_COLUMNS)
            + f" {example['column']}={example['value']}"
            for example in self.examples
        )

    def describe(self) -> str:
        counts = "; ".join(
            f"{column}: " + ", ".join(f"{n} {category}" for category, n in counts.items() if n)
            for column, counts in self.invalid.items()
            if any(counts.values())
        )
        return counts or "none"


@dataclass(frozen=True)
class TableInspection:
    """What the live table looks like, read before anything is touched."""

    layout: TimestampLayout
    rows: int
    column_types: dict[str, str]
    primary_key: tuple[str, ...]
    datetime_indexed: bool  # an index or key starts with `datetime`, so a chunk reads only its range
    survey: EpochSurvey | None
    leftover_migrating_table: bool


def inspect_original(engine: sa.Engine, schema_name: str, connections: int = 1) -> TableInspection:
    """Check the live table's layout, count its rows and, in the legacy layout, its invalid epochs
    (reading ranges of the table on up to `connections` connections at once).
    """
    with read_only_connection(engine) as connection:
        layout = timestamp_layout(connection, schema_name)
        original = reflect_table(connection, schema_name, ORIGINAL_TABLE)
        leftover = _table_exists(connection, schema_name, MIGRATING_TABLE)
        migrated_rows = _row_count(connection, original) if layout is TimestampLayout.DATETIME else 0
    survey = survey_epochs(engine, original, connections) if layout is TimestampLayout.BIGINT else None
    rows = survey.rows if survey else migrated_rows
    return TableInspection(
        layout=layout,
        rows=rows,
        column_types={column.name: str(column.type) for column in original.columns},
        primary_key=tuple(column.name for column in original.primary_key.columns),
        datetime_indexed=leads_an_index(original, CHUNK_COLUMN),
        survey=survey,
        leftover_migrating_table=leftover,
    )


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
    families = shape.trade_timestamp_families
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


def survey_epochs(engine: sa.Engine, original: sa.Table, connections: int = 1) -> EpochSurvey:
    """Count the rows of the (reflected) original and, per trade timestamp column and category, the
    values that are not valid seconds. The first pass reads ranges of the table on up to
    `connections` connections at once.
    """
    with read_only_connection(engine) as connection:
        connections = max_parallel_connections(engine, connections)
        # Without an index on `datetime` every range would read the whole table: one pass instead.
        indexed = leads_an_index(original, CHUNK_COLUMN)
        count = connections * SURVEY_RANGES_PER_CONNECTION if indexed else 1
        ranges = datetime_ranges(connection, original, count)
    connections = min(connections, len(ranges))
    # One test per value first (the usual answer is "all valid"); the categories only when needed.
    any_invalid = sa.or_(
        *(sa.not_(_is_epoch_seconds(original.c[column])) for column in TRADE_TIMESTAMP_COLUMNS)
    )

    def count_range(chunk: Chunk) -> sa.Row[tuple[int, int]]:
        with read_only_connection(engine) as connection:
            query = sa.select(sa.func.count(), _count_where(any_invalid)).where(chunk.where(original))
            return connection.execute(query).one()

    counts = _map_in_parallel(count_range, ranges, connections)
    rows = sum(int(range_rows) for range_rows, _ in counts)
    if not any(invalid_rows for _, invalid_rows in counts):
        return EpochSurvey(
            rows=rows,
            invalid={column: dict.fromkeys(_INVALID_CATEGORIES, 0) for column in TRADE_TIMESTAMP_COLUMNS},
        )
    with read_only_connection(engine) as connection:
        return _survey_categories(connection, original)


def _survey_categories(connection: sa.Connection, original: sa.Table) -> EpochSurvey:
    """The invalid values counted per column and category, with examples: one more pass, made only
    when the first found some.
    """
    measures = [sa.func.count().label("rows")]
    for column in TRADE_TIMESTAMP_COLUMNS:
        for category, condition in _INVALID_CATEGORIES.items():
            measures.append(_count_where(condition(original.c[column])).label(f"{column}|{category}"))
    counts = connection.execute(sa.select(*measures)).one()._mapping
    invalid = {
        column: {category: int(counts[f"{column}|{category}"]) for category in _INVALID_CATEGORIES}
        for column in TRADE_TIMESTAMP_COLUMNS
    }
    survey = EpochSurvey(rows=int(counts["rows"]), invalid=invalid)
    if survey.invalid_total == 0:
        return survey
    return EpochSurvey(rows=survey.rows, invalid=invalid, examples=_invalid_examples(connection, original))


def _invalid_examples(connection: sa.Connection, original: sa.Table) -> list[dict[str, Any]]:
    keys = [original.c[name] for name in EXAMPLE_KEY_COLUMNS]
    per_column = [
        sa.select(*keys, sa.literal(column).label("column"), original.c[column].label("value")).where(
            sa.not_(_is_epoch_seconds(original.c[column]))
        )
        for column in TRADE_TIMESTAMP_COLUMNS
    ]
    query = sa.union_all(*per_column).limit(EXAMPLE_ROWS)
    return [dict(row._mapping) for row in connection.execute(query)]


# --- Create ---------------------------------------------------------------------------------------


def create_migrating_table(connection: sa.Connection, schema_name: str) -> bool:
    """(Re)create the empty migrating table from the live definition; True when a leftover was dropped."""
    require_legacy_layout(connection, schema_name)
    leftover = _drop_table(connection, schema_name, MIGRATING_TABLE)
    if is_mysql(connection):
        _create_like_mysql(connection, schema_name)
    else:
        _create_from_reflection(connection, schema_name)
    _check_same_definition(connection, schema_name)
    return leftover


def _create_like_mysql(connection: sa.Connection, schema_name: str) -> None:
    # CREATE TABLE ... LIKE copies every column attribute, key, index, charset, collation and table option.
    original = _qualified(connection, schema_name, ORIGINAL_TABLE)
    migrating = _qualified(connection, schema_name, MIGRATING_TABLE)
    connection.exec_driver_sql(f"CREATE TABLE {migrating} LIKE {original}")
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


# --- Copy and verify ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """The rows with start <= datetime < end; a missing bound is open, and the first chunk takes NULLs."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def where(self, table: sa.Table) -> sa.ColumnElement[bool]:
        column = table.c[CHUNK_COLUMN]
        lower = sa.true() if self.start is None else column >= self.start
        upper = sa.true() if self.end is None else column < self.end
        within = sa.and_(lower, upper)
        return sa.or_(within, column.is_(None)) if self.start is None else within


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
    differences: list[dict[str, Any]]

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


def chunk_count(rows: int, chunk_rows: int | None, datetime_indexed: bool) -> int:
    """How many chunks the copy of `rows` rows takes. `chunk_rows` None picks: DEFAULT_CHUNK_ROWS
    when an index starts with `datetime`; otherwise one chunk, since every chunk would read the whole
    table (many chunks would make the copy quadratic in the table's size).
    """
    if chunk_rows is None:
        if not datetime_indexed:
            return 1
        chunk_rows = DEFAULT_CHUNK_ROWS
    return max(1, math.ceil(rows / chunk_rows))


def datetime_ranges(connection: sa.Connection, table: sa.Table, count: int) -> list[Chunk]:
    """`count` consecutive ranges of `datetime` (fewer when the table spans fewer seconds), together
    covering every row of `table`.

    The table may have no unique key, so chunks are ranges of `datetime`, spread evenly between its
    first and last value (with the usual key these two come from the index, not a scan). The ranges
    are open at both ends, so together they always cover every row.
    """
    column = table.c[CHUNK_COLUMN]
    first, last = connection.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    if first is None or count < 2:
        return [Chunk()]
    step = (last - first) / count
    boundaries = sorted({(first + step * index).replace(microsecond=0) for index in range(1, count)})
    return [Chunk(start, end) for start, end in zip([None, *boundaries], [*boundaries, None], strict=True)]


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
        if _has_rows(connection, schema_name, MIGRATING_TABLE):
            create_migrating_table(connection, schema_name)
        original = reflect_table(connection, schema_name, ORIGINAL_TABLE)
        migrating = reflect_table(connection, schema_name, MIGRATING_TABLE)
        count = chunk_count(rows, chunk_rows, leads_an_index(original, CHUNK_COLUMN))
        chunks = datetime_ranges(connection, original, count)

    def copy(chunk: Chunk) -> Verification:
        with engine.begin() as connection:
            return _copy_chunk(connection, original, migrating, chunk, policy)

    copied = verified = 0

    def record(verification: Verification) -> None:
        nonlocal copied, verified
        copied += verification.rows_migrated
        verified += 1
        if on_chunk:
            on_chunk(verified, len(chunks), copied)

    workers = min(max_parallel_connections(engine, connections), len(chunks))
    try:
        verifications = _map_in_parallel(copy, chunks, workers, on_result=record)
    except _UnhandledEpochsInChunk:
        # Surveyed once every chunk has stopped, so that the message counts the whole table.
        raise InvalidEpochsFound(invalid_epochs_message(survey_epochs(engine, original), policy)) from None
    seconds = time.perf_counter() - started
    return CopyReport(copied, len(chunks), workers, seconds, verifications[0].method)


def _copy_chunk(
    connection: sa.Connection,
    original: sa.Table,
    migrating: sa.Table,
    chunk: Chunk,
    policy: InvalidEpochPolicy,
) -> Verification:
    connection.execute(_copy_statement(original, migrating, chunk, policy))
    verification = _verify(connection, original, migrating, chunk, policy)
    if verification.unhandled_invalid_epochs:
        raise _UnhandledEpochsInChunk()  # rolls this chunk back and stops the others
    if not verification.matches:
        raise VerificationFailed(
            f"the migrated copy of {original.schema}.{ORIGINAL_TABLE} does not match it "
            f"({verification.method}) "
            f"for datetime in [{chunk.start or '-inf'}, {chunk.end or '+inf'}): "
            f"{verification.rows_original} rows in the original, {verification.rows_migrated} in the copy, "
            f"rows that differ (up to {EXAMPLE_ROWS}): {verification.differences or 'none'}. "
            f"The original is untouched; {MIGRATING_TABLE} is rebuilt by the next run"
        )
    return verification


def _copy_statement(
    original: sa.Table, migrating: sa.Table, chunk: Chunk, policy: InvalidEpochPolicy
) -> sa.Insert:
    converted = [
        EpochToUtcDatetime(_expected_epoch(column, policy)).label(column.name)
        if column.name in TRADE_TIMESTAMP_COLUMNS
        else column
        for column in original.columns
    ]
    rows = sa.select(*converted).where(chunk.where(original))
    return sa.insert(migrating).from_select([column.name for column in original.columns], rows)


def verify_chunk(
    connection: sa.Connection, schema_name: str, chunk: Chunk, policy: InvalidEpochPolicy
) -> Verification:
    """Compare one chunk (`Chunk()`: the whole table) of the migrated copy with the original: row
    counts, every converted value mapped back to the epoch it came from, every other column equal.
    """
    original = reflect_table(connection, schema_name, ORIGINAL_TABLE)
    migrating = reflect_table(connection, schema_name, MIGRATING_TABLE)
    return _verify(connection, original, migrating, chunk, policy)


def _verify(
    connection: sa.Connection,
    original: sa.Table,
    migrating: sa.Table,
    chunk: Chunk,
    policy: InvalidEpochPolicy,
) -> Verification:
    compare = _compare_by_key if original.primary_key.columns else _compare_as_multisets
    return compare(connection, original, migrating, chunk, policy)


def _compare_by_key(
    connection: sa.Connection,
    original: sa.Table,
    migrating: sa.Table,
    chunk: Chunk,
    policy: InvalidEpochPolicy,
) -> Verification:
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
        sa.select(sa.func.count(), _count_where(differs), _count_where(_unhandled_row(original, policy)))
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
        rows_migrated=_row_count(connection, migrating, chunk),
        unhandled_invalid_epochs=int(unhandled),
        differences=differences,
    )


def _compare_as_multisets(
    connection: sa.Connection,
    original: sa.Table,
    migrating: sa.Table,
    chunk: Chunk,
    policy: InvalidEpochPolicy,
) -> Verification:
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
        sa.select(sa.func.count(), _count_where(_unhandled_row(original, policy))).where(
            chunk.where(original)
        )
    ).one()
    return Verification(
        method="comparison of all rows as multisets (the table has no primary key)",
        rows_original=rows,
        rows_migrated=_row_count(connection, migrating, chunk),
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
            value = UtcDatetimeToEpoch(column) if policy is None else _expected_epoch(column, policy)
        elif is_mysql(connection) and isinstance(column.type, sa.String):
            value = sa.cast(column, mysql.BINARY())
        else:
            value = column
        columns.append(value.label(column.name))
    return columns


def _unhandled_row(original: sa.Table, policy: InvalidEpochPolicy) -> sa.ColumnElement[bool]:
    return sa.or_(*(_unhandled_epoch(original.c[name], policy) for name in TRADE_TIMESTAMP_COLUMNS))


def invalid_epochs_message(survey: EpochSurvey, policy: InvalidEpochPolicy) -> str:
    """Why the job stops on invalid epochs, and which config would let it go on."""
    handled_by = " or ".join(repr(name) for name in LOSSY_POLICIES if survey.blocking(name) == 0)
    fix = (
        f"set invalid_epochs to {handled_by} (the backup keeps the originals)"
        if handled_by
        else "correct or delete those values by hand"
    )
    return (
        f"{survey.blocking(policy)} trade timestamps are not seconds since 1970 and "
        f"invalid_epochs={policy!r} does not handle them ({survey.describe()}); nothing was swapped. "
        f"To migrate, {fix}. Examples (datetime exchange symbol_unmapped symbol column=value): "
        f"{survey.describe_examples()}"
    )


# --- Swap and clean up ----------------------------------------------------------------------------


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
    original = _qualified(connection, schema_name, ORIGINAL_TABLE)
    migrating = _qualified(connection, schema_name, MIGRATING_TABLE)
    if is_mysql(connection):
        backup = _qualified(connection, schema_name, backup_name)
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
    return _drop_table(connection, schema_name, backup_name)


# --- Helpers --------------------------------------------------------------------------------------

Item = TypeVar("Item")
Result = TypeVar("Result")


def _map_in_parallel(
    work: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    on_result: Callable[[Result], None] = lambda _result: None,
) -> list[Result]:
    """`work` on every item, `workers` at a time; the results in the order of `items`. `on_result`
    sees each result as it comes, in the calling thread. The first error (raised by `work` or by
    `on_result`) cancels the items not yet started and, once the running ones are done, is raised
    here. One worker: all in the calling thread, one item after the other (SQLite's single
    connection is then never shared).
    """
    if workers <= 1:
        results = []
        for item in items:
            results.append(work(item))
            on_result(results[-1])
        return results
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migration") as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            for future in as_completed(futures):
                on_result(future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return [future.result() for future in futures]


def _table_exists(connection: sa.Connection, schema_name: str, table_name: str) -> bool:
    return sa.inspect(connection).has_table(table_name, schema=schema_name)


def _drop_table(connection: sa.Connection, schema_name: str, table_name: str) -> bool:
    if not _table_exists(connection, schema_name, table_name):
        return False
    connection.exec_driver_sql(f"DROP TABLE {_qualified(connection, schema_name, table_name)}")
    return True


def _row_count(connection: sa.Connection, table: sa.Table, chunk: Chunk | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    return connection.execute(query if chunk is None else query.where(chunk.where(table))).scalar_one()


def _has_rows(connection: sa.Connection, schema_name: str, table_name: str) -> bool:
    table = sa.table(table_name, schema=schema_name)
    return connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None


def _qualified(connection: sa.Connection, schema_name: str, table_name: str) -> str:
    return qualified_name(connection, sa.table(table_name, schema=schema_name))
