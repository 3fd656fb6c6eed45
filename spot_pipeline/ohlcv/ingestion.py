"""Ingest a window of closed days for every pair: fetch concurrently, write in bounded transactions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.locks import HeldLock, TableLockTimeout
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.transient import DatabaseUnavailableError, retry_transient
from spot_pipeline.ohlcv.candles import DayWindow, Pair
from spot_pipeline.ohlcv.coverage import FetchedPair, record_fetched
from spot_pipeline.ohlcv.fetching import PairResult, fetch_pairs
from spot_pipeline.ohlcv.queries import SymbolHeldByAnotherInstrument, write_candles
from spot_pipeline.timeutils import day_start, utc_now, utc_today

DEFAULT_BATCH_ROWS = 20_000
WRITE_CONFLICTS = (sa.exc.IntegrityError, SymbolHeldByAnotherInstrument)


@dataclass
class IngestionSummary:
    pairs_ok: int = 0
    pairs_empty: int = 0
    rows_written: int = 0
    failed: dict[Pair, str] = field(default_factory=dict)
    not_found: list[Pair] = field(default_factory=list)
    # Why writing stopped before the end of the window (the database stayed unavailable), if it did.
    interrupted: str | None = None

    def interruption_report(self) -> str:
        report = (
            f"writing stopped: {self.interrupted}. Stored before that, each whole: {self.pairs_ok} pairs, "
            f"{self.rows_written} rows; the window's other pairs were not stored. Re-run the same "
            "partitions once the database is back: writes are upserts, nothing is duplicated"
        )
        return f"{report}\n{self.failure_report()}" if self.failed else report

    def failure_report(self) -> str:
        lines = [f"{len(self.failed)} pair(s) failed; re-run the partition(s) to fill them:"]
        lines += [f"- {pair}: {reason}" for pair, reason in sorted(self.failed.items())]
        return "\n".join(lines)


class CandleWriter:
    """Writes complete pairs in transactions of about `batch_rows` rows, with their coverage.

    A pair's rows always go into a single transaction, together with what the run fetched of it
    (`ohlcv_pair_coverage`), so a pair is stored whole or not at all. A pair the API had no candle
    for is recorded as fetched too. If a batch hits a constraint conflict, its pairs are retried one
    by one so that only the offending pair fails.
    """

    def __init__(
        self,
        market_db: MarketDatabase,
        summary: IngestionSummary,
        batch_rows: int,
        window: DayWindow,
        lock: HeldLock,
        on_retry: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._market_db = market_db
        self._lock = lock
        self._on_retry = on_retry
        self._summary = summary
        self._batch_rows = batch_rows
        self._fetched_from = day_start(window.start)
        self._buffer: list[PairResult] = []
        self._buffered_rows = 0

    def add(self, result: PairResult) -> None:
        if result.error is not None:
            self._summary.failed[result.pair] = result.error
            return
        if not result.rows:
            self._summary.pairs_empty += 1
            if result.not_found:
                self._summary.not_found.append(result.pair)
        self._buffer.append(result)
        self._buffered_rows += len(result.rows)
        if self._buffered_rows >= self._batch_rows:
            self.flush()

    def flush(self) -> None:
        batch, self._buffer, self._buffered_rows = self._buffer, [], 0
        if not batch:
            return
        try:
            self._write(batch)
        except WRITE_CONFLICTS:
            for result in batch:
                self._write_alone(result)

    def _write(self, batch: list[PairResult]) -> None:
        """One transaction for the batch, repeated with backoff if the database drops it."""

        def transaction() -> None:
            self._lock.ensure_held()
            with self._market_db.begin() as connection:
                write_candles(connection, [row for result in batch for row in result.rows])
                record_fetched(connection, [self._fetched(result) for result in batch], utc_now())

        retry_transient(transaction, self._market_db.display_url, on_retry=self._on_retry)
        self._summary.pairs_ok += sum(1 for result in batch if result.rows)
        self._summary.rows_written += sum(len(result.rows) for result in batch)

    def _fetched(self, result: PairResult) -> FetchedPair:
        days = [result.rows[0]["datetime"], result.rows[-1]["datetime"]] if result.rows else [None, None]
        return FetchedPair(result.pair, self._fetched_from, *days)

    def _write_alone(self, result: PairResult) -> None:
        try:
            self._write([result])
        except SymbolHeldByAnotherInstrument as error:
            self._summary.failed[result.pair] = str(error)
        except sa.exc.IntegrityError as error:
            self._summary.failed[result.pair] = f"conflicts with a stored candle: {error.orig}"


def ingest_window(
    client: CCDataClient,
    market_db: MarketDatabase,
    pairs: Iterable[Pair],
    window: DayWindow,
    collected_at: dt.datetime,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    lock: HeldLock | None = None,
    on_retry: Callable[[str], None] = lambda _: None,
) -> IngestionSummary:
    """Fetch and store every pair's candles for the window; failed pairs are reported, not raised.
    A database that stays unavailable through a write's retries stops the window, reported in
    `summary.interrupted` with what was stored before.

    The current UTC day is never part of the window: its candle is incomplete.
    """
    window = window.before(utc_today())
    summary = IngestionSummary()
    writer = CandleWriter(market_db, summary, batch_rows, window, lock or HeldLock(), on_retry)
    try:
        for result in fetch_pairs(client, pairs, window, collected_at):
            writer.add(result)
        writer.flush()
    except (DatabaseUnavailableError, TableLockTimeout) as error:
        summary.interrupted = str(error)
    return summary
