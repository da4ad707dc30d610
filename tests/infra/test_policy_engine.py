"""The policy pack through pulumi_policy's own analyzer, the way ``pulumi preview --policy-pack`` runs it.

Each test builds the ``AnalyzeStackRequest`` the engine sends for a rendered stack (every resource's
properties as a protobuf ``Struct``, its URN, parent, dependencies, property dependencies and protect
flag; archives in their wire form) and hands it to ``_PolicyAnalyzerServicer.AnalyzeStack`` in-process.
So the rules see what a policy sees under the engine: ``Mapping`` / ``Sequence`` proxies, floats for
every number, and, for a preview, the engine's unknown sentinels.

``_PolicyAnalyzerServicer`` is private to pulumi-policy (it is the servicer ``PolicyPack`` serves over
gRPC; ``PolicyPack`` itself serves forever, so it cannot be called here). These tests are written
against pulumi-policy 1.21.0, which is why that package should stay pinned to the tested version.

A first preview is modelled from the renderer's own mock outputs: an input that contains an id, an
ARN or another computed output of a resource it depends on is unknown, as is every output-derived
value before the resources exist (``bucket=bucket.id``, a policy document built around an ARN,
``layers=[layer.arn]``); with ``names_unknown`` the bucket and log group names too, as autonaming
would leave them. Not proven here: which values the real engine and the AWS provider leave unknown
(the model errs towards more: a string merely containing a dependency's id counts as computed from
it), and the gRPC transport between the engine and the pack.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pp = pytest.importorskip("pulumi_policy")

from google.protobuf import struct_pb2  # noqa: E402
from pulumi.runtime import proto  # noqa: E402
from pulumi_policy import deserialize as wire  # noqa: E402
from pulumi_policy import proxy  # noqa: E402
from pulumi_policy.policy import _PolicyAnalyzerServicer  # noqa: E402

from infra.plan import Rendered, Resource, engine  # noqa: E402
from infra.policy import pack  # noqa: E402
from infra.policy.checks import RULES  # noqa: E402
from tests.infra.test_policy import BREAKAGES  # noqa: E402

PROJECT = "dataforge"
SENTINEL = proxy.UNKNOWN_STRING_VALUE  # what the engine sends for an unknown computed string
# Breakages whose evidence is a policy document: (the resource holding it, the resource a finding names).
# A document that embeds an ARN is unknown as a whole until the resources exist.
POLICY_DOCUMENT_EVIDENCE = {"admin-policy": ("ingestion-msk-landing-role-policy", "ingestion-msk-landing-role-policy"),
                            "no-tls-policy": ("lake-bronze-policy", "lake-bronze-bucket")}


# --- the request the engine sends ---------------------------------------------------------------


@dataclass
class Preview:
    """What the engine knows of each resource (by address): its properties and per-property dependencies."""

    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    property_dependencies: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _wire_value(value: Any) -> Any:
    """A rendered property in the engine's wire form (archives and assets carry their signature)."""
    if isinstance(value, dict):
        if value.get("asset") in ("FileArchive", "FileAsset") and "file" in value:
            sig = wire.SPECIAL_ARCHIVE_SIG if value["asset"] == "FileArchive" else wire.SPECIAL_ASSET_SIG
            return {wire.SPECIAL_SIG_KEY: sig, "path": value["file"]}
        return {k: _wire_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire_value(v) for v in value]
    return value


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(_wire_value(props))  # every number becomes a double, as MarshalProperties does
    return message


def _urns(rendered: Rendered) -> dict[str, str]:
    """The URN of every resource: parent types qualify the type (``parentType$type``)."""
    by_address = {r.address: r for r in rendered.resources}

    def qualified(r: Resource) -> str:
        parent = by_address.get(r.parent or "")
        return f"{qualified(parent)}${r.type}" if parent is not None else r.type

    return {r.address: f"urn:pulumi:{rendered.stack}::{PROJECT}::{qualified(r)}::{r.name}" for r in rendered.resources}


