"""All SQL of the daily candles: reading the universe, writing, checking.

Every function takes a connection and runs in the caller's transaction; the checks read only the
window they are given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from operator import itemgetter

import sqlalchemy as sa

from spot_pipeline.db.collation import same_text
from spot_pipeline.db.dialect import (
    add_days,
    batched,
    insert_if_all_new,
    insert_rows,
    replace_rows,
    row_count,
    staging_table,
)
from spot_pipeline.db.schema import (
    MAPPED_KEY,
    NATURAL_KEY,
    TRADE_TIMESTAMP_COLUMNS,
    Row,
    UtcDateTime,
    cc_instruments_spot,
    cc_ohlcv_spot_1d_raw,
    spot_universe,
)
from spot_pipeline.ohlcv.candles import Pair
from spot_pipeline.timeutils import day_start

ONE_DAY = dt.timedelta(days=1)
SAMPLE_ROWS = 5
STAGING_TABLE = "spot_pipeline_candles_staging"
# Keys per probe of a batch's first and last days: three parameters each, under the 999 that
# SQLite builds before 3.32 allow.
KEYS_PER_PROBE = 300
PREVIEW_COLUMNS = ("datetime", "exchange", "symbol_unmapped", "symbol", "close", "volume", "collected_at")


def pairs_to_repair(
    connection: sa.Connection, instruments: Sequence[tuple[str, str]], mapped_instruments: Sequence[str]
) -> list[Pair]:
    """The pairs a repair names: (exchange, the exchange's own instrument id), and every listed
    instrument currently mapped to one of `mapped_instruments`, in or out of the universe.

    An exchange instrument the reference tables do not know is kept under its own id as the mapped
    symbol (the candles carry their mapping); a mapped instrument that matches nothing is refused.
    """
    listed = cc_instruments_spot.c
    exchange = sa.func.lower(listed.exchange_internal_name)
    raw_id = listed.exchange_instrument_symbol_raw
    known = sa.select(exchange, raw_id, listed.mapped_instrument_symbol).where(raw_id.is_not(None))
    pairs = set()
    if instruments:
        named = connection.execute(known.where(sa.tuple_(exchange, raw_id).in_(instruments)))
        mapped_by_id = {(market, instrument): mapped for market, instrument, mapped in named}
        pairs |= {Pair(*key, mapped_by_id.get(key, key[1])) for key in instruments}
    if mapped_instruments:
        matches = connection.execute(
            known.where(listed.mapped_instrument_symbol.in_(mapped_instruments))
        ).all()
        unmatched = set(mapped_instruments) - {mapped for _, _, mapped in matches}
        if unmatched:
            raise ValueError(
                f"no listed instrument is mapped to {sorted(unmatched)}: check the symbols, or name the "
                "exchange instruments (exchange:INSTRUMENT) instead"
            )
        pairs |= {Pair(*row) for row in matches}
    return sorted(pairs)


def load_universe(connection: sa.Connection) -> list[Pair]:
    query = sa.select(
        spot_universe.c.exchange, spot_universe.c.exchange_instrument_id, spot_universe.c.mapped_instrument
    ).order_by(spot_universe.c.exchange, spot_universe.c.exchange_instrument_id)
    return [Pair(*row) for row in connection.execute(query)]


class SymbolHeldByAnotherInstrument(RuntimeError):
    """A candle's mapped symbol is stored, for the same day, under another exchange instrument."""


def write_candles(connection: sa.Connection, rows: Sequence[Row]) -> int:
    """Upsert candle rows on (datetime, exchange, symbol_unmapped) inside the caller's transaction;
    returns the number of rows written.

    Keying on the exchange's own instrument id means a remapped instrument (new `symbol`) updates
    its row instead of adding a second one. New candles (a backfill, the next day) go straight in
    by the dialect's bulk insert, kept only if no row met a stored one (see `insert_if_all_new`).
    Otherwise the batch's keys are staged in a session-private table and checked against the
    table with one join, and the rows replace the stored ones (see `replace_rows`). Every
    statement reads the batch's own keys, never the rest of the table.
    """
    if not rows:
        return 0
    _refuse_two_instruments_per_symbol(rows)
    # Key order keeps InnoDB appending to neighbouring index pages instead of jumping between pairs.
    in_key_order = sorted(rows, key=itemgetter(*MAPPED_KEY))
    if not _stores_a_first_or_last_day(connection, in_key_order) and insert_if_all_new(
        connection, cc_ohlcv_spot_1d_raw, in_key_order
    ):
        return len(rows)
    keys = [*MAPPED_KEY, "symbol_unmapped"]
    with staging_table(connection, cc_ohlcv_spot_1d_raw, STAGING_TABLE, keys) as staged:
        insert_rows(connection, staged, [{name: row[name] for name in keys} for row in rows])
        _refuse_symbol_takeover(connection, staged)
    return replace_rows(connection, cc_ohlcv_spot_1d_raw, in_key_order, NATURAL_KEY)


def _stores_a_first_or_last_day(connection: sa.Connection, in_key_order: Sequence[Row]) -> bool:
    """Whether the table holds a candle of one of the rows' instruments or symbols on that
    instrument's first or last day among the rows: the sign of a re-written window, for which
    inserting the rows as new would fail and be undone. A few point reads through the keys."""
    instrument = itemgetter("exchange", "symbol_unmapped", "symbol")
    # Rows come by day: the first row of an instrument holds its first day, the last its last.
    first_days = {instrument(row): row["datetime"] for row in reversed(in_key_order)}
    last_days = {instrument(row): row["datetime"] for row in in_key_order}
    ends = {(day, *key) for days in (first_days, last_days) for key, day in days.items()}
    c = cc_ohlcv_spot_1d_raw.c
    for chunk in batched(sorted(ends), KEYS_PER_PROBE):
        by_instrument = sa.tuple_(c.datetime, c.exchange, c.symbol_unmapped).in_(
            [(day, exchange, raw_id) for day, exchange, raw_id, _ in chunk]
        )
        by_symbol = sa.tuple_(c.datetime, c.exchange, c.symbol).in_(
            [(day, exchange, symbol) for day, exchange, _, symbol in chunk]
        )
        for condition in (by_instrument, by_symbol):
            if connection.execute(sa.select(sa.literal(1)).where(condition).limit(1)).first():
                return True
    return False


def _refuse_two_instruments_per_symbol(rows: Sequence[Row]) -> None:
    """Two instruments with one mapped symbol and day in one write are refused: MySQL would let the
    second overwrite the first. Written pair by pair, the second is then named."""
    incoming: dict[tuple[dt.datetime, str, str], str] = {}
    for row in rows:
        key = (row["datetime"], row["exchange"], row["symbol"])
        instrument = incoming.setdefault(key, row["symbol_unmapped"])
        if instrument != row["symbol_unmapped"]:
            raise SymbolHeldByAnotherInstrument(
                f"{key[1]} {key[2]} on {key[0]:%Y-%m-%d} comes from two instruments in one write, "
                f"{instrument} and {row['symbol_unmapped']}: write their pairs one by one"
            )


def _refuse_symbol_takeover(connection: sa.Connection, staged: sa.Table) -> None:
    """Stop before an upsert would overwrite another instrument's candle.

    When a ticker is handed over (LUNA became LUNC, a new LUNA appeared), an instrument's new mapped
    symbol can still be stored under the previous holder for the same day. The table's primary key
    (datetime, exchange, symbol) then conflicts first: MySQL would update the other instrument's
    row, SQLite would refuse. Re-ingesting the previous holder's days moves its rows to its new
    symbol and frees this one. One join of the staged rows with the table on that key finds them.
    """
    stored, new = cc_ohlcv_spot_1d_raw.c, staged.c
    same_symbol = sa.and_(*(stored[name] == new[name] for name in MAPPED_KEY))
    clashes = connection.execute(
        sa.select(stored.datetime, stored.exchange, stored.symbol, stored.symbol_unmapped)
        .select_from(staged.join(cc_ohlcv_spot_1d_raw, same_symbol))
        .where(stored.symbol_unmapped != new.symbol_unmapped)
        .order_by(stored.exchange, stored.symbol, stored.datetime)
    ).all()
    if clashes:
        first = clashes[0]
        days = sum(1 for clash in clashes if clash[1:] == first[1:])
        raise SymbolHeldByAnotherInstrument(
            f"{first.exchange} {first.symbol} on {days} day(s) from {first.datetime:%Y-%m-%d} "
            f"is stored under instrument {first.symbol_unmapped}, whose mapping has probably changed: "
            f"re-ingest {first.symbol_unmapped} for those days (or delete its rows if it is gone); "
            "this pair is skipped until then"
        )


def _in_window(start: dt.datetime, end: dt.datetime) -> sa.ColumnElement[bool]:
    day = cc_ohlcv_spot_1d_raw.c.datetime
    return sa.and_(day >= start, day < end)


def count_candles(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> int:
    return row_count(connection, cc_ohlcv_spot_1d_raw, _in_window(start, end))


def duplicate_keys(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime, key: Sequence[str]
) -> int:
    """How many keys occur more than once among the window's rows."""
    columns = [cc_ohlcv_spot_1d_raw.c[name] for name in key]
    groups = (
        sa.select(*columns)
        .where(_in_window(start, end))
        .group_by(*columns)
        .having(sa.func.count() > 1)
        .subquery()
    )
    return row_count(connection, groups)


def inconsistent_ohlc(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> list[Row]:
    """Rows whose prices break low <= open, close <= high or whose volumes or counts are negative."""
    c = cc_ohlcv_spot_1d_raw.c
    broken = sa.or_(
        c.low > c.open,
        c.low > c.close,
        c.high < c.open,
        c.high < c.close,
        *(c[name] < 0 for name in ("volume", "quote_volume", "total_trades")),
    )
    return _sample(connection, sa.and_(_in_window(start, end), broken))


def trade_times_outside_day(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> list[Row]:
    """Rows with a trade timestamp before their candle's day or on a later day."""
    c = cc_ohlcv_spot_1d_raw.c
    day_end = add_days(connection, c.datetime, 1)
    outside = sa.or_(
        *(sa.or_(c[column] < c.datetime, c[column] >= day_end) for column in TRADE_TIMESTAMP_COLUMNS)
    )
    return _sample(connection, sa.and_(_in_window(start, end), outside))


def missing_candles(connection: sa.Connection, days: Sequence[dt.date]) -> tuple[int, list[Row]]:
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
        same_text(connection, universe.c.exchange, instruments.c.exchange_internal_name),
        same_text(connection, universe.c.mapped_instrument, instruments.c.mapped_instrument_symbol),
    )
    c = cc_ohlcv_spot_1d_raw.c
    stored = sa.and_(
        c.datetime == day_rows.c.day,
        same_text(connection, universe.c.exchange, c.exchange),
        same_text(connection, universe.c.exchange_instrument_id, c.symbol_unmapped),
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
    count = row_count(connection, missing.subquery())
    sample = missing.order_by(day_rows.c.day, universe.c.exchange, universe.c.exchange_instrument_id)
    return count, [dict(row._mapping) for row in connection.execute(sample.limit(SAMPLE_ROWS))]


def close_outliers(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime, max_deviation: float, min_exchanges: int
) -> tuple[int, list[Row]]:
    """Closes further than `max_deviation` (a share) from the median close of the same mapped
    instrument on the same day, among the universe's exchanges, where at least `min_exchanges` of
    them quote it. Returns how many, and the largest deviations first.

    Set-based over the window's rows, read through the primary key's `datetime` range.
    """
    c = cc_ohlcv_spot_1d_raw.c
    quotes = (
        sa.select(c.datetime, c.exchange, c.symbol, c.close)
        .where(_in_window(start, end), c.close > 0, _in_universe(connection))
        .subquery("quotes")
    )
    same_quote = [quotes.c.datetime, quotes.c.symbol]
    ranked = sa.select(
        *same_quote,
        quotes.c.close,
        sa.func.row_number().over(partition_by=same_quote, order_by=quotes.c.close).label("position"),
        sa.func.count().over(partition_by=same_quote).label("quoting"),
    ).subquery("ranked")
    middle = sa.or_(
        ranked.c.position == (ranked.c.quoting + 1) // 2, ranked.c.position == (ranked.c.quoting + 2) // 2
    )
    medians = (
        sa.select(ranked.c.datetime, ranked.c.symbol, sa.func.avg(ranked.c.close).label("median"))
        .where(ranked.c.quoting >= min_exchanges, middle)
        .group_by(ranked.c.datetime, ranked.c.symbol)
        .subquery("medians")
    )
    deviation = sa.func.abs(quotes.c.close - medians.c.median) / medians.c.median
    outliers = (
        sa.select(quotes, medians.c.median, deviation.label("deviation"))
        .join(medians, sa.and_(medians.c.datetime == quotes.c.datetime, medians.c.symbol == quotes.c.symbol))
        .where(deviation > max_deviation)
    )
    count = row_count(connection, outliers.subquery())
    sample = outliers.order_by(deviation.desc(), quotes.c.datetime, quotes.c.exchange).limit(SAMPLE_ROWS)
    return count, [dict(row._mapping) for row in connection.execute(sample)]


def stale_closes(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime, days: int
) -> tuple[int, list[Row]]:
    """Pairs whose close stayed the same for at least `days` consecutive traded days of the window
    (a frozen feed): how many runs, and a few of them (pair, first and last day, close)."""
    c = cc_ohlcv_spot_1d_raw.c
    pair = [c.exchange, c.symbol_unmapped]
    traded = (
        sa.select(
            *pair,
            c.datetime,
            c.close,
            sa.case(
                (c.close == sa.func.lag(c.close).over(partition_by=pair, order_by=c.datetime), 0), else_=1
            ).label("changed"),
        )
        .where(_in_window(start, end), c.volume > 0, _in_universe(connection))
        .subquery("traded")
    )
    runs = sa.select(
        traded,
        sa.func.sum(traded.c.changed)
        .over(partition_by=[traded.c.exchange, traded.c.symbol_unmapped], order_by=traded.c.datetime)
        .label("run"),
    ).subquery("runs")
    frozen = (
        sa.select(
            runs.c.exchange,
            runs.c.symbol_unmapped,
            sa.func.min(runs.c.datetime).label("first_day"),
            sa.func.max(runs.c.datetime).label("last_day"),
            sa.func.min(runs.c.close).label("close"),
        )
        .group_by(runs.c.exchange, runs.c.symbol_unmapped, runs.c.run)
        .having(sa.func.count() >= days)
    )
    count = row_count(connection, frozen.subquery())
    sample = frozen.order_by(sa.text("first_day"), runs.c.exchange).limit(SAMPLE_ROWS)
    return count, [dict(row._mapping) for row in connection.execute(sample)]


def untraded_days_after_listing(
    connection: sa.Connection, start: dt.datetime, end: dt.datetime
) -> tuple[int, list[Row]]:
    """Candles with no volume on a day after their instrument's first trade: how many, and a few."""
    c, listed = cc_ohlcv_spot_1d_raw.c, cc_instruments_spot.c
    after_listing = sa.exists().where(
        same_text(connection, c.exchange, listed.exchange_internal_name),
        same_text(connection, c.symbol_unmapped, listed.exchange_instrument_symbol_raw),
        listed.first_trade_datetime < c.datetime,
    )
    no_volume = sa.or_(c.volume == 0, c.volume.is_(None))
    condition = sa.and_(_in_window(start, end), no_volume, _in_universe(connection), after_listing)
    return row_count(connection, cc_ohlcv_spot_1d_raw, condition), _sample(connection, condition)


def _in_universe(connection: sa.Connection) -> sa.ColumnElement[bool]:
    """The candle belongs to a pair of the universe (the pairs the runs write)."""
    c, universe = cc_ohlcv_spot_1d_raw.c, spot_universe.c
    return sa.exists().where(
        same_text(connection, c.exchange, universe.exchange),
        same_text(connection, c.symbol_unmapped, universe.exchange_instrument_id),
    )


def _sample(connection: sa.Connection, condition: sa.ColumnElement[bool]) -> list[Row]:
    c = cc_ohlcv_spot_1d_raw.c
    query = (
        sa.select(c.datetime, c.exchange, c.symbol_unmapped)
        .where(condition)
        .order_by(c.datetime, c.exchange, c.symbol_unmapped)
        .limit(SAMPLE_ROWS)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def day_candles(connection: sa.Connection, day: dt.datetime) -> list[Row]:
    """A few candles of one day, for a preview (read through the key)."""
    c = cc_ohlcv_spot_1d_raw.c
    query = (
        sa.select(*(c[name] for name in PREVIEW_COLUMNS))
        .where(c.datetime == day)
        .order_by(c.exchange, c.symbol_unmapped)
        .limit(SAMPLE_ROWS)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def candles_per_day(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> dict[dt.date, int]:
    """How many candles each day of the window holds (days without any are absent)."""
    day = cc_ohlcv_spot_1d_raw.c.datetime
    query = sa.select(day, sa.func.count()).where(_in_window(start, end)).group_by(day)
    return {stored.date(): count for stored, count in connection.execute(query)}
