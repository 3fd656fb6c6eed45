"""A local HTTP double of the CCData data-api and min-api, with fault injection and a request log.

Two listening sockets (data-api and min-api) share one state, so a client that calls an endpoint on the
wrong base URL gets a 404 like it would in production. Payloads follow the real envelopes and field
names, including the min-api habit of sending numbers as strings.
"""

import contextlib
import json
import math
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import (
    EXCHANGES_GENERAL_PATH,
    HISTORICAL_DAYS_PATH,
    INSTRUMENT_STATUSES,
    MAX_CANDLES_PER_CALL,
    MIN_API_RATE_LIMIT_TYPE,
    RATE_LIMIT_PATH,
    SPOT_INSTRUMENTS_PATH,
    TOP_LIST_PATH,
)
from spot_pipeline_dev.fake_ccdata.dataset import (
    FakeAsset,
    FakeDataset,
    FakeExchange,
    FakeInstrument,
    day_start_epoch,
    uniforms,
    utc_day,
)

ApiName = Literal["data", "min"]

DEFAULT_CANDLES_PER_CALL = 30
TOP_LIST_SORTS = (
    "SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD",
    "SPOT_MOVING_24_HOUR_QUOTE_VOLUME_USD",
    "CIRCULATING_MKT_CAP_USD",
)
INJECTABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_MIN_API_ERROR_TYPE = 1
_MIN_API_SUCCESS_TYPE = 100
_ERR_TYPE_BY_STATUS = {400: 2, 401: 1, 403: 1, 404: 4, 429: 99, 500: 5, 502: 5, 503: 5, 504: 5}
_FAILURE_MESSAGES = {
    429: "You are over your rate limit, please upgrade your account or wait.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "The data source is temporarily unavailable.",
    504: "Gateway timeout.",
}
_MALFORMED_BODY = b'{"Data": [{"UNIT": "DAY", "TIMESTAMP": 17490'
_SERVE_POLL_SECONDS = 0.02
_RATE_WINDOW_SECONDS = 1.0
_STATUS_COUNT_KEYS = ("ACTIVE", "IGNORED", "RETIRED", "EXPIRED", "RETIRED_UNMAPPED")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it."""

    monotonic: float  # time.monotonic() on arrival
    wall_time: float  # time.time() on arrival
    api: ApiName
    path: str
    query: dict[str, str]  # last value wins for repeated parameters
    has_authorization: bool
    status: int | None  # None when the connection was dropped without an answer


@dataclass
class _Fault:
    kind: Literal["fail", "malformed", "slow", "drop"]
    remaining: int
    path: str | None
    status: int = 0
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class _ApiError(Exception):
    """An error answer; rendered as a data-api `Err` envelope or a min-api `Response: Error`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        values: Iterable[object] = (),
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.values = list(values)
        self.retry_after = retry_after


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: do not wait for an ACK
    server: "_ApiHttpServer"

    def setup(self) -> None:
        super().setup()
        self.server.fake._track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack_connection(self.connection)

    def do_GET(self) -> None:
        self.server.fake._serve(self, self.server.api)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the server keeps its own request log."""


class _ApiHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: "FakeCCDataServer", api: ApiName) -> None:
        self.fake = fake
        self.api: ApiName = api
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (timeouts, dropped connections); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeCCDataServer:
    """A real HTTP server on 127.0.0.1 imitating the CCData data-api and min-api.

    Serve a `FakeDataset` (the default one unless given), optionally require `authorization: Apikey
    <api_key>`, and misbehave on demand: `fail_next`, `malformed_next`, `slow_next`,
    `drop_connection_next`, `latency_seconds` and `rate_limit_per_second` can all change while it runs.
    `now` is the clock that decides which UTC day is the current (incomplete) one.
    """

    def __init__(
        self,
        dataset: FakeDataset | None = None,
        *,
        api_key: str | None = None,
        now: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        data_port: int = 0,
        min_port: int = 0,
    ) -> None:
        self.dataset = dataset if dataset is not None else FakeDataset.default()
        self.api_key = api_key
        self.now = now
        self.latency_seconds = 0.0
        self.rate_limit_per_second: float | None = None
        self._host = host
        self._ports: dict[ApiName, int] = {"data": data_port, "min": min_port}
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._accepted_times: deque[float] = deque()
        self._over_limit_requests = 0
        self._request_number = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._http_servers: dict[ApiName, _ApiHttpServer] = {}
        self._threads: list[threading.Thread] = []

    # ---- lifecycle

    def start(self) -> "FakeCCDataServer":
        """Bind both sockets and serve in background threads."""
        if self._http_servers:
            raise RuntimeError("the fake CCData server is already running")
        self._stopping.clear()
        for api in ("data", "min"):
            http_server = _ApiHttpServer((self._host, self._ports[api]), self, api)
            thread = threading.Thread(
                target=http_server.serve_forever,
                kwargs={"poll_interval": _SERVE_POLL_SECONDS},
                name=f"fake-ccdata-{api}",
                daemon=True,
            )
            thread.start()
            self._http_servers[api] = http_server
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and release the ports."""
        self._stopping.set()
        for http_server in self._http_servers.values():
            http_server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for http_server in self._http_servers.values():
            http_server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._http_servers.clear()
        self._threads.clear()

    def __enter__(self) -> "FakeCCDataServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def data_api_url(self) -> str:
        """Base URL of the data-api socket, e.g. http://127.0.0.1:54321."""
        return self._url("data")

    @property
    def min_api_url(self) -> str:
        """Base URL of the min-api socket."""
        return self._url("min")

    def client(self, **settings: Any) -> CCDataClient:
        """A client of this server (both APIs); `settings` override the client's defaults and URLs."""
        return CCDataClient(
            **{"data_api_url": self.data_api_url, "min_api_url": self.min_api_url, **settings}
        )

    def _url(self, api: ApiName) -> str:
        if api not in self._http_servers:
            raise RuntimeError("the fake CCData server is not running: call start() first")
        return f"http://{self._host}:{self._http_servers[api].server_address[1]}"

    # ---- misbehaviour

    def fail_next(
        self, count: int, status: int = 503, *, retry_after: float | None = None, path: str | None = None
    ) -> None:
        """Answer the next `count` requests (to `path`, if given) with HTTP `status`.

        A min-api request answered with 429 gets what the min-api really sends: HTTP 200 with
        `Response: Error, Type: 99`.
        """
        if status not in INJECTABLE_STATUSES:
            raise ValueError(f"status must be one of {sorted(INJECTABLE_STATUSES)}, got {status}")
        self._add_fault(_Fault("fail", count, path, status=status, retry_after=retry_after))

    def malformed_next(self, count: int, path: str | None = None) -> None:
        """Answer the next `count` requests with HTTP 200 and a body that is not valid JSON."""
        self._add_fault(_Fault("malformed", count, path))

    def slow_next(self, count: int, seconds: float, path: str | None = None) -> None:
        """Wait `seconds` before answering the next `count` requests (to trigger client timeouts)."""
        self._add_fault(_Fault("slow", count, path, seconds=seconds))

    def drop_connection_next(self, count: int, path: str | None = None) -> None:
        """Close the connection without answering the next `count` requests."""
        self._add_fault(_Fault("drop", count, path))

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError(f"count must be at least 1, got {fault.remaining}")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kind: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.path in (None, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---- observability

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since start or the last `reset_log()`."""
        with self._lock:
            return list(self._log)

    @property
    def over_limit_requests(self) -> int:
        """Requests refused with 429 because of `rate_limit_per_second`."""
        with self._lock:
            return self._over_limit_requests

    def request_count(self, path: str | None = None) -> int:
        """How many requests were received, to `path` if given."""
        return sum(1 for request in self.requests if path in (None, request.path))

    def reset_log(self) -> None:
        """Forget the request log and the over-limit counter."""
        with self._lock:
            self._log.clear()
            self._over_limit_requests = 0

    def max_requests_in_any_second(self) -> int:
        """The largest number of answered requests that arrived within any one-second window."""
        arrivals = sorted(request.monotonic for request in self.requests if request.status is not None)
        best = 0
        window_start = 0
        for index, arrival in enumerate(arrivals):
            while arrival - arrivals[window_start] >= _RATE_WINDOW_SECONDS:
                window_start += 1
            best = max(best, index - window_start + 1)
        return best

    # ---- connection bookkeeping (called by the handler threads)

    def _track_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    # ---- request handling

    def _serve(self, handler: BaseHTTPRequestHandler, api: ApiName) -> None:
        """Answer one GET request (or misbehave as instructed) and record it."""
        arrived, wall_time = time.monotonic(), time.time()
        parts = urlsplit(handler.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self._request_number += 1
            request_number = self._request_number

        def record(status: int | None) -> None:
            entry = RecordedRequest(
                arrived, wall_time, api, path, query, "authorization" in handler.headers, status
            )
            with self._lock:
                self._log.append(entry)

        if self.latency_seconds > 0:
            self._stopping.wait(self.latency_seconds)
        if self._take_fault("drop", path):
            record(None)
            _drop_connection(handler)
            return
        slow = self._take_fault("slow", path)
        if slow:
            self._stopping.wait(slow.seconds)
        if self._stopping.is_set():
            _drop_connection(handler)  # stopping: never answer after a wait was cut short
            return
        reply = self._reply(api, path, query, handler.headers, request_number)
        # Recorded before writing, so a client that got its answer always finds the request logged.
        record(reply.status)
        _write_reply(handler, reply)

    def _reply(
        self, api: ApiName, path: str, query: dict[str, str], headers: Message, request_number: int
    ) -> _Reply:
        failure = self._take_fault("fail", path)
        if failure:
            error = _ApiError(failure.status, _FAILURE_MESSAGES[failure.status])
            return _error_reply(api, error, retry_after=failure.retry_after)
        if self._take_fault("malformed", path):
            return _Reply(200, _MALFORMED_BODY)
        try:
            self._check_authorization(headers)
            self._check_rate_limit()
            data = self._route(api, path, query, request_number)
        except _ApiError as error:
            return _error_reply(api, error, retry_after=error.retry_after)
        return _success_reply(api, data)

    def _check_authorization(self, headers: Message) -> None:
        if self.api_key is None:
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "apikey" or token.strip() != self.api_key:
            raise _ApiError(
                401,
                "You need a valid auth key or api key to access this endpoint: "
                "send the header 'authorization: Apikey <key>'.",
            )

    def _check_rate_limit(self) -> None:
        limit = self.rate_limit_per_second
        if limit is None:
            return
        with self._lock:
            now = time.monotonic()
            window = self._accepted_times
            while window and window[0] <= now - _RATE_WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                self._over_limit_requests += 1
                retry_after = max(1, math.ceil(window[0] + _RATE_WINDOW_SECONDS - now))
                raise _ApiError(429, _FAILURE_MESSAGES[429], retry_after=retry_after)
            window.append(now)

    def _route(self, api: ApiName, path: str, query: dict[str, str], request_number: int) -> Any:
        if api == "min":
            if path == EXCHANGES_GENERAL_PATH:
                return self._exchanges_general()
            raise _ApiError(404, f"Path {path} does not exist on the min-api.")
        if path == HISTORICAL_DAYS_PATH:
            return self._historical_days(query, request_number)
        if path == SPOT_INSTRUMENTS_PATH:
            return self._markets_instruments(query)
        if path == TOP_LIST_PATH:
            return self._top_list(query)
        if path == RATE_LIMIT_PATH:
            return self._rate_limit_status()
        raise _ApiError(404, f"Path {path} does not exist on the data-api.")

    # ---- data-api endpoints

    def _historical_days(self, query: Mapping[str, str], request_number: int) -> list[dict[str, Any]]:
        market_key = _required_param(query, "market")
        market = self.dataset.market(market_key)
        if market is None:
            raise _ApiError(
                400,
                f"market parameter is invalid: {market_key} is not a market",
                param="market",
                values=[market_key],
            )
        symbol = _required_param(query, "instrument")
        instrument = market.find_instrument(symbol)
        if instrument is None:
            raise _ApiError(
                404,
                f"No instrument {symbol} on market {market_key}.",
                param="instrument",
                values=[symbol],
            )
        limit = _int_param(query, "limit", DEFAULT_CANDLES_PER_CALL, low=1, high=MAX_CANDLES_PER_CALL)
        now = self.now()
        to_ts = _int_param(query, "to_ts", int(now), low=0, high=None)
        last_day = min(utc_day(to_ts), utc_day(now))
        if last_day < market.history_start:
            raise _ApiError(404, f"No data for {symbol} on {market_key} up to {last_day}.")
        return self.dataset.daily_candles(
            market_key, instrument, last_day=last_day, limit=limit, now=now, variant=request_number
        )

    def _markets_instruments(self, query: Mapping[str, str]) -> dict[str, Any]:
        keys = _list_param(query, "market") or list(self.dataset.markets)
        unknown = [key for key in keys if key not in self.dataset.markets]
        if unknown:
            raise _ApiError(
                400, f"market parameter is invalid: {', '.join(unknown)}", param="market", values=unknown
            )
        status = query.get("instrument_status") or None
        if status is not None and status not in INSTRUMENT_STATUSES:
            raise _ApiError(
                400,
                f"instrument_status must be one of {', '.join(INSTRUMENT_STATUSES)}",
                param="instrument_status",
                values=[status],
            )
        wanted = set(_list_param(query, "instruments"))
        now = self.now()
        return {key: self._market_entry(key, status, wanted, now) for key in keys}

    def _market_entry(self, key: str, status: str | None, wanted: set[str], now: float) -> dict[str, Any]:
        market = self.dataset.markets[key]
        listed = [
            instrument
            for instrument in market.instruments
            if status in (None, instrument.status)
            and (not wanted or wanted & {instrument.instrument, instrument.mapped_instrument})
        ]
        counts = Counter(instrument.status for instrument in market.instruments)
        entries = {
            instrument.mapped_instrument: self._instrument_entry(key, instrument, now)
            for instrument in listed
        }
        return {
            "TYPE": "602",
            "EXCHANGE_STATUS": market.exchange_status,
            "MAPPED_INSTRUMENTS_TOTAL": len(market.instruments),
            "UNMAPPED_INSTRUMENTS_TOTAL": 0,
            "INSTRUMENT_STATUS": {name: counts.get(name, 0) for name in _STATUS_COUNT_KEYS},
            "TOTAL_TRADES_SPOT": sum(_total_trades(instrument, now) for instrument in market.instruments),
            "HAS_ORDERBOOK_L2_MINUTE_SNAPSHOTS_ENABLED": True,
            "instruments": entries,
        }

    def _instrument_entry(self, market_key: str, instrument: FakeInstrument, now: float) -> dict[str, Any]:
        has_trades = instrument.first_trade_day <= utc_day(now)
        entry: dict[str, Any] = {
            "TYPE": "612",
            "INSTRUMENT_STATUS": instrument.status,
            "INSTRUMENT": instrument.instrument,
            "HISTO_SHARD": instrument.histo_shard,
            "MAPPED_INSTRUMENT": instrument.mapped_instrument,
            "INSTRUMENT_MAPPING": {
                "MAPPED_INSTRUMENT": instrument.mapped_instrument,
                "BASE": instrument.base,
                "BASE_ID": instrument.base_id,
                "QUOTE": instrument.quote,
                "QUOTE_ID": instrument.quote_id,
                "TRANSFORM_FUNCTION": instrument.transform_function,
                "CREATED_ON": instrument.mapping_created_on,
            },
            "HAS_TRADES_SPOT": has_trades,
        }
        if has_trades:
            first_ts, last_ts = self.dataset.trade_bounds(market_key, instrument, now)
            entry["FIRST_TRADE_SPOT_TIMESTAMP"] = first_ts
            entry["LAST_TRADE_SPOT_TIMESTAMP"] = last_ts
        entry["TOTAL_TRADES_SPOT"] = _total_trades(instrument, now)
        return entry

    def _top_list(self, query: Mapping[str, str]) -> dict[str, Any]:
        page = _int_param(query, "page", 1, low=1, high=1000)
        page_size = _int_param(query, "page_size", 100, low=10, high=100)
        sort_by = _choice_param(query, "sort_by", TOP_LIST_SORTS, default="CIRCULATING_MKT_CAP_USD")
        direction = _choice_param(query, "sort_direction", ("DESC", "ASC"), default="DESC")
        asset_type = query.get("asset_type") or None
        assets = [
            asset
            for asset in sorted(self.dataset.assets, key=lambda asset: asset.id)
            if (asset.asset_type == asset_type if asset_type else asset.asset_type != "FIAT")
        ]
        now = self.now()
        parent_ids = {
            asset.symbol: asset.id for asset in self.dataset.assets if asset.asset_type == "BLOCKCHAIN"
        }
        items = [_asset_item(asset, parent_ids, now) for asset in assets]
        _add_base_ranks(items)
        items.sort(key=lambda item: item[sort_by], reverse=direction == "DESC")
        first = (page - 1) * page_size
        return {
            "STATS": {"PAGE": page, "PAGE_SIZE": page_size, "TOTAL_ASSETS": len(items)},
            "LIST": items[first : first + page_size],
        }

    def _rate_limit_status(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            arrivals = [request.monotonic for request in self._log]
        windows = {"SECOND": 1, "MINUTE": 60, "HOUR": 3_600, "DAY": 86_400, "MONTH": 30 * 86_400}
        # The call itself counts against the limit, like on the real API.
        used = {
            name: 1 + sum(1 for arrival in arrivals if now - arrival < span) for name, span in windows.items()
        }
        maximum = {
            "SECOND": int(self.rate_limit_per_second or 100),
            "MINUTE": 6_000,
            "HOUR": 300_000,
            "DAY": 5_000_000,
            "MONTH": 50_000_000,
        }
        return {
            "TYPE": "3000",
            "API_KEY": {
                "TYPE": "3001",
                "USED": {"TYPE": "3002", **used},
                "MAX": {"TYPE": "3003", **maximum, "SOFT_CAP_ALLOWANCE_MULTIPLIER": 1.1},
                "REMAINING": {
                    "TYPE": "3004",
                    **{name: max(0, maximum[name] - used[name]) for name in windows},
                },
            },
            "AUTH_KEY": {
                "TYPE": "3001",
                "USED": {"TYPE": "3002", **dict.fromkeys(windows, 0)},
                "MAX": {
                    "TYPE": "3003",
                    "MONTH": 200_000,
                    "DAY": 40_000,
                    "HOUR": 10_000,
                    "MINUTE": 1_000,
                    "SECOND": 20,
                    "SOFT_CAP_ALLOWANCE_MULTIPLIER": 1.2,
                },
                "REMAINING": {
                    "TYPE": "3004",
                    "SECOND": 20,
                    "MINUTE": 1_000,
                    "HOUR": 10_000,
                    "DAY": 40_000,
                    "MONTH": 200_000,
                },
            },
        }

    # ---- min-api endpoint

    def _exchanges_general(self) -> dict[str, dict[str, Any]]:
        btc_price = next((asset.price_usd for asset in self.dataset.assets if asset.id == 1), 100_000.0)
        return {
            str(exchange.id): _exchange_item(exchange, sort_order, btc_price)
            for sort_order, exchange in enumerate(self.dataset.exchanges, start=1)
        }


# ---- replies


def _success_reply(api: ApiName, data: Any) -> _Reply:
    if api == "min":
        envelope = {
            "Response": "Success",
            "Message": "",
            "HasWarning": False,
            "Type": _MIN_API_SUCCESS_TYPE,
            "RateLimit": {},
            "Data": data,
        }
    else:
        envelope = {"Data": data, "Err": {}}
    return _Reply(200, _to_json(envelope))


def _error_reply(api: ApiName, error: _ApiError, retry_after: float | None) -> _Reply:
    headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
    if api == "min":
        # The min-api answers errors with HTTP 200, except for failures of its own infrastructure.
        is_rate_limit = error.status == 429
        status = 200 if is_rate_limit or error.status < 500 else error.status
        envelope = {
            "Response": "Error",
            "Message": error.message,
            "HasWarning": False,
            "Type": MIN_API_RATE_LIMIT_TYPE if is_rate_limit else _MIN_API_ERROR_TYPE,
            "RateLimit": {},
            "Data": {},
        }
        return _Reply(status, _to_json(envelope), headers)
    err: dict[str, Any] = {"type": _ERR_TYPE_BY_STATUS.get(error.status, 1), "message": error.message}
    if error.param is not None:
        err["other_info"] = {"param": error.param, "values": error.values}
    return _Reply(error.status, _to_json({"Data": {}, "Err": err}), headers)


def _to_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _write_reply(handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
    try:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(reply.body)
    except OSError:
        handler.close_connection = True  # the client went away, e.g. after its own timeout


def _drop_connection(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


# ---- query parameters


def _required_param(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "").strip()
    if not value:
        raise _ApiError(400, f"{name} is a required parameter.", param=name)
    return value


def _int_param(query: Mapping[str, str], name: str, default: int, *, low: int, high: int | None) -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ApiError(400, f"{name} must be an integer.", param=name, values=[raw]) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _ApiError(400, f"{name} must be {bounds}.", param=name, values=[value])
    return value


def _choice_param(query: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = query.get(name) or default
    if value not in choices:
        raise _ApiError(400, f"{name} must be one of {', '.join(choices)}.", param=name, values=[value])
    return value


def _list_param(query: Mapping[str, str], name: str) -> list[str]:
    return [part.strip() for part in query.get(name, "").split(",") if part.strip()]


# ---- payload pieces


def _total_trades(instrument: FakeInstrument, now: float) -> int:
    end_day = min(instrument.last_trade_day or utc_day(now), utc_day(now))
    days = (end_day - instrument.first_trade_day).days + 1
    return max(0, days) * instrument.daily_trades


def _exchange_item(exchange: FakeExchange, sort_order: int, btc_price: float) -> dict[str, Any]:
    slug = exchange.internal_name.lower()
    item: dict[str, Any] = {
        "Id": str(exchange.id),
        "SortOrder": str(sort_order),
        "Name": exchange.name,
        "Url": f"/exchanges/{slug}/overview",
        "LogoUrl": f"/media/{exchange.id}/{slug}.png",
        "ItemType": ["Cryptocurrency", "Stable Coins", "Tokens", "Fiat"],
        "CentralizationType": exchange.centralization_type,
        "InternalName": exchange.internal_name,
    }
    if exchange.grade is not None:
        item["GradePoints"] = f"{exchange.grade_points:g}"
        item["Grade"] = exchange.grade
        item["GradePointsSplit"] = _grade_points_split(exchange.grade_points)
    u = uniforms("exchange", exchange.id)
    ratings = [int(share * 20) for share in u[:5]]
    item.update(
        {
            "AffiliateURL": f"https://www.{slug}.com/",
            "Country": exchange.country,
            "OrderBook": exchange.order_book,
            "Trades": exchange.trades,
            "Description": f"{exchange.name} is a cryptocurrency exchange.",
            "FullAddress": f"{exchange.name} Ltd., {exchange.country}",
            "Sponsored": False,
            "Recommended": False,
            "Rating": {
                "One": ratings[0],
                "Two": ratings[1],
                "Three": ratings[2],
                "Four": ratings[3],
                "Five": ratings[4],
                "Avg": round(1 + 4 * u[5], 2),
                "TotalUsers": sum(ratings),
            },
            "TOTALVOLUME24H": {
                "BTC": round(exchange.volume_24h_usd / btc_price, 8),
                "USD": exchange.volume_24h_usd,
            },
        }
    )
    return item


def _grade_points_split(points: float) -> dict[str, str]:
    weights = {
        "Legal": 0.15,
        "KYCAndTransactionRisk": 0.15,
        "Team": 0.1,
        "DataProvision": 0.1,
        "AssetQualityAndDiversity": 0.1,
        "MarketQuality": 0.2,
        "Security": 0.2,
        "NegativeReportsPenalty": 0.0,
    }
    return {name: f"{round(points * weight, 2):g}" for name, weight in weights.items()}


def _asset_item(asset: FakeAsset, parent_ids: Mapping[str, int], now: float) -> dict[str, Any]:
    u = uniforms("asset", asset.id)
    created_on = 1_659_708_643 + asset.id * 3_607
    supply = asset.circulating_mkt_cap_usd / asset.price_usd if asset.price_usd else 0.0
    item: dict[str, Any] = {
        "ID": asset.id,
        "TYPE": "162",
        "ID_LEGACY": 1_000 + asset.id,
        "ID_PARENT_ASSET": parent_ids.get(asset.parent_asset_symbol or ""),
        "ID_ASSET_ISSUER": None,
        "SYMBOL": asset.symbol,
        "URI": asset.name.lower().replace(" ", "-"),
        "ASSET_TYPE": asset.asset_type,
        "ASSET_ISSUER_NAME": None,
        "PARENT_ASSET_SYMBOL": asset.parent_asset_symbol,
        "CREATED_ON": created_on,
        "UPDATED_ON": int(now) - 3_600,
        "PUBLIC_NOTICE": None,
        "NAME": asset.name,
        "LOGO_URL": f"https://resources.cryptocompare.com/asset-management/{asset.id}/logo.png",
        "LAUNCH_DATE": _launch_timestamp(asset),
        "PREVIOUS_ASSET_SYMBOLS": None,
        "ASSET_ALTERNATIVE_IDS": [],
        "ASSET_DESCRIPTION_SNIPPET": f"{asset.name} ({asset.symbol}) is a {asset.asset_type.lower()} asset.",
        "ASSET_DECIMAL_POINTS": asset.decimal_points,
        "SUPPLY_MAX": round(supply * 1.1, 4),
        "SUPPLY_ISSUED": round(supply, 4),
        "SUPPLY_TOTAL": round(supply, 4),
        "SUPPLY_CIRCULATING": round(supply, 4),
        "SUPPLY_FUTURE": round(supply * 0.1, 4),
        "SUPPLY_LOCKED": 0,
        "SUPPLY_BURNT": 0,
        "SUPPLY_STAKED": 0,
        "LAST_BLOCK_MINT": None,
        "LAST_BLOCK_BURN": None,
        "PRICE_USD": asset.price_usd,
        "PRICE_USD_SOURCE": "cadli",
        "PRICE_USD_LAST_UPDATE_TS": int(now) - 60,
        "PRICE_CONVERSION_ASSET": {"ID": 5, "SYMBOL": "USD", "ASSET_TYPE": "FIAT"},
        "PRICE_CONVERSION_RATE": 1,
        "PRICE_CONVERSION_VALUE": asset.price_usd,
        "PRICE_CONVERSION_SOURCE": "cadli",
        "PRICE_CONVERSION_LAST_UPDATE_TS": int(now) - 60,
        "MKT_CAP_PENALTY": 0,
        "CIRCULATING_MKT_CAP_USD": asset.circulating_mkt_cap_usd,
        "TOTAL_MKT_CAP_USD": asset.circulating_mkt_cap_usd,
        "CIRCULATING_MKT_CAP_CONVERSION": asset.circulating_mkt_cap_usd,
        "TOTAL_MKT_CAP_CONVERSION": asset.circulating_mkt_cap_usd,
    }
    volumes = {"24_HOUR": asset.volume_24h_usd, "7_DAY": asset.volume_7d_usd, "30_DAY": asset.volume_30d_usd}
    for window, volume in volumes.items():
        item.update(_volume_fields(f"SPOT_MOVING_{window}_QUOTE_VOLUME", volume))
    for index, window in enumerate(volumes):
        item.update(_change_fields(f"SPOT_MOVING_{window}_CHANGE", asset.price_usd, (u[index] - 0.5) * 20))
    return item


def _volume_fields(prefix: str, volume_usd: float) -> dict[str, float]:
    top_tier = round(volume_usd * 0.55, 4)
    return {
        f"{prefix}_TOP_TIER_DIRECT_USD": round(volume_usd * 0.1, 4),
        f"{prefix}_DIRECT_USD": round(volume_usd * 0.12, 4),
        f"{prefix}_TOP_TIER_USD": top_tier,
        f"{prefix}_USD": volume_usd,
        f"{prefix}_TOP_TIER_CONVERSION": top_tier,
        f"{prefix}_CONVERSION": volume_usd,
    }


def _change_fields(prefix: str, price: float, percentage: float) -> dict[str, float]:
    change = round(price * percentage / 100, 10)
    return {
        f"{prefix}_USD": change,
        f"{prefix}_PERCENTAGE_USD": round(percentage, 8),
        f"{prefix}_CONVERSION": change,
        f"{prefix}_PERCENTAGE_CONVERSION": round(percentage, 8),
    }


def _launch_timestamp(asset: FakeAsset) -> int | None:
    return day_start_epoch(asset.launch_date) if asset.launch_date else None


def _add_base_ranks(items: list[dict[str, Any]]) -> None:
    """Set TOPLIST_BASE_RANK: 1 is the largest value, or the earliest date for CREATED_ON/LAUNCH_DATE."""
    rankings: dict[str, dict[int, int]] = {}
    for field_name in ("CREATED_ON", "LAUNCH_DATE"):
        ordered = sorted(items, key=lambda item: (item[field_name] is None, item[field_name] or 0))
        rankings[field_name] = {item["ID"]: rank for rank, item in enumerate(ordered, start=1)}
    for field_name in (
        "CIRCULATING_MKT_CAP_USD",
        "TOTAL_MKT_CAP_USD",
        "SPOT_MOVING_24_HOUR_QUOTE_VOLUME_USD",
        "SPOT_MOVING_7_DAY_QUOTE_VOLUME_USD",
        "SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD",
    ):
        ordered = sorted(items, key=lambda item: item[field_name], reverse=True)
        rankings[field_name] = {item["ID"]: rank for rank, item in enumerate(ordered, start=1)}
    for item in items:
        item["TOPLIST_BASE_RANK"] = {field_name: ranks[item["ID"]] for field_name, ranks in rankings.items()}
