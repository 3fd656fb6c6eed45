"""The CCData (CryptoCompare / CoinDesk Data) provider: its vocabulary, the client resource, its errors.

`vocabulary` states the API's facts once; `transport` carries calls (pacing, retries, redaction);
`client` offers the endpoints as a Dagster resource; `payload` converts the values of the answers.
"""

from spot_pipeline.ccdata.client import CCDataClient
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
from spot_pipeline.ccdata.transport import ClientStats

__all__ = [
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
