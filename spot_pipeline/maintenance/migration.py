"""`migrate_ohlcv_timestamps_job`: the trade timestamps of `cc_ohlcv_spot_1d_raw` from BIGINT to DATETIME.

Steps: inspect -> create the migrating table -> copy, verify and swap -> clean up. The SQL lives in
`spot_pipeline.db.migration`; these ops only order the steps, hold the lock and report.

Keeping writers apart. Ingestion, deduplication and this job write the table only while holding its
write lock (`MarketDatabase.write_lock`: a MySQL named lock, or an OS file lock beside the SQLite
file; the server or the OS releases it if the holder dies, so a crash leaves no stale lock). Their
writing steps also share the Dagster pool `ohlcv_table_writes`, so the daemon does not schedule them
side by side.

Why copy, verify and swap are one step. A verification only holds while no one writes the original,
and Dagster may run each step in its own process, so no lock can span two steps. The copy, the
verification and the rename therefore run in one step under one hold of the lock: what is swapped is
exactly what was verified, and a concurrent writer is blocked until the swap is done, after which
its rows go into the migrated table. Rows written before that step are in the original when it is
copied. Verifying each chunk right after copying it also finds its rows still in the database's cache.

Re-running converges: until the rename the original is untouched and queryable, a migrating table
left by a failed run is dropped and rebuilt, and a migrated table makes the job a no-op.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import dagster as dg
from pydantic import Field, model_validator

from spot_pipeline.db import migration as db_migration
from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw
from spot_pipeline.metadata import markdown_table
from spot_pipeline.timeutils import utc_now


class MigrationConfig(dg.Config):
    """How the migration runs; set on inspect_ohlcv_table, which hands it to the other steps."""

    chunk_rows: int | None = Field(
        default=None,
        ge=1,
        description="Rows per copy transaction (whole days, so a chunk can be larger). Default: "
        f"{db_migration.DEFAULT_CHUNK_ROWS:,} when an index or key starts with `datetime`; without one, "
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
    invalid_epochs: db_migration.InvalidEpochPolicy = Field(
        default="stop",
        description="Trade timestamps that are not seconds since 1970 (zero, negative, milliseconds, "
        "out of range): 'stop' reports them and stops before the swap; 'null' stores NULL; "
        "'milliseconds' divides millisecond values by 1000 and stops on any other.",
    )

    @model_validator(mode="after")
    def _lossy_policy_keeps_backup(self) -> Self:
        if self.invalid_epochs in db_migration.LOSSY_POLICIES and not self.keep_backup:
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
    invalid_epochs: db_migration.InvalidEpochPolicy
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
    inspection = db_migration.inspect_original(
        market_db.engine, market_db.schema_name, config.parallel_chunks
    )
    with market_db.connect() as connection:
        backup_name = db_migration.backup_table_name(connection, market_db.schema_name, utc_now().date())
    metadata = _inspection_metadata(inspection)
    if inspection.survey is None:
        context.log.info("The trade timestamps are already DATETIME: nothing to migrate.")
        yield dg.Output(None, "no_changes", metadata=metadata)
        return
    blocking = inspection.survey.blocking(config.invalid_epochs)
    outcome = (
        db_migration.invalid_epochs_message(inspection.survey, config.invalid_epochs)
        if blocking
        else _migration_summary(config, inspection, backup_name)
    )
    if config.dry_run:
        context.log.info(f"Dry run: {outcome}")
        yield dg.Output(None, "no_changes", metadata={**metadata, "dry_run_outcome": outcome})
        return
    if blocking:
        raise dg.Failure(description=outcome, metadata=metadata)
    plan = MigrationPlan(
        config.chunk_rows, config.parallel_chunks, config.keep_backup, config.invalid_epochs, inspection.rows
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
        leftover = db_migration.create_migrating_table(connection, market_db.schema_name)
    if leftover:
        context.log.warning(f"Dropped {db_migration.MIGRATING_TABLE} left by a failed run; rebuilt it empty.")
    context.add_output_metadata({"table": db_migration.MIGRATING_TABLE, "rebuilt_leftover": leftover})
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
        report = db_migration.copy_and_verify(
            market_db.engine,
            schema_name,
            plan.invalid_epochs,
            plan.chunk_rows,
            plan.rows_at_inspection,
            plan.parallel_chunks,
            on_chunk=report_progress,
        )
        with market_db.begin() as connection:
            backup_name = db_migration.backup_table_name(connection, schema_name, utc_now().date())
            db_migration.swap_tables(connection, schema_name, backup_name)
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
            db_migration.drop_backup(connection, market_db.schema_name, backup_table)
        context.log.info(f"Dropped the backup {market_db.schema_name}.{backup_table} (keep_backup is false).")
    context.add_output_metadata({"backup_table": backup_table, "backup_kept": plan.keep_backup})


@dg.job(
    description="Convert the four trade timestamps of market.cc_ohlcv_spot_1d_raw from BIGINT unix "
    "seconds to DATETIME (UTC) through a verified copy and an atomic rename, keeping the original as a "
    "dated backup. Safe to re-run; a no-op once migrated. Config on inspect_ohlcv_table."
)
def migrate_ohlcv_timestamps_job() -> None:
    plan, _no_changes = inspect_ohlcv_table()
    created = create_migrating_table(plan)
    clean_up_migration(created, copy_verify_and_swap(created))


migrate_ohlcv_timestamps_schedule = dg.ScheduleDefinition(
    name="migrate_ohlcv_timestamps_schedule",
    job=migrate_ohlcv_timestamps_job,
    # Off by default: a migration should not start by itself. When turned on it runs in a quiet hour,
    # after the 00:xx UTC candle run; once the table is migrated every run is a no-op.
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

migration_jobs = [migrate_ohlcv_timestamps_job]
migration_schedules = [migrate_ohlcv_timestamps_schedule]


def _inspection_metadata(inspection: db_migration.TableInspection) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": inspection.rows,
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
        metadata["invalid_epochs"] = markdown_table(
            [{"column": column, **survey.invalid[column]} for column in TRADE_TIMESTAMP_COLUMNS],
            ["column", *db_migration.INVALID_EPOCH_CATEGORIES],
        )
        metadata["invalid_epoch_examples"] = markdown_table(
            survey.examples, [*db_migration.EXAMPLE_KEY_COLUMNS, "column", "value"]
        )
    return metadata


def _migration_summary(
    config: MigrationConfig, inspection: db_migration.TableInspection, backup_name: str
) -> str:
    rows = inspection.rows
    chunks = db_migration.chunk_count(rows, config.chunk_rows, inspection.datetime_indexed)
    parallel = min(config.parallel_chunks, chunks)
    backup = f"keep the original as {backup_name}" if config.keep_backup else "drop the original after it"
    return (
        f"would copy and convert {rows:,} rows into {db_migration.MIGRATING_TABLE} "
        f"in about {chunks} chunk(s) ({parallel} at a time on MySQL/MariaDB, "
        f"invalid_epochs={config.invalid_epochs!r}), verify, swap atomically and {backup}"
    )
