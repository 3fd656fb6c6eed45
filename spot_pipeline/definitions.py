"""The spot-pipeline code location: every asset, check, job, schedule and resource, in one place."""

import dagster as dg

from spot_pipeline.maintenance import deduplication, migration
from spot_pipeline.ohlcv import assets as ohlcv_assets
from spot_pipeline.ohlcv import schedules as ohlcv_schedules
from spot_pipeline.reference_data import assets as reference_assets
from spot_pipeline.reference_data import checks as reference_checks
from spot_pipeline.reference_data import schedules as reference_schedules
from spot_pipeline.settings import build_resources
from spot_pipeline.universe import assets as universe_assets
from spot_pipeline.universe import checks as universe_checks


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            reference_assets.cc_exchanges_general,
            reference_assets.cc_instruments_spot,
            reference_assets.asset_top_list,
            universe_assets.spot_universe,
            ohlcv_assets.cc_ohlcv_spot_1d_raw,
        ],
        asset_checks=[
            reference_checks.exchanges_have_grades,
            reference_checks.asset_volume_snapshot_is_recent,
            universe_checks.spot_universe_is_not_empty,
            *ohlcv_schedules.ohlcv_freshness_checks,
        ],
        jobs=[
            reference_schedules.refresh_reference_data_job,
            ohlcv_schedules.ohlcv_daily_job,
            *migration.migration_jobs,
            *deduplication.deduplication_jobs,
        ],
        schedules=[
            reference_schedules.refresh_reference_data_schedule,
            ohlcv_schedules.ohlcv_daily_schedule,
            *migration.migration_schedules,
            *deduplication.deduplication_schedules,
        ],
        sensors=[ohlcv_schedules.ohlcv_freshness_sensor],
        resources=build_resources(),
    )
