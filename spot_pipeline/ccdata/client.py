"""Dagster resource for the CCData data-api and min-api: pacing, retries, typed errors, no leaked key."""

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from enum import Enum
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import dagster as dg
import requests
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator
from requests.adapters import HTTPAdapter

from spot_pipeline.ccdata.errors import (
    CCDataAuthError,
    CCDataError,
    CCDataNotFoundError,
    CCDataPayloadError,
    CCDataRateLimitError,
    CCDataRequestError,
    CCDataUnavailableError,
)
from spot_pipeline.ccdata.rate_limiter import RateLimiter

logger = logging.getLogger("spot_pipeline.ccdata")

_T = TypeVar("_T")

DEFAULT_DATA_API_URL = "https://data-api.coindesk.com"
DEFAULT_MIN_API_URL = "https://min-api.cryptocompare.com"

HISTORICAL_DAYS_PATH = "/spot/v1/historical/days"
SPOT_INSTRUMENTS_PATH = "/spot/v1/markets/instruments"
TOP_LIST_PATH = "/asset/v1/top/list"
EXCHANGES_GENERAL_PATH = "/data/exchanges/general"

MAX_CANDLES_PER_CALL = 5000
# Values of `instrument_status`, best first; the API's default has changed, so callers pass one.
INSTRUMENT_STATUSES = (
    "ACTIVE",
    "IGNORED",
    "RETIRED",
    "EXPIRED",
    "READY_FOR_DECOMMISSIONING",
    "RETIRED_UNMAPPED",
)
TOP_LIST_MIN_PAGE_SIZE = 10
TOP_LIST_MAX_PAGE_SIZE = 100
TOP_LIST_MAX_PAGE = 1000

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
MIN_API_RATE_LIMIT_TYPE = 99
_REDACTED = "***"


@dataclass(frozen=True)
class ClientStats:
    """Counters of one client since it was created or since `reset_stats()`.

    requests: HTTP attempts sent, retries included. retries: attempts repeated after a retryable
    failure. rate_limited: answers saying "rate limit exceeded" (HTTP 429 or min-api Type 99).
    errors: calls that ended by raising a CCDataError to the caller.
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0

    def __sub__(self, earlier: "ClientStats") -> "ClientStats":
        """What happened between an earlier snapshot and this one."""
        return ClientStats(*(now - then for now, then in zip(astuple(self), astuple(earlier), strict=True)))


class _StatsCounter:
    """Thread-safe holder of a ClientStats value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = ClientStats()

    def add(self, counter: str) -> None:
        with self._lock:
            self._stats = dataclasses.replace(self._stats, **{counter: getattr(self._stats, counter) + 1})

    def snapshot(self) -> ClientStats:
        with self._lock:
            return self._stats

    def reset(self) -> None:
        with self._lock:
            self._stats = ClientStats()


@dataclass
class _Runtime:
    """Mutable state shared by every thread using one client."""

    session: requests.Session
    limiter: RateLimiter
    stats: _StatsCounter = dataclasses.field(default_factory=_StatsCounter)


class _Api(Enum):
    DATA = "data-api"
    MIN = "min-api"


@dataclass(frozen=True)
class _Call:
    api: _Api
    path: str
    query: dict[str, str]
    safe_query: dict[str, str]  # the query with any occurrence of the key redacted, for messages


class _FailureKind(Enum):
    RATE_LIMITED = "rate limited"
    UNAVAILABLE = "unavailable"
    MALFORMED = "malformed"


