"""The steps of `migrate_ohlcv_timestamps_job`: inspect, create the migrating table, copy, verify and
swap, clean up. They order the steps, hold the write lock and report; the SQL is in the sibling modules."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import dagster as dg
from pydantic import Field, model_validator

from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw
from spot_pipeline.maintenance.timestamp_migration import chunks, copying, epochs, layout, preflight, swap
from spot_pipeline.metadata import markdown_table
from spot_pipeline.timeutils import utc_now


class MigrationConfig(dg.Config):
    """How the migration runs; set on inspect_ohlcv_table, which hands it to the other steps."""

    chunk_rows: int | None = Field(
        default=None,
        ge=1,
        description="Rows per copy transaction (whole days, so a chunk can be larger). Default: "
        f"{chunks.DEFAULT_CHUNK_ROWS:,} when an index or key starts with `datetime`; without one, "
        "every chunk reads the whole table, so the default is one chunk.",
    )
    parallel_chunks: int = Field(
        default=4,
        ge=1,
        le=8,
        description="Chunks surveyed, copied and verified at the same time, each on its own pooled "
        "connection (MySQL/MariaDB, at most 8; SQLite has one writer, so 1 there). The database "
        "server's cores and disk bound the gain; 1 leaves most of the server to other work.",
    )
    keep_backup: bool = Field(
        default=True,
        description="Keep the original table as cc_ohlcv_spot_1d_raw_bigint_backup_YYYYMMDD (UTC date). "
        "False drops it after the verified swap.",
    )
    dry_run: bool = Field(
        default=False, description="Only inspect and report what would happen: nothing is created or renamed."
    )
    invalid_epochs: epochs.InvalidEpochPolicy = Field(
        default="stop",
        description="Trade timestamps that are not seconds since 1970 (zero, negative, milliseconds, "
        "out of range): 'stop' reports them and stops before the swap; 'null' stores NULL; "
        "'milliseconds' divides millisecond values by 1000 and stops on any other.",
    )

    @model_validator(mode="after")
    def _lossy_policy_keeps_backup(self) -> Self:
        if self.invalid_epochs in epochs.LOSSY_POLICIES and not self.keep_backup:
            raise ValueError(
                f"invalid_epochs={self.invalid_epochs!r} replaces values, and the backup is their only "
                "copy: keep keep_backup true"
            )
        return self


@dataclass(frozen=True)
class MigrationPlan:
    """The settings the migration runs with, handed from step to step."""

    chunk_rows: int | None
    parallel_chunks: int
    keep_backup: bool
    invalid_epochs: epochs.InvalidEpochPolicy
    rows_at_inspection: int


@dg.op(
    out={
        "plan": dg.Out(
            MigrationPlan, is_required=False, description="Emitted when the table is to be migrated."
        ),
        "no_changes": dg.Out(
            dg.Nothing,
            is_required=False,
            description="Emitted instead when the table is already DATETIME or the run is a dry run.",
        ),
    }
)
def inspect_ohlcv_table(
    context: dg.OpExecutionContext, config: MigrationConfig, market_db: MarketDatabase
) -> Iterator[dg.Output]:
    """Report the column types, row count and invalid trade timestamps of market.cc_ohlcv_spot_1d_raw.

    Already DATETIME: succeeds and skips the rest (a no-op). Any shape other than the legacy BIGINT
    one, or invalid epochs the `invalid_epochs` policy does not handle: fails before touching anything.
    A dry run reports what the migration would do and stops here.
    """
    inspection = preflight.inspect_original(market_db.engine, market_db.schema_name, config.parallel_chunks)
    with market_db.connect() as connection:
        backup_name = swap.backup_table_name(connection, market_db.schema_name, utc_now().date())
    metadata = _inspection_metadata(inspection)
    if inspection.survey is None:
        context.log.info("The trade timestamps are already DATETIME: nothing to migrate.")
        yield dg.Output(None, "no_changes", metadata=metadata)
        return
    blocking = inspection.survey.blocking(config.invalid_epochs)
    outcome = (
        epochs.invalid_epochs_message(inspection.survey, config.invalid_epochs)
        if blocking
        else _migration_summary(config, inspection, backup_name)
    )
    if config.dry_run:
        context.log.info(f"Dry run: {outcome}")
        yield dg.Output(None, "no_changes", metadata={**metadata, "dry_run_outcome": outcome})
        return
    if blocking:
        raise dg.Failure(description=outcome, metadata=metadata)
    survey = inspection.survey
    plan = MigrationPlan(
        config.chunk_rows, config.parallel_chunks, config.keep_backup, config.invalid_epochs, survey.rows
    )
    yield dg.Output(plan, "plan", metadata=metadata)


@dg.op(pool=OHLCV_WRITE_POOL)
def create_migrating_table(
    context: dg.OpExecutionContext, plan: MigrationPlan, market_db: MarketDatabase
) -> MigrationPlan:
    """Create market.cc_ohlcv_spot_1d_raw_migrating from the live table's definition (same columns,
    order, defaults, collation, keys and indexes) with DATETIME trade timestamps. A leftover from a
    failed run is dropped and rebuilt, never reused; the write lock keeps this from dropping a table
    another migration run is copying into.
    """
    with market_db.write_lock(cc_ohlcv_spot_1d_raw), market_db.begin() as connection:
        leftover = layout.create_migrating_table(connection, market_db.schema_name)
    if leftover:
        context.log.warning(f"Dropped {layout.MIGRATING_TABLE} left by a failed run; rebuilt it empty.")
    context.add_output_metadata({"table": layout.MIGRATING_TABLE, "rebuilt_leftover": leftover})
    return plan


@dg.op(pool=OHLCV_WRITE_POOL)
def copy_verify_and_swap(
    context: dg.OpExecutionContext, plan: MigrationPlan, market_db: MarketDatabase
) -> str:
    """Under one hold of the table's write lock: copy every row into the migrating table in
    datetime-ordered chunks, converting the trade timestamps in the database (UTC, whatever the server
    or session zone); verify each chunk against the original (row counts, every converted value mapped
    back to its epoch, every other column); then swap atomically, keeping the original as the dated
    backup table. Any failure leaves the original untouched. Returns the backup table's name.
    """

    def report_progress(done: int, total: int, rows: int) -> None:
        context.log.info(f"Copied and verified chunk {done}/{total}: {rows:,} rows so far.")

    schema_name = market_db.schema_name
    with market_db.write_lock(cc_ohlcv_spot_1d_raw):
        report = copying.copy_and_verify(
            market_db.engine,
            schema_name,
            plan.invalid_epochs,
            plan.chunk_rows,
            plan.rows_at_inspection,
            plan.parallel_chunks,
            on_chunk=report_progress,
        )
        with market_db.begin() as connection:
            backup_name = swap.backup_table_name(connection, schema_name, utc_now().date())
            swap.swap_tables(connection, schema_name, backup_name)
    context.log.info(f"Swapped: the original is now {schema_name}.{backup_name}.")
    context.add_output_metadata(
        {
            "dagster/row_count": report.rows,
            "chunks": report.chunks,
            "parallel_chunks": report.parallel_chunks,
            "copy_and_verify_seconds": round(report.seconds, 3),
            "rows_per_second": round(report.rows_per_second),
            "verification": report.verification_method,
            "backup_table": backup_name,
        }
    )
    return backup_name


@dg.op(pool=OHLCV_WRITE_POOL)
def clean_up_migration(
    context: dg.OpExecutionContext, plan: MigrationPlan, backup_table: str, market_db: MarketDatabase
) -> None:
    """Keep the backup table (the default) or, with keep_backup false, drop it now that the migrated
    table is verified and in place.
    """
    if plan.keep_backup:
        context.log.info(f"Kept the original as {market_db.schema_name}.{backup_table}.")
    else:
        with market_db.begin() as connection:
            swap.drop_backup(connection, market_db.schema_name, backup_table)
        context.log.info(f"Dropped the backup {market_db.schema_name}.{backup_table} (keep_backup is false).")
    context.add_output_metadata({"backup_table": backup_table, "backup_kept": plan.keep_backup})


def _inspection_metadata(inspection: preflight.TableInspection) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "trade_timestamps": inspection.layout.value,
        "column_types": markdown_table(
            [{"column": name, "type": kind} for name, kind in inspection.column_types.items()],
            ["column", "type"],
        ),
        "primary_key": ", ".join(inspection.primary_key) or "none",
        "leftover_migrating_table": inspection.leftover_migrating_table,
    }
    if inspection.survey is not None:
        survey = inspection.survey
        metadata["dagster/row_count"] = survey.rows
        metadata["invalid_epochs"] = markdown_table(
            [{"column": column, **survey.invalid[column]} for column in TRADE_TIMESTAMP_COLUMNS],
            ["column", *epochs.INVALID_EPOCH_CATEGORIES],
        )
        metadata["invalid_epoch_examples"] = markdown_table(
            survey.examples, [*layout.EXAMPLE_KEY_COLUMNS, "column", "value"]
        )
    return metadata


def _migration_summary(
    config: MigrationConfig, inspection: preflight.TableInspection, backup_name: str
) -> str:
    rows = inspection.rows or 0
    count = chunks.chunk_count(rows, config.chunk_rows, inspection.datetime_indexed)
    parallel = min(config.parallel_chunks, count)
    backup = f"keep the original as {backup_name}" if config.keep_backup else "drop the original after it"
    invalid = inspection.survey.invalid_total if inspection.survey else 0
    handled = f", {invalid:,} invalid trade timestamps handled" if invalid else ""
    return (
        f"would copy and convert {rows:,} rows into {layout.MIGRATING_TABLE} "
        f"in about {count} chunk(s) ({parallel} at a time on MySQL/MariaDB, "
        f"invalid_epochs={config.invalid_epochs!r}{handled}), verify, swap atomically and {backup}"
    )
