"""Streaming: MSK (serverless or provisioned, per config) with IAM auth over TLS, the declared
topics. No Kafka Connect connector is declared (docs/adr/0013-no-kafka-connect-yet.md).

Topics: ``aws.msk.Topic`` calls MSK's topic API, which AWS documents for provisioned clusters only, so it
is declared on ``provisioned`` alone. On ``serverless`` the kafka-topics function (``lambdas/kafka_topics``,
in the VPC, IAM auth) creates or updates the topic through the Kafka admin API, run by an
``aws.lambda_.Invocation`` with the topic's spec as its input; only the topic configs MSK Serverless
accepts are declared there ("Configuration properties for MSK Serverless clusters": no
``min.insync.replicas``). Either way ``StreamingRefs.topic_name`` carries the resource that creates the
topic, so whatever names the topic (the landing function's event source mapping) is created after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge import envvars
from dataforge.settings import KAFKA_AUTH_IAM
from infra import iam
from infra.artifacts import Artifact
from infra.components.functions import RUNTIME, Function, FunctionArgs
from infra.errors import InfraError
from infra.refs import NetworkRefs, StreamingRefs
from infra.settings import StreamingSettings

TOPICS_HANDLER: Final = "lambdas.kafka_topics.handler.handler"
TOPICS_TIMEOUT_SECONDS: Final = 120  # connect, describe, create and wait for the partitions' leaders


@dataclass(frozen=True, slots=True)
class TopicsFunctionArgs:
    """What the kafka-topics function is built from: its zip, its own layer (the Kafka admin client and the
    MSK IAM signer), the core layer, the platform's environment."""

    code: Artifact
    layer: Artifact
    core_layer_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]


@dataclass(frozen=True, slots=True)
class StreamingArgs:
    base_name: str
    settings: StreamingSettings
    network: NetworkRefs
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool = False
    topics_function: TopicsFunctionArgs | None = None  # required on serverless


