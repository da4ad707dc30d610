"""Realtime minutes end to end (ADR 0014): Kafka -> local event source mapping -> the MSK landing function's
speed path -> the realtime API (provisional); then Spark streaming -> the same API (final).

The stream is duplicate-heavy and one landing batch fails after some of its partitions were folded, so the
mapping retries it: the provisional totals must still equal the distinct valid payments produced, minute by
minute, and Spark's final figures must replace them with the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalicelib import handlers
from chalicelib.config import ApiConfig
from chalicelib.services import Services

from dataforge import envvars, serving
from dataforge.contract import Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.generator import GeneratorConfig, generate_events
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.esm import EsmConfig, LocalEventSourceMapping
from devkit.local.kafka import create_topics
from devkit.local.spark import configure_s3a
from lambdas.common.config import LandingConfig
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.storage import S3ObjectStore
from lambdas.common.wiring import speed_path
from lambdas.msk_landing.handler import make_handler
from spark import runtime
from spark.jobs import streaming_enrichment
from tests.integration.ingestion.conftest import produce_all
from tests.kpi_reference import expected_realtime_counts
from tests.unit.ingestion.memory_store import FailingOnce

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 10, 9, tzinfo=UTC)
END = START + timedelta(minutes=30)
CONFIG = GeneratorConfig(count=3000, seed=23, start=START, end=END, invalid_fraction=0.05, duplicate_fraction=0.3)


def realtime(settings: Settings) -> dict[str, Any]:
    """The realtime route's answer at the end of the generated range (no response cache)."""
    env = {envvars.API_CACHE_REALTIME_TTL_SECONDS: "0"}
    services = Services(ApiConfig.from_settings(settings, env), session=boto3.Session(), clock=lambda: END)
    return handlers.realtime(services, {"minutes": "60"})


@pytest.fixture
def platform(spark: Any, aws_env: dict[str, str], kafka_broker: Any, unique_name: str) -> Settings:
    env = local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                            kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name)
    env[envvars.KAFKA_TOPIC] = f"{unique_name}-transactions"
    settings = Settings.from_env(env)
    bootstrap(settings)
    configure_s3a(spark, aws_env["AWS_ENDPOINT_URL"])
    return settings


def test_provisional_minutes_count_distinct_events_under_retries_and_final_ones_replace_them(
        spark: Any, platform: Settings, kafka_broker: Any) -> None:
    settings = platform
    events = list(generate_events(CONFIG))
    assert sum(e.is_duplicate for e in events) > 500  # duplicate-heavy
    expected = expected_realtime_counts(events)
    create_topics(kafka_broker.bootstrap_servers, {settings.kafka_topic: 3})
    produce_all(kafka_broker.bootstrap_servers, settings.kafka_topic, events)

    config = LandingConfig.from_settings(settings)
    assert config.metrics_table
    store = FailingOnce(S3ObjectStore(boto3.Session(), endpoint_url=settings.endpoint_url), fail_at=4)
    landing = KafkaLanding(config, store, Validator(default_fx().currencies), speed=speed_path(config))
    esm = EsmConfig(kafka_broker.bootstrap_servers, (settings.kafka_topic,), group_id=f"{settings.kafka_topic}-esm",
                    batch_size=400, batching_window=0.1, initial_backoff=0.1)
    stats = LocalEventSourceMapping(esm, make_handler(lambda: landing)).run(until_idle=3.0)
    assert store.failed
    assert stats.failures == 1

    provisional = realtime(settings)
    rows = {r["minute"]: r for r in provisional["items"]}
    assert {m: r["txn_count"] for m, r in rows.items()} == expected
    assert {r["status"] for r in rows.values()} == {serving.PROVISIONAL}
    assert sum(r["txn_count"] for r in rows.values()) == sum(expected.values())
    assert provisional["newest_event_time"] is not None
    assert provisional["freshness_seconds"] is not None

    checkpoint = runtime.Lake(settings).state("test/realtime-checkpoint")
    streaming_enrichment.run(spark, settings, trigger="availableNow", checkpoint_location=checkpoint)
    final = {r["minute"]: r for r in realtime(settings)["items"]}
    assert {r["status"] for r in final.values()} == {serving.FINAL}
    assert {m: r["txn_count"] for m, r in final.items()} == expected
    # the speed path and Spark agree on every figure of every minute, not just on the counts
    assert {m: {k: v for k, v in r.items() if k != "status"} for m, r in final.items()} == {
        m: {k: v for k, v in r.items() if k != "status"} for m, r in rows.items()}
