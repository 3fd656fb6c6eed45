"""The adoption preflight's definitions: `adoption_preflight_job`."""

import dagster as dg

from spot_pipeline.maintenance.adoption.schedules import adoption_preflight_job

defs = dg.Definitions(jobs=[adoption_preflight_job])
