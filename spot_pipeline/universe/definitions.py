"""The universe domain's definitions: the spot_universe asset, its check, and the job and schedule that
refresh the reference data and the universe."""

import dagster as dg

from spot_pipeline.universe.assets import spot_universe
from spot_pipeline.universe.checks import spot_universe_is_not_empty
from spot_pipeline.universe.schedules import refresh_reference_data_job, refresh_reference_data_schedule

defs = dg.Definitions(
    assets=[spot_universe],
    asset_checks=[spot_universe_is_not_empty],
    jobs=[refresh_reference_data_job],
    schedules=[refresh_reference_data_schedule],
)
