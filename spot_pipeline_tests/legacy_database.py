"""A market database as the old loader leaves it (`spot_pipeline_dev.legacy_loader`), in a schema of
its own on SQLite or on either MariaDB server, dropped at the end."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.engine import create_market_engine
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import DEFAULT_SCHEMA
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline_dev.legacy_loader import LegacyLoader
from spot_pipeline_tests.conftest import mysql_url

# The old loader's history in the adoption scenario: it ran daily from OLD_FIRST_RUN to OLD_LAST_RUN
# days before today, cleaned its reference tables up halfway and refreshed them a few times after.
OLD_FIRST_RUN = 24
OLD_LAST_RUN = 6
REFRESHES_AFTER_CLEAN_UP = 3


@dataclass
class LegacyDatabase:
    """The pipeline's view of the database, and the old loader's own sessions (not pinned to UTC)."""

    market_db: MarketDatabase
    old_loader_engine: sa.Engine
    collation: str | None

    def fill_as_the_old_loader_did(self, client: CCDataClient, pairs: Sequence[Pair], today: dt.date) -> None:
        """The old loader's life: tables created, reference data loaded, daily candle runs with their
        re-fetched lookback and incomplete current day, a clean-up that drops the reference keys
        halfway, and reference refreshes after it that add a row per key each."""
        clean_up = (OLD_FIRST_RUN + OLD_LAST_RUN) // 2
        refreshes = {OLD_FIRST_RUN, *range(clean_up - REFRESHES_AFTER_CLEAN_UP, clean_up)}
        with self.old_loader_engine.connect() as connection:
            loader = LegacyLoader(connection, client, self.collation)
            loader.create_tables()
            for days_before in range(OLD_FIRST_RUN, OLD_LAST_RUN - 1, -1):
                run_day = today - dt.timedelta(days=days_before)
                run_at = dt.datetime.combine(run_day, dt.time(20, 0))
                if days_before in refreshes:
                    loader.refresh_reference_data(run_at - dt.timedelta(hours=2))
                if days_before == clean_up:
                    loader.clean_up_reference_tables()
                loader.daily_candles(pairs, run_day, run_at)


@contextmanager
def legacy_database(backend: str, collation: str | None, tmp_path: Path) -> Iterator[LegacyDatabase]:
    """An empty schema for the old loader: SQLite, or a database of the server's default collation."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
        database = LegacyDatabase(MarketDatabase(url=url), create_market_engine(url), collation=None)
        try:
            yield database
        finally:
            database.market_db.dispose()
            database.old_loader_engine.dispose()
        return
    server_url = mysql_url(backend)
    assert server_url is not None
    schema_name = f"legacy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{schema_name}`")  # the server's defaults
    old_loader = sa.create_engine(server_url).execution_options(
        schema_translate_map={DEFAULT_SCHEMA: schema_name}
    )
    database = LegacyDatabase(MarketDatabase(url=server_url, schema_name=schema_name), old_loader, collation)
    try:
        yield database
    finally:
        database.market_db.dispose()
        old_loader.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{schema_name}`")
        admin.dispose()
