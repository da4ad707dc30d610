"""The whole embedded platform, end to end, as `dataforge run` drives it.

Generated traffic (with invalid records and duplicates) goes to the real Kafka broker and, as batch
files, to the landing bucket on the moto server; the real landing Lambdas land it in bronze and
quarantine; the Spark jobs build silver, gold and the DynamoDB exports; the alert evaluator runs;
the real API serves the result. Checked: counts reconcile exactly (received = valid + quarantined,
reason by reason), the KPIs the API returns equal an independent computation from the generated
input, running the pipeline's jobs again changes nothing, and (last: it adds traffic) the live
traffic `dataforge run` keeps flowing while it serves makes the realtime metrics fresh.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import msgspec
import pytest

from dataforge import envvars
from dataforge.settings import Settings
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.live import LiveConfig, LiveTraffic
from devkit.local.moto_server import MotoServer
from devkit.local.platform import PipelineConfig, PipelineReport, refine, run_pipeline
from devkit.local.spark import configure_s3a
from tests.kpi_reference import expected_gold

pytestmark = pytest.mark.e2e

END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=15)
CONFIG = PipelineConfig(stream_events=3_000, file_events=600, invalid_fraction=0.03, duplicate_fraction=0.02,
                        days=1, seed=2026, end=END)


def _events(count: int, seed: int) -> list[GeneratedEvent]:
    start, end = CONFIG.window(END)
    return list(generate_events(GeneratorConfig(
        count=count, seed=seed, start=start, end=end, invalid_fraction=CONFIG.invalid_fraction,
        duplicate_fraction=CONFIG.duplicate_fraction)))


@pytest.fixture(scope="module")
def platform(moto_server: MotoServer, kafka_broker: KafkaBroker, aws_env: dict[str, str], spark: Any,
             unique_name: str) -> tuple[Settings, PipelineReport]:
    env = local_environment(endpoint_url=moto_server.endpoint_url,
                            kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name)
    env[envvars.KAFKA_TOPIC] = f"{unique_name}-transactions"
    settings = Settings.from_env(env)
    bootstrap(settings)
    create_topics(kafka_broker.bootstrap_servers, {settings.kafka_topic: 3})
    configure_s3a(spark, moto_server.endpoint_url)
    return settings, run_pipeline(settings, CONFIG, spark=spark)


@pytest.fixture(scope="module")
def unique_name() -> str:  # module-scoped twin of the conftest fixture: one platform for the module
    import uuid

    return f"e2e{uuid.uuid4().hex[:10]}"


def _lines(settings: Settings, bucket: str, prefix: str) -> list[dict[str, Any]]:
    s3 = boto3.client("s3", endpoint_url=settings.endpoint_url)
    lines: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            lines += [msgspec.json.decode(line) for line in body.splitlines() if line]
    return lines


def test_every_record_reaches_bronze_or_quarantine_with_its_reason(
        platform: tuple[Settings, PipelineReport]) -> None:
    settings, report = platform
    for source, events in (("kafka", _events(CONFIG.stream_events, CONFIG.seed)),
                           ("file", _events(CONFIG.file_events, CONFIG.seed + 1))):
        prefix = f"transactions/source={source}/"
        bronze = _lines(settings, settings.require("bronze_bucket"), prefix)
        quarantine = _lines(settings, settings.require("quarantine_bucket"), prefix)
        assert len(bronze) + len(quarantine) == len(events), source  # received = valid + quarantined
        assert len(bronze) == sum(e.is_valid for e in events)
        assert Counter(q["reason"] for q in quarantine) == Counter(
            e.expected_reason.value for e in events if e.expected_reason is not None)
    assert report.stream is not None
    assert report.ingest["stream_records"] == CONFIG.stream_events


def _api_client(settings: Settings) -> Iterator[Any]:
    import app as chalice_app
    from chalice.test import Client
    from chalicelib.config import ApiConfig
    from chalicelib.services import Services

    from devkit.cli.api import load_app

    load_app()
    previous = chalice_app.runtime._services
    services = Services(ApiConfig.from_settings(settings), session=boto3.Session())
    chalice_app.runtime.use(services)
    try:
        with Client(chalice_app.app) as client:
            yield client
    finally:
        chalice_app.runtime.use(previous)
        services.close()


def test_api_serves_kpis_equal_to_an_independent_computation(platform: tuple[Settings, PipelineReport]) -> None:
    settings, _ = platform
    expected = expected_gold(_events(CONFIG.stream_events, CONFIG.seed) + _events(CONFIG.file_events, CONFIG.seed + 1))
    totals = {key[0]: value for key, value in expected.items() if key[1:] == ("*", "*", "*")}
    assert totals, "the generated traffic produced no KPI at all"
    first, last = min(totals), max(totals)
    for client in _api_client(settings):
        response = client.http.get(f"/v1/kpis/daily?from={first}&to={last}",
                                   headers={"x-api-key": settings.require("api_key")})
        assert response.status_code == 200, response.body
        items = {date.fromisoformat(i["event_date"]): i for i in response.json_body["items"]}
        assert set(items) == set(totals)
        for day, (txn, ok, no, rate, gross, rc, rv, net, ticket, accounts) in totals.items():
            item = items[day]
            assert (item["txn_count"], item["approved_count"], item["declined_count"]) == (txn, ok, no)
            assert Decimal(item["gross_volume_usd"]) == gross
            assert Decimal(item["net_volume_usd"]) == net
            assert (item["refund_count"], Decimal(item["refund_volume_usd"])) == (rc, rv)
            assert item["unique_accounts"] == accounts
            assert (Decimal(item["approval_rate"]) if item["approval_rate"] is not None else None) == rate
            assert (Decimal(item["avg_ticket_usd"]) if item["avg_ticket_usd"] is not None else None) == ticket
        summary = client.http.get(f"/v1/kpis/summary?date={last}", headers={"x-api-key": settings.require("api_key")})
        assert summary.status_code == 200
        assert summary.json_body["current"]["txn_count"] == totals[last][0]
        realtime = client.http.get("/v1/realtime?minutes=1440", headers={"x-api-key": settings.require("api_key")})
        assert realtime.status_code == 200
        assert realtime.json_body["items"], "the streaming job wrote no realtime minute"


def test_rerunning_the_jobs_changes_nothing(platform: tuple[Settings, PipelineReport], spark: Any) -> None:
    settings, report = platform
    ddb = boto3.resource("dynamodb", endpoint_url=settings.endpoint_url).Table(settings.require("metrics_table"))
    before = sorted(ddb.scan()["Items"], key=lambda i: (i["pk"], i["sk"]))
    silver_before = spark.read.parquet(f"s3://{settings.require('silver_bucket')}/transactions/").count()
    again = PipelineReport(dates=report.dates)
    refine(settings, again, lambda _: None, spark)
    after = sorted(ddb.scan()["Items"], key=lambda i: (i["pk"], i["sk"]))
    assert after == before
    assert spark.read.parquet(f"s3://{settings.require('silver_bucket')}/transactions/").count() == silver_before
    assert again.spark["streaming"].get("silver_rows", 0) == 0  # nothing new on the topic


def test_reconcile_is_exact_after_the_run(platform: tuple[Settings, PipelineReport],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataforge reconcile` explains every count of every date the run produced (before the live traffic)."""
    from typer.testing import CliRunner

    from devkit.cli import app
    from devkit.cli.reconcile import sources_for
    from devkit.reconcile import reconcile

    settings, report = platform
    valid = sum(e.is_valid for e in _events(CONFIG.stream_events, CONFIG.seed) + _events(
        CONFIG.file_events, CONFIG.seed + 1))
    results = [reconcile(settings, day, sources_for(settings)) for day in report.dates]
    for result in results:
        assert not result.unexplained, result.unexplained
        assert result.counts["landing lag (all dates)"] == 0
        assert result.counts["DynamoDB KPI items"] > 0
    assert sum(r.counts["bronze records"] for r in results) == valid
    assert sum(r.counts["realtime minutes"] for r in results) > 0

    for name, value in local_environment(endpoint_url=settings.endpoint_url or "", prefix=settings.name_prefix,
                                         kafka_bootstrap_servers=settings.kafka_bootstrap_servers or "").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(envvars.KAFKA_TOPIC, settings.kafka_topic)
    shown = CliRunner().invoke(app, ["reconcile", "--date", report.dates[-1].isoformat(), "--json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    assert body["exact"] is True
    assert body["counts"]["bronze records"] == results[-1].counts["bronze records"]


def _realtime(settings: Settings) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for client in _api_client(settings):  # run to the end: the generator restores the API's services
        response = client.http.get("/v1/realtime?minutes=60", headers={"x-api-key": settings.require("api_key")})
        assert response.status_code == 200, response.body
        body = response.json_body
    return body


def _landed(settings: Settings) -> int:
    prefix = "transactions/source=kafka/"
    return sum(len(_lines(settings, settings.require(bucket), prefix))
               for bucket in ("bronze_bucket", "quarantine_bucket"))


def test_live_traffic_keeps_the_realtime_metrics_fresh(platform: tuple[Settings, PipelineReport], spark: Any) -> None:
    """Last in the module: it adds records to the topic, bronze, silver and the realtime minutes.

    Freshness is ``now - newest minute`` (as the API computes it): it swings between the pipeline's lag
    (a micro-batch plus a chunk) and that lag + 60 s, so the loop waits for a reading under 60 s and
    settles for under 120 s (still far below the dashboard's 300 s stale banner) after 40 s.
    """
    settings, _ = platform
    landed_before = _landed(settings)
    stale = _realtime(settings)["freshness_seconds"]
    assert stale is None or stale >= 15 * 60  # the pipeline's traffic ends 15 minutes ago
    config = LiveConfig(rate=20, chunk_seconds=3, seed=CONFIG.seed, invalid_fraction=CONFIG.invalid_fraction,
                        duplicate_fraction=CONFIG.duplicate_fraction, trigger="processingTime=5 seconds",
                        alert_every=10, query_stop_wait=5, join_timeout=30)
    first_live_minute = (datetime.now(UTC) - timedelta(seconds=config.chunk_seconds)).strftime("%Y-%m-%dT%H:%MZ")
    live = LiveTraffic(settings, spark, config)
    live.start()
    try:
        started = time.monotonic()
        while True:
            realtime = _realtime(settings)
            freshness = realtime["freshness_seconds"]
            live_minutes = [i["minute"] for i in realtime["items"] if i["minute"] >= first_live_minute]
            ready = bool(live_minutes and live.landed and live.counters.alert_runs)
            elapsed = time.monotonic() - started
            if (ready and (freshness < 60 or elapsed > 40)) or elapsed > 55:
                break
            time.sleep(2)
    finally:
        live.stop()
    assert not [t.name for t in live.threads if t.is_alive()]
    assert not [q.name for q in spark.streams.active]
    assert live.counters.errors == 0, list(live.counters.failures)
    assert live_minutes, f"no realtime minute since {first_live_minute}: {realtime['items'][-3:]}"
    assert freshness < 120, freshness
    assert live.counters.alert_runs >= 1
    # every record the live event source mapping consumed landed in bronze or quarantine, once
    assert 0 < live.landed <= live.counters.produced
    assert _landed(settings) - landed_before == live.landed
