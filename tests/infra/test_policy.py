"""Policy checks: zero violations in every stack, and each rule fails on a broken resource."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from infra.plan import Rendered, Resource
from infra.policy.checks import RULES, check_all


def test_every_stack_passes_every_rule(stack: Rendered) -> None:
    assert check_all(stack.stack, stack.resources) == []


def test_apprunner_variant_passes_too(variant_dev: Rendered) -> None:
    assert check_all("dev", variant_dev.resources) == []


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
    r.by_name("dashboard-alb-sg").inputs["ingress"].append(
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]})


def _unencrypted_queue(r: Rendered) -> None:
    del r.by_name("ingestion-landing-dlq").inputs["kmsMasterKeyId"]


BREAKAGES: dict[str, tuple[str, Callable[[Rendered], None]]] = {
    "admin-policy": ("iam-least-privilege", _admin),
    "full-access": ("iam-least-privilege", _full_access),
    "public-bucket": ("public-access-blocked", _public_bucket),
    "open-ssh": ("public-access-blocked", _open_ssh),
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
