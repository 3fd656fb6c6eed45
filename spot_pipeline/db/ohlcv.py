"""SQL for the daily candle table: reading the universe, guarding the table's shape, writing, checking."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from spot_pipeline.db.dialect import add_days, upsert_rows
from spot_pipeline.db.inspection import NATURAL_KEY, TableShape
from spot_pipeline.db.schema import (
    TRADE_TIMESTAMP_COLUMNS,
    UtcDateTime,
    cc_instruments_spot,
    cc_ohlcv_spot_1d_raw,
    spot_universe,
)
from spot_pipeline.timeutils import day_start

MIGRATION_JOB = "migrate_ohlcv_timestamps_job"
DEDUPLICATION_JOB = "deduplicate_ohlcv_job"

candles = cc_ohlcv_spot_1d_raw
ONE_DAY = dt.timedelta(days=1)
SAMPLE_ROWS = 5


class OhlcvTableNotReady(RuntimeError):
    """The live candle table has a shape that ingestion would write wrong values or duplicates into."""


@dataclass(frozen=True, order=True)
class Pair:
    """One exchange instrument of the universe."""

    exchange: str
    exchange_instrument_id: str
    mapped_instrument: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.exchange_instrument_id} ({self.mapped_instrument})"


def require_writable(shape: TableShape) -> None:
    """Stop before writing when upserts into this table would store wrong values or duplicates."""
    table = f"market.{shape.name}"
    not_datetime = [
        column for column, family in shape.trade_timestamp_families.items() if family != "DATETIME"
    ]
    if not_datetime:
        raise OhlcvTableNotReady(
            f"{table} still stores {', '.join(not_datetime)} as "
            f"{shape.type_family(not_datetime[0])} (legacy unix seconds): run {MIGRATION_JOB} to convert "
            "them to DATETIME before ingesting"
        )
    if not shape.has_unique_key(NATURAL_KEY):
        raise OhlcvTableNotReady(
            f"{table} has no unique key on ({', '.join(NATURAL_KEY)}), so upserts would append duplicate "
            f"candles: run {DEDUPLICATION_JOB} with add_unique_key: true to clean the table and add the key"
        )


def load_universe(connection: sa.Connection) -> list[Pair]:
    query = sa.select(
        spot_universe.c.exchange, spot_universe.c.exchange_instrument_id, spot_universe.c.mapped_instrument
    ).order_by(spot_universe.c.exchange, spot_universe.c.exchange_instrument_id)
    return [Pair(*row) for row in connection.execute(query)]


class SymbolHeldByAnotherInstrument(RuntimeError):
    """A candle's mapped symbol is stored, for the same day, under another exchange instrument."""


