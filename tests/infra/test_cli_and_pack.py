"""The CLI module (``dataforge plan``) and the policy-pack adapter."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.errors import InfraError
from infra.plan import Rendered
from infra.policy import pack
from infra.policy.checks import RULES

ROOT = Path(__file__).resolve().parents[2]


def _cli() -> ModuleType:
    from devkit.cli import infra

    return infra


def test_plan_command_prints_json_and_passes_the_checks(tmp_path: Path) -> None:
    cli = _cli()
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(cli.app, ["plan", "--stack", "staging", "--check", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert plan["stack"] == "staging"
    assert any(r["type"] == "aws:msk/serverlessCluster:ServerlessCluster" for r in plan["resources"])
    assert callable(cli.plan)
    assert callable(cli.diff)


def test_unknown_stack_is_a_clean_error() -> None:
    result = CliRunner().invoke(_cli().app, ["plan", "--stack", "qa"])
    assert result.exit_code == 2
    assert "Pulumi.qa.yaml" in result.output


def _policy_resource(resource_type: str, name: str, props: dict[str, Any], protect: bool = True) -> Any:
    """A ``pulumi_policy.PolicyResource`` as the analyzer builds it: props behind the unknown-checking proxy."""
    pp = pytest.importorskip("pulumi_policy")
    opts = pp.PolicyResourceOptions(protect, [], None, [], pp.PolicyCustomTimeouts(0, 0, 0), [], None)
    return pp.PolicyResource(resource_type, pp.proxy.unknown_checking_proxy(copy.deepcopy(props)),
                             f"urn:pulumi:prod::dataforge::{resource_type}::{name}", name, opts, None, None, [], {})


class _Args:
    def __init__(self, resources: list[Any]) -> None:
        self.resources = resources


def test_policy_pack_validators_report_on_policy_resources(stacks: dict[str, Rendered]) -> None:
    resources = [_policy_resource(r.type, r.name, r.inputs) for r in stacks["prod"].resources]
    reported: list[tuple[str, str | None]] = []
    for rule in RULES:
        pack.validator(rule)(_Args(resources), lambda message, urn: reported.append((message, urn)))
    assert reported == []
    bad = _policy_resource("aws:iam/rolePolicy:RolePolicy", "admin", {
        "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})})
    pack.validator("iam-least-privilege")(_Args([*resources, bad]), lambda m, urn: reported.append((m, urn)))
    assert reported == [("allows every action ('*')", bad.urn)]


def test_policy_pack_validators_report_violations_then_raise_what_they_cannot_tell() -> None:
    """Undecided checks leave as one ``UnknownValueError`` (the engine's advisory "can't run policy ...
    during preview" line), after the violations known values decide were reported."""
    pp = pytest.importorskip("pulumi_policy")
    unknown = pp.proxy.UNKNOWN_STRING_VALUE
    resources = [
        _policy_resource("aws:iam/rolePolicy:RolePolicy", "later", {"role": "r", "policy": unknown}),
        _policy_resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", {
            "role": unknown, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ]
    reported: list[tuple[str, str | None]] = []
    with pytest.raises(pp.proxy.UnknownValueError) as raised:
        pack.validator("iam-least-privilege")(_Args(resources), lambda m, urn: reported.append((m, urn)))
    assert reported == [("attaches arn:aws:iam::aws:policy/AdministratorAccess", resources[1].urn)]
    assert "aws:iam/rolePolicy:RolePolicy::later: policy document is unknown" in raised.value.message


def test_policy_pack_has_one_policy_per_rule_or_names_the_missing_package() -> None:
    # (build_pack itself is not called: constructing a PolicyPack starts serving the analyzer)
    assert pack._stack_of("urn:pulumi:prod::dataforge::aws:s3/bucket:Bucket::b") == "prod"
    if importlib.util.find_spec("pulumi_policy") is None:
        with pytest.raises(InfraError, match="pulumi-policy"):
            pack.policies()
    else:
        assert sorted(p.name for p in pack.policies()) == sorted(RULES)
