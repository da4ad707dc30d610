"""The kafka-topics function's logic without a broker: the payload it accepts, what ``reconcile`` decides,
and the MSK IAM client configuration (the one AWS's signer documents for kafka-python)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import parse_qs, urlparse

import pytest

from dataforge import envvars
from lambdas.common.errors import TopicSpecError, TopicUpdateError
from lambdas.common.kafka_topics import (
    SERVERLESS_TOPIC_CONFIGS,
    MskTokenProvider,
    TopicsConfig,
    TopicSpec,
    TopicState,
    client_config,
    parse_payload,
    reconcile,
)


class RecordingAdmin:
    """A ``TopicAdmin`` over an in-memory cluster that records each call."""

    def __init__(self, topics: dict[str, TopicState] | None = None) -> None:
        self.topics = dict(topics or {})
        self.calls: list[str] = []

    def describe(self, name: str, config_names: frozenset[str]) -> TopicState | None:
        state = self.topics.get(name)
        if state is None:
            return None
        return TopicState(state.partitions, {k: v for k, v in state.configs.items() if k in config_names})

    def create(self, spec: TopicSpec) -> None:
        self.calls.append(f"create {spec.name}")
        self.topics[spec.name] = TopicState(spec.partitions, dict(spec.configs))

    def add_partitions(self, name: str, total: int) -> None:
        self.calls.append(f"partitions {name} {total}")
        self.topics[name] = TopicState(total, self.topics[name].configs)

    def set_configs(self, name: str, configs: Mapping[str, str]) -> None:
        self.calls.append(f"configs {name} {sorted(configs)}")
        self.topics[name] = TopicState(self.topics[name].partitions, {**self.topics[name].configs, **configs})


SPEC = TopicSpec("transactions", 3, {"retention.ms": "86400000"})


def test_the_payload_is_parsed_into_specs() -> None:
    (spec,) = parse_payload({"topics": [SPEC.to_payload()]})
    assert spec == SPEC


@pytest.mark.parametrize("configs", [{"min.insync.replicas": "2"}, {"segment.bytes": "1048576"}])
def test_configs_serverless_does_not_accept_are_refused(configs: dict[str, str]) -> None:
    with pytest.raises(TopicSpecError, match="cannot be set on MSK Serverless"):
        parse_payload({"topics": [{"name": "t", "partitions": 1, "configs": configs}]})


@pytest.mark.parametrize("event", [{}, {"topics": []}, {"topics": [{"name": "t", "partitions": 0}]},
                                   {"topics": [{"name": "", "partitions": 1}]},
                                   {"topics": [{"name": "t", "partitions": 1}, {"name": "t", "partitions": 2}]}])
def test_malformed_payloads_are_refused(event: dict[str, object]) -> None:
    with pytest.raises(TopicSpecError):
        parse_payload(event)


def test_the_documented_serverless_configs_are_the_accepted_ones() -> None:
    assert {"retention.ms", "retention.bytes", "cleanup.policy", "max.message.bytes"} <= SERVERLESS_TOPIC_CONFIGS
    assert "min.insync.replicas" not in SERVERLESS_TOPIC_CONFIGS


def test_a_missing_topic_is_created_then_left_alone() -> None:
    admin = RecordingAdmin()
    first = reconcile(admin, SPEC)
    second = reconcile(admin, SPEC)
    assert first.changed
    assert admin.calls == ["create transactions"]
    assert not second.changed
    assert second.actions == ()


def test_more_partitions_and_a_changed_config_are_applied() -> None:
    admin = RecordingAdmin({"transactions": TopicState(3, {"retention.ms": "1000"})})
    outcome = reconcile(admin, TopicSpec("transactions", 6, {"retention.ms": "86400000"}))
    assert admin.calls == ["partitions transactions 6", "configs transactions ['retention.ms']"]
    assert outcome.partitions == 6
    assert outcome.configs == {"retention.ms": "86400000"}


def test_fewer_partitions_are_refused_without_touching_the_topic() -> None:
    admin = RecordingAdmin({"transactions": TopicState(6, {"retention.ms": "86400000"})})
    with pytest.raises(TopicUpdateError, match="cannot remove partitions"):
        reconcile(admin, SPEC)
    assert admin.calls == []


def test_a_create_only_config_is_not_altered() -> None:
    admin = RecordingAdmin({"t": TopicState(1, {"cleanup.policy": "delete"})})
    with pytest.raises(TopicUpdateError, match="only be set when the topic is created"):
        reconcile(admin, TopicSpec("t", 1, {"cleanup.policy": "compact"}))
    assert admin.calls == []


def test_settings_come_from_the_environment() -> None:
    config = TopicsConfig.from_env({envvars.KAFKA_BOOTSTRAP_SERVERS: "b-1:9098,b-2:9098", envvars.KAFKA_AUTH: "iam",
                                    envvars.AWS_REGION: "eu-west-1"})
    assert config == TopicsConfig("b-1:9098,b-2:9098", "iam", "eu-west-1")
    with pytest.raises(TopicSpecError, match=envvars.KAFKA_BOOTSTRAP_SERVERS):
        TopicsConfig.from_env({})
    with pytest.raises(TopicSpecError, match=envvars.KAFKA_AUTH):
        TopicsConfig.from_env({envvars.KAFKA_BOOTSTRAP_SERVERS: "b:9098", envvars.KAFKA_AUTH: "scram"})


def test_iam_auth_is_sasl_ssl_with_oauthbearer_and_the_msk_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    """aws-msk-iam-sasl-signer-python's README, for kafka-python: security_protocol SASL_SSL, sasl_mechanism
    OAUTHBEARER, and a token provider returning ``MSKAuthTokenProvider.generate_auth_token(region)``: a
    base64url SigV4-presigned ``kafka-cluster:Connect`` request to ``kafka.<region>.amazonaws.com``."""
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                        "AWS_SESSION_TOKEN": "token"}.items():
        monkeypatch.setenv(name, value)
    config = client_config(TopicsConfig("b-1.example:9098,b-2.example:9098", "iam", "eu-west-1"))
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "OAUTHBEARER"
    assert config["bootstrap_servers"] == ["b-1.example:9098", "b-2.example:9098"]
    provider = config["sasl_oauth_token_provider"]
    assert isinstance(provider, MskTokenProvider)
    token = provider.token()
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert "/eu-west-1/kafka-cluster/" in query["X-Amz-Credential"][0]


def test_plaintext_auth_has_no_sasl() -> None:
    config = client_config(TopicsConfig("127.0.0.1:9092", "plaintext", ""))
    assert config["security_protocol"] == "PLAINTEXT"
    assert "sasl_mechanism" not in config
    assert "sasl_oauth_token_provider" not in config
