"""Typed errors raised by the CCData client.

Every message names the endpoint and its (key-free) parameters, says what failed and what to do about it.
The API key is never part of a message: the client never puts it in parameters and redacts it from
provider messages before building an error.
"""

from collections.abc import Mapping

_MAX_PARAM_VALUE_CHARS = 80


def describe_request(path: str, params: Mapping[str, str] | None) -> str:
    """Render `GET <path> (k=v, ...)` for messages, truncating long parameter values."""
    if not params:
        return f"GET {path}"
    rendered = ", ".join(f"{name}={_truncate(value)}" for name, value in sorted(params.items()))
    return f"GET {path} ({rendered})"


def _truncate(value: str) -> str:
    if len(value) <= _MAX_PARAM_VALUE_CHARS:
        return value
    return value[: _MAX_PARAM_VALUE_CHARS - 3] + "..."


class CCDataError(Exception):
    """Base class of every error raised by the CCData client."""

    hint = "Check the CCDATA_* environment variables and the provider's status."

    def __init__(self, problem: str, *, path: str, params: Mapping[str, str] | None = None) -> None:
        problem = problem.rstrip(". ")
        super().__init__(f"CCData {describe_request(path, params)} failed: {problem}. {self.hint}")
        self.path = path
        self.params = dict(params or {})


class CCDataRequestError(CCDataError):
    """The API rejected the request and retrying will not help (bad parameter, unknown market, ...)."""

    hint = "Check the request parameters against the CCData API documentation."

    def __init__(
        self,
        *,
        path: str,
        params: Mapping[str, str] | None = None,
        status: int,
        provider_message: str = "",
        param: str | None = None,
    ) -> None:
        self.status = status
        self.provider_message = provider_message
        self.param = param
        super().__init__(self._problem(), path=path, params=params)

    def _problem(self) -> str:
        problem = f"HTTP {self.status}"
        if self.provider_message:
            problem += f": {self.provider_message}"
        if self.param:
            problem += f" (parameter {self.param!r})"
        return problem


class CCDataAuthError(CCDataRequestError):
    """The API key is missing, invalid, or not allowed to use this endpoint (HTTP 401/403)."""

    hint = (
        "Set the CCDATA_API_KEY environment variable to a valid CCData API key, "
        "or check that the configured key is active and entitled to this endpoint."
    )


class CCDataNotFoundError(CCDataRequestError):
    """The API has no such resource (HTTP 404): unknown instrument, path or no data."""

    hint = (
        "Check that the market and instrument exist (GET /spot/v1/markets/instruments) "
        "and that CCDATA_DATA_API_URL / CCDATA_MIN_API_URL point at the right API."
    )


class CCDataRetriesExhaustedError(CCDataError):
    """A retryable failure persisted through every allowed attempt."""

    def __init__(
        self, problem: str, *, path: str, params: Mapping[str, str] | None = None, attempts: int
    ) -> None:
        self.attempts = attempts
        super().__init__(f"{problem} (gave up after {attempts} attempts)", path=path, params=params)


class CCDataRateLimitError(CCDataRetriesExhaustedError):
    """The API kept answering "rate limit exceeded" after every retry."""

    hint = (
        "Lower CCDATA_CALLS_PER_SECOND or CCDATA_MAX_CONCURRENCY, or check the key's remaining quota "
        "(python -m spot_pipeline.ohlcv.budget, or GET /admin/v2/rate/limit)."
    )


class CCDataUnavailableError(CCDataRetriesExhaustedError):
    """The API kept failing with 5xx, timeouts or connection errors after every retry."""

    hint = (
        "The provider or the network is failing: retry later, check that CCDATA_DATA_API_URL / "
        "CCDATA_MIN_API_URL name the API's host, or raise CCDATA_TIMEOUT_SECONDS / CCDATA_MAX_RETRIES "
        "if the failures are transient."
    )


class CCDataPayloadError(CCDataError):
    """The API answered with malformed JSON or a body of an unexpected shape."""

    hint = "Retry later; if it persists the API contract may have changed: inspect the raw response."
