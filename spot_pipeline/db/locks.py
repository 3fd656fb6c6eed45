"""Exclusive write locks on a table, held by whichever job rewrites it (ingestion, migration, dedupe).

Dagster's `ohlcv_table_writes` pool keeps such steps from being scheduled together; this lock is the
guarantee underneath, holding even for runs launched outside the daemon. Both forms are released by
the operating system or the server when the holder dies, so a crash never leaves a stale lock:
MySQL/MariaDB use a named lock (`GET_LOCK`) tied to a connection; SQLite uses an OS file lock beside
the database file.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from spot_pipeline.db.dialect import is_mysql
from spot_pipeline.db.engine import SQLITE_FILE_OPTION

OHLCV_WRITE_POOL = "ohlcv_table_writes"
DEFAULT_WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.2
_memory_locks: dict[str, threading.Lock] = {}


class TableLockTimeout(TimeoutError):
    """Another job held the table's write lock for longer than this one was willing to wait."""


@contextmanager
def table_write_lock(
    engine: sa.Engine, schema: str, table_name: str, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> Iterator[None]:
    """Hold the exclusive write lock of `schema.table_name` for the duration of the block."""
    name = f"spot_pipeline:{schema}.{table_name}"
    if is_mysql(engine):
        lock = _mysql_lock(engine, name, wait_seconds)
    else:
        lock = _sqlite_lock(engine, name, wait_seconds)
    with lock:
        yield


@contextmanager
def _mysql_lock(engine: sa.Engine, name: str, wait_seconds: float) -> Iterator[None]:
    with engine.connect() as connection:
        acquired = connection.execute(
            sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": wait_seconds}
        ).scalar()
        connection.commit()
        if acquired != 1:
            raise TableLockTimeout(_timeout_message(name, wait_seconds))
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            connection.commit()


@contextmanager
def _sqlite_lock(engine: sa.Engine, name: str, wait_seconds: float) -> Iterator[None]:
    database_file = engine.get_execution_options().get(SQLITE_FILE_OPTION)  # None: in memory
    if database_file is None:
        lock = _memory_locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=wait_seconds):
            raise TableLockTimeout(_timeout_message(name, wait_seconds))
        try:
            yield
        finally:
            lock.release()
        return
    lock_path = Path(f"{database_file}.{name.split('.')[-1]}.lock")
    with lock_path.open("a") as handle:
        _flock_with_deadline(handle.fileno(), name, wait_seconds)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _flock_with_deadline(descriptor: int, name: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TableLockTimeout(_timeout_message(name, wait_seconds)) from None
            time.sleep(_POLL_SECONDS)


def _timeout_message(name: str, wait_seconds: float) -> str:
    return (
        f"waited {wait_seconds:.0f} s for the write lock {name!r}: another ingestion, migration or "
        "deduplication run is writing the table; retry when it has finished"
    )
