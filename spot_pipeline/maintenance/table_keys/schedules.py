"""`repair_table_keys_job`, launched by hand (the adoption preflight and the runs that refuse a
keyless table name it)."""

import dagster as dg

from spot_pipeline.launch_config import validated_at_launch
from spot_pipeline.maintenance.table_keys.ops import TableKeysConfig, repair_table_keys, survey_table_keys
from spot_pipeline.metadata import OWNERS, ownership_tags


@dg.job(
    owners=OWNERS,
    tags=ownership_tags("maintenance", "market-db"),
    description="Restore the keys of the tables the pipeline upserts (reference tables, spot_universe, "
    "ohlcv_pair_coverage) where an old clean-up dropped them: per table, the latest updated_at of each key "
    "is kept in a verified copy with the key, swapped in atomically, the original kept as a backup. "
    "Config (checked at launch): dry_run, keep_backup, tables.",
    config=validated_at_launch(TableKeysConfig, "survey_table_keys", "repair_table_keys"),
)
def repair_table_keys_job() -> None:
    repair_table_keys(survey_table_keys())
