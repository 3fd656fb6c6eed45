"""Epoch seconds and UTC DATETIME, in SQL: the conversion both ways, and which values are valid.

The conversion is arithmetic on a fixed origin, never through a time zone (see the package
docstring). Invalid values are counted by category and handled by an `InvalidEpochPolicy`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from spot_pipeline.ccdata.vocabulary import MAX_EPOCH_SECONDS
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS
from spot_pipeline.maintenance.timestamp_migration.layout import EXAMPLE_KEY_COLUMNS, MigrationError

MIN_EPOCH_SECONDS = 1
MIN_EPOCH_MILLISECONDS = 100_000_000_000  # 1973-03-03 in milliseconds; smaller values are ambiguous
MAX_EPOCH_MILLISECONDS = MAX_EPOCH_SECONDS * 1000

InvalidEpochPolicy = Literal["stop", "null", "milliseconds"]
LOSSY_POLICIES: tuple[InvalidEpochPolicy, ...] = ("null", "milliseconds")


class InvalidEpochsFound(MigrationError):
    """Trade timestamps that are not seconds since 1970, which the chosen policy does not handle."""


_UNIX_EPOCH = "TIMESTAMP'1970-01-01 00:00:00'"


class EpochToUtcDatetime(FunctionElement[dt.datetime]):
    """Unix seconds to the UTC DATETIME they denote; NULL stays NULL."""

    type = sa.DateTime()
    inherit_cache = True
    # SQLite: the text form the schema's SQLite DATETIME stores, so values compare equal to the pipeline's.
    sql: ClassVar[dict[str, str]] = {
        "sqlite": "datetime({}, 'unixepoch')",
        "mysql": f"({_UNIX_EPOCH} + INTERVAL ({{}}) SECOND)",
    }


class UtcDatetimeToEpoch(FunctionElement[int]):
    """A UTC DATETIME back to unix seconds (the inverse of `EpochToUtcDatetime`); NULL stays NULL."""

    type = sa.BigInteger()
    inherit_cache = True
    sql: ClassVar[dict[str, str]] = {
        "sqlite": "CAST(strftime('%s', {}) AS INTEGER)",
        "mysql": f"TIMESTAMPDIFF(SECOND, {_UNIX_EPOCH}, {{}})",
    }


@compiles(EpochToUtcDatetime)
@compiles(UtcDatetimeToEpoch)
def _render_conversion(
    element: EpochToUtcDatetime | UtcDatetimeToEpoch, compiler: SQLCompiler, **kw: Any
) -> str:
    """Each conversion in its dialect's form: SQLite's own, or MySQL's for MySQL and MariaDB."""
    template = element.sql["sqlite" if compiler.dialect.name == "sqlite" else "mysql"]
    return template.format(compiler.process(element.clauses, **kw))


def is_epoch_seconds(value: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    return value.between(MIN_EPOCH_SECONDS, MAX_EPOCH_SECONDS)


def _is_epoch_milliseconds(value: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    return value.between(MIN_EPOCH_MILLISECONDS, MAX_EPOCH_MILLISECONDS)


# Each is NULL for a NULL value, which SQL counts as not met.
# "zero" first: the old loader stored 0 where the answer had no trade timestamp (a day without trades).
INVALID_CATEGORIES: dict[str, Callable[[sa.ColumnElement[int]], sa.ColumnElement[bool]]] = {
    "zero": lambda value: value == 0,
    "negative": lambda value: value < 0,
    "milliseconds": _is_epoch_milliseconds,
    "out of range": lambda value: sa.and_(value > MAX_EPOCH_SECONDS, sa.not_(_is_epoch_milliseconds(value))),
}
INVALID_EPOCH_CATEGORIES = tuple(INVALID_CATEGORIES)
# The categories each policy cannot handle: the job stops while any value falls in one.
_UNHANDLED_CATEGORIES: dict[InvalidEpochPolicy, tuple[str, ...]] = {
    "stop": INVALID_EPOCH_CATEGORIES,
    "null": (),
    "milliseconds": ("zero", "negative", "out of range"),
}


def expected_epoch(value: sa.ColumnElement[int], policy: InvalidEpochPolicy) -> sa.ColumnElement[int]:
    """The epoch the migrated value must denote under `policy`; NULL for NULL and for invalid values."""
    whens = [(is_epoch_seconds(value), value)]
    if policy == "milliseconds":
        whens.append((_is_epoch_milliseconds(value), value // 1000))
    return sa.case(*whens, else_=sa.null())


def _unhandled_epoch(value: sa.ColumnElement[int], policy: InvalidEpochPolicy) -> sa.ColumnElement[bool]:
    return sa.or_(sa.false(), *(INVALID_CATEGORIES[name](value) for name in _UNHANDLED_CATEGORIES[policy]))


def count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """How many rows meet `condition`: SUM of the comparison itself (1, 0 or NULL on both dialects),
    which is cheaper than a CASE per row.
    """
    return sa.func.coalesce(sa.func.sum(sa.type_coerce(condition, sa.Integer)), 0)


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


def unhandled_row(original: sa.Table, policy: InvalidEpochPolicy) -> sa.ColumnElement[bool]:
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
        f"{_zeros_explained(survey)}To migrate, {fix}. Examples (datetime exchange symbol_unmapped "
        f"symbol column=value): {survey.describe_examples()}"
    )


def _zeros_explained(survey: EpochSurvey) -> str:
    zeros = sum(counts["zero"] for counts in survey.invalid.values())
    if not zeros:
        return ""
    return (
        f"The {zeros} zeros are what the old loader wrote for a day without trades: invalid_epochs "
        "'null' stores them as NULL, as the pipeline stores such a day. "
    )
