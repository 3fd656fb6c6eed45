"""spot-pipeline: a Dagster code location keeping market.cc_ohlcv_spot_1d_raw complete and correct."""

import warnings

import dagster as dg

# Beta parameters the project uses knowingly (single-run backfills, job owners): silenced here, once
# for every process that loads the code, instead of warning in every step's terminal output.
warnings.filterwarnings(
    "ignore", message=r"Parameter `(backfill_policy|owners)` of ", category=dg.BetaWarning
)
