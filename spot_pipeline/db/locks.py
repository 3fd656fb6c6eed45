"""Exclusive write locks on a table, held by whichever job rewrites it (ingestion, migration, dedupe).

Dagster's `ohlcv_table_writes` pool keeps such steps from being scheduled together; this lock is the
guarantee underneath, holding even for runs launched outside the daemon. Both forms are released by
the operating system or the server when the holder dies, so a crash never leaves a stale lock:
MySQL/MariaDB use a named lock (`GET_LOCK`) tied to a connection; SQLite uses an OS file lock beside
the database file. A named lock also goes when its connection does (a server restart, a `KILL`):
`HeldLock.ensure_held()`, called before each write, takes it again, waiting for any other holder.
"""

from __future__ import annotations

import contextlib
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


class HeldLock:
    """A write lock being held; `ensure_held()` makes sure it still is (a file lock always is)."""

    def ensure_held(self) -> None:
        """Take the lock again if it was lost with its connection, before writing under it."""


@contextmanager
def table_write_lock(
    engine: sa.Engine, schema: str, table_name: str, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> Iterator[HeldLock]:
    """Hold the exclusive write lock of `schema.table_name` for the duration of the block."""
    name = f"spot_pipeline:{schema}.{table_name}"
    if is_mysql(engine):
        lock = _MySqlNamedLock(engine, name, wait_seconds)
        lock.acquire()
        try:
            yield lock
        finally:
            lock.release()
        return
    with _sqlite_lock(engine, name, wait_seconds):
        yield HeldLock()


class _MySqlNamedLock(HeldLock):
    """`GET_LOCK` on a connection of its own, taken again on a new one if the server dropped it."""

    def __init__(self, engine: sa.Engine, name: str, wait_seconds: float) -> None:
        self._engine = engine
        self._name = name
        self._wait_seconds = wait_seconds
        self._connection: sa.Connection | None = None

    def acquire(self) -> None:
        connection = self._engine.connect()
        try:
            acquired = self._query(connection, "SELECT GET_LOCK(:name, :wait)", wait=self._wait_seconds)
        except BaseException:
            connection.close()
            raise
        if acquired != 1:
            connection.close()
            raise TableLockTimeout(_timeout_message(self._name, self._wait_seconds))
        self._connection = connection

    def ensure_held(self) -> None:
        if self._connection is not None:
            try:
                held = self._query(self._connection, "SELECT IS_USED_LOCK(:name) = CONNECTION_ID()")
            except sa.exc.DBAPIError:
                held = False  # the connection is gone, and the lock with it
            if held:
                return
            self._close()
        self.acquire()

    def release(self) -> None:
        if self._connection is not None:
            # A lost connection already released the lock on the server.
            with contextlib.suppress(sa.exc.DBAPIError):
                self._query(self._connection, "SELECT RELEASE_LOCK(:name)")
        self._close()

    def _query(self, connection: sa.Connection, statement: str, **values: object) -> object:
        result = connection.execute(sa.text(statement), {"name": self._name, **values}).scalar()
        connection.commit()
        return result

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._connection.close()
            self._connection = None


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
