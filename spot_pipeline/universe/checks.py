"""Checks on the stored spot universe."""

import dagster as dg
import sqlalchemy as sa

from spot_pipeline.db import schema
from spot_pipeline.db.resource import MarketDatabase


@dg.asset_check(asset="spot_universe", blocking=True)
def spot_universe_is_not_empty(market_db: MarketDatabase) -> dg.AssetCheckResult:
    """The universe holds at least one pair: an empty one would make every candle run a silent no-op."""
    with market_db.connect() as connection:
        pairs = connection.execute(sa.select(sa.func.count()).select_from(schema.spot_universe)).scalar_one()
    return dg.AssetCheckResult(passed=pairs > 0, metadata={"pairs": pairs})
