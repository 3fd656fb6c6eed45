"""Which days each pair has, kept in `ohlcv_pair_coverage` by every candle write.

A pair has its history once a run has fetched it from the first partition day (OHLCV_START_DATE):
the provider then answered with every candle it has, from the instrument's first trade on. A pair
that joins the universe later has only the days of the runs since, until the history job fetches
the rest, one request per pair. Pairs that leave the universe keep their rows and their coverage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from spot_pipeline.db.collation import same_text
from spot_pipeline.db.dialect import batched, upsert_rows
from spot_pipeline.db.schema import Row, ohlcv_pair_coverage, spot_universe
from spot_pipeline.metadata import markdown_table
from spot_pipeline.ohlcv.candles import Pair

COVERAGE_KEY = ("exchange", "symbol_unmapped")
# Pairs per statement when reading stored coverage (keeps the IN list well under driver limits).
KEYS_PER_QUERY = 500
EXAMPLE_PAIRS = 10


@dataclass(frozen=True)
class FetchedPair:
    """What one run fetched of a pair: from which day, and the first and last candle it stored."""

    pair: Pair
    fetched_from: dt.datetime
    first_day: dt.datetime | None
    last_day: dt.datetime | None

    @property
    def key(self) -> tuple[str, str]:
        return self.pair.exchange, self.pair.exchange_instrument_id


def record_fetched(connection: sa.Connection, fetched: Sequence[FetchedPair], now: dt.datetime) -> None:
    """Merge what a run fetched into each pair's coverage, in the caller's transaction (the one that
    wrote the rows): the earliest first day and fetch, the latest last day."""
    if not fetched:
        return
    stored = _stored_coverage(connection, [pair.key for pair in fetched])
    merged = [_merge(stored.get(pair.key), pair, now) for pair in fetched]
    upsert_rows(connection, ohlcv_pair_coverage, merged, COVERAGE_KEY)


def _stored_coverage(connection: sa.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Row]:
    coverage = ohlcv_pair_coverage.c
    stored: dict[tuple[str, str], Row] = {}
    for chunk in batched(keys, KEYS_PER_QUERY):
        query = sa.select(ohlcv_pair_coverage).where(
            sa.tuple_(coverage.exchange, coverage.symbol_unmapped).in_(chunk)
        )
        rows = connection.execute(query).mappings()
        stored |= {(row["exchange"], row["symbol_unmapped"]): dict(row) for row in rows}
    return stored


def _merge(stored: Row | None, fetched: FetchedPair, now: dt.datetime) -> Row:
    stored = stored or {}
    return {
        "exchange": fetched.pair.exchange,
        "symbol_unmapped": fetched.pair.exchange_instrument_id,
        "first_day": _earliest(stored.get("first_day"), fetched.first_day),
        "last_day": _latest(stored.get("last_day"), fetched.last_day),
        "fetched_from": _earliest(stored.get("fetched_from"), fetched.fetched_from),
        "updated_at": now,
    }


def _earliest(*days: dt.datetime | None) -> dt.datetime | None:
    known = [day for day in days if day is not None]
    return min(known) if known else None


def _latest(*days: dt.datetime | None) -> dt.datetime | None:
    known = [day for day in days if day is not None]
    return max(known) if known else None


def _universe_coverage(connection: sa.Connection, history_start: dt.datetime) -> sa.Select:
    """Every universe pair with its coverage, and whether it has its history."""
    universe, coverage = spot_universe.c, ohlcv_pair_coverage.c
    has_history = sa.and_(coverage.fetched_from.is_not(None), coverage.fetched_from <= history_start)
    return sa.select(
        universe.exchange,
        universe.exchange_instrument_id,
        universe.mapped_instrument,
        coverage.first_day,
        coverage.last_day,
        coverage.fetched_from,
        sa.case((has_history, 1), else_=0).label("has_history"),
    ).select_from(
        spot_universe.outerjoin(
            ohlcv_pair_coverage,
            sa.and_(
                same_text(connection, universe.exchange, coverage.exchange),
                same_text(connection, universe.exchange_instrument_id, coverage.symbol_unmapped),
            ),
        )
    )


def pairs_lacking_history(connection: sa.Connection, history_start: dt.datetime) -> list[Pair]:
    """The universe pairs no run has fetched from `history_start` yet."""
    listing = _universe_coverage(connection, history_start).subquery()
    query = (
        sa.select(listing.c.exchange, listing.c.exchange_instrument_id, listing.c.mapped_instrument)
        .where(listing.c.has_history == 0)
        .order_by(listing.c.exchange, listing.c.exchange_instrument_id)
    )
    return [Pair(*row) for row in connection.execute(query)]


def coverage_metadata(connection: sa.Connection, history_start: dt.datetime) -> dict[str, object]:
    """For the UI: how many universe pairs have their history, and the first of those that lack it."""
    listing = _universe_coverage(connection, history_start).subquery()
    pairs, with_history = connection.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(listing.c.has_history), 0))
    ).one()
    examples = connection.execute(
        sa.select(listing)
        .where(listing.c.has_history == 0)
        .order_by(listing.c.exchange, listing.c.exchange_instrument_id)
        .limit(EXAMPLE_PAIRS)
    ).mappings()
    return {
        "pairs_with_history": int(with_history),
        "pairs_lacking_history": pairs - int(with_history),
        "lacking_history": markdown_table(
            list(examples), ["exchange", "exchange_instrument_id", "first_day", "last_day", "fetched_from"]
        ),
    }
