"""Pacing by the API key's own limits, and the budget a candle run checks before it starts."""

from __future__ import annotations

import datetime as dt

import pytest

from spot_pipeline.ccdata import CCDataClient, CCDataPayloadError, RateLimiter
from spot_pipeline.ccdata.key_limits import KeyLimits
from spot_pipeline.ccdata.rate_limiter import WINDOW_MARGIN
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.ohlcv import budget
from spot_pipeline.ohlcv.candles import DayWindow, Pair
from spot_pipeline.timeutils import utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer
from spot_pipeline_tests.pipeline import candle_metadata, failure_description, materialize_candles
from spot_pipeline_tests.test_ccdata_client import FakeClock

HISTORY_PATH = "/spot/v1/historical/days"
RATE_LIMIT_PATH = "/admin/v2/rate/limit"
YESTERDAY = utc_today() - dt.timedelta(days=1)
TWO_YEARS_AGO = YESTERDAY - dt.timedelta(days=729)


def key_payload(maximum: dict[str, int], remaining: dict[str, int]) -> dict[str, object]:
    """`Data` of /admin/v2/rate/limit, shaped as the provider sends it."""
    return {
        "TYPE": "3000",
        "API_KEY": {
            "TYPE": "3001",
            "MAX": {"TYPE": "3003", **maximum, "SOFT_CAP_ALLOWANCE_MULTIPLIER": 1.1},
            "REMAINING": {"TYPE": "3004", **remaining},
        },
    }


SMALL_KEY = {"SECOND": 5, "MINUTE": 60, "HOUR": 600, "DAY": 7_500, "MONTH": 50_000}
TWO_YEARS = DayWindow(TWO_YEARS_AGO, YESTERDAY + dt.timedelta(days=1))


# --- the key's limits (pure) ---


def test_the_pace_is_the_keys_second_never_above_the_configured_rate() -> None:
    limits = KeyLimits.from_payload(key_payload(SMALL_KEY, SMALL_KEY))
    assert limits.calls_per_second(configured=20) == 5
    assert limits.calls_per_second(configured=2) == 2


def test_a_run_that_fits_the_minute_takes_the_seconds_pace_and_a_longer_one_waits_for_windows() -> None:
    limits = KeyLimits.from_payload(key_payload(SMALL_KEY, {**SMALL_KEY, "MINUTE": 40}))
    assert limits.seconds_for(40, configured=20) == pytest.approx(40 / 5)
    # 40 now, 60 in the next minute at 5/s
    assert limits.seconds_for(100, configured=20) == pytest.approx(60 + 60 / 5)
    # 600 in this hour, 400 more in the next at 5/s
    assert limits.seconds_for(1_000, configured=20) == pytest.approx(3_600 + 400 / 5)


def test_the_budget_names_the_first_window_that_cannot_cover_the_run() -> None:
    limits = KeyLimits.from_payload(key_payload(SMALL_KEY, {**SMALL_KEY, "DAY": 100}))
    assert limits.shortfall(100) is None
    short = limits.shortfall(101)
    assert short is not None and short.name == "DAY" and short.remaining == 100


def test_windows_the_provider_does_not_report_are_left_out() -> None:
    limits = KeyLimits.from_payload(key_payload({"SECOND": 10}, {"SECOND": 9}))
    assert set(limits.windows) == {"SECOND"}
    assert limits.shortfall(10**9) is None and limits.seconds_for(20, configured=50) == 2


def test_a_payload_without_the_key_section_is_a_clear_error() -> None:
    with pytest.raises(CCDataPayloadError, match=r"API_KEY\.MAX"):
        KeyLimits.from_payload({"TYPE": "3000"})


def test_a_key_over_its_soft_cap_has_nothing_left() -> None:
    limits = KeyLimits.from_payload(key_payload(SMALL_KEY, {**SMALL_KEY, "DAY": -12}))
    short = limits.shortfall(1)
    assert short is not None and short.name == "DAY" and short.remaining == 0


