"""What a live table looks like, read from the database: columns, keys, indexes, and the names that
may reach SQL.

Maintenance jobs work on tables as deployed, which may differ from `schema.py` (legacy types, no
keys). Everything they learn about a table comes from here: `inspect_table` for column types and
unique keys, `reflect_table` for a full SQLAlchemy definition, `leads_an_index` to know whether a
range of a column is a range read. Names that are spliced into SQL (schemas, tables, columns) pass
`check_identifier` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# MySQL and MariaDB refuse longer schema, table and column names.
MAX_IDENTIFIER_LENGTH = 64


class InvalidIdentifier(ValueError):
    """A name that is about to reach SQL is not a plain identifier."""


@dataclass(frozen=True)
class TableShape:
    """The parts of a live table's definition the pipeline's safety checks depend on."""

    name: str
    exists: bool
    column_types: dict[str, str] = field(default_factory=dict)
    unique_keys: tuple[tuple[str, ...], ...] = ()

    def type_family(self, column: str) -> str:
        """DATETIME, INTEGER, TEXT, REAL or OTHER for one column, whatever the dialect calls it."""
        declared = self.column_types.get(column, "").upper()
        if "DATE" in declared or "TIME" in declared:
            return "DATETIME"
        if "INT" in declared:
            return "INTEGER"
        if "CHAR" in declared or "TEXT" in declared:
            return "TEXT"
        if any(name in declared for name in ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC")):
            return "REAL"
        return "OTHER"

    def type_families(self, columns: Iterable[str]) -> dict[str, str]:
        return {column: self.type_family(column) for column in columns}

    def has_unique_key(self, columns: Sequence[str]) -> bool:
        """True when some unique key (or the primary key) is made of exactly these columns."""
        return any(set(key) == set(columns) for key in self.unique_keys)


def check_identifier(name: str, what: str) -> str:
    """A schema, table or column name that may reach SQL: letters, digits and _, at most 64 of them."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise InvalidIdentifier(
            f"{what} {name!r} is not a plain identifier: use letters, digits and _, not starting with a digit"
        )
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifier(
            f"{what} {name[:20]!r}... has {len(name)} characters; MySQL allows {MAX_IDENTIFIER_LENGTH}"
        )
    return name


def reflect_table(connection: sa.Connection, schema: str, table_name: str) -> sa.Table:
    """The live table as the database defines it (columns, keys, indexes), after checking its names.

    `schema` is the real schema name (e.g. `MarketDatabase.schema_name`), not the `market` alias.
    """
    check_identifier(schema, "schema")
    check_identifier(table_name, "table")
    try:
        return sa.Table(table_name, sa.MetaData(), schema=schema, autoload_with=connection)
    except sa.exc.NoSuchTableError:
        raise ValueError(
            f"table {schema}.{table_name} does not exist: check the schema and table name"
        ) from None


def leads_an_index(table: sa.Table, column: str) -> bool:
    """Whether an index or key of the reflected `table` starts with `column`, so that a range of that
    column reads only its own rows rather than the whole table.
    """
    keys = [*table.indexes, *table.constraints]
    indexed = (sa.Index, sa.PrimaryKeyConstraint, sa.UniqueConstraint)
    leading = [next(iter(key.columns), None) for key in keys if isinstance(key, indexed)]
    return any(first is not None and first.name == column for first in leading)


def inspect_table(connection: sa.Connection, schema: str, table_name: str) -> TableShape:
    """Read a table's columns and unique keys (primary key included) from the database."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(table_name, schema=schema):
        return TableShape(name=table_name, exists=False)
    columns = {
        column["name"]: str(column["type"]) for column in inspector.get_columns(table_name, schema=schema)
    }
    keys = [tuple(inspector.get_pk_constraint(table_name, schema=schema).get("constrained_columns") or ())]
    keys += [tuple(c["column_names"]) for c in inspector.get_unique_constraints(table_name, schema=schema)]
    keys += [
        tuple(index["column_names"])
        for index in inspector.get_indexes(table_name, schema=schema)
        if index.get("unique")
    ]
    return TableShape(
        name=table_name,
        exists=True,
        column_types=columns,
        unique_keys=tuple(key for key in dict.fromkeys(keys) if key),
    )
