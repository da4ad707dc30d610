"""Chaos on AWS: AWS Fault Injection Service (FIS) experiment templates for the faults FIS can inject in the
stack's own resources, their experiment role and their log group (docs/chaos_testing.md, "On AWS").

One template per fault, so each runs on its own (``aws fis start-experiment --experiment-template-id``):

- ``dashboard-stop-task``: ``aws:ecs:stop-task`` on one task of the dashboard's ECS service; the service
  starts a replacement and the load balancer's sticky sessions move to it;
- ``subnet-disrupt``: ``aws:network:disrupt-connectivity`` (scope ``all``) on one private subnet chosen at
  random: one Availability Zone's Lambdas, Glue workers, tasks and interface endpoints lose the network
  while the other zones carry on;
- ``landing-invocation-error`` and ``landing-invocation-delay`` (only with ``chaos.lambdaExtensionLayerArn``):
  ``aws:lambda:invocation-error`` (the handler runs, then the invocation is marked failed, so the event source
  mapping retries a batch whose writes already happened) and ``aws:lambda:invocation-add-delay`` on the two
  landing functions. FIS injects Lambda faults only through its extension (a layer AWS publishes per region),
  which the functions carry with its wrapper and an S3 configuration location that FIS writes and the extension
  reads (FIS User Guide, "Use the AWS FIS aws:lambda:function actions"); ``lambda_extension`` builds what the
  functions get, ``infra.components.ingestion`` applies it.

Every template stops when the data-freshness alarm goes to ALARM (a stop condition of source
``aws:cloudwatch:alarm``: FIS stops the experiment and the actions end), fails when a target resolves to
nothing, and logs each experiment's steps to its CloudWatch log group (log schema version 2, FIS User Guide,
"Experiment logging"). Action ids, target resource types and each action's permissions follow the FIS User
Guide, "AWS FIS Actions reference" (``ACTIONS`` maps each action used to its target resource type;
tests/infra/test_fis.py checks the templates against the documentation, which it keeps as data of its own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.settings import ChaosSettings

LOG_SCHEMA_VERSION: Final = 2
CONFIG_PREFIX: Final = "fis-configs/"
"""Where FIS writes, and the Lambda extension reads, the fault configuration (a prefix of the artifacts bucket)."""
EXTENSION_WRAPPER: Final = "/opt/aws-fis/bootstrap"
# The extension's own variables (FIS User Guide, "Use the AWS FIS aws:lambda:function actions"): the wrapper
# script Lambda runs the runtime through, and the S3 location (an S3 ARN ending in "/") it reads faults from.
EXEC_WRAPPER_VARIABLE: Final = "AWS_LAMBDA_EXEC_WRAPPER"
CONFIGURATION_LOCATION_VARIABLE: Final = "AWS_FIS_CONFIGURATION_LOCATION"
INVOCATION_ERROR_PERCENT: Final = 50  # half the landing invocations fail: retries and successes interleave
ADDED_DELAY_MS: Final = 3000  # under the landing function's timeout: slower batches, no timeouts

ACTIONS: Final[Mapping[str, str]] = {
    # action id -> the target resource type it acts on (FIS User Guide, "AWS FIS Actions reference")
    "aws:ecs:stop-task": "aws:ecs:task",
    "aws:network:disrupt-connectivity": "aws:ec2:subnet",
    "aws:lambda:invocation-error": "aws:lambda:function",
    "aws:lambda:invocation-add-delay": "aws:lambda:function",
}
STOP_CONDITION_SOURCE: Final = "aws:cloudwatch:alarm"


@dataclass(frozen=True, slots=True)
class LambdaExtension:
    """What a function carries for FIS's Lambda actions: the extension layer, its two variables, and read
    access to the configuration location."""

    layer_arn: str
    bucket_arn: pulumi.Input[str]

    @property
    def location(self) -> pulumi.Output[str]:
        """``arn:aws:s3:::<bucket>/fis-configs/``: the S3 ARN form the extension takes."""
        return pulumi.Output.concat(self.bucket_arn, "/", CONFIG_PREFIX)

    def environment(self) -> dict[str, pulumi.Input[str]]:
        return {EXEC_WRAPPER_VARIABLE: EXTENSION_WRAPPER, CONFIGURATION_LOCATION_VARIABLE: self.location}

    def statements(self) -> list[iam.Statement]:
        """The extension lists and reads the configuration prefix only (the FIS User Guide's read policy for
        the Lambda extension)."""
        return [iam.allow(["s3:ListBucket"], [self.bucket_arn], sid="FisConfigList",
                          conditions={"StringLike": {"s3:prefix": f"{CONFIG_PREFIX}*"}}),
                iam.allow(["s3:GetObject"], [pulumi.Output.concat(self.location, "*")], sid="FisConfigRead")]


def lambda_extension(settings: ChaosSettings, bucket_arn: pulumi.Input[str]) -> LambdaExtension | None:
    """The extension the landing functions carry, or None when the stack asks for no Lambda faults."""
    if not (settings.fis and settings.lambda_extension_layer_arn):
        return None
    return LambdaExtension(settings.lambda_extension_layer_arn, bucket_arn)


@dataclass(frozen=True, slots=True)
class ChaosArgs:
    base_name: str
    settings: ChaosSettings
    log_retention_days: int
    stop_alarm_arn: pulumi.Input[str]  # the data-freshness alarm
    cluster_name: pulumi.Input[str]  # the dashboard's ECS cluster and service
    service_name: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]  # the artifacts bucket's key (FIS writes the Lambda fault configuration)
    landing_function_arns: Sequence[pulumi.Input[str]] = ()
    extension: LambdaExtension | None = None


def stack_arn(anchor: pulumi.Input[str], service: str, resource: pulumi.Input[str]) -> pulumi.Output[str]:
    """An ARN of ``service`` in the partition, region and account of ``anchor`` (any regional ARN of the stack)
    whose resource part is an output (``stack_arn(log_group_arn, "ec2", Output.concat("subnet/", id))``)."""
    return pulumi.Output.all(iam.arn_like(anchor, service, ""), resource).apply(lambda parts: parts[0] + parts[1])


class Chaos(pulumi.ComponentResource):
    template_ids: dict[str, pulumi.Output[str]]  # by fault ("dashboard-stop-task"): start-experiment's argument
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ChaosArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:chaos:Chaos", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # A /aws/vendedlogs/ name: FIS delivers experiment logs as vended logs, and CloudWatch Logs keeps the log
        # group resource policy those need small for names under this prefix (CloudWatch Logs User Guide,
        # "Enabling logging from AWS services", "Logs sent to CloudWatch Logs").
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/vendedlogs/fis/{args.base_name}",
                                       retention_in_days=args.log_retention_days, opts=child)
        # The log group resource policy of "Logs sent to CloudWatch Logs" (CloudWatch Logs User Guide): the log
        # delivery service writes the streams of this group, for deliveries of this account only.
        delivery = aws.cloudwatch.LogResourcePolicy(
            f"{name}-log-delivery", policy_name=f"{args.base_name}-fis-log-delivery",
            policy_document=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "FisExperimentLogs", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": pulumi.Output.concat(logs.arn, ":log-stream:*"),
                "Condition": iam.confused_deputy(iam.account_of(logs.arn), iam.arn_like(logs.arn, "logs", "*"))}]}),
            opts=child)
        minutes = f"PT{args.settings.action_minutes}M"
        cluster_arn = stack_arn(logs.arn, "ecs", pulumi.Output.concat("cluster/", args.cluster_name))
        subnet_arns = [stack_arn(logs.arn, "ec2", pulumi.Output.concat("subnet/", subnet))
                       for subnet in args.private_subnet_ids]
        statements = [
            # aws:ecs:stop-task: ecs:DescribeTasks, ecs:ListTasks, ecs:StopTask, tag:GetResources; the tasks of the
            # dashboard's cluster only (task ARNs name their cluster; ListTasks is bound to it by ecs:cluster).
            iam.allow(["ecs:DescribeTasks", "ecs:StopTask"],
                      [stack_arn(logs.arn, "ecs", pulumi.Output.concat("task/", args.cluster_name, "/*"))],
                      sid="DashboardTasks"),
            iam.allow(["ecs:ListTasks"], [stack_arn(logs.arn, "ecs", pulumi.Output.concat(
                "container-instance/", args.cluster_name, "/*"))], sid="ListDashboardTasks",
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}}),
            # Target resolution (every action above lists it); it supports no resource-level permissions.
            iam.allow(["tag:GetResources"], ["*"], sid="ResolveTargets"),
            # aws:network:disrupt-connectivity, as AWSFaultInjectionSimulatorNetworkAccess grants it: FIS clones the
            # subnet's network ACL into one tagged managedByFIS=true, adds deny entries, swaps the association,
            # and at the end restores the original association and deletes its clone. Creating and changing
            # ACLs is limited to those FIS tags; associations to this VPC's private subnets.
            iam.allow(["ec2:DescribeManagedPrefixLists", "ec2:DescribeNetworkAcls", "ec2:DescribeSubnets",
                       "ec2:DescribeVpcs"], ["*"], sid="NetworkDescribe"),
            iam.allow(["ec2:CreateNetworkAcl"],
                      [stack_arn(logs.arn, "ec2", pulumi.Output.concat("vpc/", args.vpc_id)),
                       iam.arn_like(logs.arn, "ec2", "network-acl/*")], sid="CloneAcl",
                      conditions={"StringEquals": {"aws:RequestTag/managedByFIS": "true"}}),
            iam.allow(["ec2:CreateTags"], [iam.arn_like(logs.arn, "ec2", "network-acl/*")], sid="TagClonedAcl",
                      conditions={"StringEquals": {"ec2:CreateAction": "CreateNetworkAcl",
                                                   "aws:RequestTag/managedByFIS": "true"}}),
            iam.allow(["ec2:CreateNetworkAclEntry", "ec2:DeleteNetworkAcl"],
                      [iam.arn_like(logs.arn, "ec2", "network-acl/*")], sid="ChangeClonedAcl",
                      conditions={"StringEquals": {"ec2:ResourceTag/managedByFIS": "true"}}),
            iam.allow(["ec2:ReplaceNetworkAclAssociation"],
                      [*subnet_arns, iam.arn_like(logs.arn, "ec2", "network-acl/*")], sid="SwapSubnetAcl"),
            iam.allow(["ec2:GetManagedPrefixListEntries"], [iam.arn_like(logs.arn, "ec2", "prefix-list/*")],
                      sid="PrefixLists"),
            # Experiment logging to CloudWatch Logs (vended logs): FIS creates the delivery with the role, which
            # needs logs:CreateLogDelivery and to read the log group and the resource policies. The policy that
            # lets the delivery write is declared below, so the role needs no logs:PutResourcePolicy (CloudWatch
            # Logs creates that policy only when none grants the delivery, with the creator's permissions).
            iam.allow(["logs:CreateLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies"], ["*"],
                      sid="LogDelivery"),
        ]
        if args.extension is not None:
            # aws:lambda:invocation-*: s3:PutObject, s3:DeleteObject, lambda:GetFunction, tag:GetResources. FIS
            # writes the fault configuration under the location the functions read (encrypted with the bucket's
            # key) and reads each function's configuration location.
            statements += [
                iam.allow(["lambda:GetFunction"], list(args.landing_function_arns), sid="LandingFunctions"),
                iam.allow(["s3:DeleteObject", "s3:PutObject"], [pulumi.Output.concat(args.extension.location, "*")],
                          sid="FaultConfiguration"),
                iam.kms_use(args.kms_key_arn),
            ]
        role = iam.service_role(
            f"{name}-role", ["fis.amazonaws.com"], statements, self, "FIS experiments on this stack",
            # FIS User Guide, "IAM roles for AWS FIS experiments": the trust policy binds the role to experiments
            # of this account (aws:SourceAccount, aws:SourceArn arn:aws:fis:<region>:<account>:experiment/*).
            trust_conditions=iam.confused_deputy(iam.account_of(logs.arn),
                                                 iam.arn_like(logs.arn, "fis", "experiment/*")))
        self.role_arn = role.arn

        def template(fault: str, description: str, action: aws.fis.ExperimentTemplateActionArgsDict,
                     target: aws.fis.ExperimentTemplateTargetArgsDict) -> pulumi.Output[str]:
            created = aws.fis.ExperimentTemplate(
                f"{name}-{fault}", description=description, role_arn=role.arn, actions=[action], targets=[target],
                stop_conditions=[{"source": STOP_CONDITION_SOURCE, "value": args.stop_alarm_arn}],
                experiment_options={"account_targeting": "single-account", "empty_target_resolution_mode": "fail"},
                # FIS takes the log group's ARN with its ":*" suffix (CreateExperimentTemplate, logConfiguration)
                log_configuration={"log_schema_version": LOG_SCHEMA_VERSION, "cloudwatch_logs_configuration": {
                    "log_group_arn": pulumi.Output.concat(logs.arn, ":*")}},
                tags={"Name": f"{args.base_name}-{fault}"},
                # the role acts only once its permissions exist
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*role.ready, delivery]))
            return created.id

        self.template_ids = {
            "dashboard-stop-task": template(
                "dashboard-stop-task", f"{args.base_name}: stop one dashboard task",
                {"name": "stop-task", "action_id": "aws:ecs:stop-task", "target": {"key": "Tasks", "value": "tasks"}},
                # FIS User Guide, "Targets", resource parameters: aws:ecs:task by cluster and service name
                {"name": "tasks", "resource_type": ACTIONS["aws:ecs:stop-task"], "selection_mode": "COUNT(1)",
                 "parameters": {"cluster": args.cluster_name, "service": args.service_name}}),
            "subnet-disrupt": template(
                "subnet-disrupt", f"{args.base_name}: cut one private subnet off the network",
                {"name": "disrupt", "action_id": "aws:network:disrupt-connectivity",
                 "parameters": [{"key": "scope", "value": "all"}, {"key": "duration", "value": minutes}],
                 "target": {"key": "Subnets", "value": "subnets"}},
                {"name": "subnets", "resource_type": ACTIONS["aws:network:disrupt-connectivity"],
                 "selection_mode": "COUNT(1)", "resource_arns": subnet_arns}),
        }
        if args.extension is not None:
            functions: aws.fis.ExperimentTemplateTargetArgsDict = {
                "name": "landing", "resource_type": ACTIONS["aws:lambda:invocation-error"], "selection_mode": "ALL",
                "resource_arns": list(args.landing_function_arns)}
            self.template_ids["landing-invocation-error"] = template(
                "landing-invocation-error", f"{args.base_name}: fail landing invocations after they ran",
                {"name": "invocation-error", "action_id": "aws:lambda:invocation-error",
                 "parameters": [{"key": "duration", "value": minutes},
                                {"key": "invocationPercentage", "value": str(INVOCATION_ERROR_PERCENT)},
                                {"key": "preventExecution", "value": "false"}],
                 "target": {"key": "Functions", "value": "landing"}}, functions)
            self.template_ids["landing-invocation-delay"] = template(
                "landing-invocation-delay", f"{args.base_name}: delay landing invocations",
                {"name": "invocation-delay", "action_id": "aws:lambda:invocation-add-delay",
                 "parameters": [{"key": "duration", "value": minutes},
                                {"key": "startupDelayMilliseconds", "value": str(ADDED_DELAY_MS)}],
                 "target": {"key": "Functions", "value": "landing"}}, functions)
        self.register_outputs({"template_ids": self.template_ids, "role_arn": self.role_arn})
