"""A Lambda function with its own log group (retention), role (least privilege) and the core layer.

The function depends on its role's inline policy, not only on the role (the role's ARN alone
orders it after the role): Lambda checks at ``CreateFunction`` that a VPC function's role may
create network interfaces, and event source mappings and triggers use the role as soon as the
function exists. pulumi-aws's ``lambda.Function`` example "CloudWatch Logging and Permissions"
does the same with ``depends_on=[<role policy attachment>, <log group>]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.artifacts import Artifact

RUNTIME = "python3.11"
TRACING_MODE = "Active"  # Lambda samples and uploads traces with the execution role (``iam.xray_write``)


@dataclass(frozen=True, slots=True)
class FunctionArgs:
    function_name: str
    handler: str
    code: Artifact
    layers: Sequence[pulumi.Input[str]]
    environment: Mapping[str, pulumi.Input[str]]
    statements: Sequence[iam.Statement]
    log_retention_days: int
    kms_key_arn: pulumi.Input[str]
    memory_mb: int = 512
    timeout_seconds: int = 60
    reserved_concurrency: int = -1
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    description: str = ""
    extra_services: tuple[str, ...] = field(default=())


class Function(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: iam.ServiceRole
    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:functions:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/lambda/{args.function_name}",
                                       retention_in_days=args.log_retention_days, opts=child)
        statements = [iam.logs_write(logs.arn), iam.kms_use(args.kms_key_arn), *args.statements]
        if TRACING_MODE == "Active":
            statements.append(iam.xray_write())
        if args.subnet_ids:
            statements += iam.vpc_network_interfaces(logs.arn)
        # No aws:SourceAccount/aws:SourceArn in the trust policy: the Lambda Developer Guide's
        # execution-role trust policy names only the service principal, and Lambda assumes the
        # role outside any source resource (at CreateFunction, for event source mappings).
        role = self.role = iam.service_role(f"{name}-role", ["lambda.amazonaws.com", *args.extra_services],
                                            statements, self, f"Lambda {args.function_name}")
        vpc: aws.lambda_.FunctionVpcConfigArgsDict | None = (
            {"subnet_ids": list(args.subnet_ids), "security_group_ids": list(args.security_group_ids)}
            if args.subnet_ids else None)
        self.function = aws.lambda_.Function(
            f"{name}-function", name=args.function_name, role=role.arn, runtime=RUNTIME, handler=args.handler,
            architectures=["arm64"], code=pulumi.FileArchive(str(args.code.path)),
            source_code_hash=args.code.base64_sha256, layers=list(args.layers), memory_size=args.memory_mb,
            timeout=args.timeout_seconds, reserved_concurrent_executions=args.reserved_concurrency,
            environment={"variables": dict(sorted(args.environment.items()))}, kms_key_arn=args.kms_key_arn,
            vpc_config=vpc, tracing_config={"mode": TRACING_MODE},
            logging_config={"log_format": "JSON", "log_group": logs.name},
            description=args.description,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, *role.ready]))
        self.arn = self.function.arn
        self.name = self.function.name
        self.role_arn = role.arn
        self.register_outputs({"arn": self.arn, "name": self.name})
