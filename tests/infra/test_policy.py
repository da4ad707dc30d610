"""Policy checks: zero violations in every stack, and each rule fails on a broken resource."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from infra.plan import Rendered, Resource
from infra.policy.checks import RULES, UNKNOWN, Undecided, check_all, evaluate


def test_every_stack_passes_every_rule(stack: Rendered) -> None:
    assert check_all(stack.stack, stack.resources) == []


def _policy(resource: Resource) -> dict[str, object]:
    doc: dict[str, object] = json.loads(resource.inputs["policy"])
    return doc


def _admin(r: Rendered) -> None:
    role_policy = r.by_name("ingestion-msk-landing-role-policy")
    doc = _policy(role_policy)
    doc["Statement"] = [*doc["Statement"], {"Effect": "Allow", "Action": "*", "Resource": "*"}]  # type: ignore[misc]
    role_policy.inputs["policy"] = json.dumps(doc)


def _full_access(r: Rendered) -> None:
    r.resources.append(Resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", None, True, False,
                                {"role": "x", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}))


def _public_bucket(r: Rendered) -> None:
    r.by_name("lake-gold-public-access").inputs["blockPublicPolicy"] = False


def _unencrypted_bucket(r: Rendered) -> None:
    r.resources.remove(r.by_name("lake-silver-encryption"))


def _plain_http_listener(r: Rendered) -> None:
    r.by_name("dashboard-https").inputs["protocol"] = "HTTP"


def _no_tls_policy(r: Rendered) -> None:
    policy = r.by_name("lake-bronze-policy")
    doc = _policy(policy)
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "DenyInsecureTransport"]  # type: ignore[attr-defined]
    policy.inputs["policy"] = json.dumps(doc)


def _untagged(r: Rendered) -> None:
    del r.by_name("serving-metrics").inputs["tags"]


def _forever_logs(r: Rendered) -> None:
    del r.by_name("api-access-logs").inputs["retentionInDays"]


def _unprotected_prod_table(r: Rendered) -> None:
    table = r.by_name("serving-alerts")
    table.inputs["deletionProtectionEnabled"] = False


def _open_ssh(r: Rendered) -> None:
    # the form the program declares its rules in: one aws.vpc ingress rule resource, on the load balancer's group
    https = r.by_name("dashboard-alb-ingress-443")
    assert https.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    r.resources.append(Resource(https.type, "open-ssh", https.parent, True, False, {
        **https.inputs, "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "description": "ssh"}))


def _open_all_ports(r: Rendered) -> None:
    # a world-open all-protocols rule carries no ports at all (EC2 refuses ports with ip_protocol "-1")
    https = r.by_name("dashboard-alb-ingress-443")
    r.resources.append(Resource(https.type, "open-all", https.parent, True, False, {
        key: value for key, value in https.inputs.items() if key not in ("fromPort", "toPort")} | {
        "ipProtocol": "-1"}))


def _open_ssh_inline(r: Rendered) -> None:
    # the same hole as an inline rule of a group (no group of the stacks declares inline rules; the policy
    # still refuses the form)
    r.by_name("dashboard-task-sg").inputs["ingress"] = [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]


def _open_ssh_rule(r: Rendered) -> None:
    # the same hole declared as its own security-group rule resource
    r.resources.append(Resource("aws:ec2/securityGroupRule:SecurityGroupRule", "open-ssh-rule", None, True, False, {
        "type": "ingress", "securityGroupId": "sg-1", "protocol": "tcp", "fromPort": 22, "toPort": 22,
        "cidrBlocks": ["0.0.0.0/0"], "tags": {}}))


def _unencrypted_queue(r: Rendered) -> None:
    del r.by_name("ingestion-landing-dlq").inputs["kmsMasterKeyId"]


def _admin_as_object(r: Rendered) -> None:
    # the document as a JSON object rather than a string: under the engine, nested proxies
    r.resources.append(Resource("aws:iam/rolePolicy:RolePolicy", "admin-object", None, True, False, {
        "role": "x", "policy": {"Version": "2012-10-17",
                                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}))


def _role_full_access(r: Rendered) -> None:
    role = r.by_name("ingestion-msk-landing-role")
    role.inputs["managedPolicyArns"] = ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]


BREAKAGES: dict[str, tuple[str, Callable[[Rendered], None]]] = {
    "admin-policy": ("iam-least-privilege", _admin),
    "full-access": ("iam-least-privilege", _full_access),
    "admin-policy-as-object": ("iam-least-privilege", _admin_as_object),
    "role-managed-full-access": ("iam-least-privilege", _role_full_access),
    "public-bucket": ("public-access-blocked", _public_bucket),
    "open-ssh": ("public-access-blocked", _open_ssh),
    "open-all-ports": ("public-access-blocked", _open_all_ports),
    "open-ssh-inline": ("public-access-blocked", _open_ssh_inline),
    "open-ssh-rule": ("public-access-blocked", _open_ssh_rule),
    "unencrypted-bucket": ("encryption-at-rest", _unencrypted_bucket),
    "unencrypted-queue": ("encryption-at-rest", _unencrypted_queue),
    "plain-http": ("tls-in-transit", _plain_http_listener),
    "no-tls-policy": ("tls-in-transit", _no_tls_policy),
    "untagged": ("required-tags", _untagged),
    "no-retention": ("log-retention", _forever_logs),
    "prod-table": ("prod-protections", _unprotected_prod_table),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_resource_fails_its_rule(stacks: dict[str, Rendered], breakage: str) -> None:
    rule, breaker = BREAKAGES[breakage]
    broken = copy.deepcopy(stacks["prod"])
    breaker(broken)
    violations = check_all("prod", broken.resources)
    assert violations, f"{breakage} went unnoticed"
    assert {v.rule for v in violations} == {rule}


def test_every_rule_has_a_breaking_test() -> None:
    assert {rule for rule, _ in BREAKAGES.values()} == set(RULES)


def test_prod_rules_only_apply_to_prod(stacks: dict[str, Rendered]) -> None:
    dev = copy.deepcopy(stacks["dev"])
    dev.by_name("serving-alerts").inputs["deletionProtectionEnabled"] = False
    assert check_all("dev", dev.resources) == []


def _prod_with(stacks: dict[str, Rendered], name: str, **inputs: object) -> Rendered:
    prod = copy.deepcopy(stacks["prod"])
    prod.by_name(name).inputs.update(inputs)
    return prod


def test_a_whole_number_given_as_a_float_counts(stacks: dict[str, Rendered]) -> None:
    """A protobuf Struct has only doubles: the engine hands ``365`` over as ``365.0``."""
    prod = _prod_with(stacks, "api-access-logs", retentionInDays=30.0)
    assert check_all("prod", prod.resources) == []
    prod = _prod_with(stacks, "api-access-logs", retentionInDays=30.5)
    assert [v.message for v in check_all("prod", prod.resources)] == ["log group has no valid retention (30.5)"]


def test_a_secure_transport_condition_given_as_a_list_counts(stacks: dict[str, Rendered]) -> None:
    """IAM condition values may be a list (``"aws:SecureTransport": ["false"]``) or a boolean."""
    prod = copy.deepcopy(stacks["prod"])
    for value in (["false"], False):
        policy = prod.by_name("lake-bronze-policy")
        doc = _policy(policy)
        for statement in doc["Statement"]:  # type: ignore[attr-defined]
            if statement.get("Sid") == "DenyInsecureTransport":
                statement["Condition"] = {"Bool": {"aws:SecureTransport": value}}
        policy.inputs["policy"] = json.dumps(doc)
        assert check_all("prod", prod.resources) == []


def test_unknown_values_are_undecided_or_decided_from_known_ones(stacks: dict[str, Rendered]) -> None:
    """Unknown evidence gives an Undecided finding (never a silent pass); an unknown reference that can
    only point at the stack's own resource is followed through the dependencies."""
    prod = copy.deepcopy(stacks["prod"])
    prod.by_name("lake-gold-public-access").inputs["bucket"] = UNKNOWN  # depends on lake-gold-bucket only
    prod.by_name("lake-silver-policy").inputs["policy"] = UNKNOWN
    prod.by_name("serving-alerts").inputs["deletionProtectionEnabled"] = UNKNOWN
    prod.by_name("ingestion-landing-dlq").inputs["kmsMasterKeyId"] = UNKNOWN  # a key ARN: set
    violations, undecided = evaluate("prod", prod.resources)
    assert violations == []
    assert undecided == [
        Undecided("prod-protections", "aws:dynamodb/table:Table::serving-alerts",
                  "DynamoDB deletion protection is off"),
        Undecided("tls-in-transit", "aws:s3/bucket:Bucket::lake-silver-bucket",
                  "bucket policy does not deny requests without TLS")]
    prod.by_name("lake-gold-public-access").inputs["blockPublicPolicy"] = False
    violations, _ = evaluate("prod", prod.resources)
    assert [(v.rule, v.resource) for v in violations] == [
        ("public-access-blocked", "aws:s3/bucket:Bucket::lake-gold-bucket")]
