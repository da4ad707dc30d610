"""The AWS FIS experiment templates (infra/components/chaos.py) against FIS's documented actions: each action id,
its target's resource type and key, its parameters and the permissions it needs; the stop condition on the
data-freshness alarm; targets that are the stack's own resources; the experiment role's least privilege; the
log configuration; and the settings that turn the templates and the Lambda extension on.

The documented facts are kept here as data, apart from the component, so that a template the component gets
wrong fails against the documentation rather than against itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.errors import InfraConfigError
from infra.plan import Rendered, Resource
from infra.plan import engine as plan_engine
from infra.plan.engine import ACCOUNT_ID
from infra.policy.checks import check_all
from infra.settings import StackSettings
from tests.infra import test_iam_lint as iam_lint

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FUNCTION = "aws:lambda/function:Function"


@dataclass(frozen=True)
class Documented:
    resource_type: str
    target_key: str
    parameters: frozenset[str]
    permissions: frozenset[str]


# FIS User Guide, "AWS FIS Actions reference" (docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html):
# resource type, parameters and permissions of each action the stacks use; target keys from "Actions for AWS FIS"
# (an action names its target under the key of its resource type: Tasks, Subnets, Functions).
LAMBDA_PERMISSIONS = frozenset({"s3:PutObject", "s3:DeleteObject", "lambda:GetFunction", "tag:GetResources"})
DOCUMENTED: dict[str, Documented] = {
    "aws:ecs:stop-task": Documented("aws:ecs:task", "Tasks", frozenset(), frozenset(
        {"ecs:DescribeTasks", "ecs:ListTasks", "ecs:StopTask", "tag:GetResources"})),
    "aws:network:disrupt-connectivity": Documented("aws:ec2:subnet", "Subnets", frozenset(
        {"scope", "duration", "prefixListIdentifier"}), frozenset(
        {"ec2:CreateNetworkAcl", "ec2:CreateNetworkAclEntry", "ec2:CreateTags", "ec2:DeleteNetworkAcl",
         "ec2:DescribeManagedPrefixLists", "ec2:DescribeNetworkAcls", "ec2:DescribeSubnets", "ec2:DescribeVpcs",
         "ec2:GetManagedPrefixListEntries", "ec2:ReplaceNetworkAclAssociation"})),
    "aws:lambda:invocation-error": Documented("aws:lambda:function", "Functions", frozenset(
        {"duration", "invocationPercentage", "preventExecution"}), LAMBDA_PERMISSIONS),
    "aws:lambda:invocation-add-delay": Documented("aws:lambda:function", "Functions", frozenset(
        {"duration", "invocationPercentage", "startupDelayMilliseconds"}), LAMBDA_PERMISSIONS),
}
DISRUPT_SCOPES = {"all", "availability-zone", "dynamodb", "prefix-list", "s3", "s3express", "vpc"}
# FIS delivers experiment logs to CloudWatch Logs as vended logs (CloudWatch Logs User Guide, "Logs sent to
# CloudWatch Logs"); the Lambda actions' configuration objects are encrypted with the artifacts bucket's key.
LOGGING_PERMISSIONS = frozenset({"logs:CreateLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies"})
KMS_PERMISSIONS = frozenset({"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"})
# Actions that support no resource-level permissions (Service Authorization Reference): the only ones on "*".
STAR_ONLY = frozenset({"tag:GetResources", "ec2:DescribeManagedPrefixLists", "ec2:DescribeNetworkAcls",
                       "ec2:DescribeSubnets", "ec2:DescribeVpcs", "logs:CreateLogDelivery", "logs:DescribeLogGroups",
                       "logs:DescribeResourcePolicies"})
DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?$")
LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:aws-fis-extension-arm64:9"
WITH_EXTENSION = {"dataforge:chaos": {"fis": True, "lambdaExtensionLayerArn": LAYER}}


@pytest.fixture(scope="module")
def with_extension(source_snapshot: Path) -> Rendered:
    """dev with the FIS Lambda extension configured: the Lambda templates and the functions' extension."""
    return plan_engine.render("dev", source_snapshot, overrides=WITH_EXTENSION)


