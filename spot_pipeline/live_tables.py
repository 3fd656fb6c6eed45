"""The market tables as a run finds them: what each table it writes must offer, checked live before
the run's first request, and the job that fixes each problem.

A desk's database was filled for years by an older loader: its tables can lack the keys the
pipeline's upserts rely on (a table rebuilt by `CREATE TABLE ... AS SELECT` loses them, and an upsert
without a key silently becomes a plain INSERT), keep legacy column types, or hold text in a character
set that cannot store every symbol. A run therefore inspects every table it is about to write and
stops, before any API request or write, naming the table, what is missing and the job (or statement)
that fixes it. The same findings feed the adoption preflight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.db.inspection import ProblemKind, TableProblem, TableShape, inspect_table
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw

# The maintenance jobs that make a legacy table writable, named in the errors that send users to
# them (a test checks that jobs of these names exist).
MIGRATION_JOB = "migrate_ohlcv_timestamps_job"
DEDUPLICATION_JOB = "deduplicate_ohlcv_job"
KEY_REPAIR_JOB = "repair_table_keys_job"


class TableNotWritable(RuntimeError):
    """A live table the run is about to write lacks what the pipeline's writes rely on."""


def upsert_key(table: sa.Table) -> tuple[str, ...]:
    """The key the pipeline's upserts into `table` rely on: its declared unique key, else its
    primary key (the candle table's is the natural key, on the exchange's own instrument id)."""
    unique = [constraint for constraint in table.constraints if isinstance(constraint, sa.UniqueConstraint)]
    columns = unique[0].columns if unique else table.primary_key.columns
    return tuple(column.name for column in columns)


@dataclass(frozen=True)
class LiveTableProblem:
    """One way a live table keeps the pipeline from writing it: what was found, and the fix."""

    kind: ProblemKind
    table: str  # schema.table
    found: str
    fix: str

    @property
    def text(self) -> str:
        return f"{self.table} {self.found}: {self.fix}"


def table_problems(connection: sa.Connection, schema_name: str, table: sa.Table) -> list[LiveTableProblem]:
    """Each way the live `table` keeps the pipeline from writing it, with the step that fixes it, in
    the order to take them (empty when the table can be written, or does not exist yet)."""
    shape = inspect_table(connection, schema_name, table.name)
    problems = sorted(shape.problems_writing(table, upsert_key(table)), key=_fixed_first)
    qualified = f"{schema_name}.{table.name}"
    return [
        LiveTableProblem(problem.kind, qualified, *_explain(shape, table, qualified, problem))
        for problem in problems
    ]


def require_writable(connection: sa.Connection, schema_name: str, tables: Sequence[sa.Table]) -> None:
    """Stop before writing when any of `tables` would take wrong values, duplicates or no row at all."""
    problems = [problem for table in tables for problem in table_problems(connection, schema_name, table)]
    if problems:
        raise TableNotWritable("; ".join(problem.text for problem in problems))


def stop_unless_writable(market_db: MarketDatabase, tables: Sequence[sa.Table]) -> None:
    """For a step, before its first request: a failure naming every problem of the live `tables`."""
    with market_db.connect() as connection:
        try:
            require_writable(connection, market_db.schema_name, tables)
        except TableNotWritable as error:
            raise dg.Failure(description=str(error)) from None


# The migration changes the candle table's types, and the dedupe then adds its key: in that order.
_ORDER = (ProblemKind.TYPES, ProblemKind.COLUMNS, ProblemKind.KEY, ProblemKind.CHARSET)


def _fixed_first(problem: TableProblem) -> int:
    return _ORDER.index(problem.kind) if problem.kind in _ORDER else len(_ORDER)


def _explain(shape: TableShape, table: sa.Table, qualified: str, problem: TableProblem) -> tuple[str, str]:
    """What was found, and the fix."""
    found = f"has {problem.describe(shape)}"
    if problem.kind is ProblemKind.KEY and table is cc_ohlcv_spot_1d_raw:
        return (
            f"{found}, so upserts would append duplicate candles",
            f"run {DEDUPLICATION_JOB} with add_unique_key: true to clean the table and add the key",
        )
    if problem.kind is ProblemKind.KEY:
        return (
            f"{found}, so upserts would append rows instead of updating them",
            f"run {KEY_REPAIR_JOB} (dry_run: true first), which keeps the latest updated_at of each key "
            "and adds the key",
        )
    if problem.kind is ProblemKind.TYPES and _legacy_trade_timestamps(shape, problem):
        return (
            f"still stores {', '.join(problem.columns)} as INTEGER (legacy unix seconds)",
            f"run {MIGRATION_JOB} to convert them to DATETIME before ingesting",
        )
    if problem.kind is ProblemKind.CHARSET:
        return found, f"convert it with ALTER TABLE {qualified} CONVERT TO CHARACTER SET utf8mb4"
    if problem.kind is ProblemKind.UNWRITTEN_REQUIRED:
        return found, "give them a default or allow NULL"
    return found, "bring it to the definition in database_schema.md by hand"


def _legacy_trade_timestamps(shape: TableShape, problem: TableProblem) -> bool:
    columns = set(problem.columns)
    return columns <= set(TRADE_TIMESTAMP_COLUMNS) and set(shape.type_families(columns).values()) == {
        "INTEGER"
    }
