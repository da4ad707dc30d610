"""Stack settings are typed, validated and come from each stack's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.errors import InfraConfigError
from infra.plan import load_stack_config
from infra.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
CERT = {"dashboard": {"certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}}


def settings_of(stack: str) -> StackSettings:
    config = load_stack_config(stack, ROOT)
    raw = {key.split(":", 1)[1]: value for key, value in config.values.items() if key.startswith("dataforge:")}
    raw["region"] = config.values["aws:region"]
    return StackSettings.from_mapping(stack, raw)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_file_loads(stack: str) -> None:
    settings = settings_of(stack)
    assert settings.env == stack
    assert settings.tags()["environment"] == stack


def test_stack_files_hold_the_environment_differences() -> None:
    dev, prod = settings_of("dev"), settings_of("prod")
    assert (dev.streaming.mode, prod.streaming.mode) == ("serverless", "provisioned")
    assert not dev.serving.deletion_protection
    assert prod.serving.deletion_protection
    assert prod.protect
    assert not dev.protect
    assert prod.dashboard.hosting == dev.dashboard.hosting == "ecs"


def test_secure_defaults() -> None:
    settings = StackSettings.from_mapping("staging", CERT)
    assert settings.api.query_timeout_seconds == 60
    assert settings.serving.point_in_time_recovery
    assert settings.serving.deletion_protection
    assert not settings.lake.force_destroy


@pytest.mark.parametrize(("raw", "message"), [
    ({"dashboard": {"hosting": "lightsail"}}, "dashboard.hosting"),
    ({"dashboard": {"hosting": "ecs"}}, "certificateArn"),
    ({**CERT, "lake": {"landingDayz": 3}}, "dataforge:lake: Object contains unknown field `landingDayz`"),
    ({**CERT, "ingestion": {"batchSize": "many"}}, r"dataforge:ingestion.batchSize: Expected `int`"),
    ({**CERT, "ingestion": {"batchSize": 0}}, r"dataforge:ingestion.batchSize: Expected `int` >= 1"),
    ({**CERT, "lake": {"silverIaDays": 7}}, r"dataforge:lake.silverIaDays: Expected `int` >= 30"),
    ({**CERT, "processing": {"dailySchedule": "rate(1 day)"}}, "dataforge:processing.dailySchedule"),
    ({**CERT, "namePrefx": "acme"}, "unknown field `namePrefx`"),
    ({**CERT, "logRetentionDays": 13}, "retention"),
    ({**CERT, "streaming": {"mode": "provisioned", "brokerCount": 3}}, "multiple"),
    ({**CERT, "api": {"queryTimeoutSeconds": 0}}, r"dataforge:api.queryTimeoutSeconds: Expected `int` >= 1"),
    ({**CERT, "api": {"queryTimeoutSeconds": 86400}}, r"dataforge:api.queryTimeoutSeconds: Expected `int` <= 14400"),
])
def test_invalid_config_fails_with_the_key_to_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InfraConfigError, match=message):
        StackSettings.from_mapping("dev", raw)


def test_keys_are_the_stack_files_camel_case_names() -> None:
    settings = StackSettings.from_mapping("dev", {**CERT, "alerts": {"api5xxThreshold": 7, "apiLatencyP99Ms": 900},
                                                  "lake": {"landingDays": 3}, "logRetentionDays": None})
    assert (settings.alerts.api_5xx_threshold, settings.alerts.api_latency_p99_ms) == (7, 900)
    assert settings.lake.landing_days == 3
    assert settings.log_retention_days == 30  # null takes the default


def test_local_is_not_a_deployable_stack() -> None:
    with pytest.raises(InfraConfigError, match="deployable"):
        StackSettings.from_mapping("local", CERT)
