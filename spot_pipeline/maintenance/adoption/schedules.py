"""`adoption_preflight_job`, launched by hand before anything else on a database an older loader filled."""

import dagster as dg

from spot_pipeline.maintenance.adoption.ops import (
    order_adoption_steps,
    survey_candle_table,
    survey_other_tables,
    survey_server,
)
from spot_pipeline.metadata import OWNERS, ownership_tags


@dg.job(
    owners=OWNERS,
    tags=ownership_tags("maintenance", "market-db"),
    description="Before adopting a market database an older loader filled: inspect every table the pipeline "
    "reads or writes and the server, and list what was found and the step to take, in order (migration, "
    "dedupe, key repair, collations, privileges, time zone). Writes nothing. Same report: "
    "python -m spot_pipeline.maintenance.adoption",
)
def adoption_preflight_job() -> None:
    order_adoption_steps(survey_candle_table(), survey_other_tables(), survey_server())
