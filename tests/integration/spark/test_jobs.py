"""The Spark jobs against the real local broker and the moto server, end to end.

Gold KPIs must equal an independent computation (plain Python with Decimal over the generated input),
and rerunning any job must change nothing.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from confluent_kafka import Producer

from dataforge import envvars, serving
from dataforge.settings import Settings
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.kafka import create_topics
from devkit.local.spark import configure_s3a
from devkit.reconcile import realtime_minutes
from spark import runtime
from spark.jobs import backfill, daily_aggregation, export_gold, streaming_enrichment
from tests.kpi_reference import expected_gold, expected_realtime_counts

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 10, tzinfo=UTC)
DAYS = [date(2025, 3, 10), date(2025, 3, 11)]
CONFIG = GeneratorConfig(count=400, seed=11, start=START, end=START + timedelta(days=2),
                         invalid_fraction=0.05, duplicate_fraction=0.05, unknown_merchant_fraction=0.02)
Q4, CENT = Decimal("0.0001"), Decimal("0.01")


@pytest.fixture(scope="module")
def events() -> list[GeneratedEvent]:
    return list(generate_events(CONFIG))


def _settings(aws_env: dict[str, str], bootstrap_servers: str, prefix: str) -> Settings:
    env = local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"], kafka_bootstrap_servers=bootstrap_servers,
                            prefix=prefix)
    env[envvars.KAFKA_TOPIC] = f"{prefix}-transactions"
    return Settings.from_env(env)


@pytest.fixture
def platform(spark, aws_env, kafka_broker, unique_name) -> Settings:
    settings = _settings(aws_env, kafka_broker.bootstrap_servers, unique_name)
    bootstrap(settings)
    configure_s3a(spark, aws_env["AWS_ENDPOINT_URL"])
    return settings


def actual_gold(spark, settings: Settings) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = spark.read.parquet(runtime.Lake(settings).gold()).collect()
    return {
        (r["event_date"], r["merchant_id"], r["country"], r["channel"]): (
            r["txn_count"], r["approved_count"], r["declined_count"], r["approval_rate"], r["gross_volume_usd"],
            r["refund_count"], r["refund_volume_usd"], r["net_volume_usd"], r["avg_ticket_usd"], r["unique_accounts"])
        for r in rows
    }


def dynamo_items(settings: Settings) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(settings.require("metrics_table"))
    return sorted(table.scan()["Items"], key=lambda i: (i["pk"], i["sk"]))


def realtime_counts(settings: Settings, days: list[date]) -> dict[str, int]:
    """The final realtime minute items' payment counts of ``days``, by minute."""
    table = boto3.resource("dynamodb").Table(settings.require("metrics_table"))
    return {minute: int(item["txn_count"]) for day in days for minute, item in realtime_minutes(table, day).items()}


def silver_count(spark, settings: Settings) -> int:
    return spark.read.parquet(runtime.Lake(settings).silver()).count()


# --- streaming -------------------------------------------------------------------------------------


def test_streaming_then_daily_aggregation_equals_independent_kpis(spark, platform, events, kafka_broker) -> None:
    settings = platform
    create_topics(kafka_broker.bootstrap_servers, {settings.kafka_topic: 3})
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for e in events:
        producer.produce(settings.kafka_topic, key=e.key, value=e.value)
    assert producer.flush(30) == 0

    checkpoint = runtime.Lake(settings).state("test/checkpoint")
    metrics = streaming_enrichment.run(spark, settings, trigger="availableNow", checkpoint_location=checkpoint)
    invalid = sum(1 for e in events if not e.is_valid)
    assert metrics["invalid_skipped"] == invalid
    assert metrics["valid"] + invalid + sum(1 for e in events if e.is_duplicate) == len(events)
    unique_no_fx = sum(1 for e in events if e.is_valid and not e.is_duplicate and e.enrichment_reason)
    assert metrics["no_fx_rate"] == unique_no_fx
    for day in DAYS:
        daily_aggregation.run(spark, settings, day)
        export_gold.run(spark, settings, day)
    expected = expected_gold(events)
    assert actual_gold(spark, settings) == expected

    items = dynamo_items(settings)
    rt = [i for i in items if i["pk"].startswith("RT#")]
    assert sum(int(i["txn_count"]) for i in rt) == sum(v[0] for k, v in expected.items() if k[1] == "*")
    totals = {i["sk"]: i for i in items if i["pk"] == serving.KPI_TOTAL_PK}
    assert {d.isoformat() for d in DAYS} == set(totals)

    # rerun: same checkpoint -> no new batch; aggregation and export rewrite the same values
    before_silver, before_items = silver_count(spark, settings), items
    again = streaming_enrichment.run(spark, settings, trigger="availableNow", checkpoint_location=checkpoint)
    assert again.get("silver_rows", 0) == 0
    for day in DAYS:
        daily_aggregation.run(spark, settings, day)
        export_gold.run(spark, settings, day)
    assert silver_count(spark, settings) == before_silver
    assert actual_gold(spark, settings) == expected
    assert dynamo_items(settings) == before_items


