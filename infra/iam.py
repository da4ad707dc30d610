"""Least-privilege IAM building blocks: one role per function, statements scoped to its resources.

The rules the helpers encode, from the AWS documentation:

- a role trusted by a service principal carries the confused-deputy conditions (``aws:SourceAccount``,
  ``aws:SourceArn``) only where that service documents sending them when it assumes the role
  (``trust_policy``; each caller says which page it follows);
- whatever acts with a role (a Lambda function, a Glue job) depends on the role's
  inline policy as well as on the role (``ServiceRole.ready``): IAM accepts a role before its
  policy exists, and a service that starts using the role at creation would otherwise run
  without its permissions;
- actions that support resource-level permissions get ARNs in the account and region of the stack
  (``arn_like``), the few that support none get ``"*"`` (Service Authorization Reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from infra.errors import InfraError

Statement = dict[str, Any]
Conditions = Mapping[str, Mapping[str, pulumi.Input[str]]]

# Lambda active tracing: the execution role uploads the function's segments to X-Ray. These two
# actions support no resource-level permissions ("Visualize Lambda function invocations using AWS
# X-Ray" in the Lambda Developer Guide; the write half of the AWSXRayDaemonWriteAccess policy).
XRAY_WRITE_ACTIONS: Final = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")

# What a Lambda function attached to a VPC needs to create and remove its network interfaces
# ("Giving Lambda functions access to resources in an Amazon VPC"; AWSLambdaVPCAccessExecutionRole,
# and the Describe* actions of AWSLambdaMSKExecutionRole). The Describe* actions support only "*";
# the others are scoped to the stack's account and region by ``vpc_network_interfaces``.
VPC_DESCRIBE_ACTIONS: Final = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
                               "ec2:DescribeVpcs")
VPC_ENI_ACTIONS: Final = ("ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
                          "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses")
# CreateNetworkInterface needs the interface and the subnet (and the security group it is given);
# the other ENI actions need the interface (Service Authorization Reference, Amazon EC2).
ENI_RESOURCES: Final = ("network-interface/*", "security-group/*", "subnet/*")


def confused_deputy(source_account: pulumi.Input[str],
                    source_arn: pulumi.Input[str] | None = None) -> dict[str, dict[str, pulumi.Input[str]]]:
    """The conditions that bind a service principal to requests made for this account (and, with
    ``source_arn``, for those resources): IAM User Guide, "The confused deputy problem"."""
    conditions: dict[str, dict[str, pulumi.Input[str]]] = {"StringEquals": {"aws:SourceAccount": source_account}}
    if source_arn is not None:
        conditions["ArnLike"] = {"aws:SourceArn": source_arn}
    return conditions


def trust_policy(services: Sequence[str], conditions: Conditions | None = None) -> pulumi.Output[str]:
    """The role's trust policy: ``services`` may assume it, under ``conditions`` when given."""
    statement: Statement = {"Effect": "Allow", "Action": "sts:AssumeRole",
                            "Principal": {"Service": sorted(services) if len(services) > 1 else services[0]}}
    if conditions:
        statement["Condition"] = {op: dict(keys) for op, keys in conditions.items()}
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [statement]})


def allow(actions: Sequence[str], resources: Sequence[pulumi.Input[str]], sid: str | None = None,
          conditions: Conditions | None = None) -> Statement:
    statement: Statement = {"Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}
    if sid:
        statement["Sid"] = sid
    if conditions:
        statement["Condition"] = {op: dict(keys) for op, keys in conditions.items()}
    return statement


def document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def arn_like(arn: pulumi.Input[str], service: str, resource: str) -> pulumi.Output[str]:
    """An ARN of ``service`` in the partition, region and account of ``arn`` (any regional ARN of
    the stack): ``arn_like(log_group_arn, "ec2", "subnet/*")``."""
    def build(value: str) -> str:
        partition, region, account = _arn_parts(value)
        return f"arn:{partition}:{service}:{region}:{account}:{resource}"

    return pulumi.Output.from_input(arn).apply(build)


def account_of(arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The account id in a regional ARN (the stack's own account for the stack's resources)."""
    return pulumi.Output.from_input(arn).apply(lambda value: _arn_parts(value)[2])


def _arn_parts(arn: str) -> tuple[str, str, str]:
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[3] or not parts[4]:
        raise InfraError(f"not a regional ARN with an account: {arn!r}")
    return parts[1], parts[3], parts[4]


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


def xray_write() -> Statement:
    return allow(XRAY_WRITE_ACTIONS, ["*"], sid="XRayTraces")


def vpc_network_interfaces(stack_arn: pulumi.Input[str]) -> list[Statement]:
    """A Lambda function's network interfaces in its VPC: Describe* on "*", the rest on interfaces,
    subnets and security groups of the account and region of ``stack_arn``."""
    return [allow(VPC_DESCRIBE_ACTIONS, ["*"], sid="VpcDescribe"),
            allow(VPC_ENI_ACTIONS, [arn_like(stack_arn, "ec2", r) for r in ENI_RESOURCES],
                  sid="VpcNetworkInterfaces")]


@dataclass(frozen=True, slots=True)
class ServiceRole:
    """A role and its inline policy."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.role.arn

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What a resource acting with the role depends on: the role and its permissions."""
        return [self.role, self.policy]


def service_role(name: str, services: Sequence[str], statements: Sequence[Statement], parent: pulumi.Resource,
                 description: str, trust_conditions: Conditions | None = None) -> ServiceRole:
    """A role for one function or job, with its own inline policy (``{name}`` and
    ``{name}-policy``), trusted by ``services`` under ``trust_conditions``."""
    result = aws.iam.Role(name, assume_role_policy=trust_policy(services, trust_conditions),
                          description=description, opts=pulumi.ResourceOptions(parent=parent))
    policy = aws.iam.RolePolicy(f"{name}-policy", role=result.id, policy=document(statements),
                                opts=pulumi.ResourceOptions(parent=parent))
    return ServiceRole(result, policy)


def role(name: str, services: Sequence[str], statements: Sequence[Statement], parent: pulumi.Resource,
         description: str, trust_conditions: Conditions | None = None) -> aws.iam.Role:
    """``service_role``'s role alone."""
    return service_role(name, services, statements, parent, description, trust_conditions).role
