"""Every IAM policy document the stacks declare, linted by parliament against AWS's actions, resource
types and condition keys (its copy of the Service Authorization Reference), and the IAM wiring the
linter cannot see: what acts with a role waits for the role's permissions, active tracing has its
X-Ray permissions, and service principals are bound to their source where AWS documents it.

The documents are the rendered stacks' inputs under the offline mock engine, whose ARNs follow AWS's
formats (``infra/plan/engine.py``); what parliament cannot judge (whether IAM grants a request at
run time) is left to the deployment itself.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.resources
import importlib.util
import json
import re
import sys
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.plan import Rendered, Resource
from infra.plan.engine import ACCOUNT_ID


def _import_parliament() -> types.ModuleType:
    """parliament 1.6.4 reads its two data files through ``pkg_resources.resource_filename`` at import
    time, and setuptools 82 removed ``pkg_resources`` (duo-labs/parliament#247). Without setuptools,
    a stand-in answering that one call from ``importlib.resources`` is present during the import only.
    (Compiling parliament's regular expressions warns about their escapes; those warnings are its own.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        if importlib.util.find_spec("pkg_resources") is not None:
            return importlib.import_module("parliament")
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: str(importlib.resources.files(package) / name)  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
        try:
            return importlib.import_module("parliament")
        finally:
            del sys.modules["pkg_resources"]


parliament = _import_parliament()

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PERMISSION = "aws:lambda/permission:Permission"

# Where the stacks' resources carry policy documents, and what kind each is.
IDENTITY, TRUST, RESOURCE_POLICY = "identity", "trust", "resource"
POLICY_INPUTS: dict[tuple[str, str], str] = {
    (ROLE_POLICY, "policy"): IDENTITY,
    ("aws:iam/policy:Policy", "policy"): IDENTITY,
    (ROLE, "assumeRolePolicy"): TRUST,
    ("aws:s3/bucketPolicy:BucketPolicy", "policy"): RESOURCE_POLICY,
    ("aws:kms/key:Key", "policy"): RESOURCE_POLICY,
    ("aws:sns/topicPolicy:TopicPolicy", "policy"): RESOURCE_POLICY,
    ("aws:sqs/queuePolicy:QueuePolicy", "policy"): RESOURCE_POLICY,
    ("aws:ecr/repositoryPolicy:RepositoryPolicy", "policy"): RESOURCE_POLICY,
    ("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "policyDocument"): RESOURCE_POLICY,
}


@dataclass(frozen=True, slots=True)
class Document:
    address: str
    kind: str
    policy: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finding:
    stack: str
    address: str
    kind: str
    sid: str | None  # the statement's Sid ("" without one); None: the finding names no statement
    issue: str
    actions: frozenset[str]  # what a policy-level finding reports (lower case)
    detail: str


@dataclass(frozen=True, slots=True)
class Allowed:
    """A parliament finding judged a false positive: exactly this issue, on these resources and
    statements (and, for findings reported per action, only these actions), for the reason given."""

    issue: str
    kind: str
    resource: str  # regular expression, matched whole against the resource's address
    sids: tuple[str, ...]
    why: str
    actions: frozenset[str] = frozenset()

    def covers(self, f: Finding) -> bool:
        return (f.issue == self.issue and f.kind == self.kind and re.fullmatch(self.resource, f.address) is not None
                and f.sid in self.sids and f.actions <= self.actions)


ALLOWED = (
    Allowed("CREDENTIALS_EXPOSURE", TRUST, rf"{ROLE}::.+", ("",), actions=frozenset({"sts:assumerole"}), why=(
        "A trust policy is the role's own resource policy: it lets the named service call sts:AssumeRole on "
        "this role and nothing else (IAM User Guide, 'Terms and concepts for roles': role trust policy). The "
        "community auditor is written for identity policies that let a principal mint credentials.")),
    Allowed("CREDENTIALS_EXPOSURE", IDENTITY, rf"{ROLE_POLICY}::dashboard-(execution|ecr-access)-role-policy",
            ("EcrToken",), actions=frozenset({"ecr:getauthorizationtoken"}), why=(
                "An ECS task execution role (and App Runner's access role) pulls the image from private ECR, "
                "which starts with ecr:GetAuthorizationToken; the action supports only '*' and the token "
                "reaches only the repositories the role may read (Amazon ECR User Guide, 'Private registry "
                "authentication'; AmazonECSTaskExecutionRolePolicy).")),
    Allowed("RESOURCE_STAR", RESOURCE_POLICY, r"aws:kms/key:Key::lake-key",
            ("AccountAdministers", "CloudWatchLogs", "AlarmsAndEventsToSns"), why=(
                "In a key policy, '\"Resource\": \"*\"' means the KMS key the policy is attached to (AWS KMS "
                "Developer Guide, 'Key policies in AWS KMS').")),
    Allowed("PERMISSIONS_MANAGEMENT_ACTIONS", RESOURCE_POLICY, r"aws:kms/key:Key::lake-key", ("AccountAdministers",),
            actions=frozenset({"kms:creategrant", "kms:createkey", "kms:putkeypolicy", "kms:retiregrant",
                               "kms:revokegrant"}), why=(
                "The default key policy statement: the account's IAM policies control the key; without it the "
                "key becomes unmanageable (AWS KMS Developer Guide, 'Default key policy', 'Allows access to the "
                "AWS account and enables IAM policies').")),
)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy.get("Statement")
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict)]


def _decoded(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) and "Statement" in value else None


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def region_of(r: Rendered) -> str:
    return str(r.outputs["region"])


def role_arn(role: Resource) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{role.inputs.get('name') or role.name}"


def permission_policy(r: Rendered, p: Resource) -> dict[str, Any]:
    """The statement Lambda's AddPermission writes into the function's resource policy for ``p``
    (the source ARN and account become ``ArnLike``/``StringEquals`` conditions)."""
    function = str(p.inputs["function"])
    arn = function if function.startswith("arn:") else f"arn:aws:lambda:{region_of(r)}:{ACCOUNT_ID}:function:{function}"
    condition: dict[str, dict[str, str]] = {}
    if p.inputs.get("sourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": p.inputs["sourceArn"]}
    if p.inputs.get("sourceAccount"):
        condition["StringEquals"] = {"AWS:SourceAccount": p.inputs["sourceAccount"]}
    principal = str(p.inputs["principal"])
    statement: dict[str, Any] = {
        "Sid": "".join(ch for ch in p.name.title() if ch.isalnum()), "Effect": "Allow", "Action": p.inputs["action"],
        "Resource": arn,
        "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal}}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def documents(r: Rendered) -> tuple[list[Document], list[str]]:
    """Every policy document of ``r``, and where a document sits that this test does not know."""
    found: list[Document] = []
    unknown: list[str] = []
    for res in r.resources:
        if res.type == PERMISSION:
            found.append(Document(res.address, RESOURCE_POLICY, permission_policy(r, res)))
            continue
        for path, value in _walk(res.inputs):
            policy = _decoded(value)
            if policy is None:
                continue
            kind = POLICY_INPUTS.get((res.type, path))
            if kind is None:
                unknown.append(f"{res.address} {path}")
            elif kind == TRUST:
                # A trust policy names no Resource: IAM evaluates it against the role it belongs to.
                # parliament needs one, so the role's ARN is written in.
                statements = [{**s, "Resource": role_arn(res)} for s in _statements(policy)]
                found.append(Document(res.address, kind, {**policy, "Statement": statements}))
            else:
                found.append(Document(res.address, kind, policy))
    return found, unknown


def lint(stack: str, doc: Document) -> list[Finding]:
    result = parliament.analyze_policy_string(json.dumps(doc.policy), include_community_auditors=True)
    statements = _statements(doc.policy)
    findings = []
    for index, analysed in enumerate(result.statements):
        sid = str(statements[index].get("Sid", "")) if index < len(statements) else None
        findings += [Finding(stack, doc.address, doc.kind, sid, f.issue, frozenset(), str(f.detail))
                     for f in analysed.findings]
    for f in result._findings:  # policy-level: duplicate Sids, the community auditors (per action)
        actions = frozenset(str(a).lower() for a in (f.location or {}).get("actions", []))
        owners = {str(s.get("Sid", "")) for s in statements for pattern in _list(s.get("Action"))
                  if any(fnmatch.fnmatchcase(a, str(pattern).lower()) for a in actions)}
        findings.append(Finding(stack, doc.address, doc.kind, owners.pop() if len(owners) == 1 else None, f.issue,
                                actions, str(f.detail)))
    return findings


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


@pytest.fixture(scope="module")
def renders(stacks: dict[str, Rendered]) -> dict[str, Rendered]:
    """The three stacks."""
    return stacks


@pytest.fixture(scope="module")
def findings(renders: dict[str, Rendered]) -> list[Finding]:
    return [f for name, r in renders.items() for doc in documents(r)[0] for f in lint(name, doc)]


def test_every_policy_document_is_found(renders: dict[str, Rendered]) -> None:
    for name, r in renders.items():
        found, unknown = documents(r)
        assert not unknown, f"{name}: policy documents this lint does not read: {unknown}"
        kinds = {d.kind for d in found}
        assert kinds == {IDENTITY, TRUST, RESOURCE_POLICY}, (name, kinds)


def test_every_policy_document_lints_clean(findings: list[Finding]) -> None:
    unexplained = [f for f in findings if not any(a.covers(f) for a in ALLOWED)]
    assert not unexplained, "\n".join(
        f"{f.stack} {f.address} [{f.sid}] {f.issue}: {f.detail} {sorted(f.actions)}" for f in unexplained)


def test_each_allowance_still_covers_a_finding(findings: list[Finding]) -> None:
    unused = [a for a in ALLOWED if not any(a.covers(f) for f in findings)]
    assert not unused, f"allowances that no longer match a finding (remove them): {unused}"


@pytest.mark.parametrize(("statement", "issue"), [
    ({"Effect": "Allow", "Action": "kafka:GetBootstrapBrokers",
      "Resource": "arn:aws:kafka:us-east-1:123456789012:cluster/c/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-1"},
     "RESOURCE_MISMATCH"),
    ({"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"}, "RESOURCE_STAR"),
    ({"Effect": "Allow", "Action": "kms:Describe*", "Resource": "arn:aws:kms:us-east-1:123456789012:key/k",
      "Condition": {"StringLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}}},
     "UNKNOWN_CONDITION_FOR_ACTION"),
])
def test_the_linter_reports_the_defects_fixed_here(statement: dict[str, Any], issue: str) -> None:
    doc = Document("probe", IDENTITY, {"Version": "2012-10-17", "Statement": [statement]})
    assert issue in {f.issue for f in lint("probe", doc)}


def test_policy_arns_have_no_empty_path_segment(renders: dict[str, Rendered]) -> None:
    """The documents hold the ARNs AWS would return (an SSM parameter named ``/a/b`` is
    ``...:parameter/a/b``), so the lint judges real resource formats."""
    for name, r in renders.items():
        for doc in documents(r)[0]:
            for _, value in _walk(doc.policy):
                if isinstance(value, str) and value.startswith("arn:"):
                    assert "//" not in value.split(":", 5)[-1], (name, doc.address, value)


# --- what the linter cannot see -------------------------------------------------------------------

ROLE_INPUT = {"aws:lambda/function:Function": "role", "aws:glue/job:Job": "roleArn"}


def role_of(r: Rendered, user: Resource) -> Resource:
    arn = str(user.inputs[ROLE_INPUT[user.type]])
    roles = [x for x in r.of_type(ROLE) if role_arn(x) == arn]
    assert len(roles) == 1, (user.address, arn)
    return roles[0]


def permissions_of(r: Rendered, role: Resource) -> list[Resource]:
    return [p for p in r.resources if p.type in (ROLE_POLICY, POLICY_ATTACHMENT) and role.address in p.dependencies]


def test_what_acts_with_a_role_depends_on_the_roles_permissions(renders: dict[str, Rendered]) -> None:
    """A function or job is created only once its role's policies exist (and an event
    source mapping only once its function's are): IAM accepts a role without its policy, and these
    services use the role from creation on."""
    for name, r in renders.items():
        users = [x for x in r.resources if x.type in ROLE_INPUT]
        assert {u.type for u in users} >= {"aws:lambda/function:Function", "aws:glue/job:Job"}, name
        for user in users:
            policies = permissions_of(r, role_of(r, user))
            assert policies, (name, user.address)
            missing = [p.address for p in policies if p.address not in user.dependencies]
            assert not missing, f"{name}: {user.address} is created without waiting for {missing}"
        functions = {str(f.inputs.get("name")): f for f in r.of_type("aws:lambda/function:Function")}
        for mapping in r.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
            function = functions[str(mapping.inputs["functionName"]).rsplit(":", 1)[-1]]
            for p in permissions_of(r, role_of(r, function)):
                assert p.address in mapping.dependencies, (name, mapping.address, p.address)


def allowed_actions(r: Rendered, role: Resource, resource: str) -> set[str]:
    granted: set[str] = set()
    for p in permissions_of(r, role):
        for s in _statements(json.loads(p.inputs.get("policy", "{}")) if p.type == ROLE_POLICY else {}):
            if s.get("Effect") == "Allow" and resource in _list(s.get("Resource")) and "Condition" not in s:
                granted |= {str(a) for a in _list(s.get("Action"))}
    return granted


def test_active_tracing_comes_with_xray_write_permissions(renders: dict[str, Rendered]) -> None:
    """Lambda uploads an actively traced function's segments with the execution role, which needs
    xray:PutTraceSegments and xray:PutTelemetryRecords on "*" (Lambda Developer Guide, "Visualize
    Lambda function invocations using AWS X-Ray"). An API stage's tracing runs under API Gateway's
    service-linked role (AWSServiceRoleForAPIGateway) and needs nothing from this stack's roles."""
    for name, r in renders.items():
        traced = [f for f in r.of_type("aws:lambda/function:Function")
                  if (f.inputs.get("tracingConfig") or {}).get("mode") == "Active"]
        assert traced, name
        for function in traced:
            granted = allowed_actions(r, role_of(r, function), "*")
            assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= granted, (name, function.address)


# Which service principals AWS documents as sending aws:SourceAccount/aws:SourceArn when they assume
# a role, with the ARN service of the sources (None: not documented, so no condition may be set,
# since one the service does not send would deny every assumption).
CONFUSED_DEPUTY_KEYS: dict[str, str | None] = {
    "ecs-tasks.amazonaws.com": "ecs",  # ECS Developer Guide, "Amazon ECS task IAM role"
    "fis.amazonaws.com": "fis",  # FIS User Guide, "IAM roles for AWS FIS experiments": experiment/* of the account
    "lambda.amazonaws.com": None,  # Lambda Developer Guide: the execution role's trust policy has no conditions
    "glue.amazonaws.com": None,  # Glue Developer Guide: the service role's trust policy has no conditions
    "apigateway.amazonaws.com": None,  # API Gateway's account-wide CloudWatch Logs role serves every API
    "build.apprunner.amazonaws.com": None,  # App Runner Developer Guide: roles for App Runner
    "tasks.apprunner.amazonaws.com": None,
}
# Roles of a service in the table above whose own documentation shows a trust policy without conditions.
NO_DOCUMENTED_CONDITIONS = {
    # ECS Developer Guide, "Amazon ECS task execution IAM role": the trust names ecs-tasks.amazonaws.com only
    "aws:iam/role:Role::dashboard-execution-role",
}


def _condition_value(statement: dict[str, Any], operator: str, key: str) -> list[str]:
    block = (statement.get("Condition") or {}).get(operator) or {}
    return [str(v) for k, v in block.items() if k.lower() == key.lower() for v in _list(v)]


def test_service_roles_are_bound_to_their_source_where_aws_documents_it(renders: dict[str, Rendered]) -> None:
    for name, r in renders.items():
        violations: set[str] = set()
        for role in r.of_type(ROLE):
            for statement in _statements(json.loads(role.inputs["assumeRolePolicy"])):
                for service in _list((statement.get("Principal") or {}).get("Service")):
                    assert service in CONFUSED_DEPUTY_KEYS, f"{role.address}: look up {service}'s documentation"
                    source = CONFUSED_DEPUTY_KEYS[service]
                    accounts = _condition_value(statement, "StringEquals", "aws:SourceAccount")
                    arns = _condition_value(statement, "ArnLike", "aws:SourceArn")
                    if source is None or role.address in NO_DOCUMENTED_CONDITIONS:
                        assert (accounts, arns) == ([], []), (name, role.address, service)
                    elif accounts != [ACCOUNT_ID] or not arns or not all(
                            a.startswith(f"arn:aws:{source}:{region_of(r)}:{ACCOUNT_ID}:") for a in arns):
                        violations.add(role.address)
        assert not violations, f"{name}: {sorted(violations)}"


ARN_SERVICE = {"s3.amazonaws.com": "s3", "events.amazonaws.com": "events", "sns.amazonaws.com": "sns",
               "apigateway.amazonaws.com": "execute-api"}


def test_lambda_permissions_name_their_source(renders: dict[str, Rendered]) -> None:
    """Every service allowed to invoke a function is bound to the resource that triggers it
    (``source_arn``); for S3, whose bucket ARNs name no account, also to the bucket owner
    (``source_account``), as the Lambda API reference for AddPermission asks."""
    for name, r in renders.items():
        permissions = r.of_type(PERMISSION)
        assert permissions, name
        for p in permissions:
            principal = str(p.inputs["principal"])
            source = str(p.inputs.get("sourceArn") or "")
            assert source.startswith(f"arn:aws:{ARN_SERVICE[principal]}:"), (name, p.address, source)
            if principal == "s3.amazonaws.com":
                assert p.inputs.get("sourceAccount") == ACCOUNT_ID, (name, p.address)
