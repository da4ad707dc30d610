"""Two event source mappings in one consumer group: the second joins mid-stream, partitions move,
and every record still lands exactly once (Kafka -> ESM -> MSK landing handler -> moto S3). Then the
static assignment: two mappings split the partitions, commit to the group, and resume from it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from confluent_kafka.admin import AdminClient

from dataforge.contract import Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.generator import GenerationSummary, GeneratorConfig, generate_events, summary
from devkit.local.esm import EsmConfig, EsmStats, LocalEventSourceMapping, committed_lag, static_partitions
from devkit.local.kafka import create_topics
from lambdas.common.config import LandingConfig
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.storage import S3ObjectStore
from lambdas.msk_landing.handler import make_handler
from tests.integration.ingestion.conftest import produce_all, read_zone, reasons

N = 12_000
PARTITIONS = 4


def _mapping(settings: Settings, topic: str, group: str, pause: float,
             partitions: tuple[int, ...] | None = None, client_id: str = "rdkafka") -> LocalEventSourceMapping:
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
                       batching_window=0.2, partitions=partitions, extra={"client.id": client_id})
    return LocalEventSourceMapping(config, slow_handler)


def _await_partitions(bootstrap_servers: str, group: str, client_id: str, timeout: float = 60.0) -> None:
    """Until the member ``client_id`` of ``group`` owns partitions, as the group coordinator sees it."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    deadline = time.monotonic() + timeout
    while True:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        owned = {member.client_id: member.assignment.topic_partitions for member in description.members}
        if owned.get(client_id):
            return
        assert time.monotonic() < deadline, f"{client_id} never owned partitions of {group}: {owned}"
        time.sleep(0.1)


def _assert_landed_exactly_once(settings: Settings, session: boto3.Session, expected: GenerationSummary) -> None:
    s3 = session.client("s3")
    lake = settings.lake()
    _, bronze = read_zone(s3, lake.bronze)
    _, quarantine = read_zone(s3, lake.quarantine)
    positions = Counter([line["ingest"]["position"] for line in bronze] + [line["position"] for line in quarantine])
    assert len(positions) == N  # every record landed
    assert max(positions.values()) == 1  # and none twice (a batch is committed before the next poll)
    assert len(bronze) == expected.valid
    assert reasons(quarantine) == dict(expected.by_reason)


@pytest.mark.integration
def test_a_consumer_joining_mid_stream_takes_partitions_and_nothing_is_lost_or_doubled(
    lake_settings: Settings, boto3_session: boto3.Session
) -> None:
    topic = f"{lake_settings.name_prefix}-transactions"
    bootstrap_servers = lake_settings.require("kafka_bootstrap_servers")
    create_topics(bootstrap_servers, {topic: PARTITIONS})
    events = list(generate_events(GeneratorConfig(count=N, seed=23, invalid_fraction=0.05, duplicate_fraction=0.02)))
    expected = summary(events)
    # the last quarter of the stream comes once the second owns partitions: the first alone must not
    # have landed the whole stream by the time the group has rebalanced
    held_back = N // 4
    produce_all(bootstrap_servers, topic, events[:-held_back])

    group = f"{topic}-esm"
    first, second = (_mapping(lake_settings, topic, group, pause=0.1, client_id=name) for name in ("first", "second"))
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
    _await_partitions(bootstrap_servers, group, "second")
    produce_all(bootstrap_servers, topic, events[-held_back:])
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
    _assert_landed_exactly_once(lake_settings, boto3_session, expected)


def _run_static_pair(settings: Settings, topic: str, group: str) -> tuple[EsmStats, EsmStats]:
    mappings = [_mapping(settings, topic, group, pause=0.0, partitions=static_partitions(i, 2, PARTITIONS))
                for i in range(2)]
    results: list[EsmStats] = []
    threads = [threading.Thread(target=lambda m=mapping: results.append(m.run(until_idle=3.0))) for mapping in mappings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
        assert not thread.is_alive()
    assert len(results) == 2
    return results[0], results[1]


@pytest.mark.integration
def test_static_assignment_splits_the_partitions_and_resumes_from_the_group_offsets(
    lake_settings: Settings, boto3_session: boto3.Session
) -> None:
    assert static_partitions(0, 2, PARTITIONS) == (0, 2)
    assert static_partitions(1, 2, PARTITIONS) == (1, 3)
    topic = f"{lake_settings.name_prefix}-static"
    bootstrap_servers = lake_settings.require("kafka_bootstrap_servers")
    create_topics(bootstrap_servers, {topic: PARTITIONS})
    events = list(generate_events(GeneratorConfig(count=N, seed=29, invalid_fraction=0.05, duplicate_fraction=0.02)))
    expected = summary(events)
    group = f"{topic}-esm"

    produce_all(bootstrap_servers, topic, events[: N // 2])
    first = _run_static_pair(lake_settings, topic, group)
    assert all(stats.records > 0 and stats.rebalances == 0 for stats in first), first
    assert sum(stats.records for stats in first) == N // 2
    assert committed_lag(bootstrap_servers, group, topic) == 0

    produce_all(bootstrap_servers, topic, events[N // 2:])
    second = _run_static_pair(lake_settings, topic, group)  # resumes from the committed offsets
    assert sum(stats.records for stats in second) == N - N // 2, second
    assert committed_lag(bootstrap_servers, group, topic) == 0
    _assert_landed_exactly_once(lake_settings, boto3_session, expected)