class Streaming(pulumi.ComponentResource):
    refs: StreamingRefs

    def __init__(self, name: str, args: StreamingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:streaming:Streaming", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kafka, subnet_ids = args.settings, list(args.network.private_subnet_ids)
        cluster_name = f"{args.base_name}-kafka"
        cluster: aws.msk.ServerlessCluster | aws.msk.Cluster
        if kafka.mode == "serverless":
            cluster = aws.msk.ServerlessCluster(
                f"{name}-cluster", cluster_name=cluster_name,
                client_authentication={"sasl": {"iam": {"enabled": True}}},
                vpc_configs=[{"subnet_ids": subnet_ids, "security_group_ids": [args.network.kafka_sg_id]}],
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        else:
            broker_logs = aws.cloudwatch.LogGroup(f"{name}-broker-logs", name=f"/aws/msk/{cluster_name}",
                                                  retention_in_days=args.log_retention_days, opts=child)
            cluster = aws.msk.Cluster(
                f"{name}-cluster", cluster_name=cluster_name, kafka_version=kafka.kafka_version,
                number_of_broker_nodes=kafka.broker_count,
                broker_node_group_info={
                    "instance_type": kafka.broker_instance_type, "client_subnets": subnet_ids,
                    "security_groups": [args.network.kafka_sg_id],
                    "storage_info": {"ebs_storage_info": {"volume_size": kafka.broker_volume_gb}},
                },
                client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
                encryption_info={"encryption_at_rest_kms_key_arn": args.kms_key_arn,
                                 "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True}},
                enhanced_monitoring="PER_TOPIC_PER_PARTITION",
                logging_info={"broker_logs": {"cloudwatch_logs": {"enabled": True,
                                                                   "log_group": broker_logs.name}}},
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        retention = {"retention.ms": str(kafka.retention_hours * 3_600_000)}
        # arn:aws:kafka:<region>:<acct>:cluster/<name>/<uuid> -> topic/<name>/<uuid>/<topic>, group/...
        topic_arn_prefix = cluster.arn.apply(lambda a: a.replace(":cluster/", ":topic/", 1))
        topic_name: pulumi.Output[str]
        if isinstance(cluster, aws.msk.ServerlessCluster):
            if args.topics_function is None:
                raise InfraError("streaming.mode serverless creates its topics with the kafka-topics function: "
                                 "StreamingArgs.topics_function is required")
            invocation = self._topics_invocation(
                name, args, args.topics_function, cluster, pulumi.Output.concat(topic_arn_prefix, "/", kafka.topic),
                {"topics": [{"name": kafka.topic, "partitions": kafka.partitions, "configs": retention}]})
            # The invocation's own input echoed back: known at preview, and it carries the invocation as a
            # dependency of everything that names the topic.
            topic_name = invocation.function_name.apply(lambda _: kafka.topic)
        else:
            topic = aws.msk.Topic(
                f"{name}-topic-{kafka.topic}", cluster_arn=cluster.arn, name=kafka.topic,
                partition_count=kafka.partitions, replication_factor=kafka.replication_factor,
                configs=json.dumps({**retention, "min.insync.replicas": str(min(2, kafka.replication_factor))},
                                   sort_keys=True),
                opts=child)
            topic_name = topic.name
        self.refs = StreamingRefs(
            cluster_arn=cluster.arn, cluster_name=cluster.cluster_name,
            bootstrap_brokers=cluster.bootstrap_brokers_sasl_iam, topic=kafka.topic, topic_name=topic_name,
            topic_arn=pulumi.Output.concat(topic_arn_prefix, "/", topic_name),
            group_arn_prefix=cluster.arn.apply(lambda a: a.replace(":cluster/", ":group/", 1)))
        self.register_outputs({"cluster_arn": cluster.arn, "bootstrap_brokers": cluster.bootstrap_brokers_sasl_iam,
                               "topic": topic_name})

    def _topics_invocation(self, name: str, args: StreamingArgs, spec: TopicsFunctionArgs,
                           cluster: aws.msk.ServerlessCluster, topic_arn: pulumi.Output[str],
                           payload: dict[str, object]) -> aws.lambda_.Invocation:
        """The kafka-topics function (in the VPC's private subnets, in the compute group, which reaches the
        brokers on the IAM port) and the invocation that runs it with ``payload``."""
        function = Function(f"{name}-topics", FunctionArgs(
            function_name=f"{args.base_name}-kafka-topics", handler=TOPICS_HANDLER, code=spec.code,
            layers=[spec.core_layer_arn, self._topics_layer(name, args, spec.layer).arn],
            environment={**spec.environment, envvars.KAFKA_BOOTSTRAP_SERVERS: cluster.bootstrap_brokers_sasl_iam,
                         envvars.KAFKA_AUTH: KAFKA_AUTH_IAM},
            # Apache Kafka APIs for Amazon MSK clusters (IAM actions; "Semantics of IAM authorization policy
            # actions and resources"): Connect and DescribeCluster on the cluster; on the topic, CreateTopic,
            # DescribeTopic, AlterTopic (CreatePartitions) and the topic's dynamic configuration (describe, alter).
            statements=[
                iam.allow(["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], [cluster.arn],
                          sid="KafkaCluster"),
                iam.allow(["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:AlterTopic",
                           "kafka-cluster:DescribeTopicDynamicConfiguration",
                           "kafka-cluster:AlterTopicDynamicConfiguration"], [topic_arn], sid="KafkaTopics"),
            ],
            log_retention_days=args.log_retention_days, kms_key_arn=args.kms_key_arn,
            memory_mb=256, timeout_seconds=TOPICS_TIMEOUT_SECONDS,
            subnet_ids=list(args.network.private_subnet_ids), security_group_ids=[args.network.compute_sg_id],
            description="the stack's Kafka topics on MSK Serverless (Kafka admin API, IAM auth)"),
            opts=pulumi.ResourceOptions(parent=self))
        body = json.dumps(payload, sort_keys=True)
        # CREATE_ONLY: the function runs when the invocation is created or replaced, never on delete (topics
        # outlive a stack's update; MSK deletes them with the cluster). ``triggers`` replaces it, so runs the
        # function again, whenever the spec or the function's code changes (pulumi-aws, aws.lambda_.Invocation:
        # "Map of arbitrary keys and values that, when changed, will trigger a re-invocation").
        return aws.lambda_.Invocation(
            f"{name}-topics-invocation", function_name=function.name, input=body, lifecycle_scope="CREATE_ONLY",
            triggers={"spec": hashlib.sha256(body.encode()).hexdigest(), "code": spec.code.sha256,
                      "layer": spec.layer.sha256},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[function]))

    def _topics_layer(self, name: str, args: StreamingArgs, layer: Artifact) -> aws.lambda_.LayerVersion:
        return aws.lambda_.LayerVersion(
            f"{name}-topics-layer", layer_name=f"{args.base_name}-kafka-topics",
            code=pulumi.FileArchive(str(layer.path)), source_code_hash=layer.base64_sha256,
            compatible_runtimes=[RUNTIME], compatible_architectures=["arm64"],
            description=f"kafka-python + MSK IAM signer {layer.short_hash}", opts=pulumi.ResourceOptions(parent=self))
