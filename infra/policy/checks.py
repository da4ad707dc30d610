"""Policy checks: plain functions over a stack's resources, each returning its violations.

The input is anything shaped like ``ResourceView`` (type token, logical name, input properties in
wire (camelCase) form, protect flag): the offline renderer's resources in tests and the CLI, or the
resources a Pulumi policy pack sees under ``pulumi preview``. Values not known yet (a preview's
unknowns) never count as violations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from infra.settings import LOG_RETENTION_DAYS

REQUIRED_TAGS: Final = ("project", "environment", "owner", "cost-center", "managed-by")
PROTECTED_ENVIRONMENTS: Final = frozenset({"prod"})
STATEFUL_TYPES: Final = frozenset({
    "aws:s3/bucket:Bucket", "aws:dynamodb/table:Table", "aws:kms/key:Key", "aws:msk/cluster:Cluster",
    "aws:msk/serverlessCluster:ServerlessCluster",
})
PUBLIC_PORTS: Final = frozenset({80, 443})

BUCKET = "aws:s3/bucket:Bucket"


class ResourceView(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def protect(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    resource: str  # "<type>::<name>"
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True, slots=True)
class StackView:
    """What every rule receives: the stack's name and its resources."""

    stack: str
    resources: Sequence[ResourceView]

    def of(self, *types: str) -> list[ResourceView]:
        return [r for r in self.resources if r.type in types]


def _addr(r: ResourceView) -> str:
    return f"{r.type}::{r.name}"


