"""Refreshing the reference data and the universe derived from it."""

import dagster as dg

from spot_pipeline.metadata import OWNERS, ownership_tags

refresh_reference_data_job = dg.define_asset_job(
    "refresh_reference_data_job",
    selection=dg.AssetSelection.groups("reference_data", "universe"),
    description="Refresh exchanges, instruments, assets and volume snapshots from CCData, then recompute "
    "the spot universe.",
    owners=OWNERS,
    tags=ownership_tags("reference", "ccdata"),
)

refresh_reference_data_schedule = dg.ScheduleDefinition(
    name="refresh_reference_data_schedule",
    job=refresh_reference_data_job,
    description="Daily at 22:00 UTC: refresh the reference data and the universe before the candle run.",
    # Daily, well before the 00:xx UTC candle run, so that run reads a fresh universe.
    cron_schedule="0 22 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
