"""Property: whatever sequence of runs, re-runs, overlapping ranges, remaps, retried batches and
failures ingestion goes through, the table never holds two rows for one candle and never loses one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import cc_ohlcv_spot_1d_raw
from spot_pipeline.ohlcv.candles import DayWindow, Pair
from spot_pipeline.ohlcv.fetching import fetch_pair
from spot_pipeline.ohlcv.ingestion import ingest_window
from spot_pipeline.ohlcv.queries import write_candles
from spot_pipeline.timeutils import utc_now, utc_today
from spot_pipeline_dev.fake_ccdata import FakeCCDataServer, FakeDataset

YESTERDAY = utc_today() - dt.timedelta(days=1)
HISTORY_PATH = "/spot/v1/historical/days"


@dataclass(frozen=True)
class Run:
    """Ingest `days` days ending `last_back` days before yesterday."""

    last_back: int
    days: int


@dataclass(frozen=True)
class Remap:
    """The provider maps one exchange instrument to a new symbol."""

    pair: int


@dataclass(frozen=True)
class RetriedBatch:
    """A run whose write of one pair is sent twice, as after a lost acknowledgement."""

    pair: int
    run: Run


@dataclass(frozen=True)
class FailingRun:
    """A run during which the API keeps failing for a while."""

    run: Run


runs = st.builds(Run, last_back=st.integers(0, 12), days=st.integers(1, 6))
pair_index = st.integers(0, 2)
operations = st.lists(
    st.one_of(
        runs,
        st.builds(Remap, pair=pair_index),
        st.builds(RetriedBatch, pair=pair_index, run=runs),
        st.builds(FailingRun, run=runs),
    ),
    min_size=1,
    max_size=6,
)


def window_of(run: Run) -> DayWindow:
    last = YESTERDAY - dt.timedelta(days=run.last_back)
    return DayWindow(last - dt.timedelta(days=run.days - 1), last + dt.timedelta(days=1))


class Harness:
    """Applies operations through the project's own ingestion path and tracks what must be stored."""

    def __init__(self, fake_api: FakeCCDataServer, market_db: MarketDatabase) -> None:
        self.fake_api, self.market_db = fake_api, market_db
        self.client = fake_api.client(
            calls_per_second=1000,
            max_retries=1,
            backoff_base_seconds=0.001,
            backoff_max_seconds=0.002,
        )
        fake_api.dataset = FakeDataset.default()
        instruments = fake_api.dataset.market("kraken").instruments
        active = [instrument for instrument in instruments if instrument.status == "ACTIVE"][:3]
        self.pairs = [Pair("kraken", i.instrument, i.mapped_instrument) for i in active]
        self.stored_days: set[tuple[str, dt.datetime]] = set()
        self.remaps = 0
        with market_db.begin() as connection:
            connection.execute(sa.delete(cc_ohlcv_spot_1d_raw))

    def apply(self, operation: object) -> None:
        if isinstance(operation, Run):
            failed = self._ingest(operation)
            assert not failed, f"a run without API faults failed for {failed}"
        elif isinstance(operation, Remap):
            instrument = self.fake_api.dataset.market("kraken").find_instrument(
                self.pairs[operation.pair].exchange_instrument_id
            )
            self.remaps += 1
            instrument.mapped_instrument = f"{instrument.base}{self.remaps}-{instrument.quote}"
        elif isinstance(operation, RetriedBatch):
            pair = self.pairs[operation.pair]
            result = fetch_pair(self.client, pair, window_of(operation.run), utc_now())
            for _ in range(2):
                with self.market_db.begin() as connection:
                    write_candles(connection, result.rows)
            self.stored_days |= {(pair.exchange_instrument_id, row["datetime"]) for row in result.rows}
        elif isinstance(operation, FailingRun):
            self.fake_api.fail_next(4, status=500, path=HISTORY_PATH)
            self._ingest(operation.run)

    def _ingest(self, run: Run) -> dict[Pair, str]:
        window = window_of(run)
        summary = ingest_window(self.client, self.market_db, self.pairs, window, utc_now(), batch_rows=5)
        succeeded = [pair for pair in self.pairs if pair not in summary.failed]
        for pair in succeeded:
            for offset in range(window.days):
                day = dt.datetime.combine(window.start + dt.timedelta(days=offset), dt.time())
                self.stored_days.add((pair.exchange_instrument_id, day))
        return summary.failed

    def check(self) -> None:
        with self.market_db.connect() as connection:
            rows = connection.execute(
                sa.select(
                    cc_ohlcv_spot_1d_raw.c.datetime,
                    cc_ohlcv_spot_1d_raw.c.exchange,
                    cc_ohlcv_spot_1d_raw.c.symbol,
                    cc_ohlcv_spot_1d_raw.c.symbol_unmapped,
                )
            ).all()
        by_mapped = [(row.datetime, row.exchange, row.symbol) for row in rows]
        by_unmapped = [(row.datetime, row.exchange, row.symbol_unmapped) for row in rows]
        assert len(set(by_mapped)) == len(rows), "two rows share (datetime, exchange, symbol)"
        assert len(set(by_unmapped)) == len(rows), "two rows share (datetime, exchange, symbol_unmapped)"
        present = {(row.symbol_unmapped, row.datetime) for row in rows}
        assert self.stored_days <= present, f"lost candles: {sorted(self.stored_days - present)[:5]}"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=operations)
def test_no_duplicate_and_no_lost_candle(
    sequence: list[object], fake_api: FakeCCDataServer, market_db: MarketDatabase
) -> None:
    harness = Harness(fake_api, market_db)
    for operation in sequence:
        harness.apply(operation)
        harness.check()
