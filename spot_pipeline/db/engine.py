"""Engines for the market database: MySQL/MariaDB, or SQLite with the schema attached.

Every table lives in the `market` schema and is addressed as `market.<table>` on both dialects:
on MySQL the schema is a database; on SQLite the URL's file is attached under the schema's name
on every new connection, so the same SQLAlchemy Core statements run unchanged on both.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import QueuePool, StaticPool

from spot_pipeline.db.inspection import check_identifier
from spot_pipeline.db.schema import DEFAULT_SCHEMA, SqliteDateTime, metadata

MYSQL_DRIVERS = ("mysql", "mariadb")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution options of the pipeline's own: a connection that only reads, and the attached SQLite file.
READ_ONLY_OPTION = "spot_pipeline_read_only"
SQLITE_FILE_OPTION = "spot_pipeline_sqlite_file"
# The private directory from which this process's bulk writes are loaded (LOAD DATA LOCAL INFILE).
BULK_LOAD_DIRECTORY_OPTION = "spot_pipeline_bulk_load_directory"


class DatabaseConfigError(ValueError):
    """The market database URL or schema name cannot be used."""


def safe_url(url: str | URL) -> str:
    """The URL with its password masked: the only form of a URL that may reach logs or errors."""
    return make_url(url).render_as_string(hide_password=True)


def parse_market_url(url: str) -> URL:
    """Parse and check a market database URL, naming the fix when it is unusable."""
    try:
        parsed = make_url(url)
    except Exception as error:  # SQLAlchemy raises ArgumentError for any malformed URL
        raise DatabaseConfigError(
            "not a valid SQLAlchemy URL: use e.g. sqlite:///data/market.sqlite or "
            "mysql+mysqlconnector://user:password@host:3306/market"
        ) from error
    if parsed.get_backend_name() == "sqlite":
        return parsed
    if parsed.get_backend_name() in MYSQL_DRIVERS:
        if not parsed.host:
            raise DatabaseConfigError(f"{safe_url(parsed)} names no host")
        try:
            parsed.get_dialect().import_dbapi()
        except ImportError:
            raise DatabaseConfigError(
                f"{safe_url(parsed)} needs the driver {parsed.get_driver_name()!r}, which is not "
                "installed: use mysql+mysqlconnector://user:password@host:3306/database"
            ) from None
        return parsed
    raise DatabaseConfigError(
        f"{safe_url(parsed)} uses an unsupported backend "
        f"{parsed.get_backend_name()!r}: use sqlite or mysql (mysql+mysqlconnector://...)"
    )


def create_market_engine(url: str, schema: str = DEFAULT_SCHEMA) -> sa.Engine:
    """An engine whose Core statements address `market.<table>` as `<schema>.<table>`."""
    parsed = parse_market_url(url)
    # The schema name is spliced into ATTACH and CREATE DATABASE statements.
    check_identifier(schema, "schema name")
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, schema)
    else:
        engine = _mysql_engine(parsed)
    if schema != DEFAULT_SCHEMA:
        engine = engine.execution_options(schema_translate_map={DEFAULT_SCHEMA: schema})
    return engine


@contextmanager
def read_only_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reading: on SQLite its transactions never hold writers back."""
    with engine.connect() as connection:
        yield connection.execution_options(**{READ_ONLY_OPTION: True})


def max_parallel_connections(engine: sa.Engine, requested: int) -> int:
    """How many connections may work on a table at once: SQLite has one writer per file (and an
    in-memory database one shared connection), so 1 there; MySQL/MariaDB take `requested`.
    """
    return 1 if engine.dialect.name == "sqlite" else requested


def _mysql_engine(url: URL) -> sa.Engine:
    # The session zone is pinned to UTC so that CURRENT_TIMESTAMP defaults and any NOW() are UTC too.
    connect_args: dict[str, Any] = {
        "time_zone": "+00:00",
        "charset": "utf8mb4",
        "collation": "utf8mb4_unicode_ci",
    }
    load_directory = None
    if url.get_driver_name() == "mysqlconnector":
        # The driver may read local files for LOAD DATA only from this process's own private directory.
        load_directory = _bulk_load_directory()
        connect_args["allow_local_infile_in_path"] = load_directory
    engine = sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600, connect_args=connect_args)
    return engine.execution_options(**{BULK_LOAD_DIRECTORY_OPTION: load_directory})


