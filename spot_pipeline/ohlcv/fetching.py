"""Fetch the candles of many pairs at once: a bounded worker pool sharing the client's rate limiter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from spot_pipeline.ccdata import CCDataAuthError, CCDataClient, CCDataError, CCDataNotFoundError
from spot_pipeline.ccdata.payload import PayloadValueError
from spot_pipeline.concurrency import bounded_map
from spot_pipeline.db.schema import Row
from spot_pipeline.ohlcv.candles import DayWindow, Pair, candle_rows, plan_requests


@dataclass(frozen=True)
class PairResult:
    """The rows fetched for one pair, or why the pair failed (after the client's own retries)."""

    pair: Pair
    rows: list[Row]
    error: str | None = None
    not_found: bool = False


def fetch_pair(client: CCDataClient, pair: Pair, window: DayWindow, collected_at: dt.datetime) -> PairResult:
    """All candles of one pair in the window: ceil(days / 5000) requests, newest first.

    A refused API key raises CCDataAuthError, which stops every pair. The API answers 404 both for
    "no data in this window" (before a listing) and for unknown instruments; neither is retryable.
    A 404 ends the pair's requests (older windows hold no data either) and keeps what the newer
    ones returned; a pair with no candle at all is named in the metadata as not found.
    """
    candles: list[dict[str, Any]] = []
    not_found = False
    try:
        for request in plan_requests(window):
            try:
                candles += client.historical_days(
                    pair.exchange, pair.exchange_instrument_id, limit=request.limit, to_ts=request.to_ts
                )
            except CCDataNotFoundError:
                not_found = True
                break
        rows = candle_rows(candles, pair, window, collected_at)
    except CCDataAuthError:
        raise  # the key is refused for every pair alike: the whole run stops
    except (CCDataError, PayloadValueError) as error:
        return PairResult(pair, [], f"{type(error).__name__}: {error}")
    return PairResult(pair, rows, not_found=not_found and not rows)


def fetch_pairs(
    client: CCDataClient, pairs: Iterable[Pair], window: DayWindow, collected_at: dt.datetime
) -> Iterator[PairResult]:
    """Yield each pair's result as soon as it is fetched, `client.max_concurrency` at a time.

    Every worker goes through the client's rate limiter, so the pool as a whole stays under the
    configured calls per second. At most twice the pool size of results wait to be consumed, which
    bounds memory however many pairs there are.
    """
    workers = client.max_concurrency
    yield from bounded_map(lambda pair: fetch_pair(client, pair, window, collected_at), pairs, workers)
