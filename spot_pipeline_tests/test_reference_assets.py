"""Reference assets and the universe end to end against the fake CCData API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.payload import PayloadValueError, as_datetime, as_float
from spot_pipeline.db import schema
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.reference_data import parsing
from spot_pipeline.timeutils import utc_now
from spot_pipeline.universe.assets import UniverseConfig, spot_universe
from spot_pipeline_dev.fake_ccdata import FakeAsset, FakeCCDataServer, FakeDataset
from spot_pipeline_tests.pipeline import REFERENCE_ASSETS, materialize_reference_and_universe

QUALIFYING = {"AA", "A", "BB"}


def served_assets(dataset: FakeDataset) -> list[FakeAsset]:
    """The top list ranks crypto assets only: fiat currencies are not in it."""
    return [asset for asset in dataset.assets if asset.asset_type != "FIAT"]


def expected_universe(
    dataset: FakeDataset, top_assets: int, quotes: set[str] | None = None
) -> set[tuple[str, str]]:
    """The pairs the rules select, computed from the served world without the project's SQL."""
    graded = {
        e.internal_name.lower() for e in dataset.exchanges if (e.grade or "").strip().upper() in QUALIFYING
    }
    ranked = sorted(served_assets(dataset), key=lambda asset: (-asset.volume_30d_usd, asset.id))
    top_ids = {asset.id for asset in ranked[:top_assets]}
    return {
        (market_key, instrument.instrument)
        for market_key, market in dataset.markets.items()
        if market_key in graded
        for instrument in market.instruments
        if instrument.status == "ACTIVE"
        and instrument.base_id in top_ids
        and (quotes is None or instrument.quote in quotes)
    }


def stored_universe(market_db: MarketDatabase) -> set[tuple[str, str]]:
    table = schema.spot_universe
    with market_db.connect() as connection:
        return {
            tuple(row)
            for row in connection.execute(sa.select(table.c.exchange, table.c.exchange_instrument_id))
        }


def load_pairs(market_db: MarketDatabase) -> list[Pair]:
    with market_db.connect() as connection:
        return queries.load_universe(connection)


def count(market_db: MarketDatabase, table: sa.Table) -> int:
    with market_db.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize(("top_assets", "quotes"), [(50, None), (5, None), (10, {"USD", "USDT"})])
def test_universe_holds_exactly_the_pairs_the_rules_select(
    ccdata: CCDataClient,
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    top_assets: int,
    quotes: set[str] | None,
) -> None:
    config = {"top_assets": top_assets, "quote_assets": sorted(quotes or [])}
    assert materialize_reference_and_universe(ccdata, market_db, **config).success
    expected = expected_universe(fake_api.dataset, top_assets, quotes)
    assert expected, "the fake world should select some pairs"
    assert stored_universe(market_db) == expected


