"""The spot universe: which (exchange, instrument) pairs to ingest, derived from the database only."""

import dagster as dg
from pydantic import Field

from spot_pipeline.ccdata.vocabulary import ExchangeGrade
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import row_count
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.live_tables import stop_unless_writable
from spot_pipeline.metadata import OWNERS, column_schema, markdown_table, ownership_tags
from spot_pipeline.timeutils import utc_now
from spot_pipeline.universe import queries

GROUP = "universe"


class UniverseConfig(dg.Config):
    min_grade: ExchangeGrade = Field(
        default=ExchangeGrade.BB,
        description="Worst exchange grade admitted (best first: AA, A, BB, B, C, D, E, F).",
    )
    top_assets: int = Field(
        default=50, ge=1, le=10_000, description="How many base assets to take, by 30-day spot quote volume."
    )
    quote_assets: list[str] = Field(
        default=[], description="Quote asset symbols to keep (e.g. [USD, USDT]); empty keeps every quote."
    )


@dg.asset(
    group_name=GROUP,
    kinds={"sql"},
    deps=["cc_exchanges_general", "cc_instruments_spot", "cc_assets", "cc_asset_market_data"],
    owners=OWNERS,
    tags=ownership_tags("derived", "market-db"),
    metadata=column_schema(schema.spot_universe),
)
def spot_universe(config: UniverseConfig, market_db: MarketDatabase) -> dg.MaterializeResult:
    """The exchange instruments to ingest, one row each, computed in SQL from the reference tables
    with no API call: ACTIVE instruments on exchanges graded BB or better (configurable), whose
    base asset is among the top N assets by their latest 30-day spot quote volume.

    Stored in `market.spot_universe`, replaced as a whole in one transaction, and only by a
    universe that holds at least one pair: a selection of nothing fails and keeps the stored one.
    """
    stop_unless_writable(market_db, [schema.spot_universe])
    with market_db.write_lock(schema.spot_universe), market_db.begin() as connection:
        query = queries.universe_query(
            connection, config.min_grade, config.top_assets, config.quote_assets, utc_now()
        )
        queries.replace_universe(connection, query)
        pairs = row_count(connection, schema.spot_universe)
        if not pairs:
            # Raised inside the transaction, so the replacement rolls back and the stored universe stays.
            raise dg.Failure(
                f"the universe config selects no pair (min_grade={config.min_grade}, "
                f"top_assets={config.top_assets}, quote_assets={config.quote_assets}): the stored "
                "universe is kept; widen the selection, or refresh the reference data if it is empty"
            )
        per_exchange = queries.pairs_per_exchange(connection)
        unmatched = queries.unmatched_graded_exchanges(connection, config.min_grade)
        top_assets = queries.selected_top_assets(connection, config.top_assets)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": pairs,
            "exchanges": len(per_exchange),
            "pairs_per_exchange": markdown_table(per_exchange, ["exchange", "exchange_grade", "pairs"]),
            "graded_exchanges_without_market": dg.MetadataValue.json(unmatched),
            "top_assets": markdown_table(
                top_assets[:10], ["asset_rank", "asset_id", "symbol", "volume_30d_usd"]
            ),
            "min_grade": config.min_grade.value,
            "quote_assets": dg.MetadataValue.json(config.quote_assets),
        }
    )
