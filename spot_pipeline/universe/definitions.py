"""The universe domain's definitions: the spot_universe asset and its check."""

import dagster as dg

from spot_pipeline.universe.assets import spot_universe
from spot_pipeline.universe.checks import spot_universe_is_not_empty

defs = dg.Definitions(assets=[spot_universe], asset_checks=[spot_universe_is_not_empty])
