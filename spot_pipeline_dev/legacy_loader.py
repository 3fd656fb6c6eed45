"""The `market` database as the old loader left it, built the way the old loader built it, for the
adoption tests (and for rehearsing an adoption by hand).

What the old scripts did, and so what this loader does against the fake CCData API:
- They created their tables in one explicit collation (`utf8mb4_general_ci` on the old server; any
  here): the reference tables with their keys, the candle table without any key and with BIGINT
  unix-second trade timestamps.
- They loaded every answer with `LOAD DATA ... REPLACE` on a lenient server, so a field the answer
  lacked landed as 0 (the trade timestamps and prices of a day without trades, counts, volumes) or as
  '' (text). Here: `REPLACE` statements of rows made lenient the same way.
- The daily candle script looked up a pair's last stored day by its mapped symbol while the rows hold
  the exchange's own id, so every run fetched the whole lookback again and, with no key, `REPLACE`
  added a copy of every candle, differing in `collected_at`, which it left to the server's
  `CURRENT_TIMESTAMP` (the server's time zone). It also stored the incomplete current day.
- The reference script stamped `created_at`/`updated_at` from the client's UTC clock, and a periodic
  clean-up rebuilt the reference tables with `CREATE TABLE ... AS SELECT`, which drops their keys;
  every refresh after that added a row per key.

Nothing here is used by the pipeline itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.ccdata.vocabulary import INSTRUMENT_STATUSES
from spot_pipeline.db import schema
from spot_pipeline.db.dialect import batched, is_mysql, qualified_name, quote_identifier
from spot_pipeline.ohlcv.candles import Pair, candle_row
from spot_pipeline.reference_data import parsing
from spot_pipeline.timeutils import day_start, epoch_seconds
from spot_pipeline_dev.legacy_tables import keyless_copy, legacy_ohlcv_table

# The collations of the old tables in the field (the old server's default first).
LEGACY_COLLATIONS = ("utf8mb4_general_ci", "utf8mb4_unicode_ci", "utf8mb4_bin")
REFERENCE_TABLES = (
    schema.cc_exchanges_general,
    schema.cc_instruments_spot,
    schema.cc_assets,
    schema.cc_asset_market_data,
)
LOOKBACK_DAYS = 5
REBUILT_SUFFIX = "_rebuilt"
ROWS_PER_STATEMENT = 500
# How much of its day the incomplete current candle had seen when the old loader stored it.
INCOMPLETE_SHARE = 0.5


def legacy_tables(collation: str | None) -> list[sa.Table]:
    """The old loader's tables, each declared in `collation` (MySQL), in the `market` schema."""
    declared = sa.MetaData(schema=schema.DEFAULT_SCHEMA)
    tables = [table.to_metadata(declared) for table in REFERENCE_TABLES]
    tables.append(legacy_ohlcv_table(primary_key=False).to_metadata(declared))
    for table in tables:
        if collation:
            table.dialect_kwargs["mysql_collate"] = collation
    return tables


