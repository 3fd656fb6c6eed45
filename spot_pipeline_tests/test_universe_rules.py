"""The universe rules, on reference rows written straight into the database."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata.vocabulary import qualifying_grades
from spot_pipeline.db import schema
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.universe.assets import UniverseConfig, spot_universe
from spot_pipeline_tests import seed

BTC, ETH, USD, USDT = 1, 2, 5, 7


def materialize_universe(market_db: MarketDatabase, **config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [spot_universe],
        resources={"market_db": market_db},
        run_config=dg.RunConfig({"spot_universe": UniverseConfig(**config)}),
    )


def stored_pairs(market_db: MarketDatabase) -> set[tuple[str, str]]:
    table = schema.spot_universe
    with market_db.connect() as connection:
        return {
            tuple(row) for row in connection.execute(sa.select(table.c.exchange, table.c.mapped_instrument))
        }


@pytest.fixture
def graded_exchanges(market_db: MarketDatabase) -> MarketDatabase:
    """One exchange per grade, each listing BTC-USD; BTC and ETH are the top assets."""
    with market_db.begin() as connection:
        for name, grade in [
            ("Aaex", "AA"),
            ("Aex", "A"),
            ("Bbex", "BB"),
            ("Bex", "B"),
            ("Cex", "C"),
            ("Noex", None),
        ]:
            seed.exchange(connection, name, grade)
            seed.instrument(connection, name.lower(), "BTC-USD", base_id=BTC)
        seed.asset(connection, BTC, "BTC", 9e11)
        seed.asset(connection, ETH, "ETH", 5e11)
    return market_db


def test_grade_scale_is_ordered_best_first() -> None:
    assert qualifying_grades("BB") == ("AA", "A", "BB")
    assert qualifying_grades(" a ") == ("AA", "A")
    with pytest.raises(ValueError, match="not a CCData grade"):
        qualifying_grades("BBB")


def test_default_threshold_admits_aa_a_and_bb_only(graded_exchanges: MarketDatabase) -> None:
    assert materialize_universe(graded_exchanges).success
    assert stored_pairs(graded_exchanges) == {("aaex", "BTC-USD"), ("aex", "BTC-USD"), ("bbex", "BTC-USD")}


@pytest.mark.parametrize(
    ("min_grade", "markets"),
    [("AA", {"aaex"}), ("A", {"aaex", "aex"}), ("C", {"aaex", "aex", "bbex", "bex", "cex"})],
)
def test_min_grade_moves_the_threshold(
    graded_exchanges: MarketDatabase, min_grade: str, markets: set[str]
) -> None:
    materialize_universe(graded_exchanges, min_grade=min_grade)
    assert {market for market, _ in stored_pairs(graded_exchanges)} == markets


def test_unknown_grade_is_rejected_with_the_scale(graded_exchanges: MarketDatabase) -> None:
    with pytest.raises(Exception, match="'AA', 'A', 'BB'"):
        materialize_universe(graded_exchanges, min_grade="BBB")


def test_exchange_names_match_case_insensitively(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.exchange(connection, "CoinBase", " a ")
        seed.instrument(connection, "kraken", "BTC-USD", raw="XXBTZUSD", base_id=BTC)
        seed.instrument(connection, "coinbase", "BTC-USD", base_id=BTC)
        seed.asset(connection, BTC, "BTC", 1e9)
    materialize_universe(market_db)
    assert stored_pairs(market_db) == {("kraken", "BTC-USD"), ("coinbase", "BTC-USD")}
    with market_db.connect() as connection:
        row = connection.execute(
            sa.select(schema.spot_universe).where(schema.spot_universe.c.exchange == "kraken")
        ).one()
    assert (row.exchange_instrument_id, row.exchange_grade, row.base_asset_rank) == ("XXBTZUSD", "AA", 1)


def test_assets_are_selected_by_id_when_symbols_collide(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.asset(connection, 100, "XYZ", 8e9)
        seed.asset(connection, 200, "XYZ", 1e3)
        seed.asset(connection, ETH, "ETH", 5e9)
        seed.instrument(connection, "kraken", "XYZ-USD", raw="XYZUSD", base_id=100)
        seed.instrument(connection, "kraken", "XYZ-USDT", raw="XYZOLDUSDT", base_id=200, quote_id=USDT)
        seed.instrument(connection, "kraken", "ETH-USD", base_id=ETH)
    materialize_universe(market_db, top_assets=2)
    assert stored_pairs(market_db) == {("kraken", "XYZ-USD"), ("kraken", "ETH-USD")}


def test_inactive_instruments_are_excluded(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.asset(connection, BTC, "BTC", 1e9)
        for status, quote in [("ACTIVE", "USD"), ("RETIRED", "EUR"), ("IGNORED", "GBP"), ("EXPIRED", "JPY")]:
            seed.instrument(connection, "kraken", f"BTC-{quote}", base_id=BTC, status=status)
    materialize_universe(market_db)
    assert stored_pairs(market_db) == {("kraken", "BTC-USD")}


def test_top_assets_rank_by_latest_snapshot(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.asset(connection, BTC, "BTC", 9e12, snapshot_ts=seed.TODAY.replace(day=1))
        seed.asset(connection, BTC, "BTC", 1e6)
        seed.asset(connection, ETH, "ETH", 5e9)
        seed.asset(connection, 3, "SOL", None)
        for base_id, mapped in [(BTC, "BTC-USD"), (ETH, "ETH-USD"), (3, "SOL-USD")]:
            seed.instrument(connection, "kraken", mapped, base_id=base_id)
    materialize_universe(market_db, top_assets=1)
    assert stored_pairs(market_db) == {("kraken", "ETH-USD")}


def test_quote_filter_keeps_only_listed_quotes(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.asset(connection, BTC, "BTC", 1e9)
        seed.instrument(connection, "kraken", "BTC-USD", base_id=BTC)
        seed.instrument(connection, "kraken", "BTC-USDT", base_id=BTC, quote_id=USDT)
        seed.instrument(connection, "kraken", "BTC-EUR", base_id=BTC, quote_id=9)
    materialize_universe(market_db, quote_assets=["usdt", "EUR"])
    assert stored_pairs(market_db) == {("kraken", "BTC-USDT"), ("kraken", "BTC-EUR")}


def test_rerun_replaces_the_stored_universe(graded_exchanges: MarketDatabase) -> None:
    materialize_universe(graded_exchanges, min_grade="C")
    materialize_universe(graded_exchanges, min_grade="AA")
    assert stored_pairs(graded_exchanges) == {("aaex", "BTC-USD")}


def test_a_config_that_selects_nothing_fails_and_keeps_the_stored_universe(
    graded_exchanges: MarketDatabase,
) -> None:
    materialize_universe(graded_exchanges, min_grade="BB")
    before = stored_pairs(graded_exchanges)

    result = dg.materialize(
        [spot_universe],
        resources={"market_db": graded_exchanges},
        run_config=dg.RunConfig({"spot_universe": UniverseConfig(quote_assets=["NOPE"])}),
        raise_on_error=False,
    )

    assert not result.success
    failure = result.failure_data_for_node("spot_universe")
    assert failure is not None and "selects no pair" in failure.error.to_string()
    assert stored_pairs(graded_exchanges) == before and before


def test_metadata_reports_pairs_per_exchange_and_unmatched_graded_exchanges(
    market_db: MarketDatabase,
) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.exchange(connection, "Ghostex", "A")
        seed.exchange(connection, "Lowex", "C")
        seed.asset(connection, BTC, "BTC", 1e9)
        seed.instrument(connection, "kraken", "BTC-USD", base_id=BTC)
        seed.instrument(connection, "kraken", "BTC-USDT", base_id=BTC, quote_id=USDT)
    result = materialize_universe(market_db)
    metadata = result.asset_materializations_for_node("spot_universe")[0].metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["graded_exchanges_without_market"].value == ["ghostex"]
    assert "| kraken | AA | 2 |" in metadata["pairs_per_exchange"].value


def test_asset_ranked_by_its_snapshot_even_without_an_asset_row(market_db: MarketDatabase) -> None:
    with market_db.begin() as connection:
        seed.exchange(connection, "Kraken", "AA")
        seed.instrument(connection, "kraken", "NEW-USD", base_id=77)
        connection.execute(
            schema.cc_asset_market_data.insert().values(
                asset_id=77,
                snapshot_ts=seed.TODAY,
                spot_moving_30_day_quote_volume_usd=1e9,
                created_at=seed.NOW,
                updated_at=seed.NOW,
            )
        )
    materialize_universe(market_db)
    assert stored_pairs(market_db) == {("kraken", "NEW-USD")}
