"""The reference data domain's definitions: exchanges, instruments, assets and volumes, their checks,
and the daily refresh job and schedule."""

import dagster as dg

from spot_pipeline.reference_data.assets import asset_top_list, cc_exchanges_general, cc_instruments_spot
from spot_pipeline.reference_data.checks import asset_volume_snapshot_is_recent, exchanges_have_grades
from spot_pipeline.reference_data.schedules import refresh_reference_data_job, refresh_reference_data_schedule

defs = dg.Definitions(
    assets=[cc_exchanges_general, cc_instruments_spot, asset_top_list],
    asset_checks=[exchanges_have_grades, asset_volume_snapshot_is_recent],
    jobs=[refresh_reference_data_job],
    schedules=[refresh_reference_data_schedule],
)
