"""Landing bucket -> S3 notifications (SQS on moto) -> batch landing handler -> bronze, reconciled exactly."""

from __future__ import annotations

import gzip

import boto3
import pytest

from dataforge.contract import Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.fakes import LambdaContext
from devkit.generator import GeneratorConfig, generate_events, summary
from devkit.landing_sink import write_to_landing
from devkit.local.s3_notifications import NotificationPoller, configure
from lambdas.batch_landing.handler import make_handler
from lambdas.common.config import LandingConfig
from lambdas.common.file_landing import FileLanding
from lambdas.common.storage import S3ObjectStore
from tests.integration.ingestion.conftest import read_zone, reasons
from tests.unit.ingestion.memory_store import FailingOnce

N = 20_000
MALFORMED = {
    "files/wrong-header.csv": b"id;amount\n1;2\n",
    "files/latin1.jsonl": b'{"merchant":"caf\xe9"}\n',
    "files/truncated.jsonl.gz": gzip.compress(b'{"a":1}\n' * 1000)[:-40],
}


@pytest.mark.integration
def test_files_reconcile_exactly_with_malformed_files_and_a_failure(lake_settings: Settings,
                                                                    boto3_session: boto3.Session) -> None:
    s3, sqs = boto3_session.client("s3"), boto3_session.client("sqs")
    lake = lake_settings.lake()
    queue_url = configure(s3, sqs, lake.landing)
    events = list(generate_events(GeneratorConfig(count=N, seed=5, invalid_fraction=0.1, duplicate_fraction=0.05)))
    expected = summary(events)
    sink = write_to_landing(events, s3=s3, bucket=lake.landing, run_name="it", records_per_file=5_000)
    assert len(sink.keys) == 4
    assert sink.summary == expected
    for key, body in MALFORMED.items():
        s3.put_object(Bucket=lake.landing, Key=key, Body=body)

    store = FailingOnce(S3ObjectStore(boto3_session, endpoint_url=lake_settings.endpoint_url), fail_at=2)
    landing = FileLanding(LandingConfig.from_settings(lake_settings), store, Validator(default_fx().currencies))
    handler = make_handler(lambda: landing)
    poller = NotificationPoller(queue_url, handler, session=boto3_session, endpoint_url=lake_settings.endpoint_url,
                                retry_visibility=1)
    stats = poller.run(until_idle=4.0)
    assert store.failed
    assert stats.failures == 1
    assert stats.files == 4 + len(MALFORMED)

    bronze_objects, bronze = read_zone(s3, lake.bronze)
    quarantine_objects, quarantine = read_zone(s3, lake.quarantine)
    assert len(bronze) == expected.valid
    assert reasons(quarantine) == dict(sorted({**expected.by_reason, "malformed_file": len(MALFORMED)}.items()))
    assert len({line["ingest"]["position"] for line in bronze}) == expected.valid
    assert len(bronze_objects) == 4  # one per generated file; nothing from malformed files

    # a redelivered event (same object version) rewrites byte-identical objects under the same keys
    key = sink.keys[0]
    etag = s3.head_object(Bucket=lake.landing, Key=key)["ETag"].strip('"')
    redelivery = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                               "eventTime": "2030-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
                               "s3": {"s3SchemaVersion": "1.0", "configurationId": "x",
                                      "bucket": {"name": lake.landing, "arn": f"arn:aws:s3:::{lake.landing}"},
                                      "object": {"key": key, "size": 1, "eTag": etag}}}]}
    handler(redelivery, LambdaContext("batch-landing"))
    assert read_zone(s3, lake.bronze)[0] == bronze_objects
    assert read_zone(s3, lake.quarantine)[0] == quarantine_objects
