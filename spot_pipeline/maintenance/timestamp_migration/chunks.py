"""How the table is split for the survey and the copy: consecutive ranges of `datetime`.

A legacy table may have no key at all, but every copy of it has `datetime`; ranges of it are range
reads when an index starts with that column, and full reads otherwise (then one chunk is best).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import sqlalchemy as sa

from spot_pipeline.maintenance.timestamp_migration.layout import CHUNK_COLUMN

DEFAULT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Chunk:
    """The rows with start <= datetime < end; a missing bound is open, and the first chunk takes NULLs."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def where(self, table: sa.Table) -> sa.ColumnElement[bool]:
        column = table.c[CHUNK_COLUMN]
        lower = sa.true() if self.start is None else column >= self.start
        upper = sa.true() if self.end is None else column < self.end
        within = sa.and_(lower, upper)
        return sa.or_(within, column.is_(None)) if self.start is None else within


def chunk_count(rows: int, chunk_rows: int | None, datetime_indexed: bool) -> int:
    """How many chunks the copy of `rows` rows takes. `chunk_rows` None picks: DEFAULT_CHUNK_ROWS
    when an index starts with `datetime`; otherwise one chunk, since every chunk would read the whole
    table (many chunks would make the copy quadratic in the table's size).
    """
    if chunk_rows is None:
        if not datetime_indexed:
            return 1
        chunk_rows = DEFAULT_CHUNK_ROWS
    return max(1, math.ceil(rows / chunk_rows))


def datetime_ranges(connection: sa.Connection, table: sa.Table, count: int) -> list[Chunk]:
    """`count` consecutive ranges of `datetime` (fewer when the table spans fewer seconds), together
    covering every row of `table`.

    The table may have no unique key, so chunks are ranges of `datetime`, spread evenly between its
    first and last value (with the usual key these two come from the index, not a scan). The ranges
    are open at both ends, so together they always cover every row.
    """
    column = table.c[CHUNK_COLUMN]
    first, last = connection.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    if first is None or count < 2:
        return [Chunk()]
    step = (last - first) / count
    boundaries = sorted({(first + step * index).replace(microsecond=0) for index in range(1, count)})
    return [Chunk(start, end) for start, end in zip([None, *boundaries], [*boundaries, None], strict=True)]