@dataclass
class LegacyLoader:
    """The old loader's scripts, run against `connection`'s database and the fake API's `client`.

    On MySQL the connection must not be pinned to UTC: the old loader's sessions ran in the server's
    time zone, which is where its `collected_at` values come from.
    """

    connection: sa.Connection
    client: CCDataClient
    collation: str | None = None

    def create_tables(self) -> None:
        for table in legacy_tables(self.collation):
            table.create(self.connection)
        self.connection.commit()

    def refresh_reference_data(self, now: dt.datetime) -> None:
        """One run of the old reference script: every answer REPLACEd, stamped with `now` (UTC)."""
        parsed = parsing.exchange_rows(self.client.exchanges_general(), now)
        self._replace(schema.cc_exchanges_general, parsed.rows)
        for status in INSTRUMENT_STATUSES:
            rows = parsing.instrument_rows(self.client.spot_instruments(status), now).rows
            self._replace(schema.cc_instruments_spot, parsing.one_row_per_mapped_symbol(rows))
        items = self.client.top_list(limit=1000)
        self._replace(schema.cc_assets, parsing.asset_rows(items, now).rows)
        snapshot = day_start(now.date())
        self._replace(schema.cc_asset_market_data, parsing.asset_market_data_rows(items, snapshot, now).rows)
        self.connection.commit()

    def clean_up_reference_tables(self) -> None:
        """The old periodic clean-up: each reference table rebuilt from a copy, which has no key."""
        for table in REFERENCE_TABLES:
            live = qualified_name(self.connection, table)
            rebuilt = qualified_name(
                self.connection, sa.table(table.name + REBUILT_SUFFIX, schema=table.schema)
            )
            if is_mysql(self.connection):
                self.connection.exec_driver_sql(f"CREATE TABLE {rebuilt} AS SELECT * FROM {live}")
            else:
                # SQLite's CTAS would drop the declared types too, which the old server kept: copy
                # the definition without its keys instead.
                keyless = keyless_copy(table, table.name + REBUILT_SUFFIX)
                keyless.create(self.connection)
                self.connection.exec_driver_sql(f"INSERT INTO {rebuilt} SELECT * FROM {live}")
            self.connection.exec_driver_sql(f"DROP TABLE {live}")
            new_name = quote_identifier(self.connection, table.name)
            if is_mysql(self.connection):
                self.connection.exec_driver_sql(f"RENAME TABLE {rebuilt} TO {live}")
            else:
                self.connection.exec_driver_sql(f"ALTER TABLE {rebuilt} RENAME TO {new_name}")
        self.connection.commit()

    def daily_candles(self, pairs: Sequence[Pair], run_day: dt.date, run_at: dt.datetime) -> None:
        """One run of the old daily script on `run_day`: the lookback's closed days again and the
        incomplete `run_day`, every row REPLACEd with the server's clock at `run_at` (UTC)."""
        collected_at = run_at + self._server_offset()
        rows = []
        for pair in pairs:
            candles = self.client.historical_days(
                pair.exchange,
                pair.exchange_instrument_id,
                limit=LOOKBACK_DAYS,
                to_ts=epoch_seconds(day_start(run_day)),
            )
            served = [candle_row(candle, pair, collected_at) for candle in candles]
            rows += [_incomplete(row) if row["datetime"].date() == run_day else row for row in served]
        self._replace(legacy_ohlcv_table(primary_key=False), [_legacy_candle(row) for row in rows])
        self.connection.commit()

    def _server_offset(self) -> dt.timedelta:
        """How far the server's clock (its session time zone) is from UTC."""
        if not is_mysql(self.connection):
            return dt.timedelta(0)
        seconds = self.connection.exec_driver_sql("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())")
        return dt.timedelta(minutes=round(seconds.scalar_one() / 60))

    def _replace(self, table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> None:
        lenient = [_lenient(table, row) for row in rows]
        if not lenient:
            return
        columns = list(lenient[0])
        names = ", ".join(quote_identifier(self.connection, name) for name in columns)
        values = ", ".join(f":{name}" for name in columns)
        statement = sa.text(
            f"REPLACE INTO {qualified_name(self.connection, table)} ({names}) VALUES ({values})"
        )
        for batch in batched(lenient, ROWS_PER_STATEMENT):
            self.connection.execute(statement, batch)


def _lenient(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as a lenient LOAD DATA stored it: absent numbers as 0, absent text as ''."""
    stored = {}
    for column in table.columns:
        if column.name not in row:
            continue
        value = row[column.name]
        if value is None and isinstance(column.type, sa.Integer | sa.Float | sa.Boolean):
            value = 0
        elif value is None and isinstance(column.type, sa.String):
            value = ""
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        stored[column.name] = value
    return stored


def _legacy_candle(row: Mapping[str, Any]) -> dict[str, Any]:
    """A candle row with its trade timestamps as unix seconds (absent ones as 0, by `_lenient`)."""
    return {
        **row,
        **{
            name: None if row[name] is None else epoch_seconds(row[name])
            for name in schema.TRADE_TIMESTAMP_COLUMNS
        },
    }


def _incomplete(row: Mapping[str, Any]) -> dict[str, Any]:
    """The candle of a day the old loader stored before the day was over: less volume, fewer trades,
    the price where it stood then, no trade after that moment."""
    if row["first_trade_timestamp"] is None:
        return dict(row)
    seen = row["first_trade_timestamp"] + (row["last_trade_timestamp"] - row["first_trade_timestamp"]) / 2
    partial = {name: row[name] * INCOMPLETE_SHARE for name in _VOLUME_COLUMNS if row[name] is not None}
    counts = {name: int(row[name] * INCOMPLETE_SHARE) for name in _COUNT_COLUMNS if row[name] is not None}
    return {
        **row,
        **partial,
        **counts,
        "close": row["open"],
        "last_trade_price": row["open"],
        "high": max(row["open"], row["low"]),
        "high_trade_price": max(row["open"], row["low"]),
        "last_trade_timestamp": seen.replace(microsecond=0),
        "high_trade_timestamp": min(row["high_trade_timestamp"], seen).replace(microsecond=0),
        "low_trade_timestamp": min(row["low_trade_timestamp"], seen).replace(microsecond=0),
    }


_VOLUME_COLUMNS = tuple(
    f"{prefix}volume{side}" for side in ("", "_buy", "_sell", "_unknown") for prefix in ("", "quote_")
)
_COUNT_COLUMNS = ("total_trades", "total_trades_buy", "total_trades_sell", "total_trades_unknown")
