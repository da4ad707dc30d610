"""``.chalice/config.json`` stages from a deployed stack's outputs, for local ``chalice`` use."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from dataforge import envvars

# stack output -> env var the API reads
OUTPUT_ENV: Final = {
    "environment": envvars.ENV,
    "region": envvars.AWS_REGION,
    "metrics_table": envvars.METRICS_TABLE,
    "alerts_table": envvars.ALERTS_TABLE,
    "athena_workgroup": envvars.ATHENA_WORKGROUP,
    "athena_results_bucket": envvars.ATHENA_RESULTS_BUCKET,
    "silver_bucket": envvars.SILVER_BUCKET,
    "gold_bucket": envvars.GOLD_BUCKET,
    "alerts_topic_arn": envvars.ALERTS_TOPIC_ARN,
}


def stage_environment(outputs: Mapping[str, Any], name_prefix: str = "dataforge") -> dict[str, str]:
    env = {var: str(outputs[key]) for key, var in OUTPUT_ENV.items() if outputs.get(key) is not None}
    env[envvars.NAME_PREFIX] = name_prefix
    env[envvars.QUERY_ENGINE] = "athena"
    if outputs.get("environment"):
        env[envvars.GLUE_DATABASE_PREFIX] = f"{name_prefix}_{outputs['environment']}".replace("-", "_")
    return dict(sorted(env.items()))


def write_stage(config_file: Path, stage: str, outputs: Mapping[str, Any],
                name_prefix: str = "dataforge") -> dict[str, Any]:
    """Add or replace ``stages[stage]`` in ``config_file`` (other stages and keys are kept)."""
    config: dict[str, Any] = json.loads(config_file.read_text()) if config_file.is_file() else {
        "version": "2.0", "app_name": "dataforge-api"}
    stages = config.setdefault("stages", {})
    stages[stage] = {**stages.get(stage, {}), "api_gateway_stage": "api",
                     "environment_variables": stage_environment(outputs, name_prefix)}
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return config
