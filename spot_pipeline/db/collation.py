"""Text compared across tables, whatever collation each table has.

A desk's `market` schema mixes collations: the old loader declared `utf8mb4_general_ci`, a DBA or the
server may have chosen another (MySQL 8's default is `utf8mb4_0900_ai_ci`), and the pipeline's own
tables take the schema's default. MySQL and MariaDB refuse to compare two text columns of different
collations ("Illegal mix of collations", error 1267), so every comparison of text from two tables is
built here:

- `same_text(probe, indexed)`: `probe = indexed` under the live collation of `indexed`, the column an
  index serves. The probe side is converted to utf8mb4 and given that collation explicitly; the
  indexed side stays a bare column, so its index still serves the lookup, and the match is exactly
  the one that column's own keys make.
- `same_text_ignoring_case(left, right)`: `LOWER(left) = LOWER(right)` compared byte by byte
  (`utf8mb4_bin`), for matches the pipeline makes case-insensitively on purpose (exchange names), so
  that the answer is the same under every collation and on SQLite.

Comparisons with literals need nothing: a literal takes the column's collation. On SQLite, where the
pipeline creates every table, text compares byte by byte and these are plain comparisons.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from spot_pipeline.db.dialect import is_mysql, live_schema
from spot_pipeline.db.inspection import check_identifier

BINARY_COLLATION = "utf8mb4_bin"


class _AsUtf8mb4(FunctionElement[str]):
    """Text converted to utf8mb4 (MySQL/MariaDB), so that any utf8mb4 collation can be applied to it."""

    type = sa.String()
    inherit_cache = True


@compiles(_AsUtf8mb4)
def _render_as_text(element: _AsUtf8mb4, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_AsUtf8mb4, "mysql")
def _render_as_utf8mb4(element: _AsUtf8mb4, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CONVERT({compiler.process(element.clauses, **kw)} USING utf8mb4)"


def live_collation(connection: sa.Connection, column: sa.Column[Any]) -> str | None:
    """The collation the live table gives `column` (None on SQLite, or for a column without one)."""
    if not is_mysql(connection):
        return None
    collation = connection.execute(
        sa.text(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :table AND COLUMN_NAME = :column"
        ),
        {"schema": live_schema(connection, column.table), "table": column.table.name, "column": column.name},
    ).scalar()
    return check_identifier(collation, "collation") if collation else None


def same_text(
    connection: sa.Connection, probe: sa.ColumnElement[Any], indexed: sa.Column[Any]
) -> sa.ColumnElement[bool]:
    """`probe = indexed`, compared as `indexed`'s own keys compare, through its index."""
    collation = live_collation(connection, indexed)
    if collation is None:
        return probe == indexed
    return sa.collate(_AsUtf8mb4(probe), collation) == indexed


def same_text_ignoring_case(
    connection: sa.Connection, left: sa.ColumnElement[Any], right: sa.ColumnElement[Any]
) -> sa.ColumnElement[bool]:
    """`LOWER(left) = LOWER(right)`, byte by byte after lowering, whatever either side's collation."""
    lowered = [sa.func.lower(side) for side in (left, right)]
    if not is_mysql(connection):
        return lowered[0] == lowered[1]
    left_text, right_text = (sa.collate(_AsUtf8mb4(side), BINARY_COLLATION) for side in lowered)
    return left_text == right_text
