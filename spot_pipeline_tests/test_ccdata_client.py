"""The CCData client resource against the fake CCData server, over real HTTP."""

import itertools
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from spot_pipeline.ccdata import (
    CCDataAuthError,
    CCDataClient,
    CCDataError,
    CCDataNotFoundError,
    CCDataPayloadError,
    CCDataRateLimitError,
    CCDataRequestError,
    CCDataUnavailableError,
    ClientStats,
    RateLimiter,
)
from spot_pipeline.ccdata.rate_limiter import WINDOW_SECONDS
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer

API_KEY = "sk-test-5f0c1e9d7a2b"
HISTORY = "/spot/v1/historical/days"
EXCHANGES = "/data/exchanges/general"
RATE_LIMIT = "/admin/v2/rate/limit"
NOW = 1_749_141_594  # 2025-06-05 16:39:54 UTC
YESTERDAY_NOON = NOW - 86_400


@pytest.fixture
def server() -> Iterator[FakeCCDataServer]:
    """A fake API that requires API_KEY and believes it is NOW."""
    with FakeCCDataServer(api_key=API_KEY, now=lambda: NOW) as fake:
        yield fake


@pytest.fixture
def make_client(server: FakeCCDataServer) -> Callable[..., CCDataClient]:
    """Build clients of `server` with fast pacing and backoff; keyword arguments override."""

    def build(**overrides: Any) -> CCDataClient:
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "calls_per_second": 1000,
            "timeout_seconds": 2,
            "max_retries": 3,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.5,
        }
        return server.client(**{**settings, **overrides})

    return build


