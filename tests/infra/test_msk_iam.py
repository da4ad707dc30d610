"""The streaming job authenticates to MSK with IAM: its declared settings make its own code build the MSK IAM
library's client configuration, and its ``--extra-jars`` name the library's jars the stack uploads."""

from __future__ import annotations

from dataforge import envvars
from dataforge.settings import KAFKA_AUTH_IAM
from devkit.rehearse import msk_iam
from infra.components.processing import JARS_PREFIX
from infra.plan import Rendered


def _arguments(stack: Rendered, job: str) -> dict[str, str]:
    return dict(stack.by_name(f"processing-{job.replace('_', '-')}").inputs["defaultArguments"])


def test_the_streaming_job_builds_the_documented_msk_iam_client_configuration(stack: Rendered) -> None:
    job = msk_iam.streaming_job(stack)
    assert job.inputs["defaultArguments"][f"--{envvars.KAFKA_AUTH}"] == KAFKA_AUTH_IAM
    config = msk_iam.client_config(job)
    assert {key: config.get(key) for key in msk_iam.DOCUMENTED_IAM_CLIENT} == dict(msk_iam.DOCUMENTED_IAM_CLIENT)
    assert config["bootstrap.servers"].endswith(":9098")  # the IAM listener


def test_the_streaming_jobs_extra_jars_are_uploaded_objects_under_content_hashed_keys(stack: Rendered) -> None:
    uris = _arguments(stack, "streaming_enrichment")["--extra-jars"].split(",")
    objects = {(o.inputs["bucket"], o.inputs["key"]): o for o in stack.of_type("aws:s3/bucketObject:BucketObject")}
    artifacts_bucket = _arguments(stack, "streaming_enrichment")[f"--{envvars.ARTIFACTS_BUCKET}"]
    names = []
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert bucket == artifacts_bucket
        assert key.startswith(f"{JARS_PREFIX}/")
        assert key.endswith(".jar")
        uploaded = objects[(bucket, key)]
        assert uploaded.inputs["sourceHash"][:16] in key  # a new jar is a new key
        assert uploaded.inputs["serverSideEncryption"] == "aws:kms"
        names.append(key.rsplit("/", 1)[1])
    assert any(name.startswith("aws-msk-iam-auth-") for name in names)
    assert any(name.startswith("auth-") for name in names)  # the AWS SDK for Java 2.x signer it needs
    assert not any(name.startswith(("kafka-clients-", "slf4j-", "jackson-")) for name in names)  # Glue's own


def test_only_the_kafka_job_gets_extra_jars(stack: Rendered) -> None:
    for job in ("batch_enrichment", "daily_aggregation", "backfill", "export_gold"):
        assert "--extra-jars" not in _arguments(stack, job)
        assert f"--{envvars.KAFKA_AUTH}" not in _arguments(stack, job)
