"""Streaming: MSK (serverless or provisioned, per config) with IAM auth over TLS, the declared
topics, and MSK Connect connectors whose configs are kept as files under ``infra/connectors/``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.refs import NetworkRefs, StreamingRefs
from infra.settings import StreamingSettings


@dataclass(frozen=True, slots=True)
class StreamingArgs:
    base_name: str
    settings: StreamingSettings
    network: NetworkRefs
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    connector_dir: Path | None = None  # the connectors' config files (default: infra/connectors/)
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
        for connector in kafka.connectors:
            self._connector(name, connector, args)
        self.register_outputs({"cluster_arn": cluster.arn, "bootstrap_brokers": cluster.bootstrap_brokers_sasl_iam,
                               "topic": topic.name})

    def _connector(self, name: str, connector: str, args: StreamingArgs) -> None:
        """An MSK Connect connector from ``infra/connectors/<connector>.json`` (its config map)."""
        directory = args.connector_dir or Path(__file__).resolve().parents[1] / "connectors"
        config: dict[str, str] = json.loads((directory / f"{connector}.json").read_text())
        child = pulumi.ResourceOptions(parent=self)
        cluster_arn = self.refs.cluster_arn
        logs = aws.cloudwatch.LogGroup(f"{name}-connector-{connector}-logs",
                                       name=f"/aws/mskconnect/{args.base_name}-{connector}",
                                       retention_in_days=args.log_retention_days, opts=child)
        connector_name = f"{args.base_name}-{connector}"
        groups = cluster_arn.apply(lambda a: a.replace(":cluster/", ":group/", 1))
        # The service execution role as the MSK Developer Guide ("Understand service execution role")
        # gives it: the trust policy binds MSK Connect to this account and this connector (its ARN ends
        # in a UUID assigned at creation, hence the wildcard); the connector reads and writes its
        # topics and its internal topics (__amazon_msk_connect_*) and joins its consumer groups.
        role = iam.service_role(f"{name}-connector-{connector}-role", ["kafkaconnect.amazonaws.com"], [
            iam.allow(["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], [cluster_arn]),
            iam.allow(["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:ReadData",
                       "kafka-cluster:WriteData"],
                      [pulumi.Output.concat(cluster_arn.apply(lambda a: a.replace(":cluster/", ":topic/", 1)),
                                            "/*")]),
            iam.allow(["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                      [pulumi.Output.concat(groups, "/__amazon_msk_connect_*"),
                       pulumi.Output.concat(groups, "/connect-*")]),
            iam.logs_write(logs.arn),
        ], self, f"MSK Connect connector {connector}", trust_conditions=iam.confused_deputy(
            iam.account_of(cluster_arn), iam.arn_like(cluster_arn, "kafkaconnect", f"connector/{connector_name}/*")))
        aws.mskconnect.Connector(
            f"{name}-connector-{connector}", name=connector_name, kafkaconnect_version="2.7.1",
            connector_configuration=dict(sorted(config.items())),
            capacity={"autoscaling": {"min_worker_count": 1, "max_worker_count": 2, "mcu_count": 1,
                                      "scale_in_policy": {"cpu_utilization_percentage": 20},
                                      "scale_out_policy": {"cpu_utilization_percentage": 80}}},
            kafka_cluster={"apache_kafka_cluster": {"bootstrap_servers": self.refs.bootstrap_brokers,
                                                    "vpc": {"security_groups": [args.network.compute_sg_id],
                                                            "subnets": list(args.network.private_subnet_ids)}}},
            kafka_cluster_client_authentication={"authentication_type": "IAM"},
            kafka_cluster_encryption_in_transit={"encryption_type": "TLS"},
            plugins=[{"custom_plugin": {"arn": args.settings.connector_plugin_arn, "revision": 1}}],
            service_execution_role_arn=role.arn,
            log_delivery={"worker_log_delivery": {"cloudwatch_logs": {"enabled": True, "log_group": logs.name}}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=role.ready))