def request(rendered: Rendered, preview: Preview | None = None, *,
            with_dependencies: bool = True) -> proto.AnalyzeStackRequest:
    """The ``AnalyzeStackRequest`` for ``rendered`` (its inputs, or what ``preview`` knows of them)."""
    urns = _urns(rendered)
    root = f"urn:pulumi:{rendered.stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{rendered.stack}"
    resources = [proto.AnalyzerResource(type="pulumi:pulumi:Stack", name=f"{PROJECT}-{rendered.stack}", urn=root,
                                        properties=_struct({}), options=proto.AnalyzerResourceOptions()),
                 proto.AnalyzerResource(type="pulumi:providers:aws", name="default_7", parent=root,
                                        urn=f"urn:pulumi:{rendered.stack}::{PROJECT}::pulumi:providers:aws::default_7",
                                        properties=_struct({"region": "us-east-1"}),
                                        options=proto.AnalyzerResourceOptions())]
    for r in rendered.resources:
        props = preview.inputs.get(r.address, r.inputs) if preview else r.inputs
        by_property = preview.property_dependencies.get(r.address, {}) if preview else {}
        message = proto.AnalyzerResource(
            type=r.type, name=r.name, urn=urns[r.address], parent=urns.get(r.parent or "", root),
            properties=_struct(props), options=proto.AnalyzerResourceOptions(protect=r.protect))
        if with_dependencies:
            message.dependencies.extend(urns[d] for d in r.dependencies if d in urns)
            for prop, sources in by_property.items():
                message.propertyDependencies[prop].urns.extend(urns[s] for s in sources)
        resources.append(message)
    return proto.AnalyzeStackRequest(resources=resources)


# --- the analyzer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    mandatory: bool
    resource: str  # "<type>::<name>", "" when the diagnostic names no resource
    message: str  # what the rule reported (the diagnostic's last line)


