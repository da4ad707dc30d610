"""The CLI module (``dataforge plan``) and the policy-pack adapter."""

from __future__ import annotations

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


class _Opts:
    def __init__(self) -> None:
        self.protect = False


class _PolicyResource:
    def __init__(self, resource_type: str, name: str, props: dict[str, Any]) -> None:
        self.resource_type, self.name, self.props, self.opts = resource_type, name, props, _Opts()
        self.urn = f"urn:pulumi:prod::dataforge::{resource_type}::{name}"


def test_policy_pack_validators_report_on_policy_resources(stacks: dict[str, Rendered]) -> None:
    resources = [_PolicyResource(r.type, r.name, r.inputs) for r in stacks["prod"].resources]
    for resource in resources:
        resource.opts.protect = True
    reported: list[tuple[str, str | None]] = []
    pack.validator("iam-least-privilege")(_Args(resources), lambda message, urn: reported.append((message, urn)))
    assert reported == []
    bad = _PolicyResource("aws:iam/rolePolicy:RolePolicy", "admin", {
        "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})})
    pack.validator("iam-least-privilege")(_Args([*resources, bad]), lambda m, urn: reported.append((m, urn)))
    assert reported == [("allows every action ('*')", bad.urn)]


class _Args:
    def __init__(self, resources: list[_PolicyResource]) -> None:
        self.resources = resources


def test_policy_pack_has_one_policy_per_rule_or_names_the_missing_package() -> None:
    # (build_pack itself is not called: constructing a PolicyPack starts serving the analyzer)
    assert pack._stack_of("urn:pulumi:prod::dataforge::aws:s3/bucket:Bucket::b") == "prod"
    if importlib.util.find_spec("pulumi_policy") is None:
        with pytest.raises(InfraError, match="pulumi-policy"):
            pack.policies()
    else:
        assert sorted(p.name for p in pack.policies()) == sorted(RULES)
