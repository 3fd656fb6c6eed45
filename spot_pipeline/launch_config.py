"""Run config checked whole when a run is launched, not when its step starts.

Dagster checks a run config's shape and enum values at launch, but a config class's bounds and its
own validators run only inside the step, after any earlier step has worked. A job whose config is
mapped through `validated_at_launch` has the config class's fields at its top level and builds the
class while the run is being launched, so a value out of bounds is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def validated_at_launch(config_type: type[dg.Config], *steps: str) -> dg.ConfigMapping:
    """The job's config is `config_type`'s, checked at launch and handed to each of `steps`."""

    def step_config(config: Mapping[str, Any]) -> dict[str, Any]:
        checked = config_type(**config).model_dump(mode="json")
        return {"ops": {step: {"config": checked} for step in steps}}

    return dg.ConfigMapping(config_fn=step_config, config_schema=config_type.to_config_schema())
