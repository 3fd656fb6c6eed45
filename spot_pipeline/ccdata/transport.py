"""How a call reaches CCData: one pooled HTTP session, pacing, retries, counters and redaction.

`Transport` sends GET requests and returns each envelope's `Data` member. It is shared by every
thread of one client: calls are paced by one `RateLimiter` (a 429 pauses them all), and by the
key's minute and hour windows once `pace_to` has been given the key's own limits; transient
failures (429, 5xx, timeouts, connection errors, unparseable bodies) are retried with exponential
backoff and jitter, `Retry-After` honoured, and everything else becomes a typed `CCDataError`. The
API key travels only in the `authorization` header and is redacted from every provider message, so it
never reaches a URL, a log line or an exception. The endpoints themselves live in `client.py`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import astuple, dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import requests
from requests.adapters import HTTPAdapter

from spot_pipeline.ccdata import errors
from spot_pipeline.ccdata.key_limits import KeyLimits
from spot_pipeline.ccdata.rate_limiter import RateLimiter
from spot_pipeline.ccdata.vocabulary import (
    AUTH_FAILURE_STATUSES,
    DEFAULT_DATA_API_URL,
    MIN_API_RATE_LIMIT_TYPE,
    NOT_FOUND_STATUS,
    RATE_LIMITED_STATUS,
    RETRYABLE_STATUSES,
)

logger = logging.getLogger("spot_pipeline.ccdata")

_REDACTED = "***"


class Api(Enum):
    DATA = "data-api"
    MIN = "min-api"


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

    def __sub__(self, earlier: ClientStats) -> ClientStats:
        """What happened between an earlier snapshot and this one."""
        return ClientStats(*(now - then for now, then in zip(astuple(self), astuple(earlier), strict=True)))


@dataclass(frozen=True)
class TransportSettings:
    """What a transport needs from the client's configuration. URLs may still be `dg.EnvVar`s."""

    api_key: str | None
    base_urls: Mapping[Api, str | dg.EnvVar]
    calls_per_second: float
    max_concurrency: int
    timeout_seconds: float
    max_retries: int
    backoff_base_seconds: float
    backoff_max_seconds: float


