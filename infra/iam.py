"""Least-privilege IAM building blocks: one role per function, statements scoped to its resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

Statement = dict[str, Any]


def assume_role_policy(*services: str) -> str:
    return pulumi.Output.json_dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"Service": sorted(services) if len(services) > 1 else services[0]}}],
    })  # type: ignore[return-value]


def allow(actions: Sequence[str], resources: Sequence[pulumi.Input[str]], sid: str | None = None) -> Statement:
    statement: Statement = {"Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}
    if sid:
        statement["Sid"] = sid
    return statement


def document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def s3_read(bucket_arn: pulumi.Input[str], prefix: str = "") -> list[Statement]:
    objects = pulumi.Output.concat(bucket_arn, "/", prefix, "*")
    return [allow(["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]), allow(["s3:GetObject"], [objects])]


def s3_write(bucket_arn: pulumi.Input[str], prefix: str = "", delete: bool = False) -> list[Statement]:
    objects = pulumi.Output.concat(bucket_arn, "/", prefix, "*")
    actions = ["s3:PutObject", "s3:AbortMultipartUpload"] + (["s3:DeleteObject"] if delete else [])
    return [allow(["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]), allow(actions, [objects])]


def kms_use(key_arn: pulumi.Input[str]) -> Statement:
    return allow(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [key_arn])


def logs_write(log_group_arn: pulumi.Input[str]) -> Statement:
    return allow(["logs:CreateLogStream", "logs:PutLogEvents"], [pulumi.Output.concat(log_group_arn, ":*")])


VPC_ENI_ACTIONS = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
                   "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs",
                   "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]


def role(name: str, services: Sequence[str], statements: Sequence[Statement], parent: pulumi.Resource,
         description: str) -> aws.iam.Role:
    """A role for one function, with its own inline policy (``{name}`` and ``{name}-policy``)."""
    result = aws.iam.Role(name, assume_role_policy=assume_role_policy(*services), description=description,
                          opts=pulumi.ResourceOptions(parent=parent))
    aws.iam.RolePolicy(f"{name}-policy", role=result.id, policy=document(statements),
                       opts=pulumi.ResourceOptions(parent=parent))
    return result
