"""`migrate_ohlcv_timestamps_job` and its schedule (stopped by default: a one-off, started by hand)."""

import dagster as dg

from spot_pipeline.maintenance.timestamp_migration.ops import (
    clean_up_migration,
    copy_verify_and_swap,
    create_migrating_table,
    inspect_ohlcv_table,
)
from spot_pipeline.metadata import OWNERS, ownership_tags


@dg.job(
    owners=OWNERS,
    tags=ownership_tags("maintenance", "market-db"),
    description="Convert the four trade timestamps of market.cc_ohlcv_spot_1d_raw from BIGINT unix "
    "seconds to DATETIME (UTC) through a verified copy and an atomic rename, keeping the original as a "
    "dated backup. Safe to re-run; a no-op once migrated. Config on inspect_ohlcv_table.",
)
def migrate_ohlcv_timestamps_job() -> None:
    plan, _no_changes = inspect_ohlcv_table()
    created = create_migrating_table(plan)
    clean_up_migration(created, copy_verify_and_swap(created))


migrate_ohlcv_timestamps_schedule = dg.ScheduleDefinition(
    name="migrate_ohlcv_timestamps_schedule",
    job=migrate_ohlcv_timestamps_job,
    description="Stopped by default: start it to migrate the trade timestamps at 03:30 UTC; once the "
    "table is migrated, every run is a no-op.",
    # Off by default: a migration should not start by itself. When turned on it runs in a quiet hour,
    # after the 00:xx UTC candle run; once the table is migrated every run is a no-op.
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
