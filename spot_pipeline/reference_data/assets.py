"""Reference data from CCData: exchanges with their grades, spot instruments, assets and volumes."""

from collections import Counter
from collections.abc import Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import INSTRUMENT_STATUSES, InstrumentStatus
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import row_count
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.live_tables import stop_unless_writable
from spot_pipeline.metadata import OWNERS, column_schema, ownership_tags, table_preview
from spot_pipeline.reference_data import parsing, queries
from spot_pipeline.timeutils import utc_day_start, utc_now

GROUP = "reference_data"


def write_reference_rows(
    connection: sa.Connection,
    table: sa.Table,
    parsed: parsing.Parsed,
    key_columns: Sequence[str],
    preview_columns: Sequence[str],
    log: dg.DagsterLogManager,
) -> dict[str, Any]:
    """Upsert the parsed rows on the table's natural key and describe the result as asset metadata.

    Records the payload could not provide a storable row for are logged and counted; a payload of
    which no record is usable fails the step.
    """
    if parsed.skipped and not parsed.rows:
        raise dg.Failure(
            f"none of the {len(parsed.skipped)} records for {table.name} can be stored, "
            f"e.g. {parsed.skipped[0]}"
        )
    for reason in parsed.skipped:
        log.warning(f"{table.name}: record skipped: {reason}")
    written = queries.upsert_reference_rows(connection, table, parsed.rows, key_columns)
    order = [table.c.updated_at.desc(), *(table.c[name] for name in key_columns)]
    return {
        "rows_upserted": written,
        "records_skipped": len(parsed.skipped),
        "skipped_examples": dg.MetadataValue.json(parsed.skipped[:10]),
        "dagster/row_count": row_count(connection, table),
        "preview": table_preview(connection, table, preview_columns, order),
    }


@dg.asset(
    group_name=GROUP,
    kinds={"sql"},
    owners=OWNERS,
    tags=ownership_tags("reference", "ccdata"),
    metadata=column_schema(schema.cc_exchanges_general),
)
def cc_exchanges_general(
    context: dg.AssetExecutionContext, ccdata: CCDataClient, market_db: MarketDatabase
) -> dg.MaterializeResult:
    """Every exchange CCData lists, with its grade (AA best, then A, BB, B, C, D, E).

    Source: min-api `/data/exchanges/general`. Upserted on `internal_name`; the grade decides which
    exchanges enter the spot universe.
    """
    stop_unless_writable(market_db, [schema.cc_exchanges_general])
    parsed = parsing.exchange_rows(ccdata.exchanges_general(), utc_now())
    with market_db.write_lock(schema.cc_exchanges_general), market_db.begin() as connection:
        metadata = write_reference_rows(
            connection,
            schema.cc_exchanges_general,
            parsed,
            ["internal_name"],
            ["internal_name", "name", "grade", "grade_points", "country"],
            context.log,
        )
    graded = sum(1 for row in parsed.rows if row["grade"])
    return dg.MaterializeResult(metadata={**metadata, "graded_exchanges": graded})


class InstrumentsConfig(dg.Config):
    instrument_statuses: list[InstrumentStatus] = Field(
        default=list(INSTRUMENT_STATUSES),
        validate_default=True,
        min_length=1,
        description="Instrument statuses to fetch, one request each; sent explicitly because the API's "
        "default has changed between versions.",
    )
    markets: list[str] = Field(
        default=[],
        description="data-api market keys (lowercase, e.g. kraken) to fetch; empty fetches every market.",
    )