def prepare_schema(engine: sa.Engine, schema: str, collation: str | None = None) -> None:
    """Create the schema (MySQL) and the market tables that are missing; existing ones are left as
    they are. New tables take the schema's own collation (a DBA's choice), or `collation` when given;
    a schema created here is utf8mb4, in `collation` or the server's default collation.
    """
    tables = metadata
    if engine.dialect.name in MYSQL_DRIVERS:
        with engine.begin() as connection:
            created_in = check_identifier(collation or _server_utf8mb4_collation(connection), "collation")
            connection.exec_driver_sql(
                f"CREATE DATABASE IF NOT EXISTS `{schema}` CHARACTER SET utf8mb4 COLLATE {created_in}"
            )
            tables = _tables_collated(collation or _schema_collation(connection, schema))
    tables.create_all(engine, checkfirst=True)


def _server_utf8mb4_collation(connection: sa.Connection) -> str:
    """The server's default collation when it is a utf8mb4 one; else utf8mb4's default collation."""
    server, default = connection.exec_driver_sql(
        "SELECT @@collation_server, (SELECT DEFAULT_COLLATE_NAME FROM information_schema.CHARACTER_SETS "
        "WHERE CHARACTER_SET_NAME = 'utf8mb4')"
    ).one()
    return server if server.startswith("utf8mb4_") else default


def _schema_collation(connection: sa.Connection, schema: str) -> str | None:
    """The schema's default collation when its character set is utf8mb4 (else the charset's default)."""
    charset, collation = connection.execute(
        sa.text(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME = :schema"
        ),
        {"schema": schema},
    ).one()
    return collation if charset == "utf8mb4" else None


def _tables_collated(collation: str | None) -> sa.MetaData:
    """The market tables, each created in utf8mb4 with `collation` (the charset's default if None).

    Naming the collation matters: a table given only `CHARACTER SET utf8mb4` takes that character
    set's default collation, not the schema's."""
    collated = sa.MetaData(schema=DEFAULT_SCHEMA)
    for table in metadata.sorted_tables:
        copy = table.to_metadata(collated)
        if collation:
            copy.dialect_kwargs["mysql_collate"] = collation
    return collated


@functools.cache
def _bulk_load_directory() -> str:
    directory = tempfile.mkdtemp(prefix="spot_pipeline_load_")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def _sqlite_engine(url: URL, schema: str) -> sa.Engine:
    market_file = url.database or ":memory:"
    in_memory = market_file == ":memory:"
    if not in_memory:
        Path(market_file).parent.mkdir(parents=True, exist_ok=True)
    # The main database is an empty in-memory one, for which SQLAlchemy would pick a pool of one
    # connection per thread that closes other threads' connections: pool explicitly instead.
    engine = sa.create_engine(
        "sqlite://",
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=StaticPool if in_memory else QueuePool,
    )

    # Reflected tables (migration, deduplication) then read and write DATETIME like the schema does.
    engine.dialect.ischema_names = {**engine.dialect.ischema_names, "DATETIME": SqliteDateTime}

    @event.listens_for(engine, "connect")
    def attach_market_schema(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN and commits before DDL; turning it off
        # and emitting BEGIN below gives real transactions, which atomic swaps rely on.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("ATTACH DATABASE ? AS " + schema, (market_file,))
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory:
            cursor.execute(f"PRAGMA {schema}.journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin_transaction(connection: sa.Connection) -> None:
        # A writer takes the write lock up front, so two writers queue instead of deadlocking on a
        # lock upgrade; a reader does not take it, so it never holds writers back.
        deferred = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN DEFERRED" if deferred else "BEGIN IMMEDIATE")

    return engine.execution_options(**{SQLITE_FILE_OPTION: None if in_memory else market_file})
