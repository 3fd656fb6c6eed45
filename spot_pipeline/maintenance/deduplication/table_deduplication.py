"""Deduplication of a table on its natural key: set-based, in bounded batches, one transaction each.

`deduplicate_table` keeps, for every key, the single best row by `survivor_order` and deletes the
others, in place: the table is never recreated, dropped or renamed, so its keys, indexes, defaults
and grants stay as they are, and a failed run leaves some batches done and the rest untouched.
`count_duplicates` is the read-only view of the same rule (dry runs, checks).

Ordering (the survivor is the first row of its key):
1. `order_column` descending (the latest `collected_at`); a row with NULL there comes after every
   row that has a value: a known collection time beats an unknown one.
2. Then every other non-key column, in the table's column order, descending with NULLs last, text
   compared byte by byte (not through a case-insensitive collation). Rows of a key that still tie
   are equal in every column: exact copies, interchangeable.

Rows with a NULL in a key column are never duplicates (as in a unique index) and are left untouched.

Why survivors are copied out and written back: a table without a unique key can hold exact copies,
and MySQL cannot delete "all but one" of identical rows by value (it has no row id). So each batch,
in one transaction, copies the survivor of every duplicated key to a session-private temporary
table, deletes every row of those keys, and inserts the survivors back. Keys without duplicates are
never written; on any error the batch's transaction rolls back whole.

Cost: each batch reads its window of `batch_column`. When an index starts with that column (the
OHLCV primary key does) that is a range read; on a table without one (legacy copies without a key)
every batch reads the whole table, so fewer, larger batches are faster there.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import sqlalchemy as sa

from spot_pipeline.db.dialect import drop_temporary_table, is_mysql, row_count, temporary_schema
from spot_pipeline.db.inspection import check_identifier, leads_an_index, reflect_table

DEFAULT_BATCH_DAYS = 31
SURVIVORS_TABLE = "spot_pipeline_dedupe_survivors"
COPIES_COLUMN = "dedupe_copies"
RANK_COLUMN = "dedupe_rank"
ALL_ROWS = "(all)"


@dataclass(frozen=True)
class DuplicateCount:
    """Rows looked at, and rows beyond the first of their key: in total and per group."""

    examined: int
    duplicates: int
    by_group: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    """One window [start, end) of the batch column."""

    start: dt.date
    end: dt.date
    duplicates: int
    deleted: int
    by_group: dict[str, int]


@dataclass(frozen=True)
class DeduplicationResult:
    """What `deduplicate_table` found and deleted (a dry run deletes nothing)."""

    examined: int
    duplicates: int
    deleted: int
    batches: int
    by_group: dict[str, int]
    dry_run: bool
    range_reads: bool  # False: no index starts with the batch column, so every batch read the whole table


@dataclass(frozen=True)
class _Plan:
    """A validated deduplication: the reflected table and the roles of its columns."""

    table: sa.Table
    key_columns: tuple[str, ...]
    order_column: str
    batch_column: str
    group_column: str | None

    @property
    def columns(self) -> list[str]:
        return [column.name for column in self.table.c]

    @property
    def range_reads(self) -> bool:
        """Whether an index or key starts with the batch column, so that a batch reads only its window."""
        return leads_an_index(self.table, self.batch_column)

    def window(self, start: dt.date, end: dt.date) -> list[sa.ColumnElement[bool]]:
        # Bounds are dates: on SQLite they then compare right with DATETIME text stored with or
        # without fractions of a second ('2024-01-01' < '2024-01-01 00:00:00' < '... 00:00:00.000000').
        column = self.table.c[self.batch_column]
        return [column >= sa.literal(start, sa.Date), column < sa.literal(end, sa.Date)]


def check_columns(table: sa.Table, columns: Sequence[str], what: str) -> None:
    """Every name is a plain identifier and a column of the live table."""
    for name in columns:
        check_identifier(name, what)
        if name not in table.c:
            raise ValueError(
                f"{what} {name!r} is not a column of {table.schema}.{table.name}; "
                f"its columns are: {', '.join(table.c.keys())}"
            )


def survivor_order(
    columns: Sequence[sa.ColumnElement], key_columns: Sequence[str], order_column: str
) -> list[sa.ColumnElement]:
    """ORDER BY terms over a table's `columns` that put the row to keep first (see the module docstring)."""
    by_name = {column.name: column for column in columns}
    ranked = [by_name[order_column]]
    ranked += [column for column in columns if column.name not in {*key_columns, order_column}]
    return [term for column in ranked for term in (_nulls_last(column), _bytewise(column).desc())]


