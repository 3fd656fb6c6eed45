"""The database failing under a run: a transient error is retried with backoff and the table ends
exact; an error that outlasts the retries stops the run with a report of what was stored."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import cc_ohlcv_spot_1d_raw
from spot_pipeline.db.transient import DatabaseUnavailableError, is_transient, retry_transient
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.timeutils import utc_today
from spot_pipeline_tests.conftest import mysql_url
from spot_pipeline_tests.pipeline import (
    candle_metadata,
    materialize_candles,
    materialize_reference_and_universe,
)

YESTERDAY = utc_today() - dt.timedelta(days=1)
# A year of every pair: a write long enough for a second connection to catch it.
FIRST = YESTERDAY - dt.timedelta(days=364)
COMPARED = ("datetime", "exchange", "symbol_unmapped", "symbol", "open", "high", "low", "close", "volume")


def candles(market_db: MarketDatabase) -> set[tuple[object, ...]]:
    with market_db.connect() as connection:
        rows = connection.execute(sa.select(*(cc_ohlcv_spot_1d_raw.c[name] for name in COMPARED)))
        return {tuple(row) for row in rows}


@contextmanager
def kill_the_first_candle_write(schema_name: str) -> Iterator[list[int]]:
    """From a second connection, `KILL` the first connection seen writing candles into the schema
    (a statement of the writer's transaction, caught in flight)."""
    killed: list[int] = []
    stop = threading.Event()
    engine = sa.create_engine(mysql_url())

    def watch() -> None:
        with engine.connect() as admin:
            while not stop.is_set() and not killed:
                writer = admin.exec_driver_sql(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                    "AND INFO LIKE 'LOAD DATA%%' AND INFO LIKE %s LIMIT 1",
                    (f"%{schema_name}.cc_ohlcv_spot_1d_raw %",),
                ).scalar()
                if writer:
                    admin.exec_driver_sql(f"KILL CONNECTION {int(writer)}")
                    killed.append(int(writer))
                stop.wait(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        stop.set()
        watcher.join()
        engine.dispose()


@pytest.mark.parametrize("market_db", ["mysql"], indirect=True)
def test_a_connection_killed_mid_batch_is_retried_and_the_table_ends_exact(
    universe: list[Pair], ccdata: CCDataClient, market_db: MarketDatabase, tmp_path: Path
) -> None:
    with kill_the_first_candle_write(market_db.schema_name) as killed:
        result = materialize_candles(ccdata, market_db, FIRST, YESTERDAY)
    assert killed, "no writing transaction was caught"
    assert result.success  # the killed batch was written again

    clean = MarketDatabase(url=f"sqlite:///{tmp_path / 'clean.sqlite'}")
    assert materialize_reference_and_universe(ccdata, clean).success
    assert materialize_candles(ccdata, clean, FIRST, YESTERDAY).success
    assert candles(market_db) == candles(clean)
    assert candle_metadata(result)["pairs_failed"] == 0
    clean.dispose()


def test_errors_are_transient_only_when_another_attempt_can_succeed() -> None:
    lost = sa.exc.OperationalError("INSERT", {}, _DriverError(2013))
    refused = sa.exc.IntegrityError("INSERT", {}, _DriverError(1062))
    assert is_transient(lost) and not is_transient(refused)
    assert is_transient(sa.exc.OperationalError("BEGIN", {}, Exception("database is locked")))


def test_a_transaction_is_repeated_with_backoff_then_reported_without_its_text() -> None:
    attempts, waits, notes = [], [], []

    def always_lost() -> None:
        attempts.append(1)
        raise sa.exc.OperationalError("mysql://spot:secret@db/market", {}, _DriverError(2006))

    with pytest.raises(DatabaseUnavailableError) as failure:
        retry_transient(always_lost, "mysql://spot:***@db/market", on_retry=notes.append, sleep=waits.append)
    assert len(attempts) == 5 and waits == [1.0, 2.0, 4.0, 8.0]
    assert "mysql://spot:***@db/market" in str(failure.value) and "2006" in str(failure.value)
    assert "secret" not in str(failure.value) and not any("secret" in note for note in notes)


class _DriverError(Exception):
    def __init__(self, errno: int) -> None:
        super().__init__(f"driver error {errno}")
        self.errno = errno
