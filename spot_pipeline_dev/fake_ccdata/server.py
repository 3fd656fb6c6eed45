"""A local HTTP double of the CCData data-api and min-api, with fault injection and a request log.

Two listening sockets (data-api and min-api) share one state, so a client that calls an endpoint on the
wrong base URL gets a 404 like it would in production. Payloads follow the real envelopes and field
names, including the min-api habit of sending numbers as strings.
"""

import bisect
import contextlib
import json
import math
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.key_limits import WINDOW_SPANS
from spot_pipeline.ccdata.vocabulary import (
    EXCHANGES_GENERAL_PATH,
    HISTORICAL_DAYS_PATH,
    MIN_API_RATE_LIMIT_TYPE,
    RATE_LIMIT_PATH,
    SPOT_INSTRUMENTS_PATH,
    TOP_LIST_PATH,
)
from spot_pipeline_dev.fake_ccdata import endpoints
from spot_pipeline_dev.fake_ccdata.dataset import FakeDataset
from spot_pipeline_dev.fake_ccdata.endpoints import ApiError

ApiName = Literal["data", "min"]

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
    `drop_connection_next`, `hold_answers`, `latency_seconds` and `limit_key` can all change while it
    runs.
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
        self.key_limits: dict[str, int] = {}
        self._host = host
        self._ports: dict[ApiName, int] = {"data": data_port, "min": min_port}
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._random_failures: tuple[float, int, random.Random] | None = None
        self._accepted_times: list[float] = []
        self._over_limit_requests = 0
        self._request_number = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._answers_released = threading.Event()
        self._answers_released.set()
        self._held_requests = 0
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
        self._answers_released.set()
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

    def fail_randomly(self, share: float, status: int = 503, seed: int = 0) -> None:
        """From now on answer each request with HTTP `status` with probability `share` (0 stops it),
        drawn from a generator seeded with `seed`, so a failing test replays the same failures."""
        if status not in INJECTABLE_STATUSES or not 0 <= share < 1:
            raise ValueError(f"expected a share in [0, 1) and a status in {sorted(INJECTABLE_STATUSES)}")
        with self._lock:
            self._random_failures = (share, status, random.Random(seed))

    def malformed_next(self, count: int, path: str | None = None) -> None:
        """Answer the next `count` requests with HTTP 200 and a body that is not valid JSON."""
        self._add_fault(_Fault("malformed", count, path))

    def slow_next(self, count: int, seconds: float, path: str | None = None) -> None:
        """Wait `seconds` before answering the next `count` requests (to trigger client timeouts)."""
        self._add_fault(_Fault("slow", count, path, seconds=seconds))

    def drop_connection_next(self, count: int, path: str | None = None) -> None:
        """Close the connection without answering the next `count` requests."""
        self._add_fault(_Fault("drop", count, path))

    def limit_key(self, **per_window: int) -> None:
        """Answer 429 beyond these requests per window, e.g. `limit_key(second=5, minute=60, hour=600)`
        (windows: second, minute, hour, day, month); `/admin/v2/rate/limit` reports them. No argument
        lifts every limit."""
        unknown = sorted(name for name in per_window if name.upper() not in WINDOW_SPANS)
        if unknown:
            raise ValueError(f"unknown windows {unknown}: use {', '.join(WINDOW_SPANS).lower()}")
        with self._lock:
            self.key_limits = {name.upper(): limit for name, limit in per_window.items()}

    def hold_answers(self) -> None:
        """Keep every request that arrives from now on waiting, unanswered, until `release_answers()`
        (or `stop()`): a run caught in the middle of its calls, for as long as a test needs."""
        self._answers_released.clear()

    def release_answers(self) -> None:
        """Answer the held requests and stop holding new ones."""
        self._answers_released.set()

    @property
    def held_requests(self) -> int:
        """How many requests are waiting for `release_answers()` now."""
        with self._lock:
            return self._held_requests

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError(f"count must be at least 1, got {fault.remaining}")
        with self._lock:
            self._faults.append(fault)

    def _random_failure_status(self) -> int | None:
        with self._lock:
            if self._random_failures is None:
                return None
            share, status, generator = self._random_failures
            return status if generator.random() < share else None

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
        """Requests refused with 429 because of `limit_key`."""
        with self._lock:
            return self._over_limit_requests

    def request_count(self, path: str | None = None) -> int:
        """How many requests were received, to `path` if given."""
        return sum(1 for request in self.requests if path in (None, request.path))

    def reset_log(self) -> None:
        """Forget the request log, the over-limit counter and the key's use (as if the key were new)."""
        with self._lock:
            self._log.clear()
            self._accepted_times.clear()
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

        self._wait_for_release()
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

    def _wait_for_release(self) -> None:
        if self._answers_released.is_set():
            return
        with self._lock:
            self._held_requests += 1
        self._answers_released.wait()
        with self._lock:
            self._held_requests -= 1

    def _reply(
        self, api: ApiName, path: str, query: dict[str, str], headers: Message, request_number: int
    ) -> _Reply:
        random_status = self._random_failure_status()
        if random_status is not None:
            return _error_reply(api, ApiError(random_status, _FAILURE_MESSAGES[random_status]), None)
        failure = self._take_fault("fail", path)
        if failure:
            error = ApiError(failure.status, _FAILURE_MESSAGES[failure.status])
            return _error_reply(api, error, retry_after=failure.retry_after)
        if self._take_fault("malformed", path):
            return _Reply(200, _MALFORMED_BODY)
        try:
            self._check_authorization(headers)
            self._check_rate_limit()
            data = self._route(api, path, query, request_number)
        except ApiError as error:
            return _error_reply(api, error, retry_after=error.retry_after)
        return _success_reply(api, data)

    def _check_authorization(self, headers: Message) -> None:
        if self.api_key is None:
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "apikey" or token.strip() != self.api_key:
            raise ApiError(
                401,
                "You need a valid auth key or api key to access this endpoint: "
                "send the header 'authorization: Apikey <key>'.",
            )

    def _check_rate_limit(self) -> None:
        """Refuse a request that would exceed any window's limit; count the accepted ones."""
        with self._lock:
            now = time.monotonic()
            for name, limit in self.key_limits.items():
                span = WINDOW_SPANS[name]
                first_in_window = bisect.bisect_right(self._accepted_times, now - span)
                if len(self._accepted_times) - first_in_window >= limit:
                    self._over_limit_requests += 1
                    oldest = self._accepted_times[first_in_window] if limit else now
                    retry_after = max(1, math.ceil(oldest + span - now))
                    raise ApiError(429, _FAILURE_MESSAGES[429], retry_after=retry_after)
            self._accepted_times.append(now)

    def _route(self, api: ApiName, path: str, query: dict[str, str], request_number: int) -> Any:
        if api == "min":
            if path == EXCHANGES_GENERAL_PATH:
                return endpoints.exchanges_general(self.dataset)
            raise ApiError(404, f"Path {path} does not exist on the min-api.")
        if path == HISTORICAL_DAYS_PATH:
            return endpoints.historical_days(self.dataset, query, self.now(), request_number)
        if path == SPOT_INSTRUMENTS_PATH:
            return endpoints.markets_instruments(self.dataset, query, self.now())
        if path == TOP_LIST_PATH:
            return endpoints.top_list(self.dataset, query, self.now())
        if path == RATE_LIMIT_PATH:
            with self._lock:
                accepted, limits = list(self._accepted_times), dict(self.key_limits)
            return endpoints.rate_limit_status(accepted, time.monotonic(), limits)
        raise ApiError(404, f"Path {path} does not exist on the data-api.")


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


def _error_reply(api: ApiName, error: ApiError, retry_after: float | None) -> _Reply:
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
