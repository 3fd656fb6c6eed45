"""Small, UI-friendly metadata: Markdown tables and previews of what a step wrote, the column
schema of a table asset, and who owns each asset and job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

PREVIEW_ROWS = 5

# Every asset and job belongs to the desk's market-data team; tags say each one's layer and source.
OWNERS = ["team:market-data"]

TYPE_NAMES: dict[type[sa.types.TypeEngine], str] = {
    sa.BigInteger: "BIGINT",
    sa.Integer: "INT",
    sa.Float: "DOUBLE",
    sa.DateTime: "DATETIME",
    sa.Boolean: "BOOLEAN",
    sa.Text: "TEXT",
    sa.JSON: "JSON",
}


def ownership_tags(layer: str, source: str) -> dict[str, str]:
    """Tags of an asset or job: its team, its layer (reference, derived, raw, maintenance) and the
    source of its data (ccdata, market-db)."""
    return {"team": "market-data", "layer": layer, "source": source}


def type_name(column_type: sa.types.TypeEngine) -> str:
    """The MySQL name of a column's type, as `database_schema.md` documents it."""
    if isinstance(column_type, sa.String) and not isinstance(column_type, sa.Text):
        return f"VARCHAR({column_type.length})"
    for python_type, name in TYPE_NAMES.items():
        if type(column_type) is python_type:
            return name
    raise TypeError(f"no documented name for column type {column_type!r}: add it to TYPE_NAMES")


def column_schema(table: sa.Table) -> dict[str, dg.TableSchema]:
    """The `dagster/column_schema` definition metadata of a table asset: its columns, types,
    nullability and comments, as the UI's Columns tab shows them."""
    columns = [
        dg.TableColumn(
            column.name,
            type_name(column.type),
            description=column.comment,
            constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
        )
        for column in table.columns
    ]
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dg.MetadataValue:
    """A Markdown table of `columns` for the given rows (kept small: metadata is stored per run)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def table_preview(
    connection: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    order_by: Sequence[sa.ColumnElement[Any]],
    limit: int = PREVIEW_ROWS,
) -> dg.MetadataValue:
    query = sa.select(*(table.c[name] for name in columns)).order_by(*order_by).limit(limit)
    rows = [dict(row._mapping) for row in connection.execute(query)]
    return markdown_table(rows, columns)
