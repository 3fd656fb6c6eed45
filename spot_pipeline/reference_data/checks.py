"""Checks that guard the reference tables the universe is computed from."""

import datetime as dt

import dagster as dg

from spot_pipeline.ccdata.vocabulary import GRADE_SCALE
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.reference_data import queries
from spot_pipeline.timeutils import utc_now

MAX_SNAPSHOT_AGE = dt.timedelta(days=2)


@dg.asset_check(asset="cc_exchanges_general", blocking=True)
def exchanges_have_grades(market_db: MarketDatabase) -> dg.AssetCheckResult:
    """At least one exchange carries a known grade; without grades the universe would be empty."""
    with market_db.connect() as connection:
        per_grade = queries.exchanges_per_grade(connection)
    return dg.AssetCheckResult(
        passed=bool(per_grade),
        metadata={f"grade_{grade}": per_grade.get(grade, 0) for grade in GRADE_SCALE},
    )


@dg.asset_check(asset="cc_asset_market_data", blocking=True)
def asset_volume_snapshot_is_recent(market_db: MarketDatabase) -> dg.AssetCheckResult:
    """The newest volume snapshot is at most two days old, so the top-asset ranking is current."""
    with market_db.connect() as connection:
        latest = queries.latest_snapshot_time(connection)
    age = None if latest is None else utc_now() - latest
    return dg.AssetCheckResult(
        passed=age is not None and age <= MAX_SNAPSHOT_AGE,
        metadata={
            "latest_snapshot_ts": str(latest),
            "age_hours": None if age is None else round(age.total_seconds() / 3600, 1),
        },
    )
