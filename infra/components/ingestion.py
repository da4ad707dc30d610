"""Ingestion: the MSK landing Lambda (event source mapping, on-failure destination) and the S3
batch landing Lambda (landing-bucket notifications). Both write bronze and quarantine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge import envvars, lake
from infra import iam
from infra.artifacts import Artifact
from infra.components.functions import Function, FunctionArgs

BATCH_PREFIX: Final = lake.LANDING_FILES_PREFIX  # landing-bucket prefix the batch landing function is notified for
STREAM_ARCHIVE_PREFIX: Final = lake.LANDING_STREAM_PREFIX


@dataclass(frozen=True, slots=True)
class IngestionArgs:
    base_name: str
    code: Artifact
    core_layer_arn: pulumi.Input[str]
    base_environment: Mapping[str, pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    landing_bucket: pulumi.Input[str]
    landing_bucket_arn: pulumi.Input[str]
    bronze_bucket_arn: pulumi.Input[str]
    quarantine_bucket_arn: pulumi.Input[str]
    metrics_table_name: pulumi.Input[str]  # per-batch counts for the quarantine-ratio alert
    metrics_table_arn: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    group_arn_prefix: pulumi.Input[str]
    topic: str
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    batch_size: int
    batch_window_seconds: int
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int
    archive_raw: bool
    log_retention_days: int


class Ingestion(pulumi.ComponentResource):
    landing_function_name: pulumi.Output[str]
    batch_function_name: pulumi.Output[str]
    dead_letter_queue_url: pulumi.Output[str]
    dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:ingestion:Ingestion", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dlq = aws.sqs.Queue(f"{name}-landing-dlq", name=f"{args.base_name}-landing-failures",
                            kms_master_key_id=args.kms_key_arn, message_retention_seconds=14 * 86_400, opts=child)
        consumer_group = f"{args.base_name}-landing"
        group_arn = pulumi.Output.concat(args.group_arn_prefix, "/", consumer_group)
        writes = [*iam.s3_write(args.bronze_bucket_arn), *iam.s3_write(args.quarantine_bucket_arn),
                  iam.allow(["dynamodb:PutItem"], [args.metrics_table_arn], sid="IngestCounts")]
        stream_statements = [
            *writes,
            iam.allow(["kafka-cluster:Connect", "kafka-cluster:DescribeCluster",
                       "kafka-cluster:DescribeClusterDynamicConfiguration", "kafka:DescribeClusterV2",
                       "kafka:GetBootstrapBrokers"], [args.cluster_arn], sid="KafkaCluster"),
            iam.allow(["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], [args.topic_arn], sid="KafkaTopic"),
            iam.allow(["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"], [group_arn], sid="KafkaGroup"),
            iam.allow(["sqs:SendMessage"], [dlq.arn], sid="OnFailure"),
        ]
        if args.archive_raw:
            stream_statements += iam.s3_write(args.landing_bucket_arn, STREAM_ARCHIVE_PREFIX)
        env = {**args.base_environment, envvars.ARCHIVE_RAW: "true" if args.archive_raw else "false",
               envvars.METRICS_TABLE: args.metrics_table_name}
        landing = Function(f"{name}-msk-landing", FunctionArgs(
            function_name=f"{args.base_name}-msk-landing", handler="lambdas.msk_landing.handler.handler",
            code=args.code, layers=[args.core_layer_arn], environment=env, statements=stream_statements,
            log_retention_days=args.log_retention_days, kms_key_arn=args.kms_key_arn, memory_mb=args.memory_mb,
            timeout_seconds=args.timeout_seconds, reserved_concurrency=args.reserved_concurrency,
            subnet_ids=args.subnet_ids, security_group_ids=[args.security_group_id],
            description="MSK transactions -> bronze + quarantine"), opts=child)
        aws.lambda_.EventSourceMapping(
            f"{name}-msk-mapping", event_source_arn=args.cluster_arn, function_name=landing.arn,
            topics=[args.topic], starting_position="TRIM_HORIZON", batch_size=args.batch_size,
            maximum_batching_window_in_seconds=args.batch_window_seconds,
            amazon_managed_kafka_event_source_config={"consumer_group_id": consumer_group},
            destination_config={"on_failure": {"destination_arn": dlq.arn}},
            opts=child)
        batch = Function(f"{name}-batch-landing", FunctionArgs(
            function_name=f"{args.base_name}-batch-landing", handler="lambdas.batch_landing.handler.handler",
            code=args.code, layers=[args.core_layer_arn], environment=env,
            statements=[*writes, *iam.s3_read(args.landing_bucket_arn, BATCH_PREFIX),
                        iam.allow(["s3:GetObjectVersion"],
                                  [pulumi.Output.concat(args.landing_bucket_arn, "/", BATCH_PREFIX, "*")])],
            log_retention_days=args.log_retention_days, kms_key_arn=args.kms_key_arn, memory_mb=args.memory_mb,
            timeout_seconds=max(args.timeout_seconds, 300), description="landing batch files -> bronze + quarantine"),
            opts=child)
        permission = aws.lambda_.Permission(f"{name}-batch-landing-s3", action="lambda:InvokeFunction",
                                            function=batch.name, principal="s3.amazonaws.com",
                                            source_arn=args.landing_bucket_arn, opts=child)
        aws.s3.BucketNotification(
            f"{name}-landing-notification", bucket=args.landing_bucket,
            lambda_functions=[{"lambda_function_arn": batch.arn, "events": ["s3:ObjectCreated:*"],
                               "filter_prefix": BATCH_PREFIX}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]))
        self.landing_function_name = landing.name
        self.batch_function_name = batch.name
        self.dead_letter_queue_url = dlq.url
        self.dead_letter_queue_name = dlq.name
        self.register_outputs({"landing_function": self.landing_function_name,
                               "batch_function": self.batch_function_name, "dlq_url": self.dead_letter_queue_url})