class Transport:
    """GET requests to the data-api and the min-api, paced, retried and counted (see the module docstring)."""

    def __init__(self, settings: TransportSettings) -> None:
        self._settings = settings
        self._api_key = _resolve(settings.api_key)
        self._limiter = RateLimiter(settings.calls_per_second)
        self._window_limiters: list[RateLimiter] = []
        self._session = self._new_session()
        self._stats_lock = threading.Lock()
        self._stats = ClientStats()

    @property
    def stats(self) -> ClientStats:
        with self._stats_lock:
            return self._stats

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = ClientStats()

    def close(self) -> None:
        self._session.close()

    @property
    def calls_per_second(self) -> float:
        """The pace of the second window now in force."""
        return self._limiter.calls_per_second

    def pace_to(self, limits: KeyLimits) -> None:
        """Pace every later call by the key's own limits: its second (never above the configured
        rate), and what is left of its minute and hour. Call it before the calls start, not during."""
        second = limits.windows.get("SECOND")
        # At least the call that read the limits was answered within this second.
        self._limiter = RateLimiter(
            limits.calls_per_second(self._settings.calls_per_second),
            already_used=max(1, second.used if second else 0),
        )
        self._window_limiters = [
            RateLimiter(window.maximum, window.seconds, spaced=False, already_used=window.used)
            for window in limits.pacing_windows()
        ]

    def get(self, api: Api, path: str, params: Mapping[str, Any]) -> Any:
        """The `Data` member of one GET, after retries; raises a CCDataError otherwise."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        query = _encode_params(params)
        call = _Call(api, path, query, {name: self._redact(value) for name, value in query.items()})
        attempt = 1
        while True:
            try:
                return self._attempt(call)
            except _RetryableFailure as failure:
                if failure.kind is _FailureKind.RATE_LIMITED:
                    self._count("rate_limited")
                if attempt > self._settings.max_retries:
                    self._count("errors")
                    raise failure.final_error(call, attempt) from None
                self._wait_before_retry(call, failure, attempt)
                attempt += 1
            except errors.CCDataError:
                self._count("errors")
                raise

    def _count(self, counter: str) -> None:
        with self._stats_lock:
            self._stats = dataclasses.replace(self._stats, **{counter: getattr(self._stats, counter) + 1})

    def _attempt(self, call: _Call) -> Any:
        with self._paced():
            self._count("requests")
            response = self._send(call)
        status = response.status_code
        if status == RATE_LIMITED_STATUS:
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
        if call.api is Api.MIN:
            return self._unwrap_min_api(call, payload)
        return self._unwrap_data_api(call, payload)

    @contextmanager
    def _paced(self) -> Iterator[None]:
        """A turn in every window: the key's minute and hour first, so a call waiting for those
        holds no slot of the second's pace."""
        with ExitStack() as turns:
            for limiter in (*self._window_limiters, self._limiter):
                turns.enter_context(limiter.call())
            yield

    def _send(self, call: _Call) -> requests.Response:
        url = self._url(call)
        # Exceptions from requests are re-raised `from None` with class names only: their text can
        # carry request details (headers included), which must not reach logs or tracebacks.
        timeout, host = self._settings.timeout_seconds, _host(url)
        try:
            return self._session.get(url, params=call.query, timeout=timeout)
        except requests.Timeout:
            raise _RetryableFailure(
                _FailureKind.UNAVAILABLE, f"no answer from {host} within {timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            if isinstance(exc, ValueError):  # InvalidHeader, InvalidURL, ...: retrying cannot help
                problem = (
                    f"the request could not be built ({_exception_names(exc)}); check that "
                    "CCDATA_API_KEY holds no spaces or line breaks and that CCDATA_DATA_API_URL / "
                    "CCDATA_MIN_API_URL are valid"
                )
                raise errors.CCDataError(problem, path=call.path, params=call.safe_query) from None
            raise _RetryableFailure(
                _FailureKind.UNAVAILABLE, f"connection to {host} failed ({_exception_names(exc)})"
            ) from None

    def _wait_before_retry(self, call: _Call, failure: _RetryableFailure, attempt: int) -> None:
        delay = self._retry_delay(failure.retry_after, attempt)
        logger.warning(
            "CCData %s GET %s: %s; retry %d/%d in %.2fs",
            call.api.value,
            call.path,
            failure.detail,
            attempt,
            self._settings.max_retries,
            delay,
        )
        self._count("retries")
        if failure.kind is _FailureKind.RATE_LIMITED:
            # The quota is shared by every thread: hold them all back, this one included.
            self._limiter.pause(delay)
        else:
            time.sleep(delay)

    def _retry_delay(self, retry_after: float | None, attempt: int) -> float:
        base, ceiling = self._settings.backoff_base_seconds, self._settings.backoff_max_seconds
        if retry_after is not None:
            return min(retry_after, ceiling)
        ceiling = min(ceiling, base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _status_error(self, call: _Call, status: int, payload: Any) -> errors.CCDataRequestError:
        message, param = self._provider_message(call.api, payload)
        error_class = errors.CCDataRequestError
        if status in AUTH_FAILURE_STATUSES:
            error_class = errors.CCDataAuthError
        elif status == NOT_FOUND_STATUS:
            error_class = errors.CCDataNotFoundError
        return error_class(
            path=call.path, params=call.safe_query, status=status, provider_message=message, param=param
        )

    def _unwrap_data_api(self, call: _Call, payload: Any) -> Any:
        if not isinstance(payload, dict) or "Data" not in payload:
            raise _payload_error(call, "the body has no 'Data' member")
        if payload.get("Err"):
            message, param = self._provider_message(call.api, payload)
            raise errors.CCDataRequestError(
                path=call.path, params=call.safe_query, status=200, provider_message=message, param=param
            )
        return payload["Data"]

    def _unwrap_min_api(self, call: _Call, payload: Any) -> Any:
        if not isinstance(payload, dict):
            raise _payload_error(call, "the body is not a JSON object")
        if payload.get("Response") == "Error":
            message, _ = self._provider_message(call.api, payload)
            if payload.get("Type") == MIN_API_RATE_LIMIT_TYPE:
                raise _RetryableFailure(_FailureKind.RATE_LIMITED, f"min-api rate limit: {message}")
            error_class = errors.CCDataAuthError if _mentions_api_key(message) else errors.CCDataRequestError
            raise error_class(path=call.path, params=call.safe_query, status=200, provider_message=message)
        if "Data" not in payload:
            raise _payload_error(call, "the body has no 'Data' member")
        return payload["Data"]

    def _provider_message(self, api: Api, payload: Any) -> tuple[str, str | None]:
        """The provider's error message (key redacted) and the offending parameter, if any."""
        if not isinstance(payload, dict):
            return "", None
        if api is Api.MIN:
            return self._redact(str(payload.get("Message", ""))), None
        err = payload.get("Err")
        if not isinstance(err, dict):
            return "", None
        other_info = err.get("other_info")
        param = other_info.get("param") if isinstance(other_info, dict) else None
        return self._redact(str(err.get("message", ""))), str(param) if param else None

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, _REDACTED) if self._api_key else text

    def _url(self, call: _Call) -> str:
        setting = self._settings.base_urls[call.api]
        base_url = _resolve(setting)
        if base_url is None:
            variable = setting.env_var_name if isinstance(setting, dg.EnvVar) else "its setting"
            problem = f"the environment variable {variable}, the {call.api.value} base URL, is not set"
            raise errors.CCDataError(problem, path=call.path, params=call.safe_query)
        return base_url.rstrip("/") + call.path

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self._settings.max_concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["Accept"] = "application/json"
        if self._api_key:
            session.headers["authorization"] = f"Apikey {self._api_key}"
        return session


@dataclass(frozen=True)
class _Call:
    api: Api
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

    def final_error(self, call: _Call, attempts: int) -> errors.CCDataError:
        if self.kind is _FailureKind.RATE_LIMITED:
            return errors.CCDataRateLimitError(
                self.detail, path=call.path, params=call.safe_query, attempts=attempts
            )
        if self.kind is _FailureKind.UNAVAILABLE:
            return errors.CCDataUnavailableError(
                self.detail, path=call.path, params=call.safe_query, attempts=attempts
            )
        return _payload_error(call, f"{self.detail} (gave up after {attempts} attempts)")


def _payload_error(call: _Call, problem: str) -> errors.CCDataPayloadError:
    return errors.CCDataPayloadError(problem, path=call.path, params=call.safe_query)


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


def _host(url: str) -> str:
    """host:port of a URL, without any credentials it may hold."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _resolve(value: str | dg.EnvVar | None) -> str | None:
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
