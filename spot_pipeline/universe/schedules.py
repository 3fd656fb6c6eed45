"""Refreshing the reference data and the universe derived from it: the job and its daily schedule.

The job lives with the universe, the last asset it materializes, because its run config covers every
step: it is validated whole when a run is launched (bounds and allowed values included), so a bad
universe setting is refused before the reference steps call the API.
"""

import dagster as dg
from pydantic import Field

from spot_pipeline.metadata import OWNERS, ownership_tags
from spot_pipeline.reference_data.assets import InstrumentsConfig, TopListConfig
from spot_pipeline.universe.assets import UniverseConfig


class ReferenceRefreshConfig(dg.Config):
    """Run config of refresh_reference_data_job: each part is the config of one step."""

    instruments: InstrumentsConfig = Field(default_factory=InstrumentsConfig)
    top_list: TopListConfig = Field(default_factory=TopListConfig)
    universe: UniverseConfig = Field(default_factory=UniverseConfig)


@dg.config_mapping
def refresh_config_by_step(config: ReferenceRefreshConfig) -> dict[str, object]:
    """Each step's config, once the whole run config has passed its checks."""
    return {
        "ops": {
            "cc_instruments_spot": {"config": config.instruments.model_dump(mode="json")},
            "asset_top_list": {"config": config.top_list.model_dump(mode="json")},
            "spot_universe": {"config": config.universe.model_dump(mode="json")},
        }
    }


refresh_reference_data_job = dg.define_asset_job(
    "refresh_reference_data_job",
    selection=dg.AssetSelection.groups("reference_data", "universe"),
    config=refresh_config_by_step,
    description="Refresh exchanges, instruments, assets and volume snapshots from CCData, then recompute "
    "the spot universe. Config: instruments, top_list, universe (validated when the run is launched).",
    owners=OWNERS,
    tags=ownership_tags("reference", "ccdata"),
)

refresh_reference_data_schedule = dg.ScheduleDefinition(
    name="refresh_reference_data_schedule",
    job=refresh_reference_data_job,
    description="Daily at 22:00 UTC: refresh the reference data and the universe before the candle run.",
    # Daily, well before the 00:xx UTC candle run, so that run reads a fresh universe.
    cron_schedule="0 22 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
