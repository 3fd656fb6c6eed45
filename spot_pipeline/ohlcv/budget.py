"""What a candle run will ask of the API key, before it asks: calls, pace, minutes, and whether the
key's day and month have enough left.

Every API-bound candle run (the daily partition, a backfill, a repair) reads the key's limits once,
paces the client by them, logs and records the estimate, and refuses to start a run the key cannot
finish today or this month unless told to go on. `python -m spot_pipeline.ohlcv.budget FIRST LAST`
prints the same estimate for a planned backfill without fetching a candle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from spot_pipeline.ccdata import CCDataClient, CCDataError
from spot_pipeline.ccdata.key_limits import BUDGET_WINDOWS, KeyLimits, WindowLimit
from spot_pipeline.ohlcv import queries
from spot_pipeline.ohlcv.candles import DayWindow, plan_requests
from spot_pipeline.settings import build_resources

# The call that reads the key's limits counts against them too.
LIMITS_CALLS = 1


@dataclass(frozen=True)
class ApiBudget:
    """The estimate of one run: its calls, at what pace, for how long, and what the key has left."""

    pairs: int
    window: DayWindow
    calls: int
    calls_per_second: float
    seconds: float
    limits: KeyLimits | None

    @property
    def shortfall(self) -> WindowLimit | None:
        """The day or month window that cannot cover the run, if any."""
        return self.limits.shortfall(self.calls) if self.limits else None

    def describe(self) -> str:
        source = "the key's own limits" if self.limits else "the configured pace (key limits unavailable)"
        text = (
            f"{self.pairs} pairs over {self.window}: about {self.calls} API calls at "
            f"{self.calls_per_second:g}/s ({source}), at least {self.seconds / 60:.1f} minutes"
        )
        if self.limits:
            left = ", ".join(
                f"{window.remaining} left this {window.name.lower()}"
                for window in self.limits.windows.values()
                if window.name in BUDGET_WINDOWS
            )
            text += f"; {left}" if left else ""
        return text

    def refusal(self) -> str | None:
        """Why the run must not start, naming the fix; None when the key can cover it."""
        window = self.shortfall
        if window is None:
            return None
        return (
            f"the run needs about {self.calls} API calls but the key has {window.remaining} left this "
            f"{window.name.lower()} ({window.maximum} a {window.name.lower()}): run a shorter range, wait "
            "for the window to reset, or set ignore_api_budget: true in the run config to start anyway"
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "api_calls_estimated": self.calls,
            "api_pace_per_second": round(self.calls_per_second, 3),
            "api_minutes_estimated": round(self.seconds / 60, 2),
            "api_pace_source": "key limits" if self.limits else "configured",
        }


def run_calls(pairs: int, window: DayWindow) -> int:
    """Calls of a run: one per pair per 5000 days, and the one that reads the key's limits."""
    return pairs * len(plan_requests(window)) + LIMITS_CALLS


def plan_run(
    ccdata: CCDataClient, pairs: int, window: DayWindow, log: logging.Logger | dg.DagsterLogManager
) -> ApiBudget:
    """Read the key's limits (tolerating an API without them), pace the client by them, and estimate
    the run. Without the limits the client keeps its configured pace and no budget is checked."""
    limits = _read_key_limits(ccdata, log)
    if limits is not None:
        ccdata.pace_to(limits)
    configured = ccdata.calls_per_second
    calls = run_calls(pairs, window)
    seconds = limits.seconds_for(calls, configured) if limits else calls / configured
    return ApiBudget(pairs, window, calls, ccdata.pace, seconds, limits)


def _read_key_limits(ccdata: CCDataClient, log: logging.Logger | dg.DagsterLogManager) -> KeyLimits | None:
    try:
        return ccdata.key_limits()
    except CCDataError as error:
        log.warning(f"Pacing at the configured rate: the key's limits could not be read ({error})")
        return None


def main(argv: Sequence[str] | None = None) -> None:
    """Print the estimate of a planned backfill of every universe pair, without fetching candles."""
    arguments = _parse_arguments(argv)
    window = DayWindow(arguments.first_day, arguments.last_day + dt.timedelta(days=1))
    resources = build_resources()
    with resources["market_db"].connect() as connection:
        pairs = len(queries.load_universe(connection))
    budget = plan_run(resources["ccdata"], pairs, window, logging.getLogger(__name__))
    print(budget.describe())
    refusal = budget.refusal()
    print(f"The run would be refused: {refusal}" if refusal else "The key can cover this run.")


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spot_pipeline.ohlcv.budget",
        description="Estimate the API calls and time of a backfill of every universe pair "
        "(no candle is fetched).",
    )
    parser.add_argument("first_day", type=dt.date.fromisoformat, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("last_day", type=dt.date.fromisoformat, help="last UTC day, YYYY-MM-DD")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
