"""Serving: the DynamoDB metrics and alerts tables (key design of ``dataforge.serving``) and the
Athena workgroup with an enforced, encrypted result location and a bytes-scanned cutoff."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from dataforge import serving
from dataforge.lake import SupportBucket
from infra.refs import LakeRefs, Named, ServingRefs
from infra.settings import ServingSettings


@dataclass(frozen=True, slots=True)
class ServingArgs:
    base_name: str
    settings: ServingSettings
    lake: LakeRefs  # the key, and the Athena results bucket
    protect: bool = False


class Serving(pulumi.ComponentResource):
    refs: ServingRefs

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:serving:Serving", name, None, opts)
        protected = pulumi.ResourceOptions(parent=self, protect=args.protect)
        kms_key_arn = args.lake.kms_key_arn
        keys: list[aws.dynamodb.TableAttributeArgsDict] = [{"name": serving.PK, "type": "S"},
                                                           {"name": serving.SK, "type": "S"}]

        def table(role: str, attributes: list[aws.dynamodb.TableAttributeArgsDict],
                  indexes: list[aws.dynamodb.TableGlobalSecondaryIndexArgsDict] | None = None) -> aws.dynamodb.Table:
            return aws.dynamodb.Table(
                f"{name}-{role}", name=f"{args.base_name}-{role}", billing_mode="PAY_PER_REQUEST",
                hash_key=serving.PK, range_key=serving.SK, attributes=attributes, global_secondary_indexes=indexes,
                point_in_time_recovery={"enabled": args.settings.point_in_time_recovery},
                deletion_protection_enabled=args.settings.deletion_protection,
                server_side_encryption={"enabled": True, "kms_key_arn": kms_key_arn},
                # Speed-path items and id sets carry ``expires_at`` (ADR 0014); other items have none
                # and never expire (DynamoDB deletes only items whose TTL attribute is an epoch number).
                ttl={"attribute_name": serving.TTL_ATTR, "enabled": True}, opts=protected)

        metrics = table("metrics", keys)
        alerts = table("alerts", [*keys, {"name": serving.ALERT_STATUS_ATTR, "type": "S"},
                                  {"name": serving.ALERT_RAISED_AT_ATTR, "type": "S"}],
                       [{"name": serving.ALERTS_STATUS_INDEX, "hash_key": serving.ALERT_STATUS_ATTR,
                         "range_key": serving.ALERT_RAISED_AT_ATTR, "projection_type": "ALL"}])
        workgroup = aws.athena.Workgroup(
            f"{name}-workgroup", name=f"{args.base_name}-analytics", state="ENABLED", force_destroy=False,
            configuration={
                "enforce_workgroup_configuration": True, "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.settings.athena_bytes_scanned_cutoff,
                "engine_version": {"selected_engine_version": "Athena engine version 3"},
                "result_configuration": {
                    "output_location": pulumi.Output.concat(
                        "s3://", args.lake[SupportBucket.ATHENA_RESULTS].name, "/results/"),
                    "encryption_configuration": {"encryption_option": "SSE_KMS", "kms_key_arn": kms_key_arn},
                },
            }, opts=pulumi.ResourceOptions(parent=self))
        self.refs = ServingRefs(metrics=Named(metrics.name, metrics.arn), alerts=Named(alerts.name, alerts.arn),
                                workgroup=Named(workgroup.name, workgroup.arn))
        self.register_outputs({"metrics_table": metrics.name, "alerts_table": alerts.name,
                               "workgroup": workgroup.name})