def templates(r: Rendered) -> list[Resource]:
    return r.of_type(TEMPLATE)


def role_policy(r: Rendered, template: Resource) -> dict[str, Any]:
    role_name = str(template.inputs["roleArn"]).rsplit("/", 1)[-1]
    policy = r.by_name(f"{role_name}-policy")
    assert policy.type == ROLE_POLICY
    document: dict[str, Any] = json.loads(policy.inputs["policy"])
    return document


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(policy: dict[str, Any]) -> set[str]:
    return {str(a) for s in policy["Statement"] if s["Effect"] == "Allow" for a in _list(s["Action"])}


def test_dev_and_staging_declare_templates_and_prod_none(stacks: dict[str, Rendered]) -> None:
    assert {t.name for t in templates(stacks["dev"])} == {"chaos-dashboard-stop-task", "chaos-subnet-disrupt"}
    assert len(templates(stacks["staging"])) == 2
    assert templates(stacks["prod"]) == []
    assert "fis_experiment_templates" not in stacks["prod"].outputs
    # `aws fis start-experiment --experiment-template-id` takes the ids the stack exports
    assert set(stacks["dev"].outputs["fis_experiment_templates"]) == {"dashboard-stop-task", "subnet-disrupt"}


def every_template(stacks: dict[str, Rendered], with_extension: Rendered) -> list[tuple[Rendered, Resource]]:
    found = [(r, t) for r in (*stacks.values(), with_extension) for t in templates(r)]
    assert {t.inputs["actions"][0]["actionId"] for _, t in found} == set(DOCUMENTED)
    return found


def test_actions_and_targets_are_fis_documented(stacks: dict[str, Rendered], with_extension: Rendered) -> None:
    for r, template in every_template(stacks, with_extension):
        targets = {t["name"]: t for t in template.inputs["targets"]}
        for action in template.inputs["actions"]:
            documented = DOCUMENTED.get(action["actionId"])
            assert documented is not None, (r.stack, template.name, action["actionId"])
            assert action["target"]["key"] == documented.target_key, (template.name, action["target"])
            target = targets[action["target"]["value"]]
            assert target["resourceType"] == documented.resource_type, (template.name, target)
            parameters = {p["key"]: p["value"] for p in action.get("parameters", [])}
            assert set(parameters) <= documented.parameters, (template.name, parameters)
            if "duration" in parameters:
                match = DURATION.fullmatch(parameters["duration"])
                assert match is not None, parameters
                minutes = int(match[1] or 0) * 60 + int(match[2] or 0)
                assert 1 <= minutes <= 12 * 60, parameters  # FIS: from one minute to 12 hours
            if action["actionId"] == "aws:network:disrupt-connectivity":
                assert parameters["scope"] in DISRUPT_SCOPES
        assert template.inputs["experimentOptions"] == {"accountTargeting": "single-account",
                                                        "emptyTargetResolutionMode": "fail"}


def test_every_template_stops_on_the_freshness_alarm(stacks: dict[str, Rendered],
                                                     with_extension: Rendered) -> None:
    for r, template in every_template(stacks, with_extension):
        alarm = r.by_name("observability-data-freshness")
        assert alarm.type == ALARM
        arn = f"arn:aws:cloudwatch:{r.outputs['region']}:{ACCOUNT_ID}:alarm:{alarm.inputs['name']}"
        assert template.inputs["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": arn}], template.name


