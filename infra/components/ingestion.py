"""Ingestion: the MSK landing Lambda (event source mapping, on-failure destination) and the S3
batch landing Lambda (landing-bucket notifications). Both write bronze and quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge import envvars, lake
from dataforge.lake import Zone
from infra import iam
from infra.components.chaos import LambdaExtension
from infra.components.functions import Function, FunctionArgs
from infra.refs import FunctionRuntime, LakeRefs, NetworkRefs, ServingRefs, StreamingRefs
from infra.settings import IngestionSettings

BATCH_PREFIX: Final = lake.LANDING_FILES_PREFIX  # landing-bucket prefix the batch landing function is notified for
STREAM_ARCHIVE_PREFIX: Final = lake.LANDING_STREAM_PREFIX
# The MSK mapping's retry bound: retries after the first attempt (0-10000; -1, the default, retries until the
# record expires). Lambda caps an unbounded mapping with an on-failure destination at 10; three retries with
# batch bisection narrow a failing batch to its bad records before they go to the destination.
MAX_RETRY_ATTEMPTS: Final = 3
# Provisioned event pollers (Lambda developer guide, "Apache Kafka event poller scaling modes"): the error-handling
# controls above apply in this mode. One poller is the floor; the second takes over a spike or a lost poller.
MIN_POLLERS: Final = 1
MAX_POLLERS: Final = 2


@dataclass(frozen=True, slots=True)
class IngestionArgs:
    base_name: str
    settings: IngestionSettings
    runtime: FunctionRuntime  # the environment gets the lake's buckets and the topic from ``build``
    lake: LakeRefs
    streaming: StreamingRefs
    serving: ServingRefs  # per-batch counts in the metrics table, for the quarantine-ratio alert
    network: NetworkRefs
    # FIS's Lambda extension (``chaos.lambdaExtensionLayerArn``): both landing functions carry it for the FIS
    # Lambda fault templates (infra.components.chaos); None leaves them without it.
    fis_extension: LambdaExtension | None = None


class Ingestion(pulumi.ComponentResource):
    consumer_group: str  # the landing function's MSK consumer group
    landing_function_name: pulumi.Output[str]
    batch_function_name: pulumi.Output[str]
    landing_function_arns: tuple[pulumi.Output[str], pulumi.Output[str]]  # MSK landing, batch landing
    dead_letter_queue_url: pulumi.Output[str]
    dead_letter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:ingestion:Ingestion", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sizing, runtime, kafka = args.settings, args.runtime, args.streaming
        landing_bucket, metrics_table = args.lake[Zone.LANDING], args.serving.metrics
        dlq = aws.sqs.Queue(f"{name}-landing-dlq", name=f"{args.base_name}-landing-failures",
                            kms_master_key_id=runtime.kms_key_arn, message_retention_seconds=14 * 86_400, opts=child)
        consumer_group = self.consumer_group = f"{args.base_name}-landing"
        group_arn = pulumi.Output.concat(kafka.group_arn_prefix, "/", consumer_group)
        writes = [*iam.s3_write(args.lake[Zone.BRONZE].arn), *iam.s3_write(args.lake[Zone.QUARANTINE].arn),
                  iam.allow(["dynamodb:PutItem"], [metrics_table.arn], sid="IngestCounts")]
        stream_statements = [
            *writes,
            iam.allow(["kafka-cluster:Connect", "kafka-cluster:DescribeCluster",
                       "kafka-cluster:DescribeClusterDynamicConfiguration", "kafka:DescribeClusterV2"],
                      [kafka.cluster_arn], sid="KafkaCluster"),
            # kafka:GetBootstrapBrokers supports no resource-level permissions (Service Authorization
            # Reference, Amazon MSK): granted on a cluster ARN it is not granted at all.
            iam.allow(["kafka:GetBootstrapBrokers"], ["*"], sid="KafkaBootstrapBrokers"),
            iam.allow(["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], [kafka.topic_arn], sid="KafkaTopic"),
            iam.allow(["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"], [group_arn], sid="KafkaGroup"),
            iam.allow(["sqs:SendMessage"], [dlq.arn], sid="OnFailure"),
            # The speed path (ADR 0014, lambdas.common.speed_path) reads its minute items and id sets in the
            # metrics table with BatchGetItem; it writes them with PutItem (IngestCounts above).
            iam.allow(["dynamodb:BatchGetItem"], [metrics_table.arn], sid="SpeedPath"),
        ]
        if sizing.archive_raw:
            stream_statements += iam.s3_write(landing_bucket.arn, STREAM_ARCHIVE_PREFIX)
        env = {**runtime.environment, envvars.ARCHIVE_RAW: "true" if sizing.archive_raw else "false",
               envvars.METRICS_TABLE: metrics_table.name}
        layers: list[pulumi.Input[str]] = [runtime.core_layer_arn]
        fis_statements: list[iam.Statement] = []
        if args.fis_extension is not None:
            env = {**env, **args.fis_extension.environment()}
            layers.append(args.fis_extension.layer_arn)
            fis_statements = args.fis_extension.statements()
        landing = Function(f"{name}-msk-landing", FunctionArgs(
            function_name=f"{args.base_name}-msk-landing", handler="lambdas.msk_landing.handler.handler",
            code=runtime.code_of("msk_landing"), layers=layers, environment=env,
            statements=[*stream_statements, *fis_statements],
            log_retention_days=runtime.log_retention_days, kms_key_arn=runtime.kms_key_arn,
            memory_mb=sizing.memory_mb, timeout_seconds=sizing.timeout_seconds,
            reserved_concurrency=sizing.reserved_concurrency, subnet_ids=args.network.private_subnet_ids,
            security_group_ids=[args.network.compute_sg_id],
            description="MSK transactions -> bronze + quarantine"), opts=child)
        # The mapping names the topic by the topic's output, so it is created after the topic exists. Provisioned
        # mode: Lambda documents the error-handling controls of Kafka mappings (MaximumRetryAttempts,
        # BisectBatchOnFunctionError, MaximumRecordAgeInSeconds) under provisioned event pollers ("Configuring
        # error handling controls for Kafka event sources"); a batch that still fails after MAX_RETRY_ATTEMPTS
        # retries (each half retried on its own) goes to the on-failure destination, an SQS queue ("Capturing
        # discarded batches for Amazon MSK and self-managed Apache Kafka event sources"), and the partition moves on.
        aws.lambda_.EventSourceMapping(
            f"{name}-msk-mapping", event_source_arn=kafka.cluster_arn, function_name=landing.arn,
            topics=[kafka.topic_name], starting_position="TRIM_HORIZON", batch_size=sizing.batch_size,
            maximum_batching_window_in_seconds=sizing.batch_window_seconds,
            amazon_managed_kafka_event_source_config={"consumer_group_id": consumer_group},
            provisioned_poller_config={"minimum_pollers": MIN_POLLERS, "maximum_pollers": MAX_POLLERS},
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS, bisect_batch_on_function_error=True,
            destination_config={"on_failure": {"destination_arn": dlq.arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=landing.role.ready))
        batch = Function(f"{name}-batch-landing", FunctionArgs(
            function_name=f"{args.base_name}-batch-landing", handler="lambdas.batch_landing.handler.handler",
            code=runtime.code_of("batch_landing"), layers=layers, environment=env,
            statements=[*writes, *fis_statements, *iam.s3_read(landing_bucket.arn, BATCH_PREFIX),
                        iam.allow(["s3:GetObjectVersion"],
                                  [pulumi.Output.concat(landing_bucket.arn, "/", BATCH_PREFIX, "*")])],
            log_retention_days=runtime.log_retention_days, kms_key_arn=runtime.kms_key_arn,
            memory_mb=sizing.memory_mb, timeout_seconds=max(sizing.timeout_seconds, 300),
            description="landing batch files -> bronze + quarantine"),
            opts=child)
        # A bucket ARN names no account: the Lambda AddPermission reference asks for SourceAccount
        # (the bucket owner) with S3 as the principal, so that a bucket of the same name in another
        # account cannot invoke the function.
        permission = aws.lambda_.Permission(f"{name}-batch-landing-s3", action="lambda:InvokeFunction",
                                            function=batch.name, principal="s3.amazonaws.com",
                                            source_arn=landing_bucket.arn, source_account=iam.account_of(batch.arn),
                                            opts=child)
        aws.s3.BucketNotification(
            f"{name}-landing-notification", bucket=landing_bucket.name,
            lambda_functions=[{"lambda_function_arn": batch.arn, "events": ["s3:ObjectCreated:*"],
                               "filter_prefix": BATCH_PREFIX}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]))
        self.landing_function_name = landing.name
        self.batch_function_name = batch.name
        self.landing_function_arns = (landing.arn, batch.arn)
        self.dead_letter_queue_url = dlq.url
        self.dead_letter_queue_name = dlq.name
        self.register_outputs({"landing_function": self.landing_function_name,
                               "batch_function": self.batch_function_name, "dlq_url": self.dead_letter_queue_url})