def write_candles(connection: sa.Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert candle rows on (datetime, exchange, symbol_unmapped) inside the caller's transaction.

    Keying on the exchange's own instrument id means a remapped instrument (new `symbol`) updates
    its row instead of adding a second one.
    """
    if not rows:
        return 0
    _refuse_symbol_takeover(connection, rows)
    # Key order keeps InnoDB appending to neighbouring index pages instead of jumping between pairs.
    return upsert_rows(connection, candles, sorted(rows, key=itemgetter(*NATURAL_KEY)), NATURAL_KEY)


def _refuse_symbol_takeover(connection: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Stop before an upsert would overwrite another instrument's candle.

    When a ticker is handed over (LUNA became LUNC, a new LUNA appeared), an instrument's new mapped
    symbol can still be stored under the previous holder for the same day. The table's primary key
    (datetime, exchange, symbol) then conflicts first: MySQL would update the other instrument's
    row, SQLite would refuse. Re-ingesting the previous holder's days moves its rows to its new
    symbol and frees this one. Two instruments with one symbol and day in the same batch are refused
    too (MySQL would let the second overwrite the first); written pair by pair, the second is named.
    """
    incoming: dict[tuple[dt.datetime, str, str], str] = {}
    for row in rows:
        key = (row["datetime"], row["exchange"], row["symbol"])
        instrument = incoming.setdefault(key, row["symbol_unmapped"])
        if instrument != row["symbol_unmapped"]:
            raise SymbolHeldByAnotherInstrument(
                f"{key[1]} {key[2]} on {key[0]:%Y-%m-%d} comes from two instruments in one write, "
                f"{instrument} and {row['symbol_unmapped']}: write their pairs one by one"
            )
    days = [day for day, _, _ in incoming]
    c = candles.c
    in_batch = c.datetime.between(min(days), max(days))
    holders = (
        sa.select(c.exchange, c.symbol, c.symbol_unmapped)
        .where(in_batch, sa.tuple_(c.exchange, c.symbol).in_({key[1:] for key in incoming}))
        .group_by(c.exchange, c.symbol, c.symbol_unmapped)
    )
    writers: dict[tuple[str, str], set[str]] = {}
    for (_, exchange, symbol), instrument in incoming.items():
        writers.setdefault((exchange, symbol), set()).add(instrument)
    contested = {
        (h.exchange, h.symbol)
        for h in connection.execute(holders)
        if writers[(h.exchange, h.symbol)] != {h.symbol_unmapped}
    }
    if not contested:
        return
    detail = sa.select(c.datetime, c.exchange, c.symbol, c.symbol_unmapped).where(
        in_batch, sa.tuple_(c.exchange, c.symbol).in_(contested)
    )
    clashes = [
        stored
        for stored in connection.execute(detail)
        if incoming.get((stored.datetime, stored.exchange, stored.symbol), stored.symbol_unmapped)
        != stored.symbol_unmapped
    ]
    if clashes:
        first = clashes[0]
        raise SymbolHeldByAnotherInstrument(
            f"{first.exchange} {first.symbol} on {len(clashes)} day(s) from {first.datetime:%Y-%m-%d} "
            f"is stored under instrument {first.symbol_unmapped}, whose mapping has probably changed: "
            f"re-ingest {first.symbol_unmapped} for those days (or delete its rows if it is gone); "
            "this pair is skipped until then"
        )


def _in_window(start: dt.datetime, end: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(candles.c.datetime >= start, candles.c.datetime < end)


def count_candles(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> int:
    query = sa.select(sa.func.count()).select_from(candles).where(_in_window(start, end))
    return connection.execute(query).scalar_one()


def duplicate_keys(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime, key: Sequence[str]
) -> int:
    """How many keys occur more than once among the window's rows."""
    columns = [candles.c[name] for name in key]
    groups = (
        sa.select(*columns)
        .where(_in_window(start, end))
        .group_by(*columns)
        .having(sa.func.count() > 1)
        .subquery()
    )
    return connection.execute(sa.select(sa.func.count()).select_from(groups)).scalar_one()


def inconsistent_ohlc(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Rows whose prices break low <= open, close <= high or whose volumes or counts are negative."""
    c = candles.c
    broken = sa.or_(
        c.low > c.open,
        c.low > c.close,
        c.high < c.open,
        c.high < c.close,
        *(c[name] < 0 for name in ("volume", "quote_volume", "total_trades")),
    )
    return _sample(connection, sa.and_(_in_window(start, end), broken))


def trade_times_outside_day(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Rows with a trade timestamp before their candle's day or on a later day."""
    day_end = add_days(connection, candles.c.datetime, 1)
    outside = sa.or_(
        *(
            sa.or_(candles.c[column] < candles.c.datetime, candles.c[column] >= day_end)
            for column in TRADE_TIMESTAMP_COLUMNS
        )
    )
    return _sample(connection, sa.and_(_in_window(start, end), outside))


def missing_candles(connection: sa.Connection, days: Sequence[dt.date]) -> tuple[int, list[dict[str, Any]]]:
    """Universe pairs without a stored candle on one of `days` they had already traded by.

    Returns the number of missing (pair, day) combinations and a few of them.
    """
    day_rows = sa.union_all(
        *(
            sa.select(
                sa.literal(day_start(day), UtcDateTime).label("day"),
                sa.literal(day_start(day + ONE_DAY), UtcDateTime).label("day_end"),
            )
            for day in days
        )
    ).subquery("days")
    universe, instruments = spot_universe, cc_instruments_spot
    listed = sa.and_(
        instruments.c.exchange_internal_name == universe.c.exchange,
        instruments.c.mapped_instrument_symbol == universe.c.mapped_instrument,
    )
    stored = sa.and_(
        candles.c.datetime == day_rows.c.day,
        candles.c.exchange == universe.c.exchange,
        candles.c.symbol_unmapped == universe.c.exchange_instrument_id,
    )
    missing = (
        sa.select(universe.c.exchange, universe.c.exchange_instrument_id, day_rows.c.day)
        .select_from(universe.join(day_rows, sa.true()).outerjoin(instruments, listed))
        .where(
            sa.or_(
                instruments.c.first_trade_datetime.is_(None),
                instruments.c.first_trade_datetime < day_rows.c.day_end,
            ),
            ~sa.exists().where(stored),
        )
    )
    count = connection.execute(sa.select(sa.func.count()).select_from(missing.subquery())).scalar_one()
    sample = missing.order_by(day_rows.c.day, universe.c.exchange, universe.c.exchange_instrument_id)
    return count, [dict(row._mapping) for row in connection.execute(sample.limit(SAMPLE_ROWS))]


def _sample(connection: sa.Connection, condition: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    query = (
        sa.select(candles.c.datetime, candles.c.exchange, candles.c.symbol_unmapped)
        .where(condition)
        .order_by(candles.c.datetime, candles.c.exchange, candles.c.symbol_unmapped)
        .limit(SAMPLE_ROWS)
    )
    return [dict(row._mapping) for row in connection.execute(query)]
