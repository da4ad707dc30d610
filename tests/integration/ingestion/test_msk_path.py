"""Kafka -> local event source mapping -> MSK landing handler -> moto S3, reconciled exactly."""

from __future__ import annotations

from collections import Counter

import boto3
import pytest

from dataforge.contract import Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.generator import GeneratorConfig, generate_events, summary
from devkit.local.esm import EsmConfig, LocalEventSourceMapping, committed_lag
from devkit.local.kafka import create_topics
from lambdas.common.config import LandingConfig
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.storage import S3ObjectStore
from lambdas.msk_landing.handler import make_handler
from tests.integration.ingestion.conftest import produce_all, read_zone, reasons
from tests.unit.ingestion.memory_store import FailingOnce

N = 20_000


@pytest.mark.integration
def test_stream_reconciles_exactly_with_a_failure_mid_batch(lake_settings: Settings,
                                                            boto3_session: boto3.Session) -> None:
    topic = f"{lake_settings.name_prefix}-transactions"
    bootstrap_servers = lake_settings.require("kafka_bootstrap_servers")
    create_topics(bootstrap_servers, {topic: 3})
    events = list(generate_events(GeneratorConfig(count=N, seed=11, invalid_fraction=0.1, duplicate_fraction=0.05)))
    expected = summary(events)
    assert expected.invalid > 0
    assert expected.duplicates > 0

    produce_all(bootstrap_servers, topic, events)

    store = FailingOnce(S3ObjectStore(boto3_session, endpoint_url=lake_settings.endpoint_url), fail_at=4)
    landing = KafkaLanding(LandingConfig.from_settings(lake_settings), store, Validator(default_fx().currencies))
    group = f"{topic}-esm"
    config = EsmConfig(bootstrap_servers, (topic,), group_id=group, batch_size=3000, batching_window=0.2,
                       initial_backoff=0.1)
    stats = LocalEventSourceMapping(config, make_handler(lambda: landing)).run(until_idle=3.0)

    assert store.failed, (store.writes, stats)
    assert stats.failures == 1
    assert stats.records == N
    assert committed_lag(bootstrap_servers, group, topic) == 0
    s3 = boto3_session.client("s3")
    lake = lake_settings.lake()
    bronze_objects, bronze = read_zone(s3, lake.bronze)
    _, quarantine = read_zone(s3, lake.quarantine)
    # exact reconciliation: received = valid + quarantined, reason by reason, nothing twice
    assert len(bronze) == expected.valid
    assert len(quarantine) == expected.invalid
    assert reasons(quarantine) == dict(expected.by_reason)
    positions = [line["ingest"]["position"] for line in bronze] + [line["position"] for line in quarantine]
    assert len(set(positions)) == N  # no record landed twice, none lost
    assert Counter(line["ingest"]["event_id"] for line in bronze) == Counter(
        e.event_id for e in events if e.is_valid)
    assert all(key.startswith("transactions/source=kafka/") for key in bronze_objects)