def _address(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<parentType$type>::<name>`` as ``<type>::<name>``."""
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{'::'.join(parts[3:])}" if len(parts) >= 4 else urn


def servicer() -> Any:
    return _PolicyAnalyzerServicer(PROJECT, "0.0.1", pack.policies(), pp.EnforcementLevel.MANDATORY)


def analyze(message: proto.AnalyzeStackRequest) -> list[Diagnostic]:
    """The diagnostics the pack returns to the engine (an exception here is a failed preview)."""
    response = servicer().AnalyzeStack(message, None)
    return [Diagnostic(d.policyName, d.enforcementLevel == proto.MANDATORY, _address(d.urn),
                       d.message.splitlines()[-1]) for d in response.diagnostics]


def mandatory(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.mandatory]


def advisory(diagnostics: Iterable[Diagnostic]) -> dict[str, str]:
    return {d.policy: d.message for d in diagnostics if not d.mandatory}


# --- a first preview --------------------------------------------------------------------------------


def first_preview(rendered: Rendered, region: str, *, names_unknown: bool = False) -> Preview:
    """What a first ``pulumi preview`` (no resource exists yet) knows of ``rendered``'s resources.

    The renderer's mock engine answers each registration with computed outputs (``id``, ``arn``,
    URLs, ...); before the resources exist every one of them is unknown, and so is every input that
    contains one of them, as a whole string (``Output.concat`` / ``json_dumps``) or as one list
    element. Outputs that only repeat a known input (``bucket.bucket``, ``log_group.name``) stay known.
    ``names_unknown`` also leaves the buckets' and log groups' names unknown, as autonaming would."""
    computed: dict[str, set[str]] = {}
    for r in rendered.resources:
        if not r.custom:
            continue
        _, state = engine._state(r.type, r.name, r.inputs, region)
        computed[r.address] = {v for k, v in state.items() if isinstance(v, str) and v and r.inputs.get(k) != v}
    preview = Preview()
    for r in rendered.resources:
        inputs = copy.deepcopy(r.inputs)
        key = "bucket" if r.type == "aws:s3/bucket:Bucket" else "name"
        if names_unknown and r.type in ("aws:s3/bucket:Bucket", "aws:cloudwatch/logGroup:LogGroup") and key in inputs:
            computed.setdefault(r.address, set()).add(str(inputs[key]))
            inputs[key] = SENTINEL
        sources = {d: computed[d] for d in r.dependencies if d in computed}
        by_property: dict[str, list[str]] = {}
        for prop, value in list(inputs.items()):
            hits: set[str] = set()
            inputs[prop] = _unknown_where_computed(value, sources, hits)
            if hits:
                by_property[prop] = sorted(hits)
        preview.inputs[r.address] = inputs
        preview.property_dependencies[r.address] = by_property
    return preview


def _unknown_where_computed(value: Any, sources: dict[str, set[str]], hits: set[str]) -> Any:
    if isinstance(value, str):
        found = {d for d, outputs in sources.items() if any(o in value for o in outputs)}
        hits |= found
        return SENTINEL if found and value != SENTINEL else value
    if isinstance(value, dict):
        return {k: _unknown_where_computed(v, sources, hits) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown_where_computed(v, sources, hits) for v in value]
    return value


@pytest.fixture(scope="module")
def regions(source_snapshot: Path) -> dict[str, str]:
    return {s: str(engine.load_stack_config(s, source_snapshot).values.get("aws:region", "us-east-1"))
            for s in ("dev", "staging", "prod")}


def _broken(stacks: dict[str, Rendered], breakage: str) -> tuple[str, Rendered]:
    rule, breaker = BREAKAGES[breakage]
    broken = copy.deepcopy(stacks["prod"])
    breaker(broken)
    return rule, broken


# --- (1) the committed stacks pass through the engine's types -------------------------------------------


def test_every_stack_passes_every_rule_through_the_analyzer(stack: Rendered) -> None:
    assert analyze(request(stack)) == []


def test_the_pack_declares_every_rule_mandatory_and_no_resource_policy(stacks: dict[str, Rendered]) -> None:
    info = servicer().GetAnalyzerInfo(None, None)
    assert {p.name: p.enforcementLevel for p in info.policies} == dict.fromkeys(RULES, proto.MANDATORY)
    # every rule is a stack policy: the per-resource Analyze call has nothing to run
    r = stacks["prod"].by_name("lake-gold-bucket")
    one = proto.AnalyzeRequest(type=r.type, name=r.name, urn=_urns(stacks["prod"])[r.address],
                               properties=_struct(r.inputs), options=proto.AnalyzerResourceOptions(protect=True))
    assert list(servicer().Analyze(one, None).diagnostics) == []


# --- (2) every breakage is reported through the engine's types ---------------------------------------------


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_resource_fails_its_rule_through_the_analyzer(stacks: dict[str, Rendered], breakage: str) -> None:
    rule, broken = _broken(stacks, breakage)
    diagnostics = analyze(request(broken))
    assert diagnostics, f"{breakage} went unnoticed"
    assert all(d.mandatory for d in diagnostics), diagnostics
    assert {d.policy for d in diagnostics} == {rule}
    assert all(d.resource for d in diagnostics), "every violation names its resource"


# --- (3) a first preview: unknown values ------------------------------------------------------------------


@pytest.mark.parametrize("names_unknown", [False, True], ids=["outputs-unknown", "names-unknown-too"])
def test_a_first_preview_of_every_stack_blocks_nothing_and_says_what_it_cannot_tell(
        stack: Rendered, regions: dict[str, str], names_unknown: bool) -> None:
    preview = first_preview(stack, regions[stack.stack], names_unknown=names_unknown)
    diagnostics = analyze(request(stack, preview))
    assert mandatory(diagnostics) == []
    notes = advisory(diagnostics)
    # Only the rules whose evidence is a policy document are left undecided: the documents embed ARNs.
    assert set(notes) == {"iam-least-privilege", "tls-in-transit"}, notes
    assert "policy document is unknown" in notes["iam-least-privilege"]
    assert "bucket policy does not deny requests without TLS" in notes["tls-in-transit"]
    assert all("can't be known" not in m for m in notes.values()), "no rule may stumble on an unknown value"


@pytest.mark.parametrize("names_unknown", [False, True], ids=["outputs-unknown", "names-unknown-too"])
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_first_preview_still_blocks_what_known_values_decide(
        stacks: dict[str, Rendered], regions: dict[str, str], breakage: str, names_unknown: bool) -> None:
    rule, broken = _broken(stacks, breakage)
    preview = first_preview(broken, regions["prod"], names_unknown=names_unknown)
    diagnostics = analyze(request(broken, preview))
    holder, named = POLICY_DOCUMENT_EVIDENCE.get(breakage, ("", ""))
    if holder and preview.inputs[broken.by_name(holder).address]["policy"] == SENTINEL:
        # the evidence itself is unknown: the rule says it cannot tell yet, naming the resource
        assert mandatory(diagnostics) == []
        assert named in advisory(diagnostics)[rule]
    else:
        assert mandatory(diagnostics), f"{breakage} was downgraded or missed in a first preview: {diagnostics}"
        assert {d.policy for d in mandatory(diagnostics)} == {rule}


def test_without_dependency_information_unknown_references_are_undecided_never_violations(
        stacks: dict[str, Rendered], regions: dict[str, str]) -> None:
    """An engine that sends no dependencies cannot tell which bucket ``bucket=<unknown>`` configures:
    the bucket checks say so (advisory) instead of failing every bucket."""
    prod = stacks["prod"]
    diagnostics = analyze(request(prod, first_preview(prod, regions["prod"]), with_dependencies=False))
    assert mandatory(diagnostics) == []
    notes = advisory(diagnostics)
    assert {"encryption-at-rest", "public-access-blocked", "tls-in-transit"} <= set(notes)
    assert "lake-gold-bucket" in notes["public-access-blocked"]


# --- the engine's value shapes, one at a time -----------------------------------------------------------


def _one(resource_type: str, name: str, props: dict[str, Any], *, protect: bool = False) -> Resource:
    return Resource(resource_type, name, None, True, protect, props)


def _stack_of(*resources: Resource) -> Rendered:
    return Rendered(project=PROJECT, stack="dev", resources=list(resources), outputs={})


TAGS = {"project": "dataforge", "environment": "dev", "owner": "data-platform", "cost-center": "dataforge",
        "managed-by": "pulumi"}
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _messages(diagnostics: list[Diagnostic], rule: str) -> list[str]:
    return [d.message for d in mandatory(diagnostics) if d.policy == rule]


def test_a_log_retention_given_as_a_float_passes() -> None:
    group = _one("aws:cloudwatch/logGroup:LogGroup", "logs", {"name": "/x", "retentionInDays": 30.0, "tags": TAGS})
    assert analyze(request(_stack_of(group))) == []
    group.inputs["retentionInDays"] = 31
    assert _messages(analyze(request(_stack_of(group))), "log-retention") == [
        "log group has no valid retention (31)"]


def test_a_policy_document_given_as_an_object_is_read() -> None:
    """A document as a JSON object arrives as nested proxies: every statement must still be read."""
    policy = _one("aws:iam/rolePolicy:RolePolicy", "inline", {"role": "r", "policy": ADMIN})
    assert _messages(analyze(request(_stack_of(policy))), "iam-least-privilege") == ["allows every action ('*')"]


def test_list_valued_fields_are_read_item_by_item() -> None:
    role = _one("aws:iam/role:Role", "role", {"assumeRolePolicy": "{}", "tags": TAGS, "managedPolicyArns": [
        "arn:aws:iam::123456789012:policy/mine", "arn:aws:iam::aws:policy/AmazonS3FullAccess"]})
    group = _one("aws:ec2/securityGroup:SecurityGroup", "sg", {"tags": TAGS, "ingress": [
        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.0.0.0/8"]},
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}]})
    diagnostics = analyze(request(_stack_of(role, group)))
    assert _messages(diagnostics, "iam-least-privilege") == ["attaches arn:aws:iam::aws:policy/AmazonS3FullAccess"]
    assert _messages(diagnostics, "public-access-blocked") == ["ingress from anywhere on ports [22]"]


def test_a_secret_value_is_read_as_its_value() -> None:
    """Secrets arrive wrapped in their wire signature; the policy sees the plain value."""
    secret = {wire.SPECIAL_SIG_KEY: wire.SPECIAL_SECRET_SIG, "value": "hunter2"}
    parameter = _one("aws:ssm/parameter:Parameter", "p", {"type": "String", "value": secret, "tags": TAGS})
    assert _messages(analyze(request(_stack_of(parameter))), "encryption-at-rest") == [
        "not encrypted at rest (or key rotation off)"]


def test_unknown_values_are_decided_where_known_values_suffice() -> None:
    role = _one("aws:iam/role:Role", "role", {
        "assumeRolePolicy": SENTINEL, "tags": {**TAGS, "owner": SENTINEL},
        "managedPolicyArns": [SENTINEL, "arn:aws:iam::aws:policy/AdministratorAccess"]})
    queue = _one("aws:sqs/queue:Queue", "q", {"kmsMasterKeyId": SENTINEL, "tags": TAGS})
    table = _one("aws:dynamodb/table:Table", "t", {"serverSideEncryption": {"enabled": True, "kmsKeyArn": SENTINEL},
                                                   "tags": TAGS})
    diagnostics = analyze(request(_stack_of(role, queue, table)))
    # the known AdministratorAccess ARN is a violation; the unknown ARN beside it cannot be told
    assert _messages(diagnostics, "iam-least-privilege") == ["attaches arn:aws:iam::aws:policy/AdministratorAccess"]
    assert "role" in advisory(diagnostics)["iam-least-privilege"]
    # a key ARN or a tag value wired from an output is set: nothing to report
    assert {d.policy for d in diagnostics} == {"iam-least-privilege"}


def test_undecidable_flags_are_reported_as_advisory_naming_the_resource() -> None:
    group = _one("aws:ec2/securityGroup:SecurityGroup", "sg", {"tags": TAGS, "ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": SENTINEL}]})
    key = _one("aws:kms/key:Key", "key", {"enableKeyRotation": proxy.UNKNOWN_BOOLEAN_VALUE, "tags": TAGS})
    diagnostics = analyze(request(_stack_of(group, key)))
    assert mandatory(diagnostics) == []
    notes = advisory(diagnostics)
    assert "aws:ec2/securityGroup:SecurityGroup::sg" in notes["public-access-blocked"]
    assert "aws:kms/key:Key::key" in notes["encryption-at-rest"]


def test_the_adapter_hands_rules_plain_values() -> None:
    """What ``pack.resource_view`` makes of a proxied resource: dicts, lists, ints and UNKNOWN."""
    from infra.policy.checks import UNKNOWN

    seen: dict[str, Any] = {}

    def capture(args: Any, _report: Callable[[str, str | None], None]) -> None:
        queue = next(r for r in args.resources if r.name == "q")
        seen.update(pack.resource_view(queue, pp).inputs)

    policy = pp.StackValidationPolicy(name="capture", description="capture", validate=capture)
    analyzer = _PolicyAnalyzerServicer(PROJECT, "0.0.1", [policy], pp.EnforcementLevel.MANDATORY)
    props = {"n": 30, "ratio": 0.5, "list": [{"a": 1}, "x"], "nested": {"arn": SENTINEL}, "flag": True}
    analyzer.AnalyzeStack(request(_stack_of(_one("aws:sqs/queue:Queue", "q", props))), None)
    assert seen == {"n": 30, "ratio": 0.5, "list": [{"a": 1}, "x"], "nested": {"arn": UNKNOWN}, "flag": True}
    assert [type(seen[k]) for k in ("n", "list", "nested")] == [int, list, dict]
