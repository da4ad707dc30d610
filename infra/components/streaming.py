"""Streaming: MSK (serverless or provisioned, per config) with IAM auth over TLS, the declared
topics, and MSK Connect connectors whose configs are kept as files under ``infra/connectors/``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra import iam


@dataclass(frozen=True, slots=True)
class StreamingArgs:
    base_name: str
    mode: str  # serverless | provisioned
    subnet_ids: list[pulumi.Output[str]]
    kafka_sg_id: pulumi.Input[str]
    compute_sg_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    topic: str
    partitions: int
    replication_factor: int
    retention_hours: int
    kafka_version: str = "3.6.0"
    broker_count: int = 2
    broker_instance_type: str = "kafka.m7g.large"
    broker_volume_gb: int = 100
    log_retention_days: int = 30
    connectors: tuple[str, ...] = ()
    connector_dir: Path | None = None
    connector_plugin_arn: str = ""
    protect: bool = False


class Streaming(pulumi.ComponentResource):
    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    bootstrap_brokers: pulumi.Output[str]
    topic_name: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    group_arn_prefix: pulumi.Output[str]

    def __init__(self, name: str, args: StreamingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:streaming:Streaming", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = f"{args.base_name}-kafka"
        cluster: aws.msk.ServerlessCluster | aws.msk.Cluster
        if args.mode == "serverless":
            cluster = aws.msk.ServerlessCluster(
                f"{name}-cluster", cluster_name=cluster_name,
                client_authentication={"sasl": {"iam": {"enabled": True}}},
                vpc_configs=[{"subnet_ids": args.subnet_ids, "security_group_ids": [args.kafka_sg_id]}],
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        else:
            broker_logs = aws.cloudwatch.LogGroup(f"{name}-broker-logs", name=f"/aws/msk/{cluster_name}",
                                                  retention_in_days=args.log_retention_days, opts=child)
            cluster = aws.msk.Cluster(
                f"{name}-cluster", cluster_name=cluster_name, kafka_version=args.kafka_version,
                number_of_broker_nodes=args.broker_count,
                broker_node_group_info={
                    "instance_type": args.broker_instance_type, "client_subnets": args.subnet_ids,
                    "security_groups": [args.kafka_sg_id],
                    "storage_info": {"ebs_storage_info": {"volume_size": args.broker_volume_gb}},
                },
                client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
                encryption_info={"encryption_at_rest_kms_key_arn": args.kms_key_arn,
                                 "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True}},
                enhanced_monitoring="PER_TOPIC_PER_PARTITION",
                logging_info={"broker_logs": {"cloudwatch_logs": {"enabled": True,
                                                                   "log_group": broker_logs.name}}},
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        topic = aws.msk.Topic(
            f"{name}-topic-{args.topic}", cluster_arn=cluster.arn, name=args.topic,
            partition_count=args.partitions, replication_factor=args.replication_factor,
            configs=json.dumps({"retention.ms": str(args.retention_hours * 3_600_000),
                                "min.insync.replicas": str(min(2, args.replication_factor))}, sort_keys=True),
            opts=child)
        self.cluster_arn = cluster.arn
        self.cluster_name = cluster.cluster_name
        self.bootstrap_brokers = cluster.bootstrap_brokers_sasl_iam
        self.topic_name = topic.name
        # arn:aws:kafka:<region>:<acct>:cluster/<name>/<uuid> -> topic/<name>/<uuid>/<topic>, group/...
        self.topic_arn = pulumi.Output.concat(cluster.arn.apply(lambda a: a.replace(":cluster/", ":topic/", 1)),
                                              "/", topic.name)
        self.group_arn_prefix = cluster.arn.apply(lambda a: a.replace(":cluster/", ":group/", 1))
        for connector in args.connectors:
            self._connector(name, connector, args)
        self.register_outputs({"cluster_arn": self.cluster_arn, "bootstrap_brokers": self.bootstrap_brokers,
                               "topic": self.topic_name})

    def _connector(self, name: str, connector: str, args: StreamingArgs) -> None:
        """An MSK Connect connector from ``infra/connectors/<connector>.json`` (its config map)."""
        directory = args.connector_dir or Path(__file__).resolve().parents[1] / "connectors"
        config: dict[str, str] = json.loads((directory / f"{connector}.json").read_text())
        child = pulumi.ResourceOptions(parent=self)
        logs = aws.cloudwatch.LogGroup(f"{name}-connector-{connector}-logs",
                                       name=f"/aws/mskconnect/{args.base_name}-{connector}",
                                       retention_in_days=args.log_retention_days, opts=child)
        role = iam.role(f"{name}-connector-{connector}-role", ["kafkaconnect.amazonaws.com"], [
            iam.allow(["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], [self.cluster_arn]),
            iam.allow(["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData", "kafka-cluster:CreateTopic"],
                      [pulumi.Output.concat(self.cluster_arn.apply(lambda a: a.replace(":cluster/", ":topic/", 1)),
                                            "/*")]),
            iam.logs_write(logs.arn),
        ], self, f"MSK Connect connector {connector}")
        aws.mskconnect.Connector(
            f"{name}-connector-{connector}", name=f"{args.base_name}-{connector}", kafkaconnect_version="2.7.1",
            connector_configuration=dict(sorted(config.items())),
            capacity={"autoscaling": {"min_worker_count": 1, "max_worker_count": 2, "mcu_count": 1,
                                      "scale_in_policy": {"cpu_utilization_percentage": 20},
                                      "scale_out_policy": {"cpu_utilization_percentage": 80}}},
            kafka_cluster={"apache_kafka_cluster": {"bootstrap_servers": self.bootstrap_brokers,
                                                    "vpc": {"security_groups": [args.compute_sg_id],
                                                            "subnets": args.subnet_ids}}},
            kafka_cluster_client_authentication={"authentication_type": "IAM"},
            kafka_cluster_encryption_in_transit={"encryption_type": "TLS"},
            plugins=[{"custom_plugin": {"arn": args.connector_plugin_arn, "revision": 1}}],
            service_execution_role_arn=role.arn,
            log_delivery={"worker_log_delivery": {"cloudwatch_logs": {"enabled": True, "log_group": logs.name}}},
            opts=child)
