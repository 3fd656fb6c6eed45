"""Client for the CCData (CryptoCompare / CoinDesk Data) APIs, as a Dagster resource."""

from spot_pipeline.ccdata.client import (
    DEFAULT_DATA_API_URL,
    DEFAULT_MIN_API_URL,
    INSTRUMENT_STATUSES,
    MAX_CANDLES_PER_CALL,
    CCDataClient,
    ClientStats,
)
from spot_pipeline.ccdata.errors import (
    CCDataAuthError,
    CCDataError,
    CCDataNotFoundError,
    CCDataPayloadError,
    CCDataRateLimitError,
    CCDataRequestError,
    CCDataRetriesExhaustedError,
    CCDataUnavailableError,
)
from spot_pipeline.ccdata.rate_limiter import RateLimiter

__all__ = [
    "DEFAULT_DATA_API_URL",
    "DEFAULT_MIN_API_URL",
    "INSTRUMENT_STATUSES",
    "MAX_CANDLES_PER_CALL",
    "CCDataAuthError",
    "CCDataClient",
    "CCDataError",
    "CCDataNotFoundError",
    "CCDataPayloadError",
    "CCDataRateLimitError",
    "CCDataRequestError",
    "CCDataRetriesExhaustedError",
    "CCDataUnavailableError",
    "ClientStats",
    "RateLimiter",
]
