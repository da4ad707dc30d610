"""The kafka-topics function against a real broker (the session's KRaft broker, PLAINTEXT): the handler
creates a topic, a second run changes nothing, a higher partition count and a new retention are applied,
and fewer partitions are refused; the broker's own description is the judge."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource, ConfigSource  # where they are defined

from dataforge import envvars
from devkit.fakes import LambdaContext
from devkit.local.kafka import KafkaBroker
from lambdas.common.errors import TopicUpdateError
from lambdas.kafka_topics.handler import handler

pytestmark = pytest.mark.integration
CONTEXT = LambdaContext("kafka-topics")


@pytest.fixture
def topics_env(kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(envvars.KAFKA_BOOTSTRAP_SERVERS, kafka_broker.bootstrap_servers)
    monkeypatch.setenv(envvars.KAFKA_AUTH, "plaintext")
    return kafka_broker.bootstrap_servers


def described(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    """The topic's partition count and the configs set on the topic itself, as the broker reports them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(topic, timeout=10)
    partitions = len(metadata.topics[topic].partitions)
    (future,) = admin.describe_configs([ConfigResource("topic", topic)]).values()
    configs = {name: entry.value for name, entry in future.result(timeout=10).items()
               if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
    return partitions, configs


def _payload(name: str, partitions: int, retention_ms: int) -> dict[str, Any]:
    return {"topics": [{"name": name, "partitions": partitions, "configs": {"retention.ms": str(retention_ms)}}]}


def test_create_rerun_grow_and_refuse_shrink(topics_env: str, unique_name: str) -> None:
    topic = f"{unique_name}-topics"
    created = handler(_payload(topic, 2, 3_600_000), CONTEXT)
    assert created["changed"]
    assert created["topics"][0]["actions"] == ["created with 2 partitions"]
    assert described(topics_env, topic) == (2, {"retention.ms": "3600000"})

    again = handler(_payload(topic, 2, 3_600_000), CONTEXT)
    assert not again["changed"]
    assert again["topics"][0]["actions"] == []

    grown = handler(_payload(topic, 4, 7_200_000), CONTEXT)
    assert grown["topics"][0]["actions"] == ["partitions 2 -> 4", "retention.ms: '3600000' -> '7200000'"]
    assert described(topics_env, topic) == (4, {"retention.ms": "7200000"})

    with pytest.raises(TopicUpdateError, match="cannot remove partitions"):
        handler(_payload(topic, 3, 7_200_000), CONTEXT)
    assert described(topics_env, topic) == (4, {"retention.ms": "7200000"})