def test_universe_step_makes_no_api_request(
    ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    assert dg.materialize(REFERENCE_ASSETS, resources={"ccdata": ccdata, "market_db": market_db}).success
    fake_api.reset_log()
    result = dg.materialize(
        [spot_universe],
        resources={"market_db": market_db},
        run_config=dg.RunConfig({"spot_universe": UniverseConfig()}),
    )
    assert result.success
    assert fake_api.request_count() == 0
    unmatched = result.asset_materializations_for_node("spot_universe")[0].metadata
    graded_without_market = {
        e.internal_name.lower()
        for e in fake_api.dataset.exchanges
        if (e.grade or "").upper() in QUALIFYING and e.internal_name.lower() not in fake_api.dataset.markets
    }
    assert set(unmatched["graded_exchanges_without_market"].value) == graded_without_market
    assert graded_without_market, "the fake world has a graded exchange without a data-api market"


def test_reference_tables_hold_every_served_row_and_reruns_keep_created_at(
    ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    dataset = fake_api.dataset
    assert dg.materialize(REFERENCE_ASSETS, resources={"ccdata": ccdata, "market_db": market_db}).success
    assert count(market_db, schema.cc_exchanges_general) == len(dataset.exchanges)
    mapped_symbols = {(key, i.mapped_instrument) for key, m in dataset.markets.items() for i in m.instruments}
    assert count(market_db, schema.cc_instruments_spot) == len(mapped_symbols)
    assert count(market_db, schema.cc_assets) == len(served_assets(dataset))
    assert count(market_db, schema.cc_asset_market_data) == len(served_assets(dataset))
    exchanges = schema.cc_exchanges_general
    with market_db.connect() as connection:
        first = dict(connection.execute(sa.select(exchanges.c.internal_name, exchanges.c.created_at)).all())
        kraken = connection.execute(sa.select(exchanges).where(exchanges.c.internal_name == "Kraken")).one()
    assert isinstance(kraken.grade_points, float) and kraken.grade in QUALIFYING

    fake_api.dataset.exchanges[0].grade = "C"
    assert dg.materialize(REFERENCE_ASSETS, resources={"ccdata": ccdata, "market_db": market_db}).success
    assert count(market_db, schema.cc_exchanges_general) == len(dataset.exchanges)
    assert count(market_db, schema.cc_asset_market_data) == len(served_assets(dataset)), "same day: updated"
    with market_db.connect() as connection:
        again = dict(connection.execute(sa.select(exchanges.c.internal_name, exchanges.c.created_at)).all())
        grade = connection.execute(
            sa.select(exchanges.c.grade).where(
                exchanges.c.internal_name == dataset.exchanges[0].internal_name
            )
        ).scalar_one()
    assert again == first
    assert grade == "C"


def test_instruments_are_requested_once_per_status_with_the_status_explicit(
    ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    from spot_pipeline.reference_data.assets import InstrumentsConfig, cc_instruments_spot

    config = InstrumentsConfig(instrument_statuses=["ACTIVE", "RETIRED"])
    result = dg.materialize(
        [cc_instruments_spot],
        resources={"ccdata": ccdata, "market_db": market_db},
        run_config=dg.RunConfig({"cc_instruments_spot": config}),
    )
    assert result.success
    statuses = [
        r.query.get("instrument_status") for r in fake_api.requests if r.path.endswith("/instruments")
    ]
    assert sorted(statuses) == ["ACTIVE", "RETIRED"]
    table = schema.cc_instruments_spot
    with market_db.connect() as connection:
        stored = set(
            connection.execute(sa.select(table.c.instrument_status_on_exchange).distinct()).scalars()
        )
    assert stored == {"ACTIVE", "RETIRED"}


def test_unknown_instrument_status_is_rejected_with_the_allowed_list() -> None:
    from spot_pipeline.reference_data.assets import InstrumentsConfig

    with pytest.raises(ValueError, match="READY_FOR_DECOMMISSIONING"):
        InstrumentsConfig(instrument_statuses=["LIVE"])


def test_payload_values_that_cannot_be_stored_name_their_field() -> None:
    assert as_float("71", "GradePoints") == 71.0
    assert as_float("", "GradePoints") is None
    with pytest.raises(PayloadValueError, match="exchange Kraken GradePoints is 'high'"):
        as_float("high", "exchange Kraken GradePoints")
    with pytest.raises(PayloadValueError, match="not unix seconds"):
        as_datetime(1_749_081_600_000, "FIRST_TRADE_TIMESTAMP")
    parsed = parsing.exchange_rows(
        {"1": {"Id": "1", "Name": "X"}, "2": {"Id": "2", "InternalName": "Y"}}, utc_now()
    )
    assert [row["internal_name"] for row in parsed.rows] == ["Y"]
    assert parsed.skipped == ["exchange 1: required field InternalName is missing or empty"]


def test_an_asset_the_top_list_describes_incompletely_is_skipped_but_still_ranked(
    market_db: MarketDatabase,
) -> None:
    items = [
        {"ID": 1, "SYMBOL": "BTC", "ID_LEGACY": 1182, "CREATED_ON": 1, "UPDATED_ON": 2},
        {"ID": 7, "SYMBOL": "NEW", "ID_LEGACY": None, "CREATED_ON": 1, "UPDATED_ON": 2},
    ]
    assets = parsing.asset_rows(items, utc_now())
    assert [row["asset_id"] for row in assets.rows] == [1]
    assert assets.skipped == ["asset 7: required field ID_LEGACY is missing or empty"]
    snapshots = parsing.asset_market_data_rows(items, utc_now(), utc_now())
    assert [row["asset_id"] for row in snapshots.rows] == [1, 7]


def instruments_by_raw_id(market_db: MarketDatabase, market: str, raw_id: str) -> dict[str, str]:
    """Mapped symbol -> status of every stored row of one exchange instrument."""
    listed = schema.cc_instruments_spot.c
    with market_db.connect() as connection:
        rows = connection.execute(
            sa.select(listed.mapped_instrument_symbol, listed.instrument_status_on_exchange).where(
                listed.exchange_internal_name == market, listed.exchange_instrument_symbol_raw == raw_id
            )
        )
        return dict(rows.all())


def test_a_remapped_instrument_is_retired_under_its_old_symbol_and_the_universe_refreshes(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    pair = universe[0]
    instrument = fake_api.dataset.market(pair.exchange).find_instrument(pair.exchange_instrument_id)
    old_symbol, quote = instrument.mapped_instrument, instrument.mapped_instrument.split("-")[1]
    instrument.mapped_instrument = f"RENAMED-{quote}"  # POL reported as MATIC: same raw id

    assert materialize_reference_and_universe(ccdata, market_db).success
    assert instruments_by_raw_id(market_db, pair.exchange, pair.exchange_instrument_id) == {
        old_symbol: "RETIRED",
        f"RENAMED-{quote}": "ACTIVE",
    }
    refreshed = {(p.exchange, p.exchange_instrument_id): p.mapped_instrument for p in load_pairs(market_db)}
    assert refreshed[(pair.exchange, pair.exchange_instrument_id)] == f"RENAMED-{quote}"
    assert len(refreshed) == len(universe)


def test_an_instrument_that_leaves_the_listing_is_retired_and_leaves_the_universe(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    pair = universe[0]
    fake_api.dataset.market(pair.exchange).remove_instrument(pair.exchange_instrument_id)
    assert materialize_reference_and_universe(ccdata, market_db).success
    statuses = instruments_by_raw_id(market_db, pair.exchange, pair.exchange_instrument_id)
    assert statuses == {pair.mapped_instrument: "RETIRED"}
    assert pair not in load_pairs(market_db) and len(load_pairs(market_db)) == len(universe) - 1


def test_the_universe_never_holds_an_exchange_instrument_twice(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    """Even if the listing itself held one raw id ACTIVE under two symbols, the latest mapping wins."""
    pair = universe[0]
    listed = schema.cc_instruments_spot
    with market_db.begin() as connection:
        row = (
            connection.execute(
                sa.select(listed).where(
                    listed.c.exchange_internal_name == pair.exchange,
                    listed.c.mapped_instrument_symbol == pair.mapped_instrument,
                )
            )
            .one()
            ._asdict()
        )
        newer = row["updated_at"] + dt.timedelta(seconds=1)
        connection.execute(
            listed.insert().values({**row, "mapped_instrument_symbol": "TWIN-X", "updated_at": newer})
        )
    assert dg.materialize(
        [spot_universe],
        resources={"market_db": market_db},
        run_config=dg.RunConfig({"spot_universe": UniverseConfig()}),
    ).success
    twins = [p for p in load_pairs(market_db) if p.exchange_instrument_id == pair.exchange_instrument_id]
    assert [p.mapped_instrument for p in twins if p.exchange == pair.exchange] == ["TWIN-X"]


@pytest.mark.parametrize(
    ("run_config", "named"),
    [
        ({"universe": {"top_assets": -1}}, "top_assets"),
        ({"universe": {"min_grade": "ZZ"}}, "min_grade"),
        ({"instruments": {"instrument_statuses": ["LIVE"]}}, "instrument_statuses"),
    ],
)
def test_a_bad_refresh_config_is_refused_at_launch_before_any_api_call(
    run_config: dict[str, object], named: str, fake_api: FakeCCDataServer, tmp_path: Path
) -> None:
    from spot_pipeline.definitions import defs

    job = defs().resolve_job_def("refresh_reference_data_job")
    with pytest.raises(dg.DagsterError) as refused:
        dg.validate_run_config(job, run_config)
    assert named in f"{refused.value} {refused.value.__cause__}"
    assert fake_api.request_count() == 0
