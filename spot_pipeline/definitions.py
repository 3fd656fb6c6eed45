"""The spot-pipeline code location: every domain's definitions, merged, with the resources.

Each domain folder exposes its own `defs` (assets, checks, jobs, schedules, sensors) in its
`definitions.py`; this module only merges them and adds the resources configured from the
environment (`settings.py`). The alerts come last: they watch what the others run.
"""

import dagster as dg

import spot_pipeline.alerts.definitions
import spot_pipeline.maintenance.adoption.definitions
import spot_pipeline.maintenance.deduplication.definitions
import spot_pipeline.maintenance.table_keys.definitions
import spot_pipeline.maintenance.timestamp_migration.definitions
import spot_pipeline.ohlcv.definitions
import spot_pipeline.reference_data.definitions
import spot_pipeline.universe.definitions
from spot_pipeline.alerts.webhook import announce_when_off
from spot_pipeline.settings import build_resources

DOMAIN_DEFINITIONS = (
    spot_pipeline.reference_data.definitions.defs,
    spot_pipeline.universe.definitions.defs,
    spot_pipeline.ohlcv.definitions.defs,
    spot_pipeline.maintenance.timestamp_migration.definitions.defs,
    spot_pipeline.maintenance.deduplication.definitions.defs,
    spot_pipeline.maintenance.table_keys.definitions.defs,
    spot_pipeline.maintenance.adoption.definitions.defs,
    spot_pipeline.alerts.definitions.defs,
)


@dg.definitions
def defs() -> dg.Definitions:
    resources = build_resources()
    announce_when_off(resources["alert_webhook"])
    return dg.Definitions.merge(*DOMAIN_DEFINITIONS, dg.Definitions(resources=resources))
