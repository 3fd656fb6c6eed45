"""The provider's vocabulary: hosts, endpoint paths, limits, statuses, grades and error codes of CCData.

Each fact about the API is stated here once and imported by the client, the domains that read the
payloads and the development kit's fake server, so a change on the provider's side is one edit.
"""

from __future__ import annotations

from enum import StrEnum

DEFAULT_DATA_API_URL = "https://data-api.coindesk.com"
DEFAULT_MIN_API_URL = "https://min-api.cryptocompare.com"

# Endpoint paths: data-api, then min-api.
HISTORICAL_DAYS_PATH = "/spot/v1/historical/days"
SPOT_INSTRUMENTS_PATH = "/spot/v1/markets/instruments"
TOP_LIST_PATH = "/asset/v1/top/list"
EXCHANGES_GENERAL_PATH = "/data/exchanges/general"
# The key's own limits per window (USED, MAX, REMAINING); the call counts against them.
RATE_LIMIT_PATH = "/admin/v2/rate/limit"

# Daily candles: the most one `/spot/v1/historical/days` call returns.
MAX_CANDLES_PER_CALL = 5000

# `/asset/v1/top/list` paging bounds.
TOP_LIST_MIN_PAGE_SIZE = 10
TOP_LIST_MAX_PAGE_SIZE = 100
TOP_LIST_MAX_PAGE = 1000

# Values of `instrument_status`, best first; the API's default has changed, so callers pass one.
INSTRUMENT_STATUSES = (
    "ACTIVE",
    "IGNORED",
    "RETIRED",
    "EXPIRED",
    "READY_FOR_DECOMMISSIONING",
    "RETIRED_UNMAPPED",
)
ACTIVE_STATUS = INSTRUMENT_STATUSES[0]
# The same values as a type, so that run config naming another is refused when the run is launched.
InstrumentStatus = StrEnum("InstrumentStatus", [(status, status) for status in INSTRUMENT_STATUSES])

# Exchange grades of the min-api, best first ("BB or better" is AA, A, BB).
GRADE_SCALE = ("AA", "A", "BB", "B", "C", "D", "E", "F")
ExchangeGrade = StrEnum("ExchangeGrade", [(grade, grade) for grade in GRADE_SCALE])

# Every timestamp of the API is unix seconds; later than 2100-01-01 means milliseconds or garbage.
MAX_EPOCH_SECONDS = 4_102_444_800

# Rate-limit and failure signals: the data-api answers HTTP 429, the min-api HTTP 200 with Type 99.
RATE_LIMITED_STATUS = 429
MIN_API_RATE_LIMIT_TYPE = 99
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
AUTH_FAILURE_STATUSES = frozenset({401, 403})
NOT_FOUND_STATUS = 404


def qualifying_grades(min_grade: str) -> tuple[str, ...]:
    """The grades at least as good as `min_grade`, e.g. BB -> (AA, A, BB)."""
    grade = min_grade.strip().upper()
    if grade not in GRADE_SCALE:
        raise ValueError(
            f"min_grade {min_grade!r} is not a CCData grade: use one of {', '.join(GRADE_SCALE)}"
        )
    return GRADE_SCALE[: GRADE_SCALE.index(grade) + 1]
