"""Streaming: MSK (serverless or provisioned, per config) with IAM auth over TLS, the declared
topics. No Kafka Connect connector is declared (docs/adr/0013-no-kafka-connect-yet.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.refs import NetworkRefs, StreamingRefs
from infra.settings import StreamingSettings


@dataclass(frozen=True, slots=True)
class StreamingArgs:
    base_name: str
    settings: StreamingSettings
    network: NetworkRefs
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool = False


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
        topic = aws.msk.Topic(
            f"{name}-topic-{kafka.topic}", cluster_arn=cluster.arn, name=kafka.topic,
            partition_count=kafka.partitions, replication_factor=kafka.replication_factor,
            configs=json.dumps({"retention.ms": str(kafka.retention_hours * 3_600_000),
                                "min.insync.replicas": str(min(2, kafka.replication_factor))}, sort_keys=True),
            opts=child)
        # arn:aws:kafka:<region>:<acct>:cluster/<name>/<uuid> -> topic/<name>/<uuid>/<topic>, group/...
        self.refs = StreamingRefs(
            cluster_arn=cluster.arn, cluster_name=cluster.cluster_name,
            bootstrap_brokers=cluster.bootstrap_brokers_sasl_iam, topic=kafka.topic, topic_name=topic.name,
            topic_arn=pulumi.Output.concat(cluster.arn.apply(lambda a: a.replace(":cluster/", ":topic/", 1)), "/",
                                           topic.name),
            group_arn_prefix=cluster.arn.apply(lambda a: a.replace(":cluster/", ":group/", 1)))
        self.register_outputs({"cluster_arn": cluster.arn, "bootstrap_brokers": cluster.bootstrap_brokers_sasl_iam,
                               "topic": topic.name})
