"""Serving: the DynamoDB metrics and alerts tables (key design of ``dataforge.serving``) and the
Athena workgroup with an enforced, encrypted result location and a bytes-scanned cutoff."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dataforge import serving


@dataclass(frozen=True, slots=True)
class ServingArgs:
    base_name: str
    kms_key_arn: pulumi.Input[str]
    athena_results_bucket: pulumi.Input[str]
    point_in_time_recovery: bool = True
    deletion_protection: bool = True
    bytes_scanned_cutoff: int = 10 * 1024**3
    protect: bool = False


class Serving(pulumi.ComponentResource):
    metrics_table_name: pulumi.Output[str]
    metrics_table_arn: pulumi.Output[str]
    alerts_table_name: pulumi.Output[str]
    alerts_table_arn: pulumi.Output[str]
    workgroup_name: pulumi.Output[str]
    workgroup_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:serving:Serving", name, None, opts)
        protected = pulumi.ResourceOptions(parent=self, protect=args.protect)
        keys: list[aws.dynamodb.TableAttributeArgsDict] = [{"name": serving.PK, "type": "S"},
                                                           {"name": serving.SK, "type": "S"}]

        def table(role: str, attributes: list[aws.dynamodb.TableAttributeArgsDict],
                  indexes: list[aws.dynamodb.TableGlobalSecondaryIndexArgsDict] | None = None) -> aws.dynamodb.Table:
            return aws.dynamodb.Table(
                f"{name}-{role}", name=f"{args.base_name}-{role}", billing_mode="PAY_PER_REQUEST",
                hash_key=serving.PK, range_key=serving.SK, attributes=attributes, global_secondary_indexes=indexes,
                point_in_time_recovery={"enabled": args.point_in_time_recovery},
                deletion_protection_enabled=args.deletion_protection,
                server_side_encryption={"enabled": True, "kms_key_arn": args.kms_key_arn}, opts=protected)

        metrics = table("metrics", keys)
        alerts = table("alerts", [*keys, {"name": serving.ALERT_STATUS_ATTR, "type": "S"},
                                  {"name": serving.ALERT_RAISED_AT_ATTR, "type": "S"}],
                       [{"name": serving.ALERTS_STATUS_INDEX, "hash_key": serving.ALERT_STATUS_ATTR,
                         "range_key": serving.ALERT_RAISED_AT_ATTR, "projection_type": "ALL"}])
        workgroup = aws.athena.Workgroup(
            f"{name}-workgroup", name=f"{args.base_name}-analytics", state="ENABLED", force_destroy=False,
            configuration={
                "enforce_workgroup_configuration": True, "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.bytes_scanned_cutoff,
                "engine_version": {"selected_engine_version": "Athena engine version 3"},
                "result_configuration": {
                    "output_location": pulumi.Output.concat("s3://", args.athena_results_bucket, "/results/"),
                    "encryption_configuration": {"encryption_option": "SSE_KMS", "kms_key_arn": args.kms_key_arn},
                },
            }, opts=pulumi.ResourceOptions(parent=self))
        self.metrics_table_name = metrics.name
        self.metrics_table_arn = metrics.arn
        self.alerts_table_name = alerts.name
        self.alerts_table_arn = alerts.arn
        self.workgroup_name = workgroup.name
        self.workgroup_arn = workgroup.arn
        self.register_outputs({"metrics_table": self.metrics_table_name, "alerts_table": self.alerts_table_name,
                               "workgroup": self.workgroup_name})
