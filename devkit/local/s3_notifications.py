"""Landing-bucket object-created events for the embedded platform: S3 -> SQS (moto) -> batch handler.

``configure`` creates an SQS queue and points the landing bucket's notification configuration at it
(``s3:ObjectCreated:*``), as the stack does on AWS with a Lambda trigger. ``NotificationPoller`` long-polls
the queue and invokes the real batch landing handler in-process with the S3 event each message carries.
A message is deleted only after the handler returned; a failing one becomes visible again after a
backoff (SQS redelivery), so a file is never skipped. S3's ``s3:TestEvent`` messages are dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3

from dataforge.errors import ServiceError
from devkit.fakes import LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import QueueConfigurationTypeDef
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

DEFAULT_QUEUE_SUFFIX: Final = "landing-events"
NOTIFICATION_ID: Final = "dataforge-batch-landing"


def queue_name(bucket: str) -> str:
    return f"{bucket}-{DEFAULT_QUEUE_SUFFIX}"[:80]


def configure(s3: S3Client, sqs: SQSClient, bucket: str, *, queue: str | None = None,
              prefix: str | None = None) -> str:
    """Create the queue (idempotent) and send ``bucket``'s object-created events to it; its URL."""
    name = queue or queue_name(bucket)
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config: QueueConfigurationTypeDef = {"Id": NOTIFICATION_ID, "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
    if prefix:
        config["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [config]})
    return url


@dataclass(slots=True)
class PollerStats:
    messages: int = 0
    files: int = 0
    failures: int = 0
    ignored: int = 0


class NotificationPoller:
    """Delivers queued S3 events to ``handler(event, context)``; deletes a message after success."""

    def __init__(self, queue_url: str, handler: Handler, *, session: boto3.Session | None = None,
                 endpoint_url: str | None = None, region: str | None = None, wait_seconds: int = 1,
                 retry_visibility: int = 2, function_name: str = "batch-landing") -> None:
        self.queue_url = queue_url
        self.handler = handler
        self._session = session
        self._endpoint_url = endpoint_url
        self._region = region
        self._client: SQSClient | None = None
        self.wait_seconds = wait_seconds
        self.retry_visibility = retry_visibility
        self.function_name = function_name
        self.stats = PollerStats()

    @property
    def sqs(self) -> SQSClient:
        if self._client is None:
            session = self._session or boto3.Session()
            self._client = session.client("sqs", endpoint_url=self._endpoint_url, region_name=self._region)
        return self._client

    def poll_once(self) -> int:
        """Receive up to 10 messages and deliver them; the number received."""
        try:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=self.wait_seconds)
        except Exception as exc:  # botocore errors of many kinds: the poller boundary
            raise ServiceError(f"polling {self.queue_url} failed: {exc}") from exc
        messages = response.get("Messages", [])
        for message in messages:
            self._deliver(message)
        return len(messages)

    def _deliver(self, message: Any) -> None:
        self.stats.messages += 1
        try:
            event = json.loads(message["Body"])
        except ValueError:
            logger.error("dropping a message that is not JSON: %.200s", message["Body"])
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return
        if not isinstance(event, dict) or "Records" not in event:  # s3:TestEvent and the like
            self.stats.ignored += 1
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return
        context = LambdaContext(self.function_name)
        try:
            self.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - the invocation boundary: redelivered after a backoff
            self.stats.failures += 1
            logger.warning("batch landing failed; the event is redelivered in %ds: %s", self.retry_visibility, exc)
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=self.retry_visibility)
            return
        self.stats.files += len(event["Records"])
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, *, stop: threading.Event | None = None, until_idle: float | None = None) -> PollerStats:
        """Deliver until ``stop`` is set or, with ``until_idle``, after that many seconds with no message."""
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            if self.poll_once():
                idle_since = time.monotonic()
            elif until_idle is not None and time.monotonic() - idle_since >= until_idle:
                break
        return self.stats
