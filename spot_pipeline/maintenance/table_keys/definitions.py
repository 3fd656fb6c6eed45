"""The key repair's definitions: `repair_table_keys_job`."""

import dagster as dg

from spot_pipeline.maintenance.table_keys.schedules import repair_table_keys_job

defs = dg.Definitions(jobs=[repair_table_keys_job])
