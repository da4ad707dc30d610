"""Two event source mappings in one consumer group: the second joins mid-stream, partitions move,
and every record still lands exactly once (Kafka -> ESM -> MSK landing handler -> moto S3)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from dataforge.contract import Validator
from dataforge.generator import GeneratorConfig, generate_events, summary
from dataforge.local.esm import EsmConfig, EsmStats, LocalEventSourceMapping, committed_lag
from dataforge.local.kafka import create_topics
from dataforge.reference import default_fx
from dataforge.settings import Settings
from lambdas.common.config import LandingConfig
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.storage import S3ObjectStore
from lambdas.msk_landing.handler import make_handler
from tests.integration.ingestion.conftest import produce_all, read_zone, reasons

N = 12_000
PARTITIONS = 4


def _mapping(settings: Settings, topic: str, group: str, pause: float) -> LocalEventSourceMapping:
    """One ESM with its own handler and S3 client (as two Lambda instances would have); each
    invocation takes at least ``pause`` seconds so that the stream outlasts the second one's join."""
    session = boto3.Session(region_name=settings.region)
    landing = KafkaLanding(LandingConfig.from_settings(settings),
                           S3ObjectStore(session, endpoint_url=settings.endpoint_url),
                           Validator(default_fx().currencies))
    handler = make_handler(lambda: landing)

    def slow_handler(event: dict[str, Any], context: Any) -> Any:
        time.sleep(pause)
        return handler(event, context)

    config = EsmConfig(settings.require("kafka_bootstrap_servers"), (topic,), group_id=group, batch_size=400,
                       batching_window=0.2)
    return LocalEventSourceMapping(config, slow_handler)


@pytest.mark.integration
def test_a_consumer_joining_mid_stream_takes_partitions_and_nothing_is_lost_or_doubled(
    lake_settings: Settings, boto3_session: boto3.Session
) -> None:
    topic = f"{lake_settings.name_prefix}-transactions"
    bootstrap_servers = lake_settings.require("kafka_bootstrap_servers")
    create_topics(bootstrap_servers, {topic: PARTITIONS})
    events = list(generate_events(GeneratorConfig(count=N, seed=23, invalid_fraction=0.05, duplicate_fraction=0.02)))
    expected = summary(events)
    produce_all(bootstrap_servers, topic, events)

    group = f"{topic}-esm"
    first, second = (_mapping(lake_settings, topic, group, pause=0.1) for _ in range(2))
    results: dict[str, EsmStats] = {}
    threads = {
        name: threading.Thread(target=lambda m=mapping, n=name: results.__setitem__(n, m.run(until_idle=4.0)))
        for name, mapping in (("first", first), ("second", second))
    }
    threads["first"].start()
    deadline = time.monotonic() + 30
    while first.stats.records == 0:  # the second joins once the first is landing
        assert time.monotonic() < deadline, "the first mapping never landed a batch"
        time.sleep(0.05)
    threads["second"].start()
    for thread in threads.values():
        thread.join(timeout=180)
        assert not thread.is_alive()

    one, two = results["first"], results["second"]
    # the group rebalanced: the first gave partitions up, the second took them and landed records
    assert one.rebalances >= 2, one
    assert two.rebalances >= 1, two
    assert two.records > 0, two
    assert one.records + two.records >= N
    assert committed_lag(bootstrap_servers, group, topic) == 0

    s3 = boto3_session.client("s3")
    lake = lake_settings.lake()
    _, bronze = read_zone(s3, lake.bronze)
    _, quarantine = read_zone(s3, lake.quarantine)
    positions = Counter([line["ingest"]["position"] for line in bronze] + [line["position"] for line in quarantine])
    assert len(positions) == N  # every record landed
    assert max(positions.values()) == 1  # and none twice (a batch is committed before the next poll)
    assert len(bronze) == expected.valid
    assert reasons(quarantine) == dict(expected.by_reason)
