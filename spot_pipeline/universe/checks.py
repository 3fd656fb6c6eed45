"""Checks on the stored spot universe."""

import dagster as dg

from spot_pipeline.db import schema
from spot_pipeline.db.dialect import row_count
from spot_pipeline.db.resource import MarketDatabase


@dg.asset_check(asset="spot_universe", blocking=True)
def spot_universe_is_not_empty(market_db: MarketDatabase) -> dg.AssetCheckResult:
    """The universe holds at least one pair: an empty one would make every candle run a silent no-op."""
    with market_db.connect() as connection:
        pairs = row_count(connection, schema.spot_universe)
    return dg.AssetCheckResult(passed=pairs > 0, metadata={"pairs": pairs})
