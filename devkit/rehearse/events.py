"""The events AWS sends a function for each trigger a stack declares, in AWS's documented shapes.

- an MSK event source mapping: ``{"eventSource": "aws:kafka", "eventSourceArn", "bootstrapServers",
  "records": {"<topic>-<partition>": [{topic, partition, offset, timestamp, timestampType, key, value,
  headers}]}}`` with base64 keys and values (built by the local mapping's own ``msk_batch``);
- an S3 bucket notification: ``{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
  "eventName": "ObjectCreated:Put", "s3": {"bucket": {...}, "object": {key (URL-encoded), size, eTag,
  versionId, sequencer}}}]}``;
- an EventBridge schedule: ``{"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
  "resources": [<rule ARN>], "detail": {}}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from devkit.local.esm import msk_batch


@dataclass(frozen=True, slots=True)
class _Message:
    """A consumed Kafka message, as ``msk_batch`` reads one (confluent-kafka's accessors)."""

    topic_name: str
    partition_id: int
    position: int
    key_bytes: bytes | None
    value_bytes: bytes
    timestamp_ms: int

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_id

    def offset(self) -> int:
        return self.position

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes:
        return self.value_bytes

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return 1, self.timestamp_ms  # confluent_kafka.TIMESTAMP_CREATE_TIME


def msk_event(records: Sequence[tuple[bytes | None, bytes]], *, topic: str, event_source_arn: str,
              partitions: int = 3, bootstrap_servers: str = "b-1.rehearsal.kafka.us-east-1.amazonaws.com:9098",
              now: datetime | None = None) -> dict[str, Any]:
    """An MSK event of ``records`` (key, value) spread over ``partitions`` partitions of ``topic``."""
    millis = int((now or datetime.now(UTC)).timestamp() * 1000)
    messages = sorted((_Message(topic, index % partitions, index // partitions, key, value, millis)
                       for index, (key, value) in enumerate(records)), key=lambda m: (m.partition_id, m.position))
    event, _offsets = msk_batch(messages, event_source_arn=event_source_arn, bootstrap_servers=bootstrap_servers)
    return event


def s3_event(*, bucket: str, key: str, size: int, etag: str, version_id: str | None, region: str,
             now: datetime | None = None) -> dict[str, Any]:
    """The notification S3 sends for an object created in ``bucket`` (keys URL-encoded, as S3 does)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag,
                           "sequencer": f"{int((now or datetime.now(UTC)).timestamp() * 1e6):016X}"}
    if version_id:
        obj["versionId"] = version_id
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:REHEARSAL"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "rehearsal",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "REHEARSAL"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj},
    }]}


def scheduled_event(*, rule_arn: str, account: str, region: str, now: datetime | None = None) -> dict[str, Any]:
    """What EventBridge sends a target of a scheduled rule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account, "time": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [rule_arn], "detail": {}}
