"""Render the column tables of `database_schema.md` from the SQLAlchemy metadata.

`python -m spot_pipeline_dev.schema_doc` prints every table's block; a test checks that each block
appears verbatim in the document, so the document and the code cannot drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

from spot_pipeline.db.schema import metadata
from spot_pipeline.metadata import type_name


def _nullable(column: sa.Column) -> str:
    return "YES" if column.nullable else "NO"


def _default(column: sa.Column) -> str:
    return str(column.server_default.arg.text) if column.server_default is not None else ""  # type: ignore[attr-defined]


def describe_table(table: sa.Table) -> str:
    """The Markdown block documenting one table: columns, then keys."""
    lines = ["| column | type | null | default |", "|---|---|---|---|"]
    lines += [
        f"| {column.name} | {type_name(column.type)} | {_nullable(column)} | {_default(column)} |"
        for column in table.columns
    ]
    lines.append("")
    lines.append(f"- Primary key: {_columns(table.primary_key.columns) or 'none'}")
    for constraint in sorted(
        (c for c in table.constraints if isinstance(c, sa.UniqueConstraint)), key=lambda c: str(c.name)
    ):
        lines.append(f"- Unique key `{constraint.name}`: {_columns(constraint.columns)}")
    return "\n".join(lines)


def _columns(columns: sa.ColumnCollection) -> str:
    return "(" + ", ".join(column.name for column in columns) + ")" if columns else ""


def render() -> str:
    return "\n\n".join(
        f"## market.{table.name}\n\n{describe_table(table)}" for table in metadata.sorted_tables
    )


if __name__ == "__main__":
    print(render())
