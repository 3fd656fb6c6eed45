"""The CCData endpoints the pipeline uses, as a Dagster resource.

`CCDataClient` holds the configuration and offers one typed method per endpoint; every call goes
through one `Transport` per client (pacing, retries, counters, redaction: see `transport.py`).
"""

import threading
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import dagster as dg
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from spot_pipeline.ccdata.errors import CCDataPayloadError
from spot_pipeline.ccdata.key_limits import KeyLimits
from spot_pipeline.ccdata.transport import Api, ClientStats, Transport, TransportSettings, check_base_url
from spot_pipeline.ccdata.vocabulary import (
    DEFAULT_DATA_API_URL,
    DEFAULT_MIN_API_URL,
    EXCHANGES_GENERAL_PATH,
    HISTORICAL_DAYS_PATH,
    MAX_CANDLES_PER_CALL,
    RATE_LIMIT_PATH,
    SPOT_INSTRUMENTS_PATH,
    TOP_LIST_MAX_PAGE,
    TOP_LIST_MAX_PAGE_SIZE,
    TOP_LIST_MIN_PAGE_SIZE,
    TOP_LIST_PATH,
)

_T = TypeVar("_T")


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

    _transport: Transport | None = PrivateAttr(default=None)
    _transport_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("data_api_url", "min_api_url", mode="before")
    @classmethod
    def _require_plain_http_url(cls, url: Any) -> Any:
        # "before" mode sees a dg.EnvVar as such; an unset one is checked when Dagster resolves it at
        # run time (the resource is rebuilt from the resolved values then).
        resolved = url.get_value() if isinstance(url, dg.EnvVar) else url
        if isinstance(resolved, str):
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
        return self._get_transport().stats

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._get_transport().reset_stats()

    @property
    def pace(self) -> float:
        """Calls per second of the second window now in force (see `pace_to`)."""
        return self._get_transport().calls_per_second

    def pace_to(self, limits: KeyLimits) -> None:
        """Pace this client's later calls by the key's own limits, never above `calls_per_second`."""
        self._get_transport().pace_to(limits)

    def close(self) -> None:
        """Close the pooled HTTP session; the next call opens a new one (with fresh counters)."""
        with self._transport_lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Release the HTTP connections at the end of a Dagster run."""
        self.close()

    # ---- generic calls

    def get_data_api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a data-api endpoint and return its `Data` member (errors raise a CCDataError)."""
        return self._get_transport().get(Api.DATA, path, params or {})

    def get_min_api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a min-api endpoint and return its `Data` member (`Response: Error` raises a CCDataError)."""
        return self._get_transport().get(Api.MIN, path, params or {})

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

    def key_limits(self) -> KeyLimits:
        """The API key's limits per window, as left now (`/admin/v2/rate/limit`; it counts as a call)."""
        return KeyLimits.from_payload(self.get_data_api(RATE_LIMIT_PATH))

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

    def _get_transport(self) -> Transport:
        with self._transport_lock:
            if self._transport is None:
                self._transport = Transport(
                    TransportSettings(
                        api_key=self.api_key,
                        base_urls={Api.DATA: self.data_api_url, Api.MIN: self.min_api_url},
                        calls_per_second=self.calls_per_second,
                        max_concurrency=self.max_concurrency,
                        timeout_seconds=self.timeout_seconds,
                        max_retries=self.max_retries,
                        backoff_base_seconds=self.backoff_base_seconds,
                        backoff_max_seconds=self.backoff_max_seconds,
                    )
                )
            return self._transport


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