@pytest.fixture
def client(make_client: Callable[..., CCDataClient]) -> Iterator[CCDataClient]:
    ccdata = make_client()
    yield ccdata
    ccdata.close()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of `times` inside any half-open window of `window` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for index, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, index - start + 1)
    return best


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def run_in_threads(threads: int, calls: int, call: Callable[[], object]) -> float:
    """Run `call` `calls` times in each of `threads` threads; return the elapsed seconds."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(calls):
                call()
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not errors, errors
    return time.monotonic() - started


# ---- happy paths


def test_exchanges_general_returns_exchanges_keyed_by_id(client: CCDataClient) -> None:
    exchanges = client.exchanges_general()
    kraken = exchanges["2431"]
    assert kraken["InternalName"] == "Kraken"
    assert kraken["Grade"] == "AA"
    assert isinstance(kraken["GradePoints"], str)


def test_spot_instruments_sends_status_and_markets(client: CCDataClient, server: FakeCCDataServer) -> None:
    data = client.spot_instruments("RETIRED", ["kraken", "coinbase"])
    assert set(data) == {"kraken", "coinbase"}
    assert {i["INSTRUMENT_STATUS"] for m in data.values() for i in m["instruments"].values()} == {"RETIRED"}
    assert server.requests[-1].query == {"instrument_status": "RETIRED", "market": "kraken,coinbase"}


def test_spot_instruments_of_every_market(client: CCDataClient, server: FakeCCDataServer) -> None:
    data = client.spot_instruments("ACTIVE")
    assert set(data) == set(server.dataset.markets)
    assert "market" not in server.requests[-1].query


def test_spot_instruments_rejects_an_empty_market_list(client: CCDataClient) -> None:
    with pytest.raises(ValueError, match="markets"):
        client.spot_instruments("ACTIVE", [])


def test_top_list_pages_until_limit(client: CCDataClient, server: FakeCCDataServer) -> None:
    assets = client.top_list(25, page_size=10)
    assert len(assets) == 25
    assert len({asset["ID"] for asset in assets}) == 25
    volumes = [asset["SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD"] for asset in assets]
    assert volumes == sorted(volumes, reverse=True)
    assert [request.query["page"] for request in server.requests] == ["1", "2", "3"]


def test_top_list_stops_at_the_last_page(client: CCDataClient, server: FakeCCDataServer) -> None:
    assets = client.top_list(1000, page_size=10)
    listed = [asset for asset in server.dataset.assets if asset.asset_type != "FIAT"]
    assert len(assets) == len(listed)
    assert server.request_count() == -(-len(listed) // 10)


def test_historical_days_returns_ascending_candles_ending_at_to_ts(client: CCDataClient) -> None:
    candles = client.historical_days("kraken", "XXBTZUSD", limit=3, to_ts=YESTERDAY_NOON)
    timestamps = [candle["TIMESTAMP"] for candle in candles]
    assert timestamps == sorted(timestamps) and len(timestamps) == 3
    assert timestamps[-1] <= YESTERDAY_NOON < timestamps[-1] + 86_400


def test_historical_days_validates_limit_without_calling(
    client: CCDataClient, server: FakeCCDataServer
) -> None:
    for limit in (0, 5001):
        with pytest.raises(ValueError, match="limit"):
            client.historical_days("kraken", "BTC-USD", limit=limit, to_ts=NOW)
    assert server.request_count() == 0


def test_rate_limit_endpoint_through_get_data_api(client: CCDataClient) -> None:
    data = client.get_data_api(RATE_LIMIT, {})
    assert data["API_KEY"]["MAX"]["SECOND"] > 0


def test_stats_count_requests_and_reset(client: CCDataClient, server: FakeCCDataServer) -> None:
    server.fail_next(1, 503)
    client.exchanges_general()
    assert client.stats == ClientStats(requests=2, retries=1, rate_limited=0, errors=0)
    client.reset_stats()
    assert client.stats == ClientStats()


# ---- the API key stays secret


def test_key_travels_only_in_the_header(client: CCDataClient, server: FakeCCDataServer) -> None:
    client.exchanges_general()
    client.top_list(5)
    client.historical_days("kraken", "BTC-USD", limit=2, to_ts=NOW)
    assert server.requests and all(request.has_authorization for request in server.requests)
    assert not [request for request in server.requests if "api_key" in request.query]
    assert not [request for request in server.requests if API_KEY in str(request)]


def test_key_cannot_be_passed_as_a_query_parameter(client: CCDataClient, server: FakeCCDataServer) -> None:
    with pytest.raises(ValueError, match="api_key") as raised:
        client.get_data_api(RATE_LIMIT, {"api_key": API_KEY})
    assert API_KEY not in str(raised.value)
    assert server.request_count() == 0


def test_key_absent_from_repr_errors_and_logs(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(max_retries=1)
    assert API_KEY not in repr(client) and API_KEY not in str(client)
    server.fail_next(2, 503)
    caplog.set_level(logging.DEBUG, logger="spot_pipeline.ccdata")
    errors: list[CCDataError] = []
    for call in (
        lambda: client.historical_days("kraken", "BTC-USD", limit=2, to_ts=NOW),
        lambda: client.historical_days("kraken", "NOPE-USD", limit=2, to_ts=NOW),
        lambda: client.historical_days("nowhere", "BTC-USD", limit=2, to_ts=NOW),
    ):
        with pytest.raises(CCDataError) as raised:
            call()
        errors.append(raised.value)
    assert [type(error) for error in errors] == [
        CCDataUnavailableError,
        CCDataNotFoundError,
        CCDataRequestError,
    ]
    assert caplog.records
    for text in [*map(str, errors), *map(repr, errors), caplog.text]:
        assert API_KEY not in text


def test_provider_messages_echoing_the_key_are_redacted(make_client: Callable[..., CCDataClient]) -> None:
    client = make_client()
    with pytest.raises(CCDataNotFoundError) as raised:
        client.historical_days("kraken", f"{API_KEY}-USD", limit=1, to_ts=NOW)
    assert API_KEY not in str(raised.value) and "***" in str(raised.value)


def test_transport_errors_are_not_propagated_verbatim(make_client: Callable[..., CCDataClient]) -> None:
    client = make_client(api_key="secret-part\nother-part", max_retries=0)
    with pytest.raises(CCDataError) as raised:
        client.exchanges_general()
    assert "secret-part" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_unreachable_host_raises_unavailable(make_client: Callable[..., CCDataClient]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = make_client(data_api_url=f"http://127.0.0.1:{closed_port}", max_retries=1)
    with pytest.raises(
        CCDataUnavailableError, match=f"connection to 127.0.0.1:{closed_port} failed"
    ) as raised:
        client.top_list(5)
    assert raised.value.attempts == 2 and "CCDATA_DATA_API_URL" in str(raised.value)
    assert API_KEY not in str(raised.value)


def test_wrong_key_raises_auth_error_on_both_apis(make_client: Callable[..., CCDataClient]) -> None:
    client = make_client(api_key="not-the-key")
    with pytest.raises(CCDataAuthError, match="CCDATA_API_KEY") as raised:
        client.top_list(5)
    assert raised.value.status == 401
    with pytest.raises(CCDataAuthError, match="CCDATA_API_KEY"):
        client.exchanges_general()
    assert client.stats.requests == 2  # never retried


@pytest.fixture
def env_var_settings(server: FakeCCDataServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, dg.EnvVar]:
    """Key and base URLs of `server` as dg.EnvVar settings, like the deployed definitions use them."""
    monkeypatch.setenv("CCDATA_API_KEY", API_KEY)
    monkeypatch.setenv("CCDATA_DATA_API_URL", server.data_api_url)
    monkeypatch.setenv("CCDATA_MIN_API_URL", server.min_api_url)
    return {
        "api_key": dg.EnvVar("CCDATA_API_KEY"),
        "data_api_url": dg.EnvVar("CCDATA_DATA_API_URL"),
        "min_api_url": dg.EnvVar("CCDATA_MIN_API_URL"),
    }


def test_env_var_settings_work_outside_dagster(
    make_client: Callable[..., CCDataClient], env_var_settings: dict[str, dg.EnvVar]
) -> None:
    client = make_client(**env_var_settings)
    assert client.exchanges_general() and client.top_list(3)


def test_env_var_settings_work_inside_a_dagster_run(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer, env_var_settings: dict[str, dg.EnvVar]
) -> None:
    @dg.asset
    def exchange_count(ccdata: CCDataClient) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"exchanges": len(ccdata.exchanges_general())})

    resource = make_client(**env_var_settings)
    result = dg.materialize([exchange_count], resources={"ccdata": resource})
    assert result.success
    assert server.requests[-1].has_authorization and server.requests[-1].status == 200


def test_unset_env_var_url_fails_with_a_clear_error(make_client: Callable[..., CCDataClient]) -> None:
    client = make_client(data_api_url=dg.EnvVar("CCDATA_TEST_UNSET_URL"))
    with pytest.raises(
        CCDataError, match="environment variable CCDATA_TEST_UNSET_URL, the data-api base URL, is not set"
    ):
        client.top_list(3)


def test_env_var_url_is_validated_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCDATA_TEST_BAD_URL", "data-api.coindesk.com")
    with pytest.raises(ValidationError):
        CCDataClient(data_api_url=dg.EnvVar("CCDATA_TEST_BAD_URL"))


# ---- retries


def test_429_honours_retry_after_then_succeeds(client: CCDataClient, server: FakeCCDataServer) -> None:
    server.fail_next(1, 429, retry_after=0.4)
    started = time.monotonic()
    assert client.top_list(5)
    assert time.monotonic() - started >= 0.4
    assert client.stats == ClientStats(requests=2, retries=1, rate_limited=1, errors=0)


def test_retry_after_is_capped_by_backoff_max(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(backoff_max_seconds=0.1)
    server.fail_next(1, 429, retry_after=30)
    started = time.monotonic()
    assert client.top_list(5)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_then_succeeds(client: CCDataClient, server: FakeCCDataServer, status: int) -> None:
    server.fail_next(2, status)
    assert client.historical_days("kraken", "BTC-USD", limit=2, to_ts=NOW)
    assert server.request_count(HISTORY) == 3
    assert client.stats.retries == 2


def test_exhausted_retries_raise_unavailable_naming_the_endpoint(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(max_retries=2)
    server.fail_next(10, 502)
    with pytest.raises(CCDataUnavailableError) as raised:
        client.historical_days("kraken", "BTC-USD", limit=2, to_ts=NOW)
    message = str(raised.value)
    assert HISTORY in message and "market=kraken" in message and "instrument=BTC-USD" in message
    assert "HTTP 502" in message and "3 attempts" in message
    assert server.request_count(HISTORY) == 3
    assert client.stats.errors == 1


def test_exhausted_rate_limit_retries_raise_rate_limit_error(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(max_retries=1)
    server.fail_next(5, 429, retry_after=0.01)
    with pytest.raises(CCDataRateLimitError, match="CCDATA_CALLS_PER_SECOND"):
        client.top_list(5)


def test_timeout_is_retried(make_client: Callable[..., CCDataClient], server: FakeCCDataServer) -> None:
    client = make_client(timeout_seconds=0.2)
    server.slow_next(1, 0.6)
    started = time.monotonic()
    assert client.exchanges_general()
    assert time.monotonic() - started < 0.5
    assert client.stats.retries == 1
    wait_until(lambda: server.request_count(EXCHANGES) == 2)  # the slow answer is logged once sent


def test_timeouts_exhausted_raise_unavailable(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(timeout_seconds=0.1, max_retries=1)
    server.slow_next(2, 0.5)
    with pytest.raises(CCDataUnavailableError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.1s"):
        client.exchanges_general()


def test_dropped_connection_is_retried(client: CCDataClient, server: FakeCCDataServer) -> None:
    server.drop_connection_next(2)
    assert client.historical_days("kraken", "BTC-USD", limit=2, to_ts=NOW)
    assert [request.status for request in server.requests] == [None, None, 200]


def test_malformed_json_is_retried_then_succeeds(client: CCDataClient, server: FakeCCDataServer) -> None:
    server.malformed_next(2)
    assert client.top_list(5)
    assert client.stats.retries == 2


def test_malformed_json_every_time_raises_payload_error(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(max_retries=2)
    server.malformed_next(5)
    with pytest.raises(CCDataPayloadError, match="not valid JSON"):
        client.historical_days("kraken", "BTC-USD", limit=2, to_ts=NOW)
    assert server.request_count() == 3


def test_min_api_error_with_http_200_raises_without_retry(
    client: CCDataClient, server: FakeCCDataServer
) -> None:
    with pytest.raises(CCDataRequestError, match="does not exist") as raised:
        client.get_min_api("/data/no/such/endpoint")
    assert raised.value.status == 200
    assert server.request_count() == 1


def test_min_api_rate_limit_type_99_is_retried(client: CCDataClient, server: FakeCCDataServer) -> None:
    server.fail_next(1, 429, path=EXCHANGES)
    assert client.exchanges_general()
    assert client.stats.rate_limited == 1 and server.request_count(EXCHANGES) == 2


def test_400_is_not_retried(client: CCDataClient, server: FakeCCDataServer) -> None:
    with pytest.raises(CCDataRequestError) as raised:
        client.historical_days("Kraken", "BTC-USD", limit=2, to_ts=NOW)
    assert raised.value.status == 400 and raised.value.param == "market"
    assert server.request_count() == 1


def test_404_raises_not_found_without_retry(client: CCDataClient, server: FakeCCDataServer) -> None:
    with pytest.raises(CCDataNotFoundError) as raised:
        client.historical_days("kraken", "NOPE-USD", limit=2, to_ts=NOW)
    assert raised.value.param == "instrument"
    assert server.request_count() == 1


def test_min_api_endpoint_on_the_data_api_host_is_not_found(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(min_api_url=server.data_api_url)
    with pytest.raises(CCDataNotFoundError):
        client.exchanges_general()


@pytest.mark.parametrize(
    "overrides",
    [
        {"calls_per_second": 0},
        {"max_concurrency": 0},
        {"timeout_seconds": -1},
        {"max_retries": -1},
        {"data_api_url": "ftp://example.com"},
        {"min_api_url": "https://min-api.cryptocompare.com/?api_key=x"},
        {"backoff_base_seconds": 2, "backoff_max_seconds": 1},
    ],
)
def test_invalid_settings_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CCDataClient(**overrides)


# ---- pacing


def test_worker_pool_never_exceeds_calls_per_second(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(calls_per_second=20)
    elapsed = run_in_threads(threads=4, calls=8, call=lambda: client.get_data_api(RATE_LIMIT))
    assert server.request_count() == 32
    assert server.max_requests_in_any_second() <= 20
    ideal = 31 * WINDOW_SECONDS / 20
    assert ideal - 0.01 <= elapsed < ideal + 0.6


def test_a_429_pauses_every_thread(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    client = make_client(calls_per_second=50)
    server.fail_next(1, 429, retry_after=0.5)
    elapsed = run_in_threads(threads=4, calls=5, call=lambda: client.get_data_api(RATE_LIMIT))
    requests = server.requests
    limited = next(request for request in requests if request.status == 429)
    during_pause = [
        request
        for request in requests
        if limited.monotonic + 0.05 < request.monotonic < limited.monotonic + 0.45
    ]
    assert during_pause == []
    assert elapsed >= 0.5
    assert client.stats.rate_limited == 1 and len(requests) == 21


def burn_cpu(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_a_loaded_machine_never_sends_more_than_the_servers_limit(
    make_client: Callable[..., CCDataClient], server: FakeCCDataServer
) -> None:
    """Two processes keep both cores busy while eight threads call a server allowing 10 requests a
    second with 50 ms of latency: by the server's own count, no second ever sees an eleventh."""
    server.limit_key(second=10)
    server.latency_seconds = 0.05
    client = make_client(calls_per_second=10, max_concurrency=8, max_retries=0)
    context = multiprocessing.get_context("fork")
    burners = [context.Process(target=burn_cpu, args=(8.0,), daemon=True) for _ in range(2)]
    for burner in burners:
        burner.start()
    try:
        elapsed = run_in_threads(threads=8, calls=5, call=lambda: client.get_data_api(RATE_LIMIT))
    finally:
        for burner in burners:
            burner.terminate()
    assert server.over_limit_requests == 0
    assert server.max_requests_in_any_second() <= 10
    assert client.stats.rate_limited == 0
    assert elapsed < 40 / 10 * 1.6


