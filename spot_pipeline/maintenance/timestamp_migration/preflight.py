"""The look before anything changes: the live table's layout, its rows and its invalid epochs."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from spot_pipeline.concurrency import bounded_map
from spot_pipeline.db.engine import max_parallel_connections, read_only_connection
from spot_pipeline.db.inspection import leads_an_index, reflect_table
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, Row
from spot_pipeline.maintenance.timestamp_migration.chunks import Chunk, datetime_ranges
from spot_pipeline.maintenance.timestamp_migration.epochs import (
    INVALID_CATEGORIES,
    EpochSurvey,
    count_where,
    is_epoch_seconds,
)
from spot_pipeline.maintenance.timestamp_migration.layout import (
    CHUNK_COLUMN,
    EXAMPLE_KEY_COLUMNS,
    EXAMPLE_ROWS,
    MIGRATING_TABLE,
    ORIGINAL_TABLE,
    TimestampLayout,
    timestamp_layout,
)

# The survey splits the table into this many ranges per connection, so that uneven ranges still
# keep every connection busy to the end.
SURVEY_RANGES_PER_CONNECTION = 4


@dataclass(frozen=True)
class TableInspection:
    """What the live table looks like, read before anything is touched."""

    layout: TimestampLayout
    rows: int | None  # None for a migrated table: the no-op never reads it
    column_types: dict[str, str]
    primary_key: tuple[str, ...]
    datetime_indexed: bool  # an index or key starts with `datetime`, so a chunk reads only its range
    survey: EpochSurvey | None
    leftover_migrating_table: bool


def inspect_original(engine: sa.Engine, schema_name: str, connections: int = 1) -> TableInspection:
    """Check the live table's layout and, in the legacy layout, count its rows and invalid epochs
    (reading ranges of the table on up to `connections` connections at once). A migrated table is
    only inspected, never read, so the no-op run costs the same on any size of table.
    """
    with read_only_connection(engine) as connection:
        layout = timestamp_layout(connection, schema_name)
        original = reflect_table(connection, schema_name, ORIGINAL_TABLE)
        leftover = sa.inspect(connection).has_table(MIGRATING_TABLE, schema=schema_name)
    survey = survey_epochs(engine, original, connections) if layout is TimestampLayout.BIGINT else None
    return TableInspection(
        layout=layout,
        rows=survey.rows if survey else None,
        column_types={column.name: str(column.type) for column in original.columns},
        primary_key=tuple(column.name for column in original.primary_key.columns),
        datetime_indexed=leads_an_index(original, CHUNK_COLUMN),
        survey=survey,
        leftover_migrating_table=leftover,
    )


def survey_epochs(engine: sa.Engine, original: sa.Table, connections: int = 1) -> EpochSurvey:
    """Count the rows of the (reflected) original and, per trade timestamp column and category, the
    values that are not valid seconds. The first pass reads ranges of the table on up to
    `connections` connections at once.
    """
    with read_only_connection(engine) as connection:
        connections = max_parallel_connections(engine, connections)
        # Without an index on `datetime` every range would read the whole table: one pass instead.
        indexed = leads_an_index(original, CHUNK_COLUMN)
        count = connections * SURVEY_RANGES_PER_CONNECTION if indexed else 1
        ranges = datetime_ranges(connection, original, count)
    connections = min(connections, len(ranges))
    # One test per value first (the usual answer is "all valid"); the categories only when needed.
    any_invalid = sa.or_(
        *(sa.not_(is_epoch_seconds(original.c[column])) for column in TRADE_TIMESTAMP_COLUMNS)
    )

    def count_range(chunk: Chunk) -> sa.Row[tuple[int, int]]:
        with read_only_connection(engine) as connection:
            query = sa.select(sa.func.count(), count_where(any_invalid)).where(chunk.where(original))
            return connection.execute(query).one()

    counts = list(bounded_map(count_range, ranges, connections))
    rows = sum(int(range_rows) for range_rows, _ in counts)
    if not any(invalid_rows for _, invalid_rows in counts):
        return EpochSurvey(
            rows=rows,
            invalid={column: dict.fromkeys(INVALID_CATEGORIES, 0) for column in TRADE_TIMESTAMP_COLUMNS},
        )
    with read_only_connection(engine) as connection:
        return _survey_categories(connection, original)


def _survey_categories(connection: sa.Connection, original: sa.Table) -> EpochSurvey:
    """The invalid values counted per column and category, with examples: one more pass, made only
    when the first found some.
    """
    measures = [sa.func.count().label("rows")]
    for column in TRADE_TIMESTAMP_COLUMNS:
        for category, condition in INVALID_CATEGORIES.items():
            measures.append(count_where(condition(original.c[column])).label(f"{column}|{category}"))
    counts = connection.execute(sa.select(*measures)).one()._mapping
    invalid = {
        column: {category: int(counts[f"{column}|{category}"]) for category in INVALID_CATEGORIES}
        for column in TRADE_TIMESTAMP_COLUMNS
    }
    survey = EpochSurvey(rows=int(counts["rows"]), invalid=invalid)
    if survey.invalid_total == 0:
        return survey
    return EpochSurvey(rows=survey.rows, invalid=invalid, examples=_invalid_examples(connection, original))


def _invalid_examples(connection: sa.Connection, original: sa.Table) -> list[Row]:
    keys = [original.c[name] for name in EXAMPLE_KEY_COLUMNS]
    per_column = [
        sa.select(*keys, sa.literal(column).label("column"), original.c[column].label("value")).where(
            sa.not_(is_epoch_seconds(original.c[column]))
        )
        for column in TRADE_TIMESTAMP_COLUMNS
    ]
    query = sa.union_all(*per_column).limit(EXAMPLE_ROWS)
    return [dict(row._mapping) for row in connection.execute(query)]
