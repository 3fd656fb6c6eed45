"""`python -m spot_pipeline.maintenance.adoption`: the adoption preflight's report, printed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from spot_pipeline.maintenance.adoption.findings import render_report
from spot_pipeline.maintenance.adoption.survey import adoption_findings
from spot_pipeline.settings import build_resources


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="python -m spot_pipeline.maintenance.adoption",
        description="Inspect the market database named by MARKET_DB_URL / MARKET_DB_SCHEMA as it is and "
        "print the steps to adopt it, in order. Writes nothing.",
    ).parse_args(argv)
    market_db = build_resources()["market_db"]
    with market_db.untouched_engine() as engine:
        print(render_report(adoption_findings(engine, market_db.schema_name)))


if __name__ == "__main__":
    main()
