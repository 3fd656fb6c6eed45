"""Daily candle ingestion end to end: fake API -> partitioned asset -> SQLite / MariaDB."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.locks import HeldLock
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, cc_ohlcv_spot_1d_raw, spot_universe
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import DayWindow, Pair, candle_rows, plan_requests
from spot_pipeline.ohlcv.fetching import PairResult
from spot_pipeline.ohlcv.ingestion import CandleWriter, IngestionSummary, ingest_window
from spot_pipeline.ohlcv.ops import RepairConfig
from spot_pipeline.ohlcv.schedules import repair_ohlcv_pairs_job
from spot_pipeline.timeutils import utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_dev.legacy_tables import replace_with_legacy_table
from spot_pipeline_tests.pipeline import (
    candle_metadata,
    failure_description,
    materialize_candles,
    served_candles,
    utc,
)

HISTORY_PATH = "/spot/v1/historical/days"
YESTERDAY = utc_today() - dt.timedelta(days=1)
table = cc_ohlcv_spot_1d_raw


def stored(market_db: MarketDatabase) -> dict[tuple[str, str, dt.datetime], dict[str, object]]:
    with market_db.connect() as connection:
        rows = connection.execute(sa.select(table)).mappings()
        return {(row["exchange"], row["symbol_unmapped"], row["datetime"]): dict(row) for row in rows}


# --- request planning (pure) ---


@pytest.mark.parametrize(
    ("days", "expected_limits"),
    [(1, [1]), (30, [30]), (5000, [5000]), (5001, [5000, 1]), (12_000, [5000, 5000, 2000])],
)
def test_requests_cover_the_window_in_ceil_days_over_5000_calls(
    days: int, expected_limits: list[int]
) -> None:
    window = DayWindow(dt.date(1990, 1, 1), dt.date(1990, 1, 1) + dt.timedelta(days=days))
    requests_ = plan_requests(window)
    assert [request.limit for request in requests_] == expected_limits
    covered = set()
    for request in requests_:
        last = dt.datetime.fromtimestamp(request.to_ts, dt.UTC).date()
        covered |= {last - dt.timedelta(days=n) for n in range(request.limit)}
    assert covered == {window.start + dt.timedelta(days=n) for n in range(days)}
    assert requests_[0].to_ts % 86_400 == 0


def test_boundary_current_day_and_placeholder_candles_are_dropped() -> None:
    pair = Pair("kraken", "XXBTZUSD", "BTC-USD")
    window = DayWindow(dt.date(2026, 1, 2), dt.date(2026, 1, 4))

    def candle(day: int, price: float) -> dict[str, object]:
        start = int(dt.datetime(2026, 1, day, tzinfo=dt.UTC).timestamp())
        return {"TIMESTAMP": start, "OPEN": price, "HIGH": price, "LOW": price, "CLOSE": price}

    candles = [candle(1, 5), candle(2, 0), candle(3, 7), candle(4, 8), candle(3, 9)]
    rows = candle_rows(candles, pair, window, dt.datetime(2026, 1, 5))
    assert [(row["datetime"].day, row["close"]) for row in rows] == [(3, 9)]
    assert all(row[column] is None for column in TRADE_TIMESTAMP_COLUMNS for row in rows)


# --- the asset against the fake API ---


def test_backfill_stores_exactly_the_served_candles_with_one_request_per_pair(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    first = YESTERDAY - dt.timedelta(days=59)
    result = materialize_candles(ccdata, market_db, first, YESTERDAY)
    assert result.success
    assert fake_api.request_count(HISTORY_PATH) == len(universe)

    expected = {}
    for pair in universe:
        for candle in served_candles(fake_api, pair, YESTERDAY, 60):
            if any(candle[price] for price in ("OPEN", "HIGH", "LOW", "CLOSE")):
                expected[(candle["MARKET"], candle["INSTRUMENT"], utc(candle["TIMESTAMP"]))] = candle
    rows = stored(market_db)
    assert rows.keys() == expected.keys()
    for key, candle in expected.items():
        row = rows[key]
        assert row["symbol"] == candle["MAPPED_INSTRUMENT"]
        assert (row["open"], row["high"], row["low"], row["close"]) == (
            candle["OPEN"],
            candle["HIGH"],
            candle["LOW"],
            candle["CLOSE"],
        )
        assert row["volume"] == candle["VOLUME"] and row["total_trades"] == candle["TOTAL_TRADES"]
        for column in TRADE_TIMESTAMP_COLUMNS:
            assert row[column] == utc(candle.get(column.upper())), (key, column)
    assert any(row["first_trade_timestamp"] is None for row in rows.values()), (
        "no day without trades was served"
    )

    metadata = candle_metadata(result)
    # One request per pair, and one for the key's limits: exactly the run's estimate.
    assert metadata["pairs_failed"] == 0 and metadata["api_requests"] == len(universe) + 1
    assert metadata["api_calls_estimated"] == metadata["api_requests"]
    assert metadata["rows_inserted"] == len(expected) and metadata["rows_updated"] == 0


def test_rerun_changes_only_collected_at(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    first = YESTERDAY - dt.timedelta(days=6)
    assert materialize_candles(ccdata, market_db, first, YESTERDAY).success
    before = stored(market_db)
    result = materialize_candles(ccdata, market_db, first, YESTERDAY)
    after = stored(market_db)
    assert after.keys() == before.keys()
    for key, row in after.items():
        assert {**row, "collected_at": None} == {**before[key], "collected_at": None}
    metadata = candle_metadata(result)
    assert metadata["rows_inserted"] == 0 and metadata["rows_updated"] == len(after)


def test_a_refused_api_key_stops_the_run_at_once_instead_of_failing_every_pair(
    universe: list[Pair], market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    fake_api.api_key = "the-right-key"
    wrong_key = fake_api.client(api_key="a-wrong-key", max_retries=0)

    result = materialize_candles(wrong_key, market_db, YESTERDAY, YESTERDAY)

    assert not result.success
    failure = result.failure_data_for_node("cc_ohlcv_spot_1d_raw")
    assert failure is not None and "CCDATA_API_KEY" in failure.error.to_string()
    assert "a-wrong-key" not in failure.error.to_string()
    # Only the requests already under way when the first 401 came back, not one per pair.
    assert fake_api.request_count(HISTORY_PATH) <= 2 * wrong_key.max_concurrency < len(universe)


def test_failed_pair_leaves_no_rows_and_names_itself_while_others_are_stored(
    universe: list[Pair], market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    serial = fake_api.client(
        max_concurrency=1,
        max_retries=2,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.02,
    )
    fake_api.fail_next(3, status=503, path=HISTORY_PATH)  # the first pair's attempt and both retries
    first = YESTERDAY - dt.timedelta(days=2)

    result = materialize_candles(serial, market_db, first, YESTERDAY)
    assert not result.success
    stored_pairs = {key[:2] for key in stored(market_db)}
    missing = [pair for pair in universe if (pair.exchange, pair.exchange_instrument_id) not in stored_pairs]
    assert len(missing) == 1, "exactly the failed pair has no rows; every other pair is stored"
    description = failure_description(result)
    assert str(missing[0]) in description and "CCDataUnavailableError" in description
    assert candle_metadata(result)["pairs_failed"] == 1

    assert materialize_candles(serial, market_db, first, YESTERDAY).success
    assert (missing[0].exchange, missing[0].exchange_instrument_id) in {key[:2] for key in stored(market_db)}


def test_instrument_the_api_does_not_know_counts_as_empty_and_is_named(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    gone = universe[0]
    fake_api.dataset.market(gone.exchange).remove_instrument(gone.exchange_instrument_id)
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert result.success
    metadata = candle_metadata(result)
    assert metadata["pairs_not_found"] == [str(gone)] and metadata["pairs_empty"] == 1
    assert not [key for key in stored(market_db) if key[:2] == (gone.exchange, gone.exchange_instrument_id)]


def test_a_404_for_days_before_the_listing_keeps_the_candles_of_the_newer_request(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    pair = next(pair for pair in universe if pair.exchange == "kraken")
    window = DayWindow(dt.date(2000, 1, 1), YESTERDAY + dt.timedelta(days=1))
    assert len(plan_requests(window)) == 2  # the older one ends before kraken's history: 404

    summary = ingest_window(ccdata, market_db, [pair], window, collected_at=dt.datetime(2026, 1, 1))

    assert fake_api.request_count(HISTORY_PATH) == 2
    assert (summary.pairs_ok, summary.not_found, summary.failed) == (1, [], {})
    served = [candle for candle in served_candles(fake_api, pair, YESTERDAY, 5000) if candle["CLOSE"]]
    assert summary.rows_written == len(stored(market_db)) == len(served) > 0


def test_two_instruments_with_one_symbol_in_one_batch_never_overwrite_each_other(
    market_db: MarketDatabase,
) -> None:
    day = dt.datetime.combine(YESTERDAY, dt.time())
    first, second = (Pair("kraken", instrument, "LUNA-USD") for instrument in ("LUNAUSD", "LUNA2USD"))

    def result(pair: Pair, close: float) -> PairResult:
        row = {"datetime": day, "exchange": "kraken", "symbol_unmapped": pair.exchange_instrument_id}
        return PairResult(pair, [{**row, "symbol": "LUNA-USD", "close": close, "collected_at": day}])

    summary = IngestionSummary()
    window = DayWindow(YESTERDAY, utc_today())
    writer = CandleWriter(market_db, summary, batch_rows=10, window=window, lock=HeldLock())
    writer.add(result(first, 1.0))
    writer.add(result(second, 2.0))
    writer.flush()

    assert summary.pairs_ok == 1 and list(summary.failed) == [second]
    assert "stored under instrument LUNAUSD" in summary.failed[second]
    assert {key: row["close"] for key, row in stored(market_db).items()} == {("kraken", "LUNAUSD", day): 1.0}


def test_revised_candles_are_updated_on_rerun(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    pair = universe[0]
    assert materialize_candles(ccdata, market_db, YESTERDAY - dt.timedelta(days=3), YESTERDAY).success
    before = stored(market_db)
    instrument = fake_api.dataset.market(pair.exchange).find_instrument(pair.exchange_instrument_id)
    instrument.daily_quote_volume *= 3
    assert materialize_candles(ccdata, market_db, YESTERDAY - dt.timedelta(days=3), YESTERDAY).success
    after = stored(market_db)
    key = (pair.exchange, pair.exchange_instrument_id, dt.datetime.combine(YESTERDAY, dt.time()))
    assert after[key]["quote_volume"] != before[key]["quote_volume"]
    assert len(after) == len(before)


def test_remapped_instrument_updates_its_row_instead_of_adding_one(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    pair = universe[0]
    assert materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY).success
    instrument = fake_api.dataset.market(pair.exchange).find_instrument(pair.exchange_instrument_id)
    instrument.mapped_instrument = f"NEW{instrument.base}-{instrument.quote}"
    assert materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY).success
    rows = stored(market_db)
    mine = [row for key, row in rows.items() if key[:2] == (pair.exchange, pair.exchange_instrument_id)]
    assert [row["symbol"] for row in mine] == [instrument.mapped_instrument]


def test_window_checks_pass_and_catch_bad_rows(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    result = materialize_candles(ccdata, market_db, YESTERDAY - dt.timedelta(days=1), YESTERDAY)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # The fake, like the provider, has days without a trade: the feed warning may fire; no other.
    assert {name: e.passed for name, e in evaluations.items() if name != "prices_move_while_traded"} == {
        "no_duplicate_keys": True,
        "ohlc_consistent": True,
        "trade_timestamps_inside_day": True,
        "complete_against_universe": True,
        "close_near_other_exchanges": True,
    }

    day = dt.datetime.combine(YESTERDAY, dt.time())
    with market_db.begin() as connection:
        connection.execute(
            table.insert().values(
                datetime=day,
                exchange="elsewhere",
                symbol_unmapped="X",
                symbol="X-Y",
                open=5,
                high=4,
                low=3,
                close=6,
                volume=-1,
                first_trade_timestamp=day + dt.timedelta(days=1, hours=1),
                collected_at=day,
            )
        )
        connection.execute(
            sa.delete(table).where(
                table.c.exchange == universe[0].exchange,
                table.c.symbol_unmapped == universe[0].exchange_instrument_id,
            )
        )
    fake_failure = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    evaluations = {e.check_name: e for e in fake_failure.get_asset_check_evaluations()}
    assert not evaluations["ohlc_consistent"].passed
    assert not evaluations["trade_timestamps_inside_day"].passed
    assert evaluations["complete_against_universe"].passed  # the run itself refilled the deleted pair


def test_empty_universe_fails_with_the_fix(ccdata: CCDataClient, market_db: MarketDatabase) -> None:
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert not result.success
    assert (
        "materialize spot_universe"
        in result.failure_data_for_node("cc_ohlcv_spot_1d_raw").user_failure_data.description
    )


def test_rate_limit_holds_across_the_worker_pool(
    universe: list[Pair], market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    limited = fake_api.client(
        calls_per_second=10,
        max_concurrency=6,
    )
    assert len(universe) >= 12
    assert materialize_candles(limited, market_db, YESTERDAY, YESTERDAY).success
    assert fake_api.max_requests_in_any_second() <= 10


# --- legacy tables: stop before writing, naming the job that fixes the table ---


def test_bigint_trade_timestamps_stop_ingestion_and_name_the_migration(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    with market_db.begin() as connection:
        replace_with_legacy_table(connection, primary_key=True)
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert not result.success
    assert "run migrate_ohlcv_timestamps_job" in failure_description(result)
    assert fake_api.request_count(HISTORY_PATH) == 0
    with market_db.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_table_without_the_natural_unique_key_stops_ingestion_and_names_the_dedupe_job(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    keyed_on_symbol_only = sa.Table(
        table.name,
        sa.MetaData(schema="market"),
        *(column._copy() for column in table.columns),
        sa.PrimaryKeyConstraint("datetime", "exchange", "symbol"),
    )
    with market_db.begin() as connection:
        table.drop(connection)
        keyed_on_symbol_only.create(connection)
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert not result.success
    assert "run deduplicate_ohlcv_job with add_unique_key: true" in failure_description(result)


def test_a_symbol_handed_to_another_instrument_never_overwrites_the_previous_holder(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    holder, newcomer = [pair for pair in universe if pair.exchange == "kraken"][:2]
    day = dt.datetime.combine(YESTERDAY, dt.time())
    holder_key, newcomer_key = (("kraken", pair.exchange_instrument_id, day) for pair in (holder, newcomer))
    assert materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY).success
    holder_before = stored(market_db)[holder_key]
    # The ticker moves to the newcomer, and the old holder leaves the universe (out of the top assets).
    kraken = fake_api.dataset.market("kraken")
    kraken.find_instrument(holder.exchange_instrument_id).mapped_instrument = "OLD-USD"
    kraken.find_instrument(newcomer.exchange_instrument_id).mapped_instrument = holder.mapped_instrument
    universe_rows = spot_universe.c.exchange_instrument_id == holder.exchange_instrument_id
    with market_db.begin() as connection:
        holder_listing = connection.execute(sa.select(spot_universe).where(universe_rows)).mappings().one()
        connection.execute(sa.delete(spot_universe).where(universe_rows))

    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert not result.success
    assert f"stored under instrument {holder.exchange_instrument_id}" in failure_description(result)
    rows = stored(market_db)
    assert rows[holder_key] == holder_before, "the previous holder's candle is untouched"
    assert rows[newcomer_key]["symbol"] == newcomer.mapped_instrument, "the newcomer's old row is kept"

    with market_db.begin() as connection:
        connection.execute(spot_universe.insert().values(**holder_listing))
    runs = [materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY) for _ in range(2)]
    assert runs[-1].success, "once the holder has moved to its new symbol, the newcomer is stored"
    rows = stored(market_db)
    assert rows[holder_key]["symbol"] == "OLD-USD"
    assert rows[newcomer_key]["symbol"] == holder.mapped_instrument


# --- Repairing chosen pairs -----------------------------------------------------------------------


def repair(
    ccdata: CCDataClient, market_db: MarketDatabase, first: dt.date, **config: Any
) -> dg.ExecuteInProcessResult:
    run_config = {"first_day": first.isoformat(), "last_day": YESTERDAY.isoformat(), **config}
    return repair_ohlcv_pairs_job.execute_in_process(
        resources={"ccdata": ccdata, "market_db": market_db},
        run_config=run_config,
        raise_on_error=False,
    )


def test_the_repair_job_fixes_a_ticker_handed_over_to_another_instrument(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    holder, newcomer = [pair for pair in universe if pair.exchange == "kraken"][:2]
    first = YESTERDAY - dt.timedelta(days=2)
    assert materialize_candles(ccdata, market_db, first, YESTERDAY).success
    rows_before = len(stored(market_db))
    # The ticker moves to the newcomer, and the old holder leaves the universe: the daily run then
    # refuses the newcomer, since its symbol is still stored under the holder.
    kraken = fake_api.dataset.market("kraken")
    kraken.find_instrument(holder.exchange_instrument_id).mapped_instrument = "OLD-USD"
    kraken.find_instrument(newcomer.exchange_instrument_id).mapped_instrument = holder.mapped_instrument
    with market_db.begin() as connection:
        connection.execute(
            sa.delete(spot_universe).where(
                spot_universe.c.exchange_instrument_id == holder.exchange_instrument_id
            )
        )
    assert not materialize_candles(ccdata, market_db, first, YESTERDAY).success

    assert repair(ccdata, market_db, first, instruments=[f"kraken:{holder.exchange_instrument_id}"]).success
    assert repair(ccdata, market_db, first, instruments=[f"Kraken:{newcomer.exchange_instrument_id}"]).success

    rows = stored(market_db)
    assert len(rows) == rows_before, "no candle added or lost"
    symbols = {key[1:]: row["symbol"] for key, row in rows.items() if key[0] == "kraken"}
    for day in range(3):
        moment = dt.datetime.combine(first + dt.timedelta(days=day), dt.time())
        assert symbols[(holder.exchange_instrument_id, moment)] == "OLD-USD"
        assert symbols[(newcomer.exchange_instrument_id, moment)] == holder.mapped_instrument
    assert materialize_candles(ccdata, market_db, first, YESTERDAY).success


def test_a_repair_by_mapped_instrument_fetches_every_exchange_listing_it_and_nothing_else(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    mapped = universe[0].mapped_instrument
    listing = {pair for pair in universe if pair.mapped_instrument == mapped}

    result = repair(ccdata, market_db, YESTERDAY, mapped_instruments=[mapped])

    assert result.success
    fetched = {
        (request.query["market"], request.query["instrument"])
        for request in fake_api.requests
        if request.path == HISTORY_PATH
    }
    assert fetched == {(pair.exchange, pair.exchange_instrument_id) for pair in listing}
    assert {key[:2] for key in stored(market_db)} == {
        (pair.exchange, pair.exchange_instrument_id) for pair in listing
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "name at least one pair"),
        ({"instruments": ["XXBTZUSD"]}, "market:INSTRUMENT"),
        ({"instruments": ["kraken:X"], "first_day": "2024-02-30"}, "day is out of range"),
        ({"instruments": ["kraken:X"], "first_day": "2024-03-02", "last_day": "2024-03-01"}, "is after"),
    ],
)
def test_repair_config_names_what_is_wrong(config: dict[str, Any], message: str) -> None:
    days = {"first_day": "2024-03-01", "last_day": "2024-03-01"}
    with pytest.raises(ValueError, match=message):
        RepairConfig(**{**days, **config})


def test_a_repair_of_an_unknown_mapped_instrument_fails_naming_it(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    result = repair(ccdata, market_db, YESTERDAY, mapped_instruments=["NOPE-USD"])
    assert not result.success
    assert "NOPE-USD" in failure_description(result, "repair_pairs")


# --- Prices across exchanges and over time ------------------------------------------------------


def check_evaluation(result: dg.ExecuteInProcessResult, name: str) -> Any:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_a_close_far_from_the_other_exchanges_is_reported_and_only_that_one(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    quoted = Counter(pair.mapped_instrument for pair in universe)
    mapped = next(symbol for symbol, exchanges in quoted.most_common() if exchanges >= 4)
    planted = next(pair for pair in universe if pair.mapped_instrument == mapped)
    first = YESTERDAY - dt.timedelta(days=4)
    clean = materialize_candles(ccdata, market_db, first, YESTERDAY)
    assert check_evaluation(clean, "close_near_other_exchanges").passed

    instrument = fake_api.dataset.market(planted.exchange).find_instrument(planted.exchange_instrument_id)
    instrument.reference_price *= 1.4  # a mislabelled quote: 40 % above every other exchange
    flagged = check_evaluation(
        materialize_candles(ccdata, market_db, first, YESTERDAY), "close_near_other_exchanges"
    )

    assert not flagged.passed and flagged.severity == dg.AssetCheckSeverity.WARN
    assert flagged.metadata["outliers"].value == 5  # every day of the window, that pair only
    table = flagged.metadata["largest"].value
    assert planted.exchange in table and mapped in table
    assert [line for line in table.splitlines()[2:] if f"| {planted.exchange} |" not in line] == []


def test_a_frozen_close_is_reported(universe: list[Pair], market_db: MarketDatabase) -> None:
    day = dt.datetime.combine(YESTERDAY, dt.time())
    frozen_pair = universe[0]
    rows = [
        {
            "datetime": day - dt.timedelta(days=offset),
            "exchange": frozen_pair.exchange,
            "symbol_unmapped": frozen_pair.exchange_instrument_id,
            "symbol": frozen_pair.mapped_instrument,
            "close": 1.25,
            "volume": 10.0,
            "collected_at": day,
        }
        for offset in range(6)
    ]
    with market_db.begin() as connection:
        connection.execute(cc_ohlcv_spot_1d_raw.insert(), rows)
        frozen, sample = queries.stale_closes(
            connection, day - dt.timedelta(days=9), day + dt.timedelta(days=1), 5
        )
    assert frozen == 1 and sample[0]["symbol_unmapped"] == frozen_pair.exchange_instrument_id


def test_a_ranged_run_shows_each_days_own_figures_on_its_partition(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    first = YESTERDAY - dt.timedelta(days=2)
    result = materialize_candles(ccdata, market_db, first, YESTERDAY)
    assert result.success
    by_partition = {
        event.partition: {key: value.value for key, value in event.metadata.items()}
        for event in result.asset_materializations_for_node("cc_ohlcv_spot_1d_raw")
    }
    days = [first + dt.timedelta(days=n) for n in range(3)]
    assert sorted(by_partition) == [day.isoformat() for day in days]
    per_day = Counter(key[2].date() for key in stored(market_db))
    for day in days:
        figures = by_partition[day.isoformat()]
        assert figures["dagster/row_count"] == per_day[day] < sum(per_day.values())
        assert day.isoformat() in figures["preview"] and figures["window"] == str(
            DayWindow(first, YESTERDAY + dt.timedelta(days=1))
        )


@pytest.mark.parametrize(
    ("job_name", "run_config"),
    [
        (
            "repair_ohlcv_pairs_job",
            {"instruments": ["kraken:X"], "first_day": "2024-02-01", "last_day": "2024-01-01"},
        ),
        (
            "repair_ohlcv_pairs_job",
            {"instruments": ["kraken"], "first_day": "2024-01-01", "last_day": "2024-01-02"},
        ),
        ("ohlcv_pair_history_job", {"write_batch_rows": 5}),
    ],
)
def test_the_pair_jobs_refuse_a_bad_config_when_the_run_is_launched(job_name: str, run_config: dict) -> None:
    from spot_pipeline.definitions import defs

    with pytest.raises(dg.DagsterError) as refused:
        dg.validate_run_config(defs().resolve_job_def(job_name), run_config)
    assert "validation error" in str(refused.value.__cause__)