def test_a_minute_window_lets_the_remaining_calls_go_at_once_then_waits_a_window() -> None:
    clock = FakeClock()
    minute = RateLimiter(60, 60, spaced=False, already_used=55, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(6):
        with minute.call():
            starts.append(clock.now)
    assert starts[:5] == [starts[0]] * 5
    assert starts[5] >= starts[0] + 60 * WINDOW_MARGIN


# --- a run paced by a small key ---


@pytest.mark.parametrize("market_db", ["sqlite"], indirect=True)
def test_a_small_keys_backfill_of_every_pair_stays_under_every_window(
    universe: list[Pair], market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    """Two years of every universe pair on a key allowing 5/s and 30/min: the minute binds (one
    request per pair, so more than the minute allows), and the run's calls take that bound, by the
    server's own clock (from the first request to the last), with no 429."""
    key = {"SECOND": 5, "MINUTE": 30, "HOUR": 600}
    fake_api.limit_key(**{window.lower(): limit for window, limit in key.items()})
    client = fake_api.client(calls_per_second=20, max_concurrency=8)
    expected_calls = budget.run_calls(len(universe), TWO_YEARS)
    assert 30 < expected_calls <= 60
    result = materialize_candles(client, market_db, TWO_YEARS_AGO, YESTERDAY)
    assert result.success
    arrivals = sorted(request.monotonic for request in fake_api.requests)
    assert fake_api.over_limit_requests == 0 and client.stats.rate_limited == 0
    assert len(arrivals) == expected_calls == candle_metadata(result)["api_calls_estimated"]
    bound = KeyLimits.from_payload(key_payload(key, key)).seconds_for(expected_calls, configured=20)
    # The bound counts the first call's own turn; the server sees the calls one interval later.
    calls_span = arrivals[-1] - arrivals[0] + 1 / key["SECOND"]
    assert 0.95 * bound <= calls_span <= 1.2 * bound, (calls_span, bound)


def test_a_run_the_keys_day_cannot_cover_is_refused_before_any_candle_is_fetched(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    fake_api.limit_key(day=len(universe))  # one call short: the limits call counts too
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert not result.success
    description = failure_description(result)
    assert "left this day" in description and "ignore_api_budget: true" in description
    assert fake_api.request_count(HISTORY_PATH) == 0


def test_ignore_api_budget_starts_the_run_anyway(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    fake_api.limit_key(day=len(universe) - 5)
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY, ignore_api_budget=True)
    assert fake_api.request_count(HISTORY_PATH) >= len(universe)
    assert not result.success  # the pairs past the day's calls met 429s
    assert fake_api.over_limit_requests > 0


def test_without_the_limits_endpoint_the_run_keeps_the_configured_pace(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, fake_api: FakeCCDataServer
) -> None:
    fake_api.fail_next(ccdata.max_retries + 1, 503, path=RATE_LIMIT_PATH)
    result = materialize_candles(ccdata, market_db, YESTERDAY, YESTERDAY)
    assert result.success
    metadata = candle_metadata(result)
    assert metadata["api_pace_source"] == "configured"
    assert metadata["api_pace_per_second"] == ccdata.calls_per_second


@pytest.mark.parametrize("market_db", ["sqlite"], indirect=True)
def test_the_estimate_command_prints_a_planned_backfills_calls_without_fetching_candles(
    universe: list[Pair],
    market_db: MarketDatabase,
    fake_api: FakeCCDataServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_api.limit_key(second=5, day=50)
    monkeypatch.setenv("MARKET_DB_URL", market_db.url)
    monkeypatch.setenv("CCDATA_DATA_API_URL", fake_api.data_api_url)
    budget.main(["2010-01-01", YESTERDAY.isoformat()])  # two requests per pair: over 5000 days
    printed = capsys.readouterr().out
    assert f"{len(universe)} pairs" in printed and f"about {2 * len(universe) + 1} API calls" in printed
    assert "at 5/s" in printed and "refused" in printed and "ignore_api_budget" in printed
    assert fake_api.request_count(HISTORY_PATH) == 0 and fake_api.request_count(RATE_LIMIT_PATH) == 1