def count_duplicates(
    connection: sa.Connection,
    table: sa.Table,
    key_columns: Sequence[str],
    *,
    group_column: str | None = None,
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> DuplicateCount:
    """Count the rows matching `where` and those beyond the first of their key; writes nothing."""
    check_columns(table, [*key_columns, *([group_column] if group_column else [])], "column")
    examined = row_count(connection, table, *where)
    keys = [table.c[name] for name in key_columns]
    numbered = (
        sa.select(*keys, sa.func.row_number().over(partition_by=keys).label(RANK_COLUMN))
        .where(*where, *(key.is_not(None) for key in keys))
        .subquery("numbered")
    )
    extra_rows = sa.select(numbered).where(numbered.c[RANK_COLUMN] > 1).subquery("extra_rows")
    by_group = _sum_per_group(connection, extra_rows, sa.literal(1), group_column)
    return DuplicateCount(examined=examined, duplicates=sum(by_group.values()), by_group=by_group)


def deduplicate_table(
    engine: sa.Engine,
    schema: str,
    table_name: str,
    key_columns: Sequence[str],
    order_column: str,
    *,
    batch_column: str | None = None,
    batch_days: int | None = None,
    group_column: str | None = None,
    dry_run: bool = False,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> DeduplicationResult:
    """Keep one row per `key_columns` in `schema.table_name`: the first by `survivor_order`.

    Walks `batch_column` (a DATE/DATETIME key column; the first key column by default) in windows of
    `batch_days` days, each deduplicated in its own transaction. By default (None) batches are
    DEFAULT_BATCH_DAYS long when an index starts with the batch column; without one every batch would
    read the whole table, so the table is then done in one batch. `group_column` (a key column, e.g.
    exchange) breaks the counts down; `on_batch` hears about every window. A dry run only counts.
    The caller holds the table's write lock (`MarketDatabase.write_lock`) for a real run.
    """
    if batch_days is not None and batch_days < 1:
        raise ValueError(f"batch_days must be at least 1, got {batch_days}")
    with engine.connect() as connection:
        plan = _plan(connection, schema, table_name, key_columns, order_column, batch_column, group_column)
        if not dry_run:
            require_transactional_engine(connection, plan.table)
        column = plan.table.c[plan.batch_column]
        extent = sa.select(sa.func.count(), sa.func.min(column), sa.func.max(column)).select_from(plan.table)
        examined, first, last = connection.execute(extent).one()
        connection.commit()
        if batch_days is None:
            batch_days = DEFAULT_BATCH_DAYS if plan.range_reads else _days_spanned(first, last)
        windows = _batch_windows(first, last, batch_days)
        batches = []
        with nullcontext() if dry_run else _survivors_table(connection, plan) as survivors:
            for start, end in windows:
                with connection.begin():
                    if survivors is None:
                        batch = _count_batch(connection, plan, start, end)
                    else:
                        batch = _delete_batch(connection, plan, survivors, start, end)
                batches.append(batch)
                if on_batch:
                    on_batch(batch)
    by_group: Counter[str] = Counter()
    for batch in batches:
        by_group.update(batch.by_group)
    return DeduplicationResult(
        examined=examined,
        duplicates=sum(batch.duplicates for batch in batches),
        deleted=sum(batch.deleted for batch in batches),
        batches=len(batches),
        by_group=dict(by_group.most_common()),
        dry_run=dry_run,
        range_reads=plan.range_reads,
    )


def _plan(
    connection: sa.Connection,
    schema: str,
    table_name: str,
    key_columns: Sequence[str],
    order_column: str,
    batch_column: str | None,
    group_column: str | None,
) -> _Plan:
    if not key_columns:
        raise ValueError("key_columns is empty: name the columns that identify a row")
    table = reflect_table(connection, schema, table_name)
    batch_column = batch_column or key_columns[0]
    check_columns(table, key_columns, "key column")
    check_columns(table, [order_column], "order column")
    for name, role in ((batch_column, "batch column"), (group_column, "group column")):
        # Batches and groups must never split the rows of one key between them.
        if name is not None and name not in key_columns:
            raise ValueError(f"{role} {name!r} must be one of the key columns {list(key_columns)}")
    if not isinstance(table.c[batch_column].type, sa.Date | sa.DateTime):
        raise ValueError(
            f"batch column {batch_column!r} is {table.c[batch_column].type}, not DATE/DATETIME: "
            "name a date or datetime key column as batch_column"
        )
    return _Plan(table, tuple(key_columns), order_column, batch_column, group_column)


def _batch_windows(
    first: dt.date | None, last: dt.date | None, batch_days: int
) -> Iterator[tuple[dt.date, dt.date]]:
    """[start, end) windows of `batch_days` days, from the day of the first value past the last."""
    if first is None or last is None:
        return
    start, last = _day(first), _day(last)
    step = dt.timedelta(days=batch_days)
    while start <= last:
        yield start, start + step
        start += step


def _days_spanned(first: dt.date | None, last: dt.date | None) -> int:
    return (_day(last) - _day(first)).days + 1 if first is not None and last is not None else 1


def _day(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _count_batch(connection: sa.Connection, plan: _Plan, start: dt.date, end: dt.date) -> BatchResult:
    found = count_duplicates(
        connection,
        plan.table,
        plan.key_columns,
        group_column=plan.group_column,
        where=plan.window(start, end),
    )
    return BatchResult(start, end, duplicates=found.duplicates, deleted=0, by_group=found.by_group)


def _delete_batch(
    connection: sa.Connection, plan: _Plan, survivors: sa.Table, start: dt.date, end: dt.date
) -> BatchResult:
    """Replace every duplicated key of the window by its survivor, inside the caller's transaction."""
    window = plan.window(start, end)
    connection.execute(sa.delete(survivors))
    connection.execute(
        sa.insert(survivors).from_select([*plan.columns, COPIES_COLUMN], _survivors_query(plan, window))
    )
    by_group = _sum_per_group(connection, survivors, survivors.c[COPIES_COLUMN] - 1, plan.group_column)
    if not by_group:
        return BatchResult(start, end, duplicates=0, deleted=0, by_group={})
    keys = [plan.table.c[name] for name in plan.key_columns]
    survivor_keys = sa.select(*(survivors.c[name] for name in plan.key_columns))
    removed = connection.execute(sa.delete(plan.table).where(*window, sa.tuple_(*keys).in_(survivor_keys)))
    restore = sa.insert(plan.table).from_select(
        plan.columns, sa.select(*(survivors.c[name] for name in plan.columns))
    )
    restored = connection.execute(restore.execution_options(preserve_rowcount=True))
    return BatchResult(
        start,
        end,
        duplicates=sum(by_group.values()),
        deleted=removed.rowcount - restored.rowcount,
        by_group=by_group,
    )


def _survivors_query(plan: _Plan, window: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    """The first row by `survivor_order` of every key held by several rows of the window, with its copies."""
    keys = [plan.table.c[name] for name in plan.key_columns]
    # Counting first sorts by the key alone; the full ordering then only sorts the duplicated rows.
    counted = (
        sa.select(*plan.table.c, sa.func.count().over(partition_by=keys).label(COPIES_COLUMN))
        .where(*window, *(key.is_not(None) for key in keys))
        .subquery("counted")
    )
    row_columns = [counted.c[name] for name in plan.columns]
    ranked = (
        sa.select(
            counted,
            sa.func.row_number()
            .over(
                partition_by=[counted.c[name] for name in plan.key_columns],
                order_by=survivor_order(row_columns, plan.key_columns, plan.order_column),
            )
            .label(RANK_COLUMN),
        )
        .where(counted.c[COPIES_COLUMN] > 1)
        .subquery("ranked")
    )
    return sa.select(*(ranked.c[name] for name in [*plan.columns, COPIES_COLUMN])).where(
        ranked.c[RANK_COLUMN] == 1
    )


def _sum_per_group(
    connection: sa.Connection, rows: sa.FromClause, measure: sa.ColumnElement[int], group_column: str | None
) -> dict[str, int]:
    """SUM(measure) over `rows` per value of `group_column` (largest first), or under ALL_ROWS; no zeros."""
    total = sa.func.sum(measure)
    if group_column is None:
        value = connection.execute(sa.select(total).select_from(rows)).scalar_one()
        return {ALL_ROWS: int(value)} if value else {}
    group = rows.c[group_column]
    query = sa.select(group, total).select_from(rows).group_by(group).order_by(total.desc(), group)
    return {str(name): int(value) for name, value in connection.execute(query) if value}


@contextmanager
def _survivors_table(connection: sa.Connection, plan: _Plan) -> Iterator[sa.Table]:
    """A session-private temporary table shaped like the table plus the copy count, keyed like it."""
    survivors = sa.Table(
        SURVIVORS_TABLE,
        sa.MetaData(),
        *(sa.Column(column.name, column.type, autoincrement=False) for column in plan.table.c),
        sa.Column(COPIES_COLUMN, sa.BigInteger, autoincrement=False),
        sa.PrimaryKeyConstraint(*plan.key_columns),
        schema=temporary_schema(connection, plan.table.schema),
        prefixes=["TEMPORARY"],
        # Same character set and collation as the table, so key comparisons agree with its own.
        **plan.table.dialect_kwargs,
    )
    # A pooled MySQL session can still hold the table from an earlier run that failed.
    drop_temporary_table(connection, survivors)
    survivors.create(connection)
    connection.commit()
    try:
        yield survivors
    finally:
        drop_temporary_table(connection, survivors)
        connection.commit()


def _nulls_last(column: sa.ColumnElement) -> sa.ColumnElement[int]:
    return sa.case((column.is_(None), 1), else_=0)


def _bytewise(column: sa.ColumnElement) -> sa.ColumnElement:
    # A case-insensitive collation calls 'BTC-USD' and 'btc-usd' equal: compare bytes for a total order.
    return sa.cast(column, sa.LargeBinary) if isinstance(column.type, sa.String) else column


def require_transactional_engine(connection: sa.Connection, table: sa.Table) -> None:
    """A batch deletes, then restores survivors: without transactions a failure in between loses rows."""
    storage_engine = str(table.dialect_kwargs.get("mysql_engine", "InnoDB"))
    if is_mysql(connection) and storage_engine.lower() != "innodb":
        raise ValueError(
            f"{table.schema}.{table.name} uses the {storage_engine} storage engine, which has no "
            "transactions, so a failure in the middle of a batch could lose rows: convert it first with "
            f"ALTER TABLE {table.schema}.{table.name} ENGINE=InnoDB"
        )