def test_targets_are_the_stacks_own_resources(stacks: dict[str, Rendered], with_extension: Rendered) -> None:
    for r, template in every_template(stacks, with_extension):
        region = r.outputs["region"]
        for target in template.inputs["targets"]:
            assert "resourceTags" not in target, (template.name, target)
            assert "filters" not in target, (template.name, target)
            arns = target.get("resourceArns", [])
            assert all("*" not in arn for arn in arns), (template.name, arns)
            if target["resourceType"] == "aws:ec2:subnet":
                private = {f"arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/{s.name}-id"
                           for s in r.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
                assert set(arns) == private, (template.name, arns)
                assert target["selectionMode"] == "COUNT(1)", template.name
            elif target["resourceType"] == "aws:ecs:task":
                assert target["parameters"] == {"cluster": r.by_name("dashboard-cluster").inputs["name"],
                                                "service": r.by_name("dashboard-service").inputs["name"]}
                assert target["selectionMode"] == "COUNT(1)"
            else:
                landing = {f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{r.by_name(n).inputs['name']}"
                           for n in ("ingestion-msk-landing-function", "ingestion-batch-landing-function")}
                assert set(arns) == landing, (template.name, arns)


def test_the_role_grants_what_the_actions_document_and_no_more(stacks: dict[str, Rendered],
                                                               with_extension: Rendered) -> None:
    for r, template in every_template(stacks, with_extension):
        policy = role_policy(r, template)
        actions = {t.inputs["actions"][0]["actionId"] for t in templates(r)}
        needed = set().union(*(DOCUMENTED[a].permissions for a in actions))
        allowed = needed | LOGGING_PERMISSIONS | (KMS_PERMISSIONS if needed >= LAMBDA_PERMISSIONS else set())
        assert needed | LOGGING_PERMISSIONS <= granted(policy), (r.stack, needed - granted(policy))
        assert granted(policy) <= allowed, (r.stack, granted(policy) - allowed)
        region = r.outputs["region"]
        for statement in policy["Statement"]:
            for resource in _list(statement["Resource"]):
                if resource == "*":
                    assert set(_list(statement["Action"])) <= STAR_ONLY, statement
                elif not resource.startswith("arn:aws:s3:::"):  # bucket ARNs name no region or account
                    assert re.match(rf"^arn:aws:[a-z0-9-]+:{region}:{ACCOUNT_ID}:", resource), statement


def test_the_network_acl_changes_are_limited_to_fis_clones(stacks: dict[str, Rendered]) -> None:
    policy = role_policy(stacks["dev"], stacks["dev"].by_name("chaos-subnet-disrupt"))
    by_action = {a: s for s in policy["Statement"] for a in _list(s["Action"])}
    for action in ("ec2:CreateNetworkAclEntry", "ec2:DeleteNetworkAcl"):
        assert by_action[action]["Condition"] == {"StringEquals": {"ec2:ResourceTag/managedByFIS": "true"}}
    assert by_action["ec2:CreateNetworkAcl"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/managedByFIS": "true"}}


def test_experiments_log_to_a_log_group_with_retention(stacks: dict[str, Rendered]) -> None:
    for r in stacks.values():
        for template in templates(r):
            config = template.inputs["logConfiguration"]
            assert config["logSchemaVersion"] == 2
            group = r.by_name("chaos-logs")
            assert config["cloudwatchLogsConfiguration"]["logGroupArn"] == (
                f"arn:aws:logs:{r.outputs['region']}:{ACCOUNT_ID}:log-group:{group.inputs['name']}:*")
            assert group.inputs["retentionInDays"] > 0
            delivery = json.loads(r.by_name("chaos-log-delivery").inputs["policyDocument"])["Statement"]
            assert [s["Principal"] for s in delivery] == [{"Service": "delivery.logs.amazonaws.com"}]
            assert delivery[0]["Resource"].startswith(f"arn:aws:logs:{r.outputs['region']}:{ACCOUNT_ID}:log-group:"
                                                      f"{group.inputs['name']}:")


def test_without_the_extension_the_functions_are_untouched(stacks: dict[str, Rendered]) -> None:
    for r in stacks.values():
        for function in r.of_type(FUNCTION):
            assert "AWS_LAMBDA_EXEC_WRAPPER" not in function.inputs["environment"]["variables"], function.name
            # the stack's own layers only (rendered as layerversion/...), no AWS-published one
            assert not any(":layer:" in layer for layer in function.inputs["layers"]), function.name


def test_the_extension_reaches_both_landing_functions(with_extension: Rendered) -> None:
    """FIS User Guide, "Use the AWS FIS aws:lambda:function actions": the layer, the wrapper, the S3 location
    (an S3 ARN ending in "/") that FIS writes and the function's role may list and read."""
    bucket = with_extension.by_name("lake-artifacts-bucket").inputs["bucket"]
    location = f"arn:aws:s3:::{bucket}/fis-configs/"
    changed = []
    for function in with_extension.of_type(FUNCTION):
        variables = function.inputs["environment"]["variables"]
        if "AWS_LAMBDA_EXEC_WRAPPER" not in variables:
            continue
        changed.append(function.name)
        assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/aws-fis/bootstrap"
        assert variables["AWS_FIS_CONFIGURATION_LOCATION"] == location
        assert function.inputs["layers"][-1] == LAYER
        role_policy_doc = json.loads(with_extension.by_name(
            function.name.replace("-function", "-role-policy")).inputs["policy"])
        reads = {s.get("Sid"): s for s in role_policy_doc["Statement"]}
        assert reads["FisConfigRead"]["Resource"] == [f"{location}*"]
        assert reads["FisConfigList"]["Condition"] == {"StringLike": {"s3:prefix": "fis-configs/*"}}
    assert sorted(changed) == ["ingestion-batch-landing-function", "ingestion-msk-landing-function"]
    writes = role_policy(with_extension, with_extension.by_name("chaos-landing-invocation-error"))
    assert {"Sid": "FaultConfiguration", "Effect": "Allow", "Action": ["s3:DeleteObject", "s3:PutObject"],
            "Resource": [f"{location}*"]} in writes["Statement"]


def test_the_policy_pack_passes_with_the_extension(with_extension: Rendered) -> None:
    assert check_all(with_extension.stack, with_extension.resources) == []


def test_the_extensions_policies_lint_clean(with_extension: Rendered) -> None:
    """tests/infra/test_iam_lint.py lints the three stacks as configured; the Lambda templates' statements
    (and the functions' reads) exist only with the extension, so they are linted here the same way."""
    found, unknown = iam_lint.documents(with_extension)
    assert not unknown
    findings = [f for doc in found for f in iam_lint.lint("dev+extension", doc)]
    unexplained = [f for f in findings if not any(a.covers(f) for a in iam_lint.ALLOWED)]
    assert not unexplained, [(f.address, f.sid, f.issue, f.detail) for f in unexplained]


@pytest.mark.parametrize(("chaos", "message"), [
    ({"fis": True, "lambdaExtensionLayerArn": LAYER.replace("us-east-1", "eu-west-1")},
     "not a Lambda layer version ARN in us-east-1"),
    ({"fis": True, "lambdaExtensionLayerArn": "aws-fis-extension-arm64"}, "not a Lambda layer version ARN"),
    ({"lambdaExtensionLayerArn": LAYER}, "set chaos.fis: true"),
    ({"fis": True, "actionMinutes": 0}, "dataforge:chaos.actionMinutes"),
])
def test_the_chaos_settings_refuse_what_cannot_work(chaos: dict[str, Any], message: str) -> None:
    base = {"dashboard": {"imageTag": "src-" + "0" * 24, "domainName": "d.example.org",
                          "hostedZoneName": "example.org"}}
    with pytest.raises(InfraConfigError, match=re.escape(message)):
        StackSettings.from_mapping("dev", {**base, "region": "us-east-1", "chaos": chaos})
