"""The reference data domain's definitions: exchanges, instruments, assets and volumes, and their checks
(the job that refreshes them, with the universe, is the universe domain's)."""

import dagster as dg

from spot_pipeline.reference_data.assets import asset_top_list, cc_exchanges_general, cc_instruments_spot
from spot_pipeline.reference_data.checks import asset_volume_snapshot_is_recent, exchanges_have_grades

defs = dg.Definitions(
    assets=[cc_exchanges_general, cc_instruments_spot, asset_top_list],
    asset_checks=[exchanges_have_grades, asset_volume_snapshot_is_recent],
)