def test_a_call_waits_a_window_after_the_answer_of_the_call_a_limit_before_it() -> None:
    """The provider may count a slow request as late as its answer: the call `calls_per_second`
    places later starts a whole window after that answer, however early its own slot was."""
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    with limiter.call():
        clock.now += 5.0  # a slow answer
        answered = clock.now
    with limiter.call():
        pass
    with limiter.call():
        assert clock.now >= answered + WINDOW_SECONDS


class FakeClock:
    """A clock whose sleep() advances time instantly, plus an optional lateness per sleep."""

    def __init__(self, lateness: list[float] | None = None) -> None:
        self.now = 1_000.0
        self._lateness = list(lateness or [])

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + (self._lateness.pop(0) if self._lateness else 0.0)


def test_limiter_spaces_calls_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        with limiter.call():
            starts.append(clock.now)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([limiter.interval] * 4)
    assert limiter.interval == pytest.approx(WINDOW_SECONDS / 10)


def test_limiter_pause_delays_the_next_call() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    with limiter.call():
        pass
    limiter.pause(2.0)
    limiter.pause(0.5)  # a shorter pause never shortens the current one
    before = clock.now
    with limiter.call():
        assert clock.now == pytest.approx(before + 2.0)


def test_limiter_pause_reaches_threads_already_waiting() -> None:
    limiter = RateLimiter(4)  # slots about a quarter of a second apart
    with limiter.call():
        pass
    started: list[float] = []

    def call_once() -> None:
        with limiter.call():
            started.append(time.monotonic())

    waiter = threading.Thread(target=call_once)
    begin = time.monotonic()
    waiter.start()
    time.sleep(0.05)
    limiter.pause(0.4)
    waiter.join()
    assert started[0] - begin >= 0.45


def test_limiter_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


@settings(max_examples=60, deadline=None)
@given(
    calls_per_second=st.integers(min_value=1, max_value=40),
    lateness=st.lists(st.floats(min_value=0, max_value=0.3), min_size=1, max_size=60),
)
def test_limiter_never_grants_more_than_the_limit_in_a_second(
    calls_per_second: int, lateness: list[float]
) -> None:
    clock = FakeClock(lateness)
    limiter = RateLimiter(calls_per_second, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(len(lateness) + calls_per_second):
        with limiter.call():
            starts.append(clock.now)
    assert max_in_window(starts) <= calls_per_second