# --- backfill from bronze ----------------------------------------------------------------------------


def write_bronze(settings: Settings, events: list[GeneratedEvent],
                 sources: tuple[str, ...] = ("file", "kafka")) -> None:
    """Bronze objects in the agreed layout; valid records only, a re-send 2 minutes later for duplicates."""
    s3 = boto3.client("s3")
    objects: dict[str, list[str]] = defaultdict(list)
    for n, e in enumerate(events):
        if not e.is_valid:
            continue
        obj = json.loads(e.value)
        at = datetime.fromisoformat(obj["event_time"]).astimezone(UTC) + timedelta(minutes=2 if e.is_duplicate else 1)
        source = sources[n % len(sources)]
        key = f"transactions/source={source}/ingest_date={at:%Y-%m-%d}/ingest_hour={at:%H}/part-{n % 3}.jsonl.gz"
        ingest = {"event_id": obj["event_id"], "source": source, "position": f"{key}:{n}",
                  "ingested_at": at.isoformat().replace("+00:00", "Z")}
        objects[key].append(f'{{"event":{e.value.decode()},"ingest":{json.dumps(ingest)}}}')
    for key, lines in objects.items():
        s3.put_object(Bucket=settings.lake().bronze, Key=key, Body=gzip.compress("\n".join(lines).encode() + b"\n"))


def test_backfill_rebuilds_gold_equal_to_independent_kpis_and_is_idempotent(spark, platform, events) -> None:
    settings = platform
    write_bronze(settings, events)
    first = {day: backfill.run(spark, settings, day, late_days=1) for day in DAYS}
    expected = expected_gold(events)
    assert actual_gold(spark, settings) == expected
    assert realtime_counts(settings, DAYS) == expected_realtime_counts(events)  # the dates' minutes, from silver
    unique_no_fx = sum(1 for e in events if e.is_valid and not e.is_duplicate and e.enrichment_reason)
    assert sum(m["no_fx_rate"] for m in first.values()) == unique_no_fx
    items, rows = dynamo_items(settings), silver_count(spark, settings)

    second = {day: backfill.run(spark, settings, day, late_days=1) for day in DAYS}
    assert {d: m["fingerprint"] for d, m in second.items()} == {d: m["fingerprint"] for d, m in first.items()}
    assert actual_gold(spark, settings) == expected
    assert silver_count(spark, settings) == rows
    assert dynamo_items(settings) == items


# --- incremental batch enrichment ---------------------------------------------------------------------


def test_batch_enrichment_is_incremental_and_rerun_changes_nothing(spark, platform, events) -> None:
    from spark.jobs import batch_enrichment

    settings = platform
    write_bronze(settings, events, sources=("file",))  # batch enrichment reads the file source only
    first = batch_enrichment.run(spark, settings)
    unique_valid = len({e.event_id for e in events if e.is_valid})
    unique_no_fx = sum(1 for e in events if e.is_valid and not e.is_duplicate and e.enrichment_reason)
    rows = silver_count(spark, settings)
    # one micro-batch over every object: duplicates inside it are dropped, no-rate events quarantined
    assert first["silver_rows"] == rows == unique_valid - unique_no_fx
    assert first["quarantined"] == unique_no_fx
    assert batch_enrichment.run(spark, settings) == {}  # nothing new: no batch at all
    assert silver_count(spark, settings) == rows
    for day in DAYS:
        daily_aggregation.run(spark, settings, day)
    assert actual_gold(spark, settings) == expected_gold(events)
