"""The alert evaluator Lambda against the moto server: raise once, refresh, resolve, publish to SNS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from dataforge import serving
from dataforge.alerts import AlertRule, RuleKind, to_json_rules
from dataforge.settings import Settings
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.moto_server import MotoServer
from lambdas.alert_evaluator.handler import build_evaluator
from lambdas.common.counters import IngestCounters

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULES = (
    AlertRule("high-decline-rate", RuleKind.DECLINE_RATE, Decimal("0.25"), window_minutes=10, min_count=50),
    AlertRule("quarantine-ratio", RuleKind.QUARANTINE_RATIO, Decimal("0.05"), window_minutes=60, min_count=100),
)


@pytest.fixture
def settings(moto_server: MotoServer, boto3_session: boto3.Session, unique_name: str) -> Settings:
    env = local_environment(endpoint_url=moto_server.endpoint_url, kafka_bootstrap_servers="127.0.0.1:1",
                            prefix=unique_name)
    settings = Settings.from_env({**env, "DATAFORGE_ALERT_RULES": to_json_rules(RULES)})
    resources = bootstrap(settings, boto3_session)
    return Settings.from_env({**env, "DATAFORGE_ALERT_RULES": to_json_rules(RULES),
                              "DATAFORGE_ALERTS_TOPIC_ARN": resources.alerts_topic_arn})


def put_minutes(table: Any, payments: int, declined: int, count: int = 10) -> None:
    for i in range(count):
        minute = NOW - timedelta(minutes=i)
        table.put_item(Item={
            "pk": serving.realtime_pk(minute), "sk": serving.realtime_sk(minute),
            "minute": serving.realtime_sk(minute), "txn_count": payments, "approved_count": payments - declined,
            "declined_count": declined, "volume_usd": Decimal("100.00"),
        })


def test_alert_lifecycle(settings: Settings, boto3_session: boto3.Session) -> None:
    ddb = boto3_session.resource("dynamodb", endpoint_url=settings.endpoint_url)
    metrics = ddb.Table(settings.require("metrics_table"))
    alerts = ddb.Table(settings.require("alerts_table"))
    sqs = boto3_session.client("sqs", endpoint_url=settings.endpoint_url)
    sns = boto3_session.client("sns", endpoint_url=settings.endpoint_url)
    queue_url = sqs.create_queue(QueueName=f"{settings.name_prefix}-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=settings.require("alerts_topic_arn"), Protocol="sqs", Endpoint=queue_arn)

    put_minutes(metrics, payments=20, declined=8)  # 40 % declines
    counters = IngestCounters(settings.require("metrics_table"), endpoint_url=settings.endpoint_url,
                              region=settings.region, clock=lambda: NOW - timedelta(minutes=5))
    counters.record("kafka", ["s3://b/transactions/source=kafka/ingest_date=2026-11-26/x.jsonl.gz"], 1000, 10)
    counters.record("kafka", ["s3://b/transactions/source=kafka/ingest_date=2026-11-26/x.jsonl.gz"], 1000, 10)

    evaluator = build_evaluator(settings, clock=lambda: NOW)
    first = evaluator.run()
    assert first.raised == ("high-decline-rate-20261126T1200",)
    ratio = next(e for e in first.evaluations if e.rule.name == "quarantine-ratio")
    assert ratio.value == Decimal("0.0100")  # the retried batch counted once: 10 of 1000
    assert not ratio.breached

    message = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"][0]
    published = json.loads(json.loads(message["Body"])["Message"])
    assert published["rule"] == "high-decline-rate"
    assert published["status"] == "open"

    second = evaluator.run()  # still breached: refreshed, not raised twice
    assert second.raised == ()
    assert second.refreshed == ("high-decline-rate-20261126T1200",)
    open_items = alerts.query(IndexName=serving.ALERTS_STATUS_INDEX,
                              KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
                              ExpressionAttributeValues={":s": "open"})["Items"]
    assert [i["alert_id"] for i in open_items] == ["high-decline-rate-20261126T1200"]
    assert open_items[0]["runbook_url"] == "docs/runbooks/incident_response.md#decline_rate"

    put_minutes(metrics, payments=20, declined=1)  # back to 5 %
    third = evaluator.run()
    assert third.resolved == ("high-decline-rate-20261126T1200",)
    item = alerts.get_item(Key={"pk": serving.alert_pk("high-decline-rate-20261126T1200"), "sk": serving.ALERT_SK})
    assert item["Item"]["status"] == "resolved"
