"""Policy checks: plain functions over a stack's resources, each yielding its findings.

The input is anything shaped like ``ResourceView`` (type token, logical name, input properties in
wire (camelCase) form, protect flag, dependencies): the offline renderer's resources in tests and
the CLI, or the resources a Pulumi policy pack sees under ``pulumi preview`` (``pack.py`` turns
those into plain values first). Containers are read as ``Mapping`` / ``Sequence``, never as
``dict`` / ``list`` only, and numbers may be integral floats (a protobuf ``Struct`` has only
doubles).

Unknown values. Before a resource exists, a preview does not know its computed outputs (ids,
ARNs, autonamed names), nor any input computed from them (``bucket=bucket.id``, a policy document
built with ``Output.json_dumps`` around an ARN). Such a value is ``UNKNOWN`` here, and every check
decides deliberately what it means:

* where the known values already show a violation, it is a ``Violation``, unknowns or not;
* where an unknown value can only be a reference the program wired in (a KMS key ARN, the id of a
  bucket or log group it depends on), its shape cannot break the rule: the check follows the
  dependency the engine reports, or counts the value as set;
* where the answer hangs on an unknown value (a policy document, a flag, a CIDR list), the check
  yields ``Undecided``: the pack reports those as one advisory diagnostic per rule, so nothing is
  passed silently, and the mandatory violations found from known values still block.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from infra.settings import LOG_RETENTION_DAYS

REQUIRED_TAGS: Final = ("project", "environment", "owner", "cost-center", "managed-by")
PROTECTED_ENVIRONMENTS: Final = frozenset({"prod"})
STATEFUL_TYPES: Final = frozenset({
    "aws:s3/bucket:Bucket", "aws:dynamodb/table:Table", "aws:kms/key:Key", "aws:msk/cluster:Cluster",
    "aws:msk/serverlessCluster:ServerlessCluster",
})
PUBLIC_PORTS: Final = frozenset({80, 443})

BUCKET: Final = "aws:s3/bucket:Bucket"
LOG_GROUP: Final = "aws:cloudwatch/logGroup:LogGroup"
IAM_POLICY: Final = "aws:iam/policy:Policy"


class Unknown(enum.Enum):
    """The type of ``UNKNOWN``: a value the engine does not know yet (a preview's computed value)."""

    VALUE = "<unknown>"

    def __repr__(self) -> str:
        return "<unknown>"

    def __str__(self) -> str:
        return "<unknown>"


UNKNOWN: Final = Unknown.VALUE

# A check's answer: True passes, False is a violation, UNKNOWN cannot be told before the values exist.
Verdict = bool | Literal[Unknown.VALUE]


class ResourceView(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def protect(self) -> bool: ...
    @property
    def dependencies(self) -> Sequence[str]:
        """Addresses (``<type>::<name>``) of the resources this one depends on."""
        ...


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    resource: str  # "<type>::<name>"
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True, slots=True)
class Undecided:
    """A check that cannot be decided yet: a value it needs is unknown until the resources exist."""

    rule: str
    resource: str  # "<type>::<name>"
    message: str  # the violation it may turn out to be

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: undecided until its unknown values are known ({self.message})"


Finding = Violation | Undecided


@dataclass(frozen=True, slots=True)
class StackView:
    """What every rule receives: the stack's name and its resources."""

    stack: str
    resources: Sequence[ResourceView]

    def of(self, *types: str) -> list[ResourceView]:
        return [r for r in self.resources if r.type in types]


def _addr(r: ResourceView) -> str:
    return f"{r.type}::{r.name}"


def _judge(rule: str, r: ResourceView, verdict: Verdict, message: str) -> Iterator[Finding]:
    if verdict is UNKNOWN:
        yield Undecided(rule, _addr(r), message)
    elif not verdict:
        yield Violation(rule, _addr(r), message)


# --- reading values -----------------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...``: None where a key is missing or a step is no mapping,
    ``UNKNOWN`` where a step is unknown."""
    for key in path:
        if value is UNKNOWN:
            return UNKNOWN
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _items(value: Any) -> list[Any]:
    """A property AWS takes as one value or a list of them, as a list (an unknown stays one item)."""
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping) or value is UNKNOWN:
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _doc(value: Any) -> Any:
    """A policy document given as a JSON string or as an object; None when it is neither."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if value is UNKNOWN or isinstance(value, Mapping) else None


def _number(value: Any) -> int | None:
    """A whole number, also when it arrives as a float (``30.0``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# --- three-valued logic -------------------------------------------------------------------------


def _truthy(value: Any) -> Verdict:
    return UNKNOWN if value is UNKNOWN else bool(value)


def _given(value: Any) -> Verdict:
    """Whether a reference (key ARN, id) is set. An unknown one is: the engine sends an unknown only
    where the program wired an output in, and a resource's ARN or id is never empty."""
    return True if value is UNKNOWN else bool(value)


def _given_at(value: Any, *path: str) -> Verdict:
    """``_given`` of a nested reference; an unknown object on the way does not tell."""
    for key in path[:-1]:
        value = _get(value, key)
        if value is UNKNOWN:
            return Unknown.VALUE  # (not UNKNOWN: mypy narrows both operands of ``is`` to Any)
    return _given(_get(value, *path[-1:]))


def _equals(value: Any, expected: object) -> Verdict:
    return UNKNOWN if value is UNKNOWN else bool(value == expected)


def _contains(values: Any, wanted: Collection[str]) -> Verdict:
    """Whether a one-or-many property holds one of ``wanted``."""
    items = _items(values)
    if any(isinstance(v, str) and v in wanted for v in items):
        return True
    return UNKNOWN if UNKNOWN in items else False


def _not(verdict: Verdict) -> Verdict:
    return UNKNOWN if verdict is UNKNOWN else not verdict


def _any(verdicts: Iterable[Verdict]) -> Verdict:
    result: Verdict = False
    for verdict in verdicts:
        if verdict is True:
            return True
        if verdict is UNKNOWN:
            result = UNKNOWN
    return result


def _all(verdicts: Iterable[Verdict]) -> Verdict:
    result: Verdict = True
    for verdict in verdicts:
        if verdict is False:
            return False
        if verdict is UNKNOWN:
            result = UNKNOWN
    return result


# --- what an unknown value refers to ------------------------------------------------------------


def _source(r: ResourceView, prop: str, candidates: Collection[str]) -> str | None:
    """The one resource among ``candidates`` that the (unknown) value of ``prop`` is computed from.

    The engine sends each resource's dependencies and, per property, the resources that property
    depends on (``pulumi_policy`` exposes them as ``dependencies`` / ``property_dependencies``).
    The per-property list is used when there is one; otherwise all of the resource's dependencies.
    None when no candidate, or more than one, is among them."""
    by_property: Mapping[str, Sequence[str]] = getattr(r, "property_dependencies", None) or {}
    sources = by_property.get(prop) or r.dependencies
    found = {a for a in sources if a in candidates}
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True, slots=True)
class _Attached:
    """The stack's resources of one bucket sub-resource type, by the bucket they configure."""

    by_bucket: dict[str, list[ResourceView]]
    unresolved: list[ResourceView]  # unknown ``bucket`` and no single bucket among its dependencies

    def verdict(self, bucket: ResourceView, check: Callable[[ResourceView], Verdict]) -> Verdict:
        """Whether one of the bucket's sub-resources passes ``check``; unknown while an unresolved
        sub-resource may be the bucket's."""
        verdicts = [check(a) for a in self.by_bucket.get(_addr(bucket), [])]
        return _any([*verdicts, *([UNKNOWN] if self.unresolved else [])])


