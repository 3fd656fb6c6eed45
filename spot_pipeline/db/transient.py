"""Database errors that another attempt can fix, and a transaction retried on them with backoff.

A connection lost mid-transaction (the server restarted, a `KILL`, a network cut), a deadlock or a
lock wait that timed out roll the transaction back whole: repeating it is safe for the pipeline's
idempotent writes. Anything else (a constraint, bad SQL, a missing privilege) is raised at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

_T = TypeVar("_T")

# MySQL/MariaDB: lock wait timeout, deadlock, cannot connect, server gone away, lost connection
# (during a query, or reading the handshake), disconnected by the server.
TRANSIENT_MYSQL_ERRORS = frozenset({1205, 1213, 2003, 2006, 2013, 2055, 4031})
# SQLite: another process holds the file's write lock beyond the busy timeout.
TRANSIENT_SQLITE_MESSAGES = ("database is locked",)
# What the codes a misconfigured or unreachable server answers with mean, for the messages.
MYSQL_ERROR_MEANINGS = {
    1044: "access denied to the database",
    1045: "access denied",
    1049: "unknown database",
    2003: "cannot connect",
    2005: "unknown host",
}
DEFAULT_ATTEMPTS = 5
DEFAULT_FIRST_DELAY_SECONDS = 1.0


class DatabaseUnavailableError(RuntimeError):
    """A transaction still failed on transient errors after every attempt."""


def is_transient(error: BaseException) -> bool:
    """Whether repeating the failed transaction may succeed."""
    if isinstance(error, sa.exc.DisconnectionError):
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "errno", None)
    if code in TRANSIENT_MYSQL_ERRORS:
        return True
    return any(message in str(error.orig) for message in TRANSIENT_SQLITE_MESSAGES)


def retry_transient(
    transaction: Callable[[], _T],
    describe_database: str,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    first_delay: float = DEFAULT_FIRST_DELAY_SECONDS,
    on_retry: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run `transaction`; on a transient error wait (1 s, 2 s, 4 s, ...) and run it again, up to
    `attempts` times in all, then raise DatabaseUnavailableError naming `describe_database` (a masked
    URL: the error's own text can carry connection details, so only its class name is kept)."""
    delay, attempt = first_delay, 1
    while True:
        try:
            return transaction()
        except Exception as error:
            if not is_transient(error):
                raise
            problem = error_name(error)
            if attempt >= attempts:
                raise DatabaseUnavailableError(
                    f"the database {describe_database} still failed after {attempts} attempts ({problem})"
                ) from None
            on_retry(
                f"{problem} on {describe_database}: attempt {attempt} of {attempts}, again in {delay:g}s"
            )
        sleep(delay)
        delay, attempt = delay * 2, attempt + 1


def error_name(error: BaseException) -> str:
    """The error's class and driver code, e.g. 'ProgrammingError 1049 (unknown database)' (never its
    text, which can carry connection details)."""
    code = getattr(getattr(error, "orig", None), "errno", None)
    if not code:
        return type(error).__name__
    meaning = MYSQL_ERROR_MEANINGS.get(code)
    return f"{type(error).__name__} {code}" + (f" ({meaning})" if meaning else "")