def _doc(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _bucket_ids(stack: StackView) -> dict[str, ResourceView]:
    return {str(r.inputs.get("bucket") or r.name): r for r in stack.of(BUCKET)}


def _attached(stack: StackView, type_: str) -> dict[str, list[ResourceView]]:
    found: dict[str, list[ResourceView]] = {}
    for r in stack.of(type_):
        found.setdefault(str(r.inputs.get("bucket")), []).append(r)
    return found


# --- rules ------------------------------------------------------------------------------------


def encryption_at_rest(stack: StackView) -> Iterable[Violation]:
    rule = "encryption-at-rest"
    sse = _attached(stack, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for bucket_id, bucket in _bucket_ids(stack).items():
        configs = sse.get(bucket_id, [])
        algorithms = {(rule_.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
                      for c in configs for rule_ in _list(c.inputs.get("rules"))}
        if not algorithms & {"aws:kms", "AES256", "aws:kms:dsse"}:
            yield Violation(rule, _addr(bucket), "bucket has no default server-side encryption")
    checks: dict[str, Callable[[Mapping[str, Any]], bool]] = {
        "aws:dynamodb/table:Table": lambda i: bool((i.get("serverSideEncryption") or {}).get("enabled")),
        "aws:sqs/queue:Queue": lambda i: bool(i.get("kmsMasterKeyId") or i.get("sqsManagedSseEnabled")),
        "aws:sns/topic:Topic": lambda i: bool(i.get("kmsMasterKeyId")),
        "aws:msk/cluster:Cluster": lambda i: bool((i.get("encryptionInfo") or {}).get("encryptionAtRestKmsKeyArn")),
        "aws:ecr/repository:Repository": lambda i: any(e.get("encryptionType") == "KMS"
                                                       for e in _list(i.get("encryptionConfigurations"))),
        "aws:lambda/function:Function": lambda i: bool(i.get("kmsKeyArn")),
        "aws:ssm/parameter:Parameter": lambda i: i.get("type") != "String" or not i.get("value"),
        "aws:s3/bucketObject:BucketObject": lambda i: bool(i.get("serverSideEncryption")),
        "aws:athena/workgroup:Workgroup": lambda i: bool(
            (((i.get("configuration") or {}).get("resultConfiguration") or {}).get("encryptionConfiguration")
             or {}).get("encryptionOption")),
        "aws:glue/securityConfiguration:SecurityConfiguration": lambda i: all(
            (cfg.get("s3EncryptionMode") or "DISABLED") != "DISABLED"
            for cfg in _list((i.get("encryptionConfiguration") or {}).get("s3Encryption"))),
        "aws:kms/key:Key": lambda i: bool(i.get("enableKeyRotation")),
    }
    for r in stack.resources:
        check = checks.get(r.type)
        if check is not None and not check(r.inputs):
            yield Violation(rule, _addr(r), "not encrypted at rest (or key rotation off)")


def _denies_insecure_transport(policy: Any) -> bool:
    doc = _doc(policy) or {}
    for statement in _list(doc.get("Statement")):
        condition = (statement.get("Condition") or {}).get("Bool") or {}
        if statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


def tls_in_transit(stack: StackView) -> Iterable[Violation]:
    rule = "tls-in-transit"
    policies = _attached(stack, "aws:s3/bucketPolicy:BucketPolicy")
    for bucket_id, bucket in _bucket_ids(stack).items():
        if not any(_denies_insecure_transport(p.inputs.get("policy")) for p in policies.get(bucket_id, [])):
            yield Violation(rule, _addr(bucket), "bucket policy does not deny requests without TLS")
    for r in stack.of("aws:lb/listener:Listener"):
        actions = _list(r.inputs.get("defaultActions"))
        redirect_only = bool(actions) and all(
            a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol") == "HTTPS" for a in actions)
        if r.inputs.get("protocol") not in ("HTTPS", "TLS") and not redirect_only:
            yield Violation(rule, _addr(r), "listener serves plain HTTP (use HTTPS or redirect to it)")
    for r in stack.of("aws:msk/cluster:Cluster"):
        transit = ((r.inputs.get("encryptionInfo") or {}).get("encryptionInTransit") or {})
        if transit.get("clientBroker", "TLS") != "TLS" or transit.get("inCluster") is False:
            yield Violation(rule, _addr(r), "MSK must use TLS between clients and brokers and in the cluster")
        if (r.inputs.get("clientAuthentication") or {}).get("unauthenticated"):
            yield Violation(rule, _addr(r), "MSK allows unauthenticated clients")


def public_access_blocked(stack: StackView) -> Iterable[Violation]:
    rule = "public-access-blocked"
    blocks = _attached(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket_id, bucket in _bucket_ids(stack).items():
        if not any(all(b.inputs.get(f) is True for f in flags) for b in blocks.get(bucket_id, [])):
            yield Violation(rule, _addr(bucket), "public access is not fully blocked")
        if bucket.inputs.get("acl") in ("public-read", "public-read-write"):
            yield Violation(rule, _addr(bucket), "bucket ACL is public")
    for r in stack.of("aws:ec2/securityGroup:SecurityGroup"):
        for ingress in _list(r.inputs.get("ingress")):
            open_world = "0.0.0.0/0" in _list(ingress.get("cidrBlocks")) or "::/0" in _list(
                ingress.get("ipv6CidrBlocks"))
            ports = set(range(int(ingress.get("fromPort", 0)), int(ingress.get("toPort", 0)) + 1))
            if open_world and (ingress.get("protocol") == "-1" or not ports <= PUBLIC_PORTS):
                yield Violation(rule, _addr(r), f"ingress from anywhere on ports {sorted(ports)[:5]}")


def _statements(policy: Any) -> list[dict[str, Any]]:
    doc = _doc(policy) or {}
    return [s for s in _list(doc.get("Statement")) if isinstance(s, dict)]


def iam_least_privilege(stack: StackView) -> Iterable[Violation]:
    rule = "iam-least-privilege"
    for r in stack.of("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/userPolicy:UserPolicy",
                      "aws:iam/groupPolicy:GroupPolicy"):
        for statement in _statements(r.inputs.get("policy")):
            if statement.get("Effect") != "Allow":
                continue
            actions = {str(a) for a in _list(statement.get("Action"))}
            resources = {str(x) for x in _list(statement.get("Resource"))}
            if actions & {"*", "*:*"}:
                yield Violation(rule, _addr(r), "allows every action ('*')")
            elif "*" in resources and any(a.endswith(":*") for a in actions):
                yield Violation(rule, _addr(r), f"allows a whole service ({sorted(actions)}) on every resource")
            if "NotAction" in statement or "NotResource" in statement:
                yield Violation(rule, _addr(r), "uses NotAction/NotResource in an Allow")
    for r in stack.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                      "aws:iam/policyAttachment:PolicyAttachment"):
        if "FullAccess" in str(r.inputs.get("policyArn")) or str(r.inputs.get("policyArn")).endswith(
                "/AdministratorAccess"):
            yield Violation(rule, _addr(r), f"attaches {r.inputs.get('policyArn')}")
    for r in stack.of("aws:iam/role:Role"):
        for arn in _list(r.inputs.get("managedPolicyArns")):
            if "FullAccess" in str(arn) or str(arn).endswith("/AdministratorAccess"):
                yield Violation(rule, _addr(r), f"attaches {arn}")


def required_tags(stack: StackView, is_taggable: Callable[[str], bool] | None = None) -> Iterable[Violation]:
    rule = "required-tags"
    if is_taggable is None:
        from infra.tagging import is_taggable as default

        is_taggable = default
    for r in stack.resources:
        if not r.type.startswith("aws:") or not is_taggable(r.type):
            continue
        tags = r.inputs.get("tags") or {}
        missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
        if missing:
            yield Violation(rule, _addr(r), f"missing tags {missing}")
        elif tags.get("environment") != stack.stack:
            yield Violation(rule, _addr(r), f"environment tag {tags.get('environment')!r} is not {stack.stack!r}")


def log_retention(stack: StackView) -> Iterable[Violation]:
    rule = "log-retention"
    groups = {}
    for r in stack.of("aws:cloudwatch/logGroup:LogGroup"):
        groups[str(r.inputs.get("name"))] = r
        days = r.inputs.get("retentionInDays")
        if not isinstance(days, int) or days not in LOG_RETENTION_DAYS:
            yield Violation(rule, _addr(r), f"log group has no valid retention ({days!r})")
    for r in stack.of("aws:lambda/function:Function"):
        group = (r.inputs.get("loggingConfig") or {}).get("logGroup") or f"/aws/lambda/{r.inputs.get('name')}"
        if group not in groups:
            yield Violation(rule, _addr(r), f"function logs to {group}, which the stack does not manage")


def prod_protections(stack: StackView) -> Iterable[Violation]:
    rule = "prod-protections"
    if stack.stack not in PROTECTED_ENVIRONMENTS:
        return
    for r in stack.resources:
        if r.type in STATEFUL_TYPES and not r.protect:
            yield Violation(rule, _addr(r), "stateful resource is not protected")
    for r in stack.of("aws:dynamodb/table:Table"):
        if not r.inputs.get("deletionProtectionEnabled"):
            yield Violation(rule, _addr(r), "DynamoDB deletion protection is off")
        if not (r.inputs.get("pointInTimeRecovery") or {}).get("enabled"):
            yield Violation(rule, _addr(r), "DynamoDB point-in-time recovery is off")
    for r in stack.of(BUCKET):
        if r.inputs.get("forceDestroy"):
            yield Violation(rule, _addr(r), "bucket can be force-destroyed")


Rule = Callable[[StackView], Iterable[Violation]]

RULES: Final[dict[str, tuple[Rule, str]]] = {
    "encryption-at-rest": (encryption_at_rest, "Data stores are encrypted at rest (KMS or SSE)."),
    "tls-in-transit": (tls_in_transit, "Buckets deny non-TLS requests; listeners and brokers use TLS."),
    "public-access-blocked": (public_access_blocked, "No public buckets; no world-open ports but 80/443."),
    "iam-least-privilege": (iam_least_privilege, "No '*' actions, no service-wide '*' on '*', no *FullAccess."),
    "required-tags": (required_tags, "Every taggable resource carries the central tags."),
    "log-retention": (log_retention, "Every log group has a retention; every function logs to one."),
    "prod-protections": (prod_protections, "prod: protected stateful resources, deletion protection, PITR."),
}


def check_all(stack: str, resources: Sequence[ResourceView]) -> list[Violation]:
    """Every rule over one stack's resources; an empty list means the stack passes."""
    view = StackView(stack, resources)
    found: list[Violation] = []
    for check, _ in RULES.values():
        found.extend(check(view))
    return sorted(found, key=lambda v: (v.rule, v.resource, v.message))
