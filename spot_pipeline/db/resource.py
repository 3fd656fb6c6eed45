"""The market database as a Dagster resource."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, PrivateAttr, field_validator

from spot_pipeline.db.dialect import is_mysql
from spot_pipeline.db.engine import (
    DatabaseConfigError,
    create_market_engine,
    prepare_schema,
    read_only_connection,
    safe_url,
)
from spot_pipeline.db.inspection import check_identifier
from spot_pipeline.db.locks import DEFAULT_WAIT_SECONDS, HeldLock, table_write_lock
from spot_pipeline.db.schema import DEFAULT_SCHEMA
from spot_pipeline.db.transient import error_name

_engines: dict[tuple[str, str], sa.Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(url: str, schema: str, table_collation: str | None = None) -> sa.Engine:
    """One engine (and connection pool) per database per process, with the market tables created
    (in `table_collation`, else the schema's own; see `prepare_schema`)."""
    with _engines_lock:
        engine = _engines.get((url, schema))
        if engine is None:
            engine = create_market_engine(url, schema)
            # The steps of a first run, each in its own process, meet a fresh database together.
            # SQLite's writer lock already serializes the check-then-create; MySQL needs a named lock.
            creating = table_write_lock(engine, schema, "tables") if is_mysql(engine) else nullcontext()
            with creating:
                prepare_schema(engine, schema, table_collation)
            _engines[(url, schema)] = engine
        return engine


def dispose_engine(url: str, schema: str) -> None:
    """Close the pooled connections of one database and forget its engine."""
    with _engines_lock:
        engine = _engines.pop((url, schema), None)
    if engine is not None:
        engine.dispose()


class MarketDatabase(dg.ConfigurableResource):
    """The database holding the `market` tables (MySQL/MariaDB, or SQLite for local runs).

    Missing tables are created on first use; existing tables are never dropped or altered here.
    """

    # Checked when the engine is made, not by pydantic, whose errors would echo a password.
    url: str = Field(description="SQLAlchemy URL of the market database (MARKET_DB_URL).")
    schema_name: str = Field(
        default=DEFAULT_SCHEMA,
        description="Schema (MySQL database, SQLite attached file) that holds the tables (MARKET_DB_SCHEMA).",
    )
    table_collation: str | None = Field(
        default=None,
        description="Collation of the tables the pipeline creates (MARKET_DB_COLLATION); default: the "
        "schema's own.",
    )
    _engine: sa.Engine | None = PrivateAttr(default=None)

    @field_validator("schema_name")
    @classmethod
    def _schema_is_identifier(cls, schema_name: str) -> str:
        return check_identifier(schema_name, "schema name")

    @field_validator("table_collation")
    @classmethod
    def _collation_is_identifier(cls, collation: str | None) -> str | None:
        return None if collation is None else check_identifier(collation, "collation")

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                self._engine = shared_engine(self._resolved_url(), self.schema_name, self.table_collation)
            except sa.exc.DBAPIError as error:  # refused, unknown host, access denied, ...
                url_field = type(self).model_fields["url"].description
                raise DatabaseConfigError(
                    f"cannot reach the market database {self.display_url} ({error_name(error)}): check "
                    f"that the server is up and the {url_field}"
                ) from None
        return self._engine

    @property
    def display_url(self) -> str:
        """The URL with the password masked, for logs and metadata."""
        return safe_url(self._resolved_url())

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction: committed on success, rolled back on any error."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection for reading: on SQLite its transactions never hold writers back."""
        with read_only_connection(self.engine) as connection:
            yield connection

    @contextmanager
    def untouched_engine(self) -> Iterator[sa.Engine]:
        """An engine that creates nothing (no schema, no table), for looking at a database as it is;
        disposed at the end."""
        engine = create_market_engine(self._resolved_url(), self.schema_name)
        try:
            yield engine
        finally:
            engine.dispose()

    def write_lock(
        self, table: sa.Table, wait_seconds: float = DEFAULT_WAIT_SECONDS
    ) -> AbstractContextManager[HeldLock]:
        """The exclusive write lock of a table (see `spot_pipeline.db.locks`)."""
        return table_write_lock(self.engine, self.schema_name, table.name, wait_seconds)

    def dispose(self) -> None:
        """Close this database's pooled connections (the next use opens new ones)."""
        dispose_engine(self._resolved_url(), self.schema_name)
        self._engine = None

    def _resolved_url(self) -> str:
        """The URL; a dg.EnvVar (resolved by Dagster in a run) is read here when used outside one."""
        if not isinstance(self.url, dg.EnvVar):
            return self.url
        value = self.url.get_value()
        if not value:
            raise DatabaseConfigError(
                f"{self.url.env_var_name} is not set: set it to the market database URL"
            )
        return value

    def __repr__(self) -> str:
        return f"MarketDatabase(url={self.display_url!r}, schema_name={self.schema_name!r})"
