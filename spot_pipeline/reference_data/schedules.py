"""Refreshing the reference data and the universe derived from it."""

import dagster as dg

refresh_reference_data_job = dg.define_asset_job(
    "refresh_reference_data_job",
    selection=dg.AssetSelection.groups("reference_data", "universe"),
    description="Refresh exchanges, instruments, assets and volume snapshots from CCData, then recompute "
    "the spot universe.",
)

refresh_reference_data_schedule = dg.ScheduleDefinition(
    name="refresh_reference_data_schedule",
    job=refresh_reference_data_job,
    # Daily, well before the 00:xx UTC candle run, so that run reads a fresh universe.
    cron_schedule="0 22 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
