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
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import ReflectedColumn

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# MySQL and MariaDB refuse longer schema, table and column names.
MAX_IDENTIFIER_LENGTH = 64


class InvalidIdentifier(ValueError):
    """A name that is about to reach SQL is not a plain identifier."""


# What a type family accepts besides itself: MariaDB keeps JSON as LONGTEXT.
COMPATIBLE_FAMILIES = {"JSON": {"JSON", "TEXT"}}
UNICODE_CHARSETS = ("utf8mb4", "utf8mb3", "utf8")


def type_family(declared: str) -> str:
    """DATETIME, JSON, INTEGER, TEXT, REAL or OTHER for a type as a dialect names it."""
    declared = declared.upper()
    if "DATE" in declared or "TIME" in declared:
        return "DATETIME"
    if "JSON" in declared:
        return "JSON"
    if "INT" in declared or "BOOL" in declared:
        return "INTEGER"
    if "CHAR" in declared or "TEXT" in declared:
        return "TEXT"
    if any(name in declared for name in ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC")):
        return "REAL"
    return "OTHER"


def declared_family(column_type: sa.types.TypeEngine) -> str:
    """The family of a type of `schema.py` (a Boolean is an integer to MySQL and SQLite alike)."""
    families: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (sa.JSON, "JSON"),
        ((sa.Boolean, sa.Integer), "INTEGER"),
        (sa.String, "TEXT"),
        ((sa.Float, sa.Numeric), "REAL"),
        ((sa.DateTime, sa.Date), "DATETIME"),
    )
    return next((family for kind, family in families if isinstance(column_type, kind)), "OTHER")


@dataclass(frozen=True)
class TableShape:
    """The parts of a live table's definition the pipeline's safety checks depend on."""

    name: str
    exists: bool
    column_types: dict[str, str] = field(default_factory=dict)
    unique_keys: tuple[tuple[str, ...], ...] = ()
    # Text columns only (MySQL/MariaDB; SQLite has neither).
    collations: dict[str, str] = field(default_factory=dict)
    charsets: dict[str, str] = field(default_factory=dict)
    # NOT NULL columns without a default: every INSERT must give them a value.
    required_columns: tuple[str, ...] = ()

    def type_family(self, column: str) -> str:
        """DATETIME, JSON, INTEGER, TEXT, REAL or OTHER for one column, whatever the dialect calls it."""
        return type_family(self.column_types.get(column, ""))

    def type_families(self, columns: Iterable[str]) -> dict[str, str]:
        return {column: self.type_family(column) for column in columns}

    def has_unique_key(self, columns: Sequence[str]) -> bool:
        """True when some unique key (or the primary key) is made of exactly these columns."""
        return any(set(key) == set(columns) for key in self.unique_keys)

    def problems_writing(self, declared: sa.Table, key: Sequence[str]) -> list[TableProblem]:
        """What keeps the pipeline from writing `declared`'s columns into this live table, upserting
        on `key`: the key missing, columns missing or of another type, text columns that cannot hold
        Unicode, or columns the pipeline does not write that refuse a row without them."""
        if not self.exists:
            return []
        problems = []
        if not self.has_unique_key(key):
            problems.append(TableProblem(ProblemKind.KEY, tuple(key)))
        missing = tuple(column.name for column in declared.columns if column.name not in self.column_types)
        if missing:
            problems.append(TableProblem(ProblemKind.COLUMNS, missing))
        mistyped = tuple(
            column.name
            for column in declared.columns
            if column.name in self.column_types
            and self.type_family(column.name)
            not in COMPATIBLE_FAMILIES.get(declared_family(column.type), {declared_family(column.type)})
        )
        if mistyped:
            problems.append(TableProblem(ProblemKind.TYPES, mistyped))
        not_unicode = tuple(
            name for name, charset in self.charsets.items() if not charset.startswith(UNICODE_CHARSETS)
        )
        if not_unicode:
            problems.append(TableProblem(ProblemKind.CHARSET, not_unicode))
        unwritten = tuple(name for name in self.required_columns if name not in declared.columns)
        if unwritten:
            problems.append(TableProblem(ProblemKind.UNWRITTEN_REQUIRED, unwritten))
        return problems


class ProblemKind(StrEnum):
    KEY = "no unique key on"
    COLUMNS = "missing columns"
    TYPES = "columns of another type"
    CHARSET = "text columns without a Unicode character set"
    UNWRITTEN_REQUIRED = "NOT NULL columns without a default that the pipeline does not write"


@dataclass(frozen=True)
class TableProblem:
    """One way a live table differs from what the pipeline writes into it."""

    kind: ProblemKind
    columns: tuple[str, ...]

    def describe(self, shape: TableShape) -> str:
        if self.kind is ProblemKind.TYPES:
            columns = ", ".join(f"{name} ({shape.column_types[name]})" for name in self.columns)
        elif self.kind is ProblemKind.CHARSET:
            columns = ", ".join(f"{name} ({shape.charsets[name]})" for name in self.columns)
        else:
            columns = ", ".join(self.columns)
        return f"{self.kind.value} ({columns})" if self.kind is ProblemKind.KEY else f"{self.kind}: {columns}"


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
    """Read a table's columns, unique keys (primary key included), the character set and collation of
    its text columns, and the columns every row must be given, from the database."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(table_name, schema=schema):
        return TableShape(name=table_name, exists=False)
    columns = inspector.get_columns(table_name, schema=schema)
    keys = [tuple(inspector.get_pk_constraint(table_name, schema=schema).get("constrained_columns") or ())]
    keys += [tuple(c["column_names"]) for c in inspector.get_unique_constraints(table_name, schema=schema)]
    keys += [
        tuple(index["column_names"])
        for index in inspector.get_indexes(table_name, schema=schema)
        if index.get("unique")
    ]
    text_columns = _text_columns(connection, schema, table_name)
    return TableShape(
        name=table_name,
        exists=True,
        column_types={column["name"]: str(column["type"]) for column in columns},
        unique_keys=tuple(key for key in dict.fromkeys(keys) if key),
        collations={name: collation for name, (_, collation) in text_columns.items()},
        charsets={name: charset for name, (charset, _) in text_columns.items()},
        required_columns=tuple(column["name"] for column in columns if _must_be_given(column)),
    )


def _must_be_given(column: ReflectedColumn) -> bool:
    """NOT NULL, no default and not filled by the database itself (AUTO_INCREMENT)."""
    return not column["nullable"] and column["default"] is None and column.get("autoincrement") is not True


def _text_columns(connection: sa.Connection, schema: str, table_name: str) -> dict[str, tuple[str, str]]:
    """(character set, collation) of each text column, as the server defines it (none on SQLite)."""
    if connection.dialect.name == "sqlite":
        return {}
    rows = connection.execute(
        sa.text(
            "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :table AND COLLATION_NAME IS NOT NULL"
        ),
        {"schema": schema, "table": table_name},
    )
    return {name: (charset, collation) for name, charset, collation in rows}