def _attached(stack: StackView, type_: str) -> _Attached:
    buckets = stack.of(BUCKET)
    by_id = {str(b.inputs.get("bucket") or b.name): _addr(b) for b in buckets if b.inputs.get("bucket") is not UNKNOWN}
    addresses = {_addr(b) for b in buckets}
    found = _Attached({}, [])
    for r in stack.of(type_):
        target = r.inputs.get("bucket")
        bucket = _source(r, "bucket", addresses) if target is UNKNOWN else by_id.get(str(target))
        if bucket is not None:
            found.by_bucket.setdefault(bucket, []).append(r)
        elif target is UNKNOWN:
            found.unresolved.append(r)
        # (a known name of no bucket in this stack configures a bucket managed elsewhere)
    return found


# --- rules --------------------------------------------------------------------------------------


def _bucket_sse(config: ResourceView) -> Verdict:
    return _any(_contains(_get(rule_, "applyServerSideEncryptionByDefault", "sseAlgorithm"),
                          {"aws:kms", "AES256", "aws:kms:dsse"}) for rule_ in _items(config.inputs.get("rules")))


def encryption_at_rest(stack: StackView) -> Iterable[Finding]:
    rule = "encryption-at-rest"
    sse = _attached(stack, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for bucket in stack.of(BUCKET):
        yield from _judge(rule, bucket, sse.verdict(bucket, _bucket_sse),
                          "bucket has no default server-side encryption")
    checks: dict[str, Callable[[Mapping[str, Any]], Verdict]] = {
        "aws:dynamodb/table:Table": lambda i: _truthy(_get(i, "serverSideEncryption", "enabled")),
        "aws:sqs/queue:Queue": lambda i: _any([_given(i.get("kmsMasterKeyId")),
                                               _truthy(i.get("sqsManagedSseEnabled"))]),
        "aws:sns/topic:Topic": lambda i: _given(i.get("kmsMasterKeyId")),
        "aws:msk/cluster:Cluster": lambda i: _given_at(i, "encryptionInfo", "encryptionAtRestKmsKeyArn"),
        "aws:ecr/repository:Repository": lambda i: _any(_equals(_get(e, "encryptionType"), "KMS")
                                                        for e in _items(i.get("encryptionConfigurations"))),
        "aws:lambda/function:Function": lambda i: _given(i.get("kmsKeyArn")),
        # a plain String parameter holding a value is stored unencrypted (SecureString is KMS-encrypted)
        "aws:ssm/parameter:Parameter": lambda i: _any([_not(_equals(i.get("type"), "String")),
                                                       _not(_given(i.get("value")))]),
        "aws:s3/bucketObject:BucketObject": lambda i: _given(i.get("serverSideEncryption")),
        "aws:athena/workgroup:Workgroup": lambda i: _given_at(
            i, "configuration", "resultConfiguration", "encryptionConfiguration", "encryptionOption"),
        "aws:glue/securityConfiguration:SecurityConfiguration": lambda i: _all(
            _not(_equals(_get(cfg, "s3EncryptionMode") or "DISABLED", "DISABLED"))
            for cfg in _items(_get(i, "encryptionConfiguration", "s3Encryption"))),
        "aws:kms/key:Key": lambda i: _truthy(i.get("enableKeyRotation")),
    }
    for r in stack.resources:
        check = checks.get(r.type)
        if check is not None:
            yield from _judge(rule, r, check(r.inputs), "not encrypted at rest (or key rotation off)")


def _denies_insecure_transport(policy: ResourceView) -> Verdict:
    doc = _doc(policy.inputs.get("policy"))
    if doc is UNKNOWN:
        return Unknown.VALUE
    verdicts = []
    for statement in _items(_get(doc, "Statement")):
        # a condition value is a string, a boolean or a list of them (IAM JSON policy grammar)
        values = _items(_get(statement, "Condition", "Bool", "aws:SecureTransport"))
        insecure: Verdict = any(str(v).lower() == "false" for v in values if v is not UNKNOWN) or (
            UNKNOWN if UNKNOWN in values else False)
        verdicts.append(_all([_equals(_get(statement, "Effect"), "Deny"), insecure]))
    return _any(verdicts)


def tls_in_transit(stack: StackView) -> Iterable[Finding]:
    rule = "tls-in-transit"
    policies = _attached(stack, "aws:s3/bucketPolicy:BucketPolicy")
    for bucket in stack.of(BUCKET):
        yield from _judge(rule, bucket, policies.verdict(bucket, _denies_insecure_transport),
                          "bucket policy does not deny requests without TLS")
    for r in stack.of("aws:lb/listener:Listener"):
        actions = _items(r.inputs.get("defaultActions"))
        redirect_only = _all([bool(actions), *(
            _all([_equals(_get(a, "type"), "redirect"), _equals(_get(a, "redirect", "protocol"), "HTTPS")])
            for a in actions)])
        tls = _contains(r.inputs.get("protocol"), {"HTTPS", "TLS"})
        yield from _judge(rule, r, _any([tls, redirect_only]),
                          "listener serves plain HTTP (use HTTPS or redirect to it)")
    for r in stack.of("aws:msk/cluster:Cluster"):
        transit = _get(r.inputs, "encryptionInfo", "encryptionInTransit")
        client_broker = _get(transit, "clientBroker")
        in_cluster = _get(transit, "inCluster")
        yield from _judge(rule, r, _all([_equals(client_broker or "TLS", "TLS"), _not(_equals(in_cluster, False))]),
                          "MSK must use TLS between clients and brokers and in the cluster")
        yield from _judge(rule, r, _not(_truthy(_get(r.inputs, "clientAuthentication", "unauthenticated"))),
                          "MSK allows unauthenticated clients")


def _ports(ingress: Any) -> set[int] | Unknown:
    low, high = _get(ingress, "fromPort"), _get(ingress, "toPort")
    if UNKNOWN in (low, high):
        return UNKNOWN
    return set(range(_number(low) or 0, (_number(high) or 0) + 1))


def public_access_blocked(stack: StackView) -> Iterable[Finding]:
    rule = "public-access-blocked"
    blocks = _attached(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")

    def blocks_all(block: ResourceView) -> Verdict:
        return _all(_equals(block.inputs.get(f), True) for f in flags)

    for bucket in stack.of(BUCKET):
        yield from _judge(rule, bucket, blocks.verdict(bucket, blocks_all), "public access is not fully blocked")
        yield from _judge(rule, bucket, _not(_contains(bucket.inputs.get("acl"), {"public-read", "public-read-write"})),
                          "bucket ACL is public")
    for r in stack.of("aws:ec2/securityGroup:SecurityGroup"):
        for ingress in _items(r.inputs.get("ingress")):
            yield from _world_open_ingress(rule, r, ingress)
    # the same rule declared as its own resource (aws.ec2.SecurityGroupRule, type "ingress")
    for r in stack.of("aws:ec2/securityGroupRule:SecurityGroupRule"):
        if _equals(r.inputs.get("type"), "egress") is not True:
            yield from _world_open_ingress(rule, r, r.inputs)
    for r in stack.of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        inputs = r.inputs
        yield from _world_open_ingress(rule, r, {
            "cidrBlocks": [inputs.get("cidrIpv4")], "ipv6CidrBlocks": [inputs.get("cidrIpv6")],
            "protocol": inputs.get("ipProtocol"), "fromPort": inputs.get("fromPort"), "toPort": inputs.get("toPort")})


def _world_open_ingress(rule: str, r: ResourceView, ingress: Any) -> Iterable[Finding]:
    open_world = _any([_contains(_get(ingress, "cidrBlocks"), {"0.0.0.0/0"}),
                       _contains(_get(ingress, "ipv6CidrBlocks"), {"::/0"})])
    ports = _ports(ingress)
    beyond_web = UNKNOWN if ports is UNKNOWN else not ports <= PUBLIC_PORTS
    exposed = _all([open_world, _any([_equals(_get(ingress, "protocol"), "-1"), beyond_web])])
    shown = "unknown ports" if ports is UNKNOWN else f"ports {sorted(ports)[:5]}"
    yield from _judge(rule, r, _not(exposed), f"ingress from anywhere on {shown}")


def _statement_findings(statement: Any) -> Iterator[tuple[Verdict, str]]:
    """(verdict, message) for each least-privilege test of one policy statement."""
    if statement is UNKNOWN:
        yield UNKNOWN, "a statement of the policy is unknown"
        return
    if not isinstance(statement, Mapping):
        return
    allow = _equals(statement.get("Effect"), "Allow")
    if allow is False:
        return
    actions = _items(statement.get("Action"))
    every = _contains(actions, {"*", "*:*"})
    service_wide = _all([_contains(statement.get("Resource"), {"*"}),
                         _any(UNKNOWN if a is UNKNOWN else str(a).endswith(":*") for a in actions)])
    if every is not False:
        yield _not(_all([allow, every])), "allows every action ('*')"
    if every is not True:
        yield (_not(_all([allow, service_wide])),
               f"allows a whole service ({sorted({str(a) for a in actions})}) on every resource")
    if "NotAction" in statement or "NotResource" in statement:
        yield _not(allow), "uses NotAction/NotResource in an Allow"


def _managed_policy(r: ResourceView, arn: Any, prop: str, policies: Collection[str]) -> Verdict:
    """An attached policy ARN is no AWS-managed admin policy. An unknown ARN computed from a policy of
    this stack passes here: that policy's own document is checked by the same rule."""
    if arn is UNKNOWN:
        return True if _source(r, prop, policies) is not None else UNKNOWN
    return not ("FullAccess" in str(arn) or str(arn).endswith("/AdministratorAccess"))


def iam_least_privilege(stack: StackView) -> Iterable[Finding]:
    rule = "iam-least-privilege"
    for r in stack.of("aws:iam/rolePolicy:RolePolicy", IAM_POLICY, "aws:iam/userPolicy:UserPolicy",
                      "aws:iam/groupPolicy:GroupPolicy"):
        doc = _doc(r.inputs.get("policy"))
        if doc is UNKNOWN:
            yield Undecided(rule, _addr(r), "policy document is unknown")
            continue
        for statement in _items(_get(doc, "Statement")):
            for verdict, message in _statement_findings(statement):
                yield from _judge(rule, r, verdict, message)
    policies = {_addr(p) for p in stack.of(IAM_POLICY)}
    for r in stack.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                      "aws:iam/policyAttachment:PolicyAttachment"):
        arn = r.inputs.get("policyArn")
        yield from _judge(rule, r, _managed_policy(r, arn, "policyArn", policies), f"attaches {arn}")
    for r in stack.of("aws:iam/role:Role"):
        for arn in _items(r.inputs.get("managedPolicyArns")):
            yield from _judge(rule, r, _managed_policy(r, arn, "managedPolicyArns", policies), f"attaches {arn}")


def required_tags(stack: StackView, is_taggable: Callable[[str], bool] | None = None) -> Iterable[Finding]:
    rule = "required-tags"
    if is_taggable is None:
        from infra.tagging import is_taggable as default

        is_taggable = default
    for r in stack.resources:
        if not r.type.startswith("aws:") or not is_taggable(r.type):
            continue
        tags = r.inputs.get("tags") or {}
        if tags is UNKNOWN:
            yield Undecided(rule, _addr(r), "tags are unknown")
            continue
        if not isinstance(tags, Mapping):
            yield Violation(rule, _addr(r), f"tags are not a map ({tags!r})")
            continue
        # a tag value computed from an output is set (only not known yet)
        missing = [t for t in REQUIRED_TAGS if not _given(tags.get(t))]
        if missing:
            yield Violation(rule, _addr(r), f"missing tags {missing}")
        else:
            environment = tags.get("environment")
            yield from _judge(rule, r, _equals(environment, stack.stack),
                              f"environment tag {environment!r} is not {stack.stack!r}")


def log_retention(stack: StackView) -> Iterable[Finding]:
    rule = "log-retention"
    names: set[str] = set()
    unnamed: list[ResourceView] = []  # log groups whose name is unknown yet
    for r in stack.of(LOG_GROUP):
        name = r.inputs.get("name")
        if name is UNKNOWN:
            unnamed.append(r)
        else:
            names.add(str(name))
        days = r.inputs.get("retentionInDays")
        verdict: Verdict = UNKNOWN if days is UNKNOWN else _number(days) in LOG_RETENTION_DAYS
        yield from _judge(rule, r, verdict, f"log group has no valid retention ({days!r})")
    groups = {_addr(g) for g in stack.of(LOG_GROUP)}
    for r in stack.of("aws:lambda/function:Function"):
        configured = _get(r.inputs, "loggingConfig", "logGroup")
        function_name = r.inputs.get("name")
        if configured is UNKNOWN:
            # computed from one of this stack's log groups (its name or ARN): managed
            verdict = True if _source(r, "loggingConfig", groups) is not None else UNKNOWN
            group = "an unknown log group"
        elif not configured and function_name is UNKNOWN:
            # the default group, /aws/lambda/<name>, of a function whose name is not known yet
            verdict = True if any(_source(g, "name", {_addr(r)}) for g in unnamed) else UNKNOWN
            group = "/aws/lambda/<unknown name>"
        else:
            group = str(configured or f"/aws/lambda/{function_name}")
            verdict = True if group in names else (UNKNOWN if unnamed else False)
        yield from _judge(rule, r, verdict, f"function logs to {group}, which the stack does not manage")


def prod_protections(stack: StackView) -> Iterable[Finding]:
    rule = "prod-protections"
    if stack.stack not in PROTECTED_ENVIRONMENTS:
        return
    for r in stack.resources:
        if r.type in STATEFUL_TYPES and not r.protect:
            yield Violation(rule, _addr(r), "stateful resource is not protected")
    for r in stack.of("aws:dynamodb/table:Table"):
        yield from _judge(rule, r, _truthy(r.inputs.get("deletionProtectionEnabled")),
                          "DynamoDB deletion protection is off")
        yield from _judge(rule, r, _truthy(_get(r.inputs, "pointInTimeRecovery", "enabled")),
                          "DynamoDB point-in-time recovery is off")
    for r in stack.of(BUCKET):
        yield from _judge(rule, r, _not(_truthy(r.inputs.get("forceDestroy"))), "bucket can be force-destroyed")


Rule = Callable[[StackView], Iterable[Finding]]

RULES: Final[dict[str, tuple[Rule, str]]] = {
    "encryption-at-rest": (encryption_at_rest, "Data stores are encrypted at rest (KMS or SSE)."),
    "tls-in-transit": (tls_in_transit, "Buckets deny non-TLS requests; listeners and brokers use TLS."),
    "public-access-blocked": (public_access_blocked, "No public buckets; no world-open ports but 80/443."),
    "iam-least-privilege": (iam_least_privilege, "No '*' actions, no service-wide '*' on '*', no *FullAccess."),
    "required-tags": (required_tags, "Every taggable resource carries the central tags."),
    "log-retention": (log_retention, "Every log group has a retention; every function logs to one."),
    "prod-protections": (prod_protections, "prod: protected stateful resources, deletion protection, PITR."),
}


def _order(finding: Finding) -> tuple[str, str, str]:
    return finding.rule, finding.resource, finding.message


def evaluate(stack: str, resources: Sequence[ResourceView],
             rules: Iterable[str] | None = None) -> tuple[list[Violation], list[Undecided]]:
    """The violations and the undecided checks of ``rules`` (every rule by default) over one stack."""
    view = StackView(stack, resources)
    violations: list[Violation] = []
    undecided: list[Undecided] = []
    for name in RULES if rules is None else rules:
        for finding in RULES[name][0](view):
            if isinstance(finding, Violation):
                violations.append(finding)
            else:
                undecided.append(finding)
    return sorted(violations, key=_order), sorted(undecided, key=_order)


def check_all(stack: str, resources: Sequence[ResourceView]) -> list[Violation]:
    """Every rule over one stack's resources; an empty list means the stack passes.

    Undecided checks exist only with unknown values, which the offline renderer never produces;
    ``evaluate`` returns them too."""
    return evaluate(stack, resources)[0]