class _RetryableFailure(Exception):
    """An attempt failed in a way that another attempt may fix."""

    def __init__(self, kind: _FailureKind, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after

    def final_error(self, call: _Call, attempts: int) -> CCDataError:
        if self.kind is _FailureKind.RATE_LIMITED:
            return CCDataRateLimitError(
                self.detail, path=call.path, params=call.safe_query, attempts=attempts
            )
        if self.kind is _FailureKind.UNAVAILABLE:
            return CCDataUnavailableError(
                self.detail, path=call.path, params=call.safe_query, attempts=attempts
            )
        return CCDataPayloadError(
            f"{self.detail} (gave up after {attempts} attempts)", path=call.path, params=call.safe_query
        )


class CCDataClient(dg.ConfigurableResource):
    """Client for the CCData (CryptoCompare / CoinDesk Data) REST APIs: the data-api and the legacy min-api.

    One instance is safe to share between threads: it keeps one pooled HTTP session, paces every call
    through a shared rate limiter (a 429 pauses the whole pool), retries transient failures with
    exponential backoff and jitter, and raises typed `CCDataError`s naming the endpoint and what to do.
    The API key travels only in the `authorization` header; it never appears in URLs, logs or errors.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    api_key: str | None = Field(
        default=None,
        repr=False,
        description=(
            'CCData API key, sent only in the "authorization: Apikey <key>" header. '
            'Configure it as dg.EnvVar("CCDATA_API_KEY") so the key never shows in the UI.'
        ),
    )
    data_api_url: str = Field(
        default=DEFAULT_DATA_API_URL, description="Base URL of the data-api (spot candles, instruments)."
    )
    min_api_url: str = Field(
        default=DEFAULT_MIN_API_URL, description="Base URL of the legacy min-api (exchange grades)."
    )
    calls_per_second: float = Field(
        default=20.0, gt=0, description="Most calls started in any one-second window, across all threads."
    )
    max_concurrency: int = Field(
        default=8, ge=1, description="Most threads expected to share this client (HTTP connection pool size)."
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="Connect and read timeout of every HTTP call, in seconds."
    )
    max_retries: int = Field(
        default=5, ge=0, description="Retries after the first attempt on 429, 5xx, timeouts and bad JSON."
    )
    backoff_base_seconds: float = Field(
        default=0.5, gt=0, description="Backoff before the first retry; doubles on every further retry."
    )
    backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="Upper bound of one backoff, including a server's Retry-After."
    )

    _runtime: _Runtime | None = PrivateAttr(default=None)
    _runtime_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("data_api_url", "min_api_url", mode="before")
    @classmethod
    def _require_plain_http_url(cls, url: Any) -> Any:
        # "before" mode sees a dg.EnvVar as such; an unset one is checked when Dagster resolves it at
        # run time (the resource is rebuilt from the resolved values then).
        resolved = _resolve(url) if isinstance(url, str) else None
        if resolved is not None:
            check_base_url(resolved)
        return url

    @model_validator(mode="after")
    def _require_ordered_backoff(self) -> Self:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        return self

    # ---- lifecycle and counters

    @property
    def stats(self) -> ClientStats:
        """A snapshot of this client's counters."""
        return self._get_runtime().stats.snapshot()

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._get_runtime().stats.reset()

    def close(self) -> None:
        """Close the pooled HTTP session; the next call opens a new one (with fresh counters)."""
        with self._runtime_lock:
            if self._runtime is not None:
                self._runtime.session.close()
                self._runtime = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Release the HTTP connections at the end of a Dagster run."""
        self.close()

    # ---- generic calls

    def get_data_api(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a data-api endpoint and return its `Data` member (errors raise a CCDataError)."""
        return self._get(_Api.DATA, path, params or {})

    def get_min_api(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a min-api endpoint and return its `Data` member (`Response: Error` raises a CCDataError)."""
        return self._get(_Api.MIN, path, params or {})

    # ---- typed endpoints

    def exchanges_general(self) -> dict[str, dict[str, Any]]:
        """Exchanges of the min-api keyed by numeric id (a string), with `InternalName` and `Grade`."""
        data = self.get_min_api(EXCHANGES_GENERAL_PATH)
        return _expect_type(dict, data, EXCHANGES_GENERAL_PATH, "an object of exchanges")

    def spot_instruments(
        self, instrument_status: str, markets: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Instruments per market: `{market: {..., "instruments": {MAPPED_INSTRUMENT: {...}}}}`.

        The status filter is always sent because the provider's default has changed between versions.
        `markets=None` asks for every market.
        """
        if not instrument_status:
            raise ValueError("instrument_status is required, e.g. 'ACTIVE' or 'RETIRED'")
        if markets is not None and (isinstance(markets, str) or not markets):
            raise ValueError("markets must be a non-empty sequence of market keys, or None for all markets")
        params: dict[str, Any] = {"instrument_status": instrument_status, "market": markets}
        data = self.get_data_api(SPOT_INSTRUMENTS_PATH, params)
        return _expect_type(dict, data, SPOT_INSTRUMENTS_PATH, "an object of markets")

    def top_list(
        self,
        limit: int,
        sort_by: str = "SPOT_MOVING_30_DAY_QUOTE_VOLUME_USD",
        page_size: int = TOP_LIST_MAX_PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """The first `limit` assets of the top list sorted by `sort_by` (descending), paging as needed."""
        _require_range("limit", limit, 1, TOP_LIST_MAX_PAGE * TOP_LIST_MAX_PAGE_SIZE)
        _require_range("page_size", page_size, TOP_LIST_MIN_PAGE_SIZE, TOP_LIST_MAX_PAGE_SIZE)
        assets: list[dict[str, Any]] = []
        for page in range(1, TOP_LIST_MAX_PAGE + 1):
            params = {"page": page, "page_size": page_size, "sort_by": sort_by, "sort_direction": "DESC"}
            items, is_last_page = _top_list_page(self.get_data_api(TOP_LIST_PATH, params))
            assets.extend(items)
            if is_last_page or len(assets) >= limit:
                break
        return assets[:limit]

    def historical_days(
        self, market: str, instrument: str, *, limit: int, to_ts: int
    ) -> list[dict[str, Any]]:
        """Daily candles of one instrument, ascending, the last one being the day that contains `to_ts`.

        `instrument` may be the mapped symbol (BTC-USD) or the exchange's own id (XXBTZUSD). A window
        without data comes back as an empty list. HTTP 404 (unknown or removed instrument) is NOT turned
        into an empty list: it raises CCDataNotFoundError so a vanished instrument is never mistaken for
        a quiet one. The candle of the current UTC day is incomplete: callers must not store it as final.
        """
        _require_range("limit", limit, 1, MAX_CANDLES_PER_CALL)
        _require_range("to_ts", to_ts, 0, None)
        params = {
            "market": market,
            "instrument": instrument,
            "limit": limit,
            "to_ts": to_ts,
            "fill": True,
            "apply_mapping": True,
        }
        data = self.get_data_api(HISTORICAL_DAYS_PATH, params)
        return _expect_type(list, data, HISTORICAL_DAYS_PATH, "a list of candles")

    # ---- request machinery

    def _get(self, api: _Api, path: str, params: Mapping[str, Any]) -> Any:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        query = _encode_params(params)
        call = _Call(api, path, query, {name: self._redact(value) for name, value in query.items()})
        runtime = self._get_runtime()
        attempt = 1
        while True:
            try:
                return self._attempt(runtime, call)
            except _RetryableFailure as failure:
                if failure.kind is _FailureKind.RATE_LIMITED:
                    runtime.stats.add("rate_limited")
                if attempt > self.max_retries:
                    runtime.stats.add("errors")
                    raise failure.final_error(call, attempt) from None
                self._wait_before_retry(runtime, call, failure, attempt)
                attempt += 1
            except CCDataError:
                runtime.stats.add("errors")
                raise

    def _attempt(self, runtime: _Runtime, call: _Call) -> Any:
        runtime.limiter.acquire()
        runtime.stats.add("requests")
        response = self._send(runtime.session, call)
        status = response.status_code
        if status == 429:
            raise _RetryableFailure(_FailureKind.RATE_LIMITED, "HTTP 429", _retry_after_seconds(response))
        if status in RETRYABLE_STATUSES:
            raise _RetryableFailure(
                _FailureKind.UNAVAILABLE, f"HTTP {status}", _retry_after_seconds(response)
            )
        if not 200 <= status < 300:
            raise self._status_error(call, status, _json_or_none(response))
        payload = _json_or_none(response)
        if payload is None:
            raise _RetryableFailure(
                _FailureKind.MALFORMED, f"HTTP {status} with a body that is not valid JSON"
            )
        if call.api is _Api.MIN:
            return self._unwrap_min_api(call, payload)
        return self._unwrap_data_api(call, payload)

    def _send(self, session: requests.Session, call: _Call) -> requests.Response:
        url = self._url(call)
        # Exceptions from requests are re-raised `from None` with class names only: their text can
        # carry request details (headers included), which must not reach logs or tracebacks.
        try:
            return session.get(url, params=call.query, timeout=self.timeout_seconds)
        except requests.Timeout:
            raise _RetryableFailure(
                _FailureKind.UNAVAILABLE, f"no answer within {self.timeout_seconds:g}s"
            ) from None
        except requests.RequestException as exc:
            if isinstance(exc, ValueError):  # InvalidHeader, InvalidURL, ...: retrying cannot help
                problem = (
                    f"the request could not be built ({_exception_names(exc)}); check that api_key holds "
                    "no spaces or line breaks and that the base URLs are valid"
                )
                raise CCDataError(problem, path=call.path, params=call.safe_query) from None
            raise _RetryableFailure(
                _FailureKind.UNAVAILABLE, f"connection failed ({_exception_names(exc)})"
            ) from None

    def _wait_before_retry(
        self, runtime: _Runtime, call: _Call, failure: _RetryableFailure, attempt: int
    ) -> None:
        delay = self._retry_delay(failure.retry_after, attempt)
        logger.warning(
            "CCData %s GET %s: %s; retry %d/%d in %.2fs",
            call.api.value,
            call.path,
            failure.detail,
            attempt,
            self.max_retries,
            delay,
        )
        runtime.stats.add("retries")
        if failure.kind is _FailureKind.RATE_LIMITED:
            # The quota is shared by every thread: hold them all back, this one included.
            runtime.limiter.pause(delay)
        else:
            time.sleep(delay)

    def _retry_delay(self, retry_after: float | None, attempt: int) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_seconds)
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _status_error(self, call: _Call, status: int, payload: Any) -> CCDataRequestError:
        message, param = self._provider_message(call.api, payload)
        error_class = CCDataRequestError
        if status in (401, 403):
            error_class = CCDataAuthError
        elif status == 404:
            error_class = CCDataNotFoundError
        return error_class(
            path=call.path, params=call.safe_query, status=status, provider_message=message, param=param
        )

    def _unwrap_data_api(self, call: _Call, payload: Any) -> Any:
        if not isinstance(payload, dict) or "Data" not in payload:
            raise CCDataPayloadError("the body has no 'Data' member", path=call.path, params=call.safe_query)
        if payload.get("Err"):
            message, param = self._provider_message(call.api, payload)
            raise CCDataRequestError(
                path=call.path, params=call.safe_query, status=200, provider_message=message, param=param
            )
        return payload["Data"]

    def _unwrap_min_api(self, call: _Call, payload: Any) -> Any:
        if not isinstance(payload, dict):
            raise CCDataPayloadError("the body is not a JSON object", path=call.path, params=call.safe_query)
        if payload.get("Response") == "Error":
            message, _ = self._provider_message(call.api, payload)
            if payload.get("Type") == MIN_API_RATE_LIMIT_TYPE:
                raise _RetryableFailure(_FailureKind.RATE_LIMITED, f"min-api rate limit: {message}")
            error_class = CCDataAuthError if _mentions_api_key(message) else CCDataRequestError
            raise error_class(path=call.path, params=call.safe_query, status=200, provider_message=message)
        if "Data" not in payload:
            raise CCDataPayloadError("the body has no 'Data' member", path=call.path, params=call.safe_query)
        return payload["Data"]

    def _provider_message(self, api: _Api, payload: Any) -> tuple[str, str | None]:
        """The provider's error message (key redacted) and the offending parameter, if any."""
        if not isinstance(payload, dict):
            return "", None
        if api is _Api.MIN:
            return self._redact(str(payload.get("Message", ""))), None
        err = payload.get("Err")
        if not isinstance(err, dict):
            return "", None
        other_info = err.get("other_info")
        param = other_info.get("param") if isinstance(other_info, dict) else None
        return self._redact(str(err.get("message", ""))), str(param) if param else None

    def _redact(self, text: str) -> str:
        key = self._resolved_api_key()
        return text.replace(key, _REDACTED) if key else text

    def _url(self, call: _Call) -> str:
        setting = self.min_api_url if call.api is _Api.MIN else self.data_api_url
        base_url = _resolve(setting)
        if base_url is None:
            variable = setting.env_var_name if isinstance(setting, dg.EnvVar) else "its setting"
            problem = f"the environment variable {variable}, the {call.api.value} base URL, is not set"
            raise CCDataError(problem, path=call.path, params=call.safe_query)
        return base_url.rstrip("/") + call.path

    def _resolved_api_key(self) -> str | None:
        return _resolve(self.api_key)

    def _get_runtime(self) -> _Runtime:
        with self._runtime_lock:
            if self._runtime is None:
                self._runtime = _Runtime(
                    session=self._new_session(), limiter=RateLimiter(self.calls_per_second)
                )
            return self._runtime

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.max_concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["Accept"] = "application/json"
        api_key = self._resolved_api_key()
        if api_key:
            session.headers["authorization"] = f"Apikey {api_key}"
        return session


def check_base_url(url: str) -> str:
    """An API base URL without its trailing slash, or ValueError saying what one must look like."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL such as {DEFAULT_DATA_API_URL}")
    if parts.query or parts.fragment:
        raise ValueError(
            "expected a base URL without a query string or fragment (the API key is set on its own)"
        )
    return url.rstrip("/")


def _resolve(value: str | None) -> str | None:
    """The value of a setting; a dg.EnvVar is only resolved by Dagster at run time, not in plain Python."""
    if isinstance(value, dg.EnvVar):
        return value.get_value()
    return value


def _encode_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as strings: booleans as true/false, sequences comma-joined, None dropped."""
    encoded: dict[str, str] = {}
    for name, value in params.items():
        if name.lower() == "api_key":
            raise ValueError("never pass the API key as a query parameter: set CCDataClient.api_key")
        if value is not None:
            encoded[name] = _encode_value(value)
    return encoded


def _encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ",".join(_encode_value(item) for item in value)
    return str(value)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header in seconds; HTTP-date values are ignored (backoff applies instead)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _mentions_api_key(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in ("api key", "api_key", "auth key"))


def _exception_names(exc: BaseException) -> str:
    """Class names along an exception's chain of causes, e.g. 'ConnectionError <- NewConnectionError'."""
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(names) < 5:
        seen.add(id(current))
        names.append(type(current).__name__)
        current = _underlying_exception(current)
    return " <- ".join(names)


def _underlying_exception(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)  # urllib3's MaxRetryError keeps the cause here
    if isinstance(reason, BaseException):
        return reason
    if exc.args and isinstance(exc.args[0], BaseException):
        return exc.args[0]
    return exc.__cause__ or exc.__context__


def _require_range(name: str, value: int, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")


def _expect_type(kind: type[_T], data: Any, path: str, description: str) -> _T:
    if not isinstance(data, kind):
        raise CCDataPayloadError(f"'Data' is {type(data).__name__}, expected {description}", path=path)
    return data


def _top_list_page(data: Any) -> tuple[list[dict[str, Any]], bool]:
    """The items of one top-list page and whether it is the last page."""
    stats = data.get("STATS") if isinstance(data, dict) else None
    items = data.get("LIST") if isinstance(data, dict) else None
    counters = ("PAGE", "PAGE_SIZE", "TOTAL_ASSETS")
    if (
        not isinstance(items, list)
        or not isinstance(stats, dict)
        or not all(isinstance(stats.get(counter), int) for counter in counters)
    ):
        raise CCDataPayloadError(
            "'Data' lacks LIST or STATS{PAGE, PAGE_SIZE, TOTAL_ASSETS}", path=TOP_LIST_PATH
        )
    is_last_page = not items or stats["PAGE"] * stats["PAGE_SIZE"] >= stats["TOTAL_ASSETS"]
    return items, is_last_page
