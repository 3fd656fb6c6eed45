"""The fake CCData server: payload shapes, deterministic candles, misbehaviour on demand."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from spot_pipeline.timeutils import day_start, epoch_seconds
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer, FakeDataset, FakeInstrument

NOW = 1_749_141_594  # 2025-06-05 16:39:54 UTC
TODAY = date(2025, 6, 5)
HISTORY = "/spot/v1/historical/days"
INSTRUMENTS = "/spot/v1/markets/instruments"
TOP_LIST = "/asset/v1/top/list"
EXCHANGES = "/data/exchanges/general"
RATE_LIMIT = "/admin/v2/rate/limit"

# Field names of the real candle in the provider's sample response, in their order.
SAMPLE_CANDLE_FIELDS = [
    "UNIT", "TIMESTAMP", "TYPE", "MARKET", "INSTRUMENT", "MAPPED_INSTRUMENT", "BASE", "QUOTE",
    "BASE_ID", "QUOTE_ID", "TRANSFORM_FUNCTION", "OPEN", "HIGH", "LOW", "CLOSE",
    "FIRST_TRADE_TIMESTAMP", "LAST_TRADE_TIMESTAMP", "FIRST_TRADE_PRICE", "HIGH_TRADE_PRICE",
    "HIGH_TRADE_TIMESTAMP", "LOW_TRADE_PRICE", "LOW_TRADE_TIMESTAMP", "LAST_TRADE_PRICE",
    "TOTAL_TRADES", "TOTAL_TRADES_BUY", "TOTAL_TRADES_SELL", "TOTAL_TRADES_UNKNOWN",
    "VOLUME", "QUOTE_VOLUME", "VOLUME_BUY", "QUOTE_VOLUME_BUY", "VOLUME_SELL", "QUOTE_VOLUME_SELL",
    "VOLUME_UNKNOWN", "QUOTE_VOLUME_UNKNOWN",
]  # fmt: skip
TRADE_FIELDS = [name for name in SAMPLE_CANDLE_FIELDS if "_TRADE_" in name]
VOLUME_FIELDS = [name for name in SAMPLE_CANDLE_FIELDS if "VOLUME" in name]
SAMPLE_INSTRUMENT_FIELDS = [
    "TYPE", "INSTRUMENT_STATUS", "INSTRUMENT", "HISTO_SHARD", "MAPPED_INSTRUMENT", "INSTRUMENT_MAPPING",
    "HAS_TRADES_SPOT", "FIRST_TRADE_SPOT_TIMESTAMP", "LAST_TRADE_SPOT_TIMESTAMP", "TOTAL_TRADES_SPOT",
]  # fmt: skip
TOP_LIST_ITEM_FIELDS = {
    "ID", "TYPE", "ID_LEGACY", "ID_PARENT_ASSET", "ID_ASSET_ISSUER", "SYMBOL", "URI", "ASSET_TYPE",
    "ASSET_ISSUER_NAME", "PARENT_ASSET_SYMBOL", "CREATED_ON", "UPDATED_ON", "PUBLIC_NOTICE", "NAME",
    "LOGO_URL", "LAUNCH_DATE", "ASSET_DESCRIPTION_SNIPPET", "ASSET_DECIMAL_POINTS", "PRICE_USD",
    "PRICE_USD_SOURCE", "MKT_CAP_PENALTY", "CIRCULATING_MKT_CAP_USD", "TOTAL_MKT_CAP_USD",
    "TOPLIST_BASE_RANK",
    *(
        f"SPOT_MOVING_{window}_QUOTE_VOLUME_{kind}"
        for window in ("24_HOUR", "7_DAY", "30_DAY")
        for kind in ("USD", "TOP_TIER_USD")
    ),
}  # fmt: skip
DEFAULT_DATASET = FakeDataset.default()
DEFAULT_LISTINGS = [
    (market_key, instrument)
    for market_key, market in DEFAULT_DATASET.markets.items()
    for instrument in market.instruments
]


@pytest.fixture
def server() -> Iterator[FakeCCDataServer]:
    """A fake API without a key that believes it is NOW."""
    with FakeCCDataServer(now=lambda: NOW) as fake:
        yield fake


def get(base_url: str, path: str, timeout: float = 5, **params: Any) -> requests.Response:
    return requests.get(base_url + path, params=params, timeout=timeout)


def data(server: FakeCCDataServer, path: str, **params: Any) -> Any:
    """`Data` of a successful data-api call."""
    response = get(server.data_api_url, path, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Err"] == {}
    return body["Data"]


def candles(server: FakeCCDataServer, market: str, instrument: str, **params: Any) -> list[dict[str, Any]]:
    return data(server, HISTORY, market=market, instrument=instrument, **params)


def err(response: requests.Response, status: int) -> dict[str, Any]:
    """The `Err` member of a data-api error answer with HTTP `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["Data"] == {}
    return body["Err"]


def midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


# ---- historical days


def test_closed_days_are_identical_across_requests_and_servers(server: FakeCCDataServer) -> None:
    first = candles(server, "kraken", "BTC-USD", limit=60, to_ts=NOW - 86_400)
    assert candles(server, "kraken", "BTC-USD", limit=60, to_ts=NOW - 86_400) == first
    with FakeCCDataServer(now=lambda: NOW) as other:
        assert candles(other, "kraken", "BTC-USD", limit=60, to_ts=NOW - 86_400) == first


def test_candles_do_not_depend_on_python_hash_randomisation() -> None:
    script = (
        "import json; from datetime import date;"
        "from spot_pipeline_dev.fake_ccdata import FakeDataset;"
        "d = FakeDataset.default(); i = d.market('binance').find_instrument('ETHUSDT');"
        "candles = d.daily_candles('binance', i, last_day=date(2024, 1, 1), limit=5, now=0, variant=0);"
        "print(json.dumps(candles))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1] and json.loads(outputs[0])


def test_current_day_candle_is_incomplete_and_changes_on_every_request(server: FakeCCDataServer) -> None:
    first = candles(server, "kraken", "XXBTZUSD", limit=2)[-1]
    second = candles(server, "kraken", "XXBTZUSD", limit=2)[-1]
    assert first["TIMESTAMP"] == second["TIMESTAMP"] == midnight(TODAY)
    assert first != second
    for candle in (first, second):
        assert midnight(TODAY) <= candle["FIRST_TRADE_TIMESTAMP"] <= candle["LAST_TRADE_TIMESTAMP"] < NOW


def test_to_ts_is_inclusive(server: FakeCCDataServer) -> None:
    day = date(2024, 3, 10)
    for to_ts, expected_last in (
        (midnight(day), day),
        (midnight(day) + 86_399, day),
        (midnight(day) + 86_400, day + timedelta(days=1)),
    ):
        result = candles(server, "coinbase", "ETH-USD", limit=3, to_ts=to_ts)
        assert [c["TIMESTAMP"] for c in result] == [
            midnight(expected_last - timedelta(days=offset)) for offset in (2, 1, 0)
        ]


def test_limit_defaults_to_30_and_is_bounded(server: FakeCCDataServer) -> None:
    assert len(candles(server, "binance", "BTCUSDT", to_ts=NOW)) == 30
    assert (
        len(candles(server, "binance", "BTCUSDT", limit=5000, to_ts=NOW))
        == (TODAY - date(2017, 7, 1)).days + 1
    )
    for limit in (5001, 0, "many"):
        error = err(
            get(server.data_api_url, HISTORY, market="binance", instrument="BTCUSDT", limit=limit), 400
        )
        assert error["other_info"]["param"] == "limit"


def test_mapped_symbol_and_exchange_id_resolve_to_the_same_candles(server: FakeCCDataServer) -> None:
    by_mapped = candles(server, "kraken", "BTC-USD", limit=10, to_ts=NOW - 86_400)
    assert candles(server, "kraken", "XXBTZUSD", limit=10, to_ts=NOW - 86_400) == by_mapped
    assert {(c["INSTRUMENT"], c["MAPPED_INSTRUMENT"]) for c in by_mapped} == {("XXBTZUSD", "BTC-USD")}


def test_unknown_market_is_400_and_unknown_instrument_is_404(server: FakeCCDataServer) -> None:
    unknown_market = err(get(server.data_api_url, HISTORY, market="Kraken", instrument="BTC-USD"), 400)
    assert unknown_market["other_info"] == {"param": "market", "values": ["Kraken"]}
    unknown_instrument = err(get(server.data_api_url, HISTORY, market="kraken", instrument="BTC-XYZ"), 404)
    assert unknown_instrument["other_info"]["param"] == "instrument"
    assert isinstance(unknown_instrument["type"], int) and unknown_instrument["message"]


def test_candles_carry_every_field_of_the_real_sample(server: FakeCCDataServer) -> None:
    candle = candles(server, "kraken", "BTC-USD", limit=1, to_ts=NOW - 86_400)[0]
    assert list(candle) == SAMPLE_CANDLE_FIELDS
    assert candle["UNIT"] == "DAY" and candle["TYPE"] == "954" and candle["MARKET"] == "kraken"
    assert (candle["BASE_ID"], candle["QUOTE_ID"]) == (1, 5)


def test_recent_candles_of_every_instrument_are_consistent(server: FakeCCDataServer) -> None:
    for market_key, market in server.dataset.markets.items():
        for instrument in market.instruments:
            for candle in candles(server, market_key, instrument.instrument, limit=40, to_ts=NOW):
                if candle["TOTAL_TRADES"]:
                    assert_traded_candle_is_consistent(candle)


@settings(max_examples=300, deadline=None)
@given(
    listing=st.sampled_from(DEFAULT_LISTINGS),
    day=st.dates(min_value=date(2011, 8, 1), max_value=TODAY),
    seconds_into_today=st.integers(min_value=0, max_value=86_399),
)
def test_any_candle_is_consistent(
    listing: tuple[str, FakeInstrument], day: date, seconds_into_today: int
) -> None:
    market_key, instrument = listing
    now = midnight(TODAY) + seconds_into_today
    window = DEFAULT_DATASET.daily_candles(market_key, instrument, last_day=day, limit=1, now=now, variant=7)
    if not window:
        assert day < DEFAULT_DATASET.markets[market_key].history_start
        return
    candle = window[0]
    if candle["TOTAL_TRADES"]:
        assert_traded_candle_is_consistent(candle)
        if day == TODAY:
            assert candle["LAST_TRADE_TIMESTAMP"] < now
    else:
        assert not set(TRADE_FIELDS) & set(candle)


def assert_traded_candle_is_consistent(candle: dict[str, Any]) -> None:
    start = candle["TIMESTAMP"]
    assert 0 < candle["LOW"] <= min(candle["OPEN"], candle["CLOSE"])
    assert max(candle["OPEN"], candle["CLOSE"]) <= candle["HIGH"]
    for name in ("FIRST", "HIGH", "LOW", "LAST"):
        assert start <= candle[f"{name}_TRADE_TIMESTAMP"] < start + 86_400
    assert candle["FIRST_TRADE_TIMESTAMP"] <= candle["LAST_TRADE_TIMESTAMP"]
    assert (candle["FIRST_TRADE_PRICE"], candle["LAST_TRADE_PRICE"]) == (candle["OPEN"], candle["CLOSE"])
    sides = ("BUY", "SELL", "UNKNOWN")
    assert sum(candle[f"TOTAL_TRADES_{side}"] for side in sides) == candle["TOTAL_TRADES"]
    assert sum(candle[f"VOLUME_{side}"] for side in sides) == pytest.approx(candle["VOLUME"])
    assert sum(candle[f"QUOTE_VOLUME_{side}"] for side in sides) == pytest.approx(candle["QUOTE_VOLUME"])
    assert candle["VOLUME"] > 0 and candle["QUOTE_VOLUME"] > 0


def test_days_without_trades_repeat_the_previous_close_and_lack_trade_fields(
    server: FakeCCDataServer,
) -> None:
    history = candles(server, "kraken", "XXBTZUSD", limit=5000, to_ts=NOW - 86_400)
    quiet_days = [
        (previous, candle)
        for previous, candle in itertools.pairwise(history)
        if candle["OPEN"] and not candle["TOTAL_TRADES"]
    ]
    assert len(quiet_days) > 10
    for previous, candle in quiet_days:
        assert not set(TRADE_FIELDS) & set(candle)
        assert candle["OPEN"] == candle["HIGH"] == candle["LOW"] == candle["CLOSE"] == previous["CLOSE"]
        assert all(candle[name] == 0 for name in VOLUME_FIELDS)


def test_days_before_the_first_trade_are_zero_filled_and_none_exist_before_the_history_start(
    server: FakeCCDataServer,
) -> None:
    # kraken's history starts on 2013-09-01; XXBTZUSD first traded on 2013-10-06.
    window = candles(server, "kraken", "XXBTZUSD", limit=100, to_ts=midnight(date(2013, 10, 10)))
    assert window[0]["TIMESTAMP"] == midnight(date(2013, 9, 1))
    assert len(window) == 40
    first_trade = midnight(date(2013, 10, 6))
    for candle in window:
        if candle["TIMESTAMP"] < first_trade:
            assert candle["OPEN"] == candle["HIGH"] == candle["LOW"] == candle["CLOSE"] == 0
            assert candle["TOTAL_TRADES"] == 0 and not set(TRADE_FIELDS) & set(candle)
        else:
            assert candle["TOTAL_TRADES"] > 0
    before_history = get(
        server.data_api_url,
        HISTORY,
        market="kraken",
        instrument="XXBTZUSD",
        limit=10,
        to_ts=midnight(date(2013, 8, 1)),
    )
    assert "No data" in err(before_history, 404)["message"]  # as the API answers a window without data


def test_retired_instrument_has_no_trades_after_its_last_day(server: FakeCCDataServer) -> None:
    after = candles(server, "kraken", "BSVUSD", limit=3, to_ts=midnight(date(2019, 5, 12)))
    assert [c["TOTAL_TRADES"] > 0 for c in after] == [True, False, False]
    assert after[1]["CLOSE"] == after[2]["CLOSE"] == after[0]["CLOSE"]


def test_inverted_pair_reports_its_transform(server: FakeCCDataServer) -> None:
    candle = candles(server, "coinbase", "USDT-USDC", limit=1, to_ts=NOW - 86_400)[0]
    assert (candle["INSTRUMENT"], candle["MAPPED_INSTRUMENT"]) == ("USDT-USDC", "USDC-USDT")
    assert candle["TRANSFORM_FUNCTION"] and candle["BASE"] == "USDC" and candle["QUOTE"] == "USDT"


def test_market_without_trade_sides_counts_everything_unknown(server: FakeCCDataServer) -> None:
    candle = candles(server, "poloniex", "BTC_USDT", limit=1, to_ts=NOW - 86_400)[0]
    assert candle["TOTAL_TRADES_UNKNOWN"] == candle["TOTAL_TRADES"] > 0
    assert candle["TOTAL_TRADES_BUY"] == candle["TOTAL_TRADES_SELL"] == 0


def test_remapped_instrument_is_served_under_its_new_symbol(server: FakeCCDataServer) -> None:
    before = candles(server, "kraken", "XXBTZUSD", limit=3, to_ts=NOW - 86_400)
    server.dataset.market("kraken").find_instrument("XXBTZUSD").mapped_instrument = "XBT-USD"
    after = candles(server, "kraken", "XXBTZUSD", limit=3, to_ts=NOW - 86_400)
    assert [c["MAPPED_INSTRUMENT"] for c in after] == ["XBT-USD"] * 3
    assert [c["CLOSE"] for c in after] == [c["CLOSE"] for c in before]
    assert get(server.data_api_url, HISTORY, market="kraken", instrument="BTC-USD").status_code == 404
    listed = data(server, INSTRUMENTS, market="kraken", instrument_status="ACTIVE")["kraken"]["instruments"]
    assert "XBT-USD" in listed and "BTC-USD" not in listed


# ---- instruments


def test_instruments_match_the_sample_shape(server: FakeCCDataServer) -> None:
    kraken = data(server, INSTRUMENTS, market="kraken", instrument_status="ACTIVE")["kraken"]
    assert kraken["TYPE"] == "602" and kraken["EXCHANGE_STATUS"] == "ACTIVE"
    assert set(kraken["INSTRUMENT_STATUS"]) == {"ACTIVE", "IGNORED", "RETIRED", "EXPIRED", "RETIRED_UNMAPPED"}
    btc = kraken["instruments"]["BTC-USD"]
    assert list(btc) == SAMPLE_INSTRUMENT_FIELDS
    assert btc["INSTRUMENT"] == "XXBTZUSD" and btc["TYPE"] == "612"
    assert set(btc["INSTRUMENT_MAPPING"]) == {
        "MAPPED_INSTRUMENT", "BASE", "BASE_ID", "QUOTE", "QUOTE_ID", "TRANSFORM_FUNCTION", "CREATED_ON",
    }  # fmt: skip
    assert btc["FIRST_TRADE_SPOT_TIMESTAMP"] < btc["LAST_TRADE_SPOT_TIMESTAMP"] < NOW


def test_instruments_filter_by_status(server: FakeCCDataServer) -> None:
    def statuses(**params: Any) -> set[str]:
        markets = data(server, INSTRUMENTS, **params)
        return {i["INSTRUMENT_STATUS"] for m in markets.values() for i in m["instruments"].values()}

    assert statuses() == {"ACTIVE", "RETIRED", "IGNORED"}
    assert statuses(instrument_status="ACTIVE") == {"ACTIVE"}
    assert statuses(instrument_status="RETIRED") == {"RETIRED"}
    ignored = data(server, INSTRUMENTS, market="bitfinex", instrument_status="IGNORED")["bitfinex"]
    assert list(ignored["instruments"]) == ["BTC-USDT"]


def test_instruments_of_several_or_all_markets(server: FakeCCDataServer) -> None:
    assert set(data(server, INSTRUMENTS, market="kraken,binance")) == {"kraken", "binance"}
    assert set(data(server, INSTRUMENTS)) == set(server.dataset.markets)


def test_instruments_reject_unknown_markets_and_statuses(server: FakeCCDataServer) -> None:
    assert err(get(server.data_api_url, INSTRUMENTS, market="kraken,nowhere"), 400)["other_info"] == {
        "param": "market",
        "values": ["nowhere"],
    }
    error = err(get(server.data_api_url, INSTRUMENTS, instrument_status="LIVE"), 400)
    assert error["other_info"]["param"] == "instrument_status"


def test_added_instrument_is_listed_and_served(server: FakeCCDataServer) -> None:
    server.dataset.market("gemini").instruments.append(
        FakeInstrument("dogeusd", "DOGE-USD", "DOGE", 12, "USD", 5, first_trade_day=date(2025, 6, 1))
    )
    assert "DOGE-USD" in data(server, INSTRUMENTS, market="gemini")["gemini"]["instruments"]
    assert len(candles(server, "gemini", "dogeusd", limit=10, to_ts=NOW - 86_400)) == 10


# ---- top list


def test_top_list_pages_cover_every_asset_once(server: FakeCCDataServer) -> None:
    seen: list[int] = []
    for page in range(1, 5):
        result = data(
            server, TOP_LIST, page=page, page_size=10, sort_by="SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD"
        )
        assert result["STATS"]["PAGE"] == page and result["STATS"]["PAGE_SIZE"] == 10
        seen += [item["ID"] for item in result["LIST"]]
    total = result["STATS"]["TOTAL_ASSETS"]
    assert len(seen) == len(set(seen)) == total
    assert total == len([asset for asset in server.dataset.assets if asset.asset_type != "FIAT"])


def test_top_list_items_are_sorted_and_complete(server: FakeCCDataServer) -> None:
    items = data(server, TOP_LIST, page_size=100, sort_by="CIRCULATING_MKT_CAP_USD", sort_direction="ASC")[
        "LIST"
    ]
    caps = [item["CIRCULATING_MKT_CAP_USD"] for item in items]
    assert caps == sorted(caps)
    for item in items:
        assert set(item) >= TOP_LIST_ITEM_FIELDS
    btc = next(item for item in items if item["ID"] == 1)
    assert btc["TOPLIST_BASE_RANK"]["CREATED_ON"] == 1


def test_top_list_has_two_assets_sharing_a_symbol(server: FakeCCDataServer) -> None:
    items = data(server, TOP_LIST, page_size=100)["LIST"]
    gmt = sorted((item for item in items if item["SYMBOL"] == "GMT"), key=lambda item: item["ID"])
    assert len(gmt) == 2 and gmt[0]["ID"] != gmt[1]["ID"]
    volumes = [item["SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD"] for item in gmt]
    assert max(volumes) > 100 * min(volumes)


@pytest.mark.parametrize(
    ("param", "value"),
    [("page_size", 5), ("page_size", 101), ("page", 0), ("page", 1001), ("sort_by", "NAME")],
)
def test_top_list_rejects_out_of_range_parameters(
    server: FakeCCDataServer, param: str, value: object
) -> None:
    assert err(get(server.data_api_url, TOP_LIST, **{param: value}), 400)["other_info"]["param"] == param


def test_rate_limit_endpoint_matches_the_sample_shape(server: FakeCCDataServer) -> None:
    result = data(server, RATE_LIMIT)
    assert result["TYPE"] == "3000"
    for key in ("API_KEY", "AUTH_KEY"):
        assert {part["TYPE"] for name, part in result[key].items() if name != "TYPE"} == {
            "3002",
            "3003",
            "3004",
        }
    assert result["API_KEY"]["USED"]["SECOND"] >= 1


# ---- min-api


def test_exchanges_general_uses_the_min_api_envelope_and_string_numbers(server: FakeCCDataServer) -> None:
    body = get(server.min_api_url, EXCHANGES).json()
    assert (body["Response"], body["Message"], body["Type"]) == ("Success", "", 100)
    exchanges = body["Data"]
    kraken = exchanges["2431"]
    assert kraken["InternalName"] == "Kraken" and kraken["Grade"] == "AA"
    assert isinstance(kraken["GradePoints"], str) and float(kraken["GradePoints"]) > 0
    assert all(isinstance(value, str) for value in kraken["GradePointsSplit"].values())
    assert isinstance(kraken["SortOrder"], str) and set(kraken["TOTALVOLUME24H"]) == {"BTC", "USD"}
    assert all(exchange["InternalName"][0].isupper() for exchange in exchanges.values())


def test_default_exchanges_exercise_every_grade_and_a_missing_market(server: FakeCCDataServer) -> None:
    exchanges = get(server.min_api_url, EXCHANGES).json()["Data"].values()
    assert {exchange.get("Grade") for exchange in exchanges} >= {"AA", "A", "BB", "B", "C", "", None}
    markets = set(server.dataset.markets)
    unmatched_good = [
        e
        for e in exchanges
        if e.get("Grade") in ("AA", "A", "BB") and e["InternalName"].lower() not in markets
    ]
    assert unmatched_good


# ---- errors and authentication


def test_unknown_paths_and_wrong_hosts(server: FakeCCDataServer) -> None:
    assert err(get(server.data_api_url, "/no/such/path"), 404)["message"]
    assert err(get(server.data_api_url, EXCHANGES), 404)
    for path in ("/no/such/path", HISTORY):
        response = get(server.min_api_url, path)
        assert response.status_code == 200
        assert (response.json()["Response"], response.json()["Type"]) == ("Error", 1)


def test_api_key_is_required_in_the_header() -> None:
    with FakeCCDataServer(api_key="k-123", now=lambda: NOW) as server:
        assert err(get(server.data_api_url, RATE_LIMIT), 401)["message"]
        assert get(server.min_api_url, EXCHANGES).json()["Response"] == "Error"
        assert err(get(server.data_api_url, RATE_LIMIT, api_key="k-123"), 401)
        headers = {"authorization": "Apikey k-123"}
        assert requests.get(server.data_api_url + RATE_LIMIT, headers=headers, timeout=5).status_code == 200
        log = server.requests
        assert [(r.has_authorization, r.query.get("api_key")) for r in log] == [
            (False, None),
            (False, None),
            (False, "k-123"),
            (True, None),
        ]


# ---- misbehaviour


def test_fail_next_answers_with_the_status_then_recovers(server: FakeCCDataServer) -> None:
    server.fail_next(2, 503)
    assert err(get(server.data_api_url, RATE_LIMIT), 503)["message"]
    assert get(server.min_api_url, EXCHANGES).status_code == 503
    assert get(server.data_api_url, RATE_LIMIT).status_code == 200


def test_fail_next_429_carries_retry_after_and_min_api_type_99(server: FakeCCDataServer) -> None:
    server.fail_next(1, 429, retry_after=2)
    response = get(server.data_api_url, RATE_LIMIT)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    server.fail_next(1, 429)
    body = get(server.min_api_url, EXCHANGES).json()
    assert (body["Response"], body["Type"]) == ("Error", 99)


def test_fail_next_only_hits_its_path(server: FakeCCDataServer) -> None:
    server.fail_next(1, 500, path=TOP_LIST)
    assert get(server.data_api_url, RATE_LIMIT).status_code == 200
    assert get(server.data_api_url, TOP_LIST).status_code == 500
    assert get(server.data_api_url, TOP_LIST).status_code == 200


def test_fail_next_rejects_statuses_it_cannot_inject(server: FakeCCDataServer) -> None:
    with pytest.raises(ValueError):
        server.fail_next(1, 404)


def test_malformed_next_sends_invalid_json(server: FakeCCDataServer) -> None:
    server.malformed_next(1)
    response = get(server.data_api_url, TOP_LIST)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_drop_connection_next_closes_without_answer(server: FakeCCDataServer) -> None:
    server.drop_connection_next(1)
    with pytest.raises(requests.ConnectionError):
        get(server.data_api_url, RATE_LIMIT)
    assert get(server.data_api_url, RATE_LIMIT).status_code == 200
    assert [request.status for request in server.requests] == [None, 200]
    assert server.max_requests_in_any_second() == 1


def test_slow_next_and_latency_delay_answers(server: FakeCCDataServer) -> None:
    server.slow_next(1, 0.3)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        get(server.data_api_url, RATE_LIMIT, timeout=0.1)
    server.latency_seconds = 0.1
    assert get(server.data_api_url, RATE_LIMIT).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_held_answers_wait_until_released(server: FakeCCDataServer) -> None:
    server.hold_answers()
    statuses: list[int] = []

    def call() -> None:
        statuses.append(get(server.data_api_url, RATE_LIMIT).status_code)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while server.held_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.held_requests == 1 and statuses == [] and server.request_count() == 0
    server.release_answers()
    caller.join(timeout=5)
    assert statuses == [200] and server.held_requests == 0
    assert get(server.data_api_url, RATE_LIMIT).status_code == 200


def test_a_key_limit_per_second_is_enforced(server: FakeCCDataServer) -> None:
    server.limit_key(second=5)
    responses = [get(server.data_api_url, RATE_LIMIT) for _ in range(8)]
    assert [response.status_code for response in responses] == [200] * 5 + [429] * 3
    assert int(responses[-1].headers["Retry-After"]) >= 1
    assert server.over_limit_requests == 3
    body = get(server.min_api_url, EXCHANGES).json()
    assert (body["Response"], body["Type"]) == ("Error", 99)


def test_request_log_counts_and_resets(server: FakeCCDataServer) -> None:
    get(server.data_api_url, RATE_LIMIT)
    get(server.data_api_url, TOP_LIST, page_size=10)
    assert server.request_count() == 2 and server.request_count(TOP_LIST) == 1
    record = server.requests[-1]
    assert (record.api, record.path, record.query, record.status) == (
        "data",
        TOP_LIST,
        {"page_size": "10"},
        200,
    )
    assert server.max_requests_in_any_second() == 2
    server.reset_log()
    assert server.request_count() == 0


def test_stop_is_quick_with_open_and_slow_connections() -> None:
    server = FakeCCDataServer(now=lambda: NOW).start()
    url = server.data_api_url
    session = requests.Session()
    assert session.get(url + RATE_LIMIT, timeout=5).status_code == 200  # keep-alive
    server.slow_next(1, 10)
    outcomes: list[object] = []

    def call_slowly() -> None:
        try:
            outcomes.append(get(url, TOP_LIST).status_code)
        except requests.RequestException as error:
            outcomes.append(error)

    slow = threading.Thread(target=call_slowly)
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    slow.join(timeout=2)
    assert outcomes and isinstance(outcomes[0], requests.ConnectionError)
    with pytest.raises(requests.ConnectionError):
        session.get(url + RATE_LIMIT, timeout=1)


# ---- datasets and the command line


def test_synthetic_dataset_for_benchmarks() -> None:
    dataset = FakeDataset.synthetic(markets=4, pairs_per_market=100, history_start=date(2024, 1, 1))
    assert sum(len(market.instruments) for market in dataset.markets.values()) == 400
    assert len(dataset.exchanges) == 4
    with FakeCCDataServer(dataset, now=lambda: NOW) as server:
        listed = data(server, INSTRUMENTS, instrument_status="ACTIVE")
        assert [len(market["instruments"]) for market in listed.values()] == [100] * 4
        market_key = next(iter(dataset.markets))
        instrument = dataset.markets[market_key].instruments[0]
        history = candles(server, market_key, instrument.mapped_instrument, limit=5000, to_ts=NOW)
        assert history[0]["TIMESTAMP"] == epoch_seconds(day_start(date(2024, 1, 1)))
        assert date(2024, 1, 1) <= instrument.first_trade_day < date(2025, 1, 1)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "spot_pipeline_dev.fake_ccdata", "--data-port", "0", "--min-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = [process.stdout.readline().split()[-1] for _ in range(2)]
        assert get(urls[0], RATE_LIMIT).status_code == 200
        assert get(urls[1], EXCHANGES).json()["Response"] == "Success"
        process.send_signal(stop_signal)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
