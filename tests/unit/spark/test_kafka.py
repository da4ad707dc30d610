"""The Kafka source's options (``spark.kafka``) and the setting that chooses its authentication."""

from __future__ import annotations

import pytest

from dataforge import envvars
from dataforge.errors import SettingsError
from dataforge.settings import KAFKA_AUTH_IAM, KAFKA_AUTH_PLAINTEXT, Settings
from spark import kafka

BROKERS = "b-1.example:9098,b-2.example:9098"


def settings(**env: str) -> Settings:
    return Settings.from_env({envvars.KAFKA_BOOTSTRAP_SERVERS: BROKERS, **env})


def test_plaintext_is_the_default_and_sets_only_brokers_and_topic() -> None:
    assert settings().kafka_auth == KAFKA_AUTH_PLAINTEXT
    assert kafka.source_options(settings()) == {"kafka.bootstrap.servers": BROKERS, "subscribe": "transactions"}


def test_iam_adds_the_msk_iam_library_client_configuration() -> None:
    options = kafka.source_options(settings(**{envvars.KAFKA_AUTH: KAFKA_AUTH_IAM, envvars.KAFKA_TOPIC: "t"}))
    assert options == {
        "kafka.bootstrap.servers": BROKERS,
        "subscribe": "t",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "AWS_MSK_IAM",
        "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
        "kafka.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
    }
    # what Spark hands its Kafka consumer: the kafka.-prefixed options, unprefixed
    assert kafka.client_config(options) == {"bootstrap.servers": BROKERS, **kafka.MSK_IAM_CLIENT}


def test_the_setting_is_read_case_insensitively() -> None:
    assert settings(**{envvars.KAFKA_AUTH: " IAM "}).kafka_auth == KAFKA_AUTH_IAM


@pytest.mark.parametrize("value", ["none", "sasl", "AWS_MSK_IAM"])
def test_an_unknown_authentication_is_refused_naming_the_variable_and_the_choices(value: str) -> None:
    with pytest.raises(SettingsError, match=rf"{envvars.KAFKA_AUTH} must be iam or plaintext, got '{value.lower()}'"):
        settings(**{envvars.KAFKA_AUTH: value})


def test_the_brokers_are_required() -> None:
    with pytest.raises(SettingsError, match=envvars.KAFKA_BOOTSTRAP_SERVERS):
        kafka.source_options(Settings.from_env({envvars.KAFKA_AUTH: KAFKA_AUTH_IAM}))
