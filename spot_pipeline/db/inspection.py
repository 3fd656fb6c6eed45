"""What an existing table looks like: column types and unique keys, read from the live database."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw

NATURAL_KEY = ("datetime", "exchange", "symbol_unmapped")
MAPPED_KEY = ("datetime", "exchange", "symbol")


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

    def has_unique_key(self, columns: tuple[str, ...]) -> bool:
        """True when some unique key (or the primary key) is made of exactly these columns."""
        return any(set(key) == set(columns) for key in self.unique_keys)

    @property
    def trade_timestamp_families(self) -> dict[str, str]:
        return {column: self.type_family(column) for column in TRADE_TIMESTAMP_COLUMNS}


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


def inspect_ohlcv_table(connection: sa.Connection, schema: str) -> TableShape:
    return inspect_table(connection, schema, cc_ohlcv_spot_1d_raw.name)
