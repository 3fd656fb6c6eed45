"""Small, UI-friendly metadata: Markdown tables and previews of what a step wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

PREVIEW_ROWS = 5


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
