"""Runtime settings: read once from the environment, fail fast with the variable to set."""

from __future__ import annotations

import dataclasses

import pytest

from dataforge import envvars
from dataforge.errors import SettingsError
from dataforge.settings import LakeBuckets, Settings
from devkit.local import local_environment


def test_local_environment_round_trips_into_settings() -> None:
    env = local_environment(endpoint_url="http://127.0.0.1:5000", kafka_bootstrap_servers="127.0.0.1:9092")
    settings = Settings.from_env(env)
    assert settings.env == "local"
    assert settings.endpoint_url == "http://127.0.0.1:5000"
    assert settings.lake() == LakeBuckets.named("dataforge", "local")
    assert settings.require("kafka_bootstrap_servers") == "127.0.0.1:9092"
    assert settings.query_engine == "duckdb"
    assert settings.glue_database_prefix == "dataforge_local"


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.env = "prod"  # type: ignore[misc]


def test_missing_required_setting_names_the_variable() -> None:
    settings = Settings.from_env({envvars.ENV: "prod"})
    assert settings.query_engine == "athena"
    with pytest.raises(SettingsError, match=envvars.LANDING_BUCKET):
        settings.lake()
    with pytest.raises(SettingsError, match="unknown setting"):
        settings.require("nope")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (envvars.ENV, "qa", "not one of"),
        (envvars.ARCHIVE_RAW, "yes", "true or false"),
        (envvars.QUERY_ENGINE, "presto", "athena or duckdb"),
        (envvars.QUERY_TIMEOUT_SECONDS, "soon", "number of seconds"),
        (envvars.QUERY_TIMEOUT_SECONDS, "0", "> 0"),
        (envvars.QUERY_TIMEOUT_SECONDS, "inf", "> 0"),
    ],
)
def test_malformed_values_fail_fast(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})


def test_region_falls_back_to_default_region_variable() -> None:
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert Settings.from_env({envvars.AWS_REGION: "eu-central-1", "AWS_DEFAULT_REGION": "x"}).region == "eu-central-1"


def test_query_timeout_defaults_and_is_read() -> None:
    assert Settings.from_env({}).query_timeout_seconds == 60.0
    assert Settings.from_env({envvars.QUERY_TIMEOUT_SECONDS: " 45 "}).query_timeout_seconds == 45.0
