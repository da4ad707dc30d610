"""Fixtures of the ingestion integration tests: a fresh, bootstrapped lake per test (unique prefix)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import boto3
import pytest
from confluent_kafka import Producer

from dataforge.bronze import decode_lines
from dataforge.settings import Settings
from devkit.generator import GeneratedEvent
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.kafka import KafkaBroker
from devkit.local.moto_server import MotoServer


@pytest.fixture
def lake_settings(moto_server: MotoServer, kafka_broker: KafkaBroker, aws_env: dict[str, str],
                  boto3_session: boto3.Session, unique_name: str) -> Settings:
    env = local_environment(endpoint_url=moto_server.endpoint_url,
                            kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name)
    settings = Settings.from_env(env)
    bootstrap(settings, boto3_session)
    return settings


def produce_all(bootstrap_servers: str, topic: str, events: Iterable[GeneratedEvent]) -> None:
    """Every event into ``topic`` (keyed by account, as the generator's Kafka sink does), idempotent and
    acknowledged by all replicas; fails the test unless every one was delivered."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20})
    for event in events:
        producer.produce(topic, key=event.key or None, value=event.value)
        producer.poll(0)
    assert producer.flush(60) == 0


def read_zone(s3: Any, bucket: str) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Every object of a zone bucket and all their decoded lines."""
    objects: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    lines = [line for body in objects.values() for line in decode_lines(body)]
    return objects, lines


def reasons(lines: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(line["reason"]) for line in lines).items()))
