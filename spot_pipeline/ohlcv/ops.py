"""The steps of the jobs that ingest chosen pairs: `repair_ohlcv_pairs_job` (named pairs over
chosen days) and `ohlcv_pair_history_job` (the whole history of pairs that joined the universe).

The daily run ingests every universe pair for its days; a repair ingests just the named pairs, in
or out of the universe, for a day range, through the same writer (all or nothing per pair, keyed on
the exchange's own instrument id), under the same write lock and pool and with the same window
checks. It is the fix for a ticker handed over to another instrument (re-ingest the previous holder,
then the newcomer), a pair that failed, or a candle the provider corrected.
"""

import datetime as dt
from typing import Self

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, field_validator, model_validator

from spot_pipeline.ccdata import CCDataClient
from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.ohlcv import coverage, queries
from spot_pipeline.ohlcv.assets import CandleRunConfig, WindowOutcome, ingest_and_check
from spot_pipeline.ohlcv.candles import DayWindow, Pair
from spot_pipeline.ohlcv.coverage import EXAMPLE_PAIRS
from spot_pipeline.ohlcv.partitions import HISTORY_START
from spot_pipeline.timeutils import utc_today


class RepairConfig(CandleRunConfig):
    instruments: list[str] = Field(
        default=[],
        description="Exchange instruments to re-ingest, as market:INSTRUMENT with the data-api market key "
        "and the exchange's own id, e.g. kraken:XXBTZUSD.",
    )
    mapped_instruments: list[str] = Field(
        default=[],
        description="Mapped instruments (e.g. LUNA-USD) to re-ingest on every exchange that lists one "
        "under that symbol (cc_instruments_spot).",
    )
    first_day: str = Field(description="First UTC day to re-ingest (YYYY-MM-DD).")
    last_day: str = Field(description="Last UTC day to re-ingest (YYYY-MM-DD); today's is never stored.")

    @field_validator("instruments")
    @classmethod
    def _market_and_id(cls, instruments: list[str]) -> list[str]:
        malformed = [name for name in instruments if len(name.split(":")) != 2 or "" in name.split(":")]
        if malformed:
            raise ValueError(
                f"instruments must read market:INSTRUMENT, e.g. kraken:XXBTZUSD; got {malformed}"
            )
        return instruments

    @field_validator("first_day", "last_day")
    @classmethod
    def _iso_day(cls, day: str) -> str:
        dt.date.fromisoformat(day)  # raises naming the expected form
        return day

    @model_validator(mode="after")
    def _something_to_repair(self) -> Self:
        if not (self.instruments or self.mapped_instruments):
            raise ValueError("name at least one pair in instruments or mapped_instruments")
        if dt.date.fromisoformat(self.first_day) > dt.date.fromisoformat(self.last_day):
            raise ValueError(f"first_day {self.first_day} is after last_day {self.last_day}")
        return self

    def window(self) -> DayWindow:
        """The days to repair, closed ones only (today's candle is incomplete)."""
        last = dt.date.fromisoformat(self.last_day) + dt.timedelta(days=1)
        return DayWindow(dt.date.fromisoformat(self.first_day), last).before(utc_today())

    def named_instruments(self) -> list[tuple[str, str]]:
        return [
            (market.lower(), instrument)
            for market, instrument in (name.split(":") for name in self.instruments)
        ]


@dg.op(pool=OHLCV_WRITE_POOL)
def repair_pairs(
    context: dg.OpExecutionContext, config: RepairConfig, ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    """Re-fetch and upsert the named pairs over the day range (one request per pair per 5000 days),
    then run the daily run's window checks; a failed pair or a failed check fails the step."""
    window = config.window()
    if window.days == 0:
        raise dg.Failure(f"{config.first_day} is not a closed UTC day yet: nothing to repair")

    def named_pairs(connection: sa.Connection) -> list[Pair]:
        try:
            pairs = queries.pairs_to_repair(connection, config.named_instruments(), config.mapped_instruments)
        except ValueError as error:
            raise dg.Failure(description=str(error)) from None
        context.log.info("Repairing " + ", ".join(map(str, pairs)))
        return pairs

    outcome = ingest_and_check(context.log, ccdata, market_db, window, config, named_pairs)
    _report(context, outcome)


@dg.op(pool=OHLCV_WRITE_POOL)
def fetch_missing_history(
    context: dg.OpExecutionContext, config: CandleRunConfig, ccdata: CCDataClient, market_db: MarketDatabase
) -> None:
    """Fetch the whole history, from OHLCV_START_DATE (the provider starts at the instrument's first
    trade), of the universe pairs no run has fetched from there: pairs that joined the universe
    after the backfill. About one request per pair; no other pair is fetched again."""
    window = DayWindow(HISTORY_START.date(), utc_today())

    def lacking_history(connection: sa.Connection) -> list[Pair]:
        pairs = coverage.pairs_lacking_history(connection, HISTORY_START)
        examples = ", ".join(map(str, pairs[:EXAMPLE_PAIRS])) + (
            ", ..." if len(pairs) > EXAMPLE_PAIRS else ""
        )
        context.log.info(f"{len(pairs)} universe pair(s) lack their history: {examples}")
        return pairs

    with market_db.connect() as connection:
        if not coverage.pairs_lacking_history(connection, HISTORY_START):
            context.log.info("Every universe pair has its history: nothing to fetch")
            context.add_output_metadata(coverage.coverage_metadata(connection, HISTORY_START))
            return
    outcome = ingest_and_check(context.log, ccdata, market_db, window, config, lacking_history)
    _report(context, outcome)


def _report(context: dg.OpExecutionContext, outcome: WindowOutcome) -> None:
    """The run's metadata and its failed checks; a failed ERROR-severity check fails the step."""
    failed = [result for result in outcome.check_results if not result.passed]
    failed_names = sorted(result.check_name for result in failed)
    context.add_output_metadata({**outcome.metadata, "failed_checks": dg.MetadataValue.json(failed_names)})
    errors = [result.check_name for result in failed if result.severity == dg.AssetCheckSeverity.ERROR]
    if errors:
        raise dg.Failure(description=f"the window fails the checks {errors}: see the metadata")