@dg.asset(
    group_name=GROUP,
    kinds={"sql"},
    owners=OWNERS,
    tags=ownership_tags("reference", "ccdata"),
    metadata=column_schema(schema.cc_instruments_spot),
)
def cc_instruments_spot(
    context: dg.AssetExecutionContext,
    config: InstrumentsConfig,
    ccdata: CCDataClient,
    market_db: MarketDatabase,
) -> dg.MaterializeResult:
    """Spot instruments of every exchange: the exchange's own id, the mapped BASE-QUOTE symbol,
    base and quote asset ids, and the instrument's status.

    Source: data-api `/spot/v1/markets/instruments`, one request per status. Upserted on
    (exchange_internal_name, mapped_instrument_symbol); `exchange_internal_name` holds the
    data-api market key (lowercase). When a market lists two instruments under one mapped symbol
    (a retired id and its active successor), the key holds the one with the better status.
    Stored instruments of the fetched statuses that the listing no longer holds (delisted, or an
    exchange id now mapped to another symbol) are marked RETIRED in the same transaction.
    """
    stop_unless_writable(market_db, [schema.cc_instruments_spot])
    now = utc_now()
    markets = config.markets or None
    parsed = parsing.Parsed()
    for status in config.instrument_statuses:
        parsed.extend(parsing.instrument_rows(ccdata.spot_instruments(status, markets), now))
    rows = parsed.rows = parsing.one_row_per_mapped_symbol(parsed.rows)
    if not rows:
        raise dg.Failure(
            f"the API listed no instrument for the statuses {config.instrument_statuses}: nothing was "
            "stored or retired; check the markets and statuses in the run config"
        )
    with market_db.write_lock(schema.cc_instruments_spot), market_db.begin() as connection:
        metadata = write_reference_rows(
            connection,
            schema.cc_instruments_spot,
            parsed,
            ["exchange_internal_name", "mapped_instrument_symbol"],
            [
                "exchange_internal_name",
                "mapped_instrument_symbol",
                "exchange_instrument_symbol_raw",
                "instrument_status_on_exchange",
                "base_asset_id",
                "quote_asset_id",
            ],
            context.log,
        )
        retired = queries.retire_unlisted_instruments(
            connection, rows, config.instrument_statuses, config.markets or None, now
        )
    for row in retired:
        context.log.info(f"Retired (no longer listed): {row}")
    metadata["instruments_retired"] = len(retired)
    per_status = Counter(str(row["instrument_status_on_exchange"]) for row in rows)
    markets = len({row["exchange_internal_name"] for row in rows})
    status_counts = {f"instruments_{status.lower()}": count for status, count in sorted(per_status.items())}
    return dg.MaterializeResult(metadata={**metadata, "markets": markets, **status_counts})


class TopListConfig(dg.Config):
    top_list_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="How many assets of the volume-ranked top list to store (pages of 100).",
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "cc_assets",
            group_name=GROUP,
            kinds={"sql"},
            owners=OWNERS,
            tags=ownership_tags("reference", "ccdata"),
            metadata=column_schema(schema.cc_assets),
            description="Assets from CCData's volume-ranked top list, keyed by asset id (symbols are not "
            "unique across assets). Source: data-api `/asset/v1/top/list`.",
        ),
        dg.AssetSpec(
            "cc_asset_market_data",
            group_name=GROUP,
            kinds={"sql"},
            owners=OWNERS,
            tags=ownership_tags("reference", "ccdata"),
            metadata=column_schema(schema.cc_asset_market_data),
            description="A dated (00:00 UTC) snapshot per asset of price, market caps and moving 24h / 7d "
            "/ 30d spot quote volumes, from the same top list. The universe ranks assets by their latest "
            "snapshot's 30-day volume.",
        ),
    ]
)
def asset_top_list(
    context: dg.AssetExecutionContext, config: TopListConfig, ccdata: CCDataClient, market_db: MarketDatabase
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    """Fetch the asset top list once and store the assets and today's volume snapshot together."""
    tables = [schema.cc_assets, schema.cc_asset_market_data]
    stop_unless_writable(market_db, tables)
    now = utc_now()
    items = ccdata.top_list(limit=config.top_list_size, sort_by="SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD")
    with market_db.write_lock(tables[0]), market_db.write_lock(tables[1]), market_db.begin() as connection:
        assets = write_reference_rows(
            connection,
            schema.cc_assets,
            parsing.asset_rows(items, now),
            ["asset_id"],
            ["asset_id", "symbol", "name", "asset_type"],
            context.log,
        )
        snapshots = write_reference_rows(
            connection,
            schema.cc_asset_market_data,
            parsing.asset_market_data_rows(items, utc_day_start(now), now),
            ["asset_id", "snapshot_ts"],
            ["asset_id", "snapshot_ts", "price_usd", "spot_moving_30_day_quote_volume_usd"],
            context.log,
        )
    return (
        dg.MaterializeResult(asset_key="cc_assets", metadata=assets),
        dg.MaterializeResult(
            asset_key="cc_asset_market_data", metadata={**snapshots, "snapshot_ts": str(utc_day_start(now))}
        ),
    )
