"""The dashboard hosted for real: one port, the public origin, a route to the API, an immutable image
named by its content, a grace period, App Runner refused, and the command that builds and pushes the image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dataforge import envvars
from devkit.dashboard_image import (
    DOCKERFILE,
    Dockerfile,
    ImagePush,
    Repository,
    build_command,
    context_files,
    first_deploy_targets,
    image_tag,
)
from devkit.rehearse.dashboard import EGRESS_RULE, internet_route_problems, static_problems, wiring
from infra.components.dashboard import CONTAINER_PORT, ORIGIN_VARIABLE, PORT_VARIABLE
from infra.errors import InfraConfigError
from infra.plan import Rendered
from infra.settings import DASHBOARD_IMAGE_TAG, StackSettings

ROOT = Path(__file__).resolve().parents[2]
REPO_URL = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dataforge-dev-dashboard"
TAG = "src-" + "0" * 24
VALID = {"dashboard": {"domainName": "dashboard.example.org", "hostedZoneName": "example.org", "imageTag": TAG}}


def container(stack: Rendered) -> dict[str, Any]:
    definitions: list[dict[str, Any]] = json.loads(stack.by_name("dashboard-task").inputs["containerDefinitions"])
    return definitions[0]


def environment(stack: Rendered) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(stack)["environment"]}


# --- port and origin ---------------------------------------------------------------------------------------
def test_one_port_from_the_image_to_the_target_group(stack: Rendered) -> None:
    final = Dockerfile.parse(ROOT / DOCKERFILE).final
    w = wiring(stack)
    assert final.environment({})[PORT_VARIABLE] == str(CONTAINER_PORT)  # the image's default (docker run)
    assert final.exposed == [CONTAINER_PORT]
    assert environment(stack)[PORT_VARIABLE] == str(CONTAINER_PORT)  # what the task's command serves on
    assert (w.container_port, w.service_container_port, w.target_port, w.health_port) == (CONTAINER_PORT,) * 4
    assert '--port "$PORT"' in final.cmd[-1]
    ingress = stack.by_name("dashboard-task-ingress").inputs
    assert (ingress["fromPort"], ingress["toPort"]) == (CONTAINER_PORT, CONTAINER_PORT)
    assert ingress["referencedSecurityGroupId"] == "dashboard-alb-sg-id"


def test_the_allowed_websocket_origin_is_the_hostname_browsers_open(stack: Rendered) -> None:
    url = stack.outputs["dashboard_url"]
    hostname = url.removeprefix("https://")
    assert url == f"https://{hostname}"
    assert "." in hostname
    assert environment(stack)[ORIGIN_VARIABLE] == hostname
    assert "--allow-websocket-origin \"${DASHBOARD_ALLOWED_ORIGIN" in Dockerfile.parse(ROOT / DOCKERFILE).final.cmd[-1]
    # Without the variable the image's command refuses to start instead of allowing some other origin.
    assert ORIGIN_VARIABLE not in Dockerfile.parse(ROOT / DOCKERFILE).final.environment({})


def test_the_declared_wiring_has_no_problem(stack: Rendered) -> None:
    assert static_problems(stack, Dockerfile.parse(ROOT / DOCKERFILE)) == []


# --- the route to the API ----------------------------------------------------------------------------------
def test_the_tasks_reach_the_public_api_through_a_nat_gateway_of_their_zone(stack: Rendered) -> None:
    assert internet_route_problems(stack, wiring(stack)) == []
    nats = stack.of_type("aws:ec2/natGateway:NatGateway")
    subnets = wiring(stack).subnets
    assert len(nats) == len(subnets) >= 2  # one per zone
    for index, nat in enumerate(nats):
        assert nat.inputs["subnetId"] == f"network-public-{index}-id"
        assert nat.inputs["connectivityType"] == "public"
    assert environment(stack)[envvars.API_URL] == stack.outputs["api_url"]


def test_only_the_dashboard_tasks_may_leave_the_vpc(stack: Rendered) -> None:
    open_egress = {r.inputs["securityGroupId"] for r in stack.of_type(EGRESS_RULE)
                   if r.inputs.get("cidrIpv4") == "0.0.0.0/0"}
    assert open_egress == {"dashboard-task-sg-id"}
    assert not [r.name for r in stack.of_type("aws:ec2/securityGroup:SecurityGroup") if r.inputs.get("egress")]


def test_a_route_problem_is_found() -> None:
    r = Rendered.from_json(json.loads(json.dumps(_minimal_route_stack())))
    w = wiring(r)
    assert internet_route_problems(r, w) == []
    r.resources = [x for x in r.resources if x.type != "aws:ec2/route:Route"]
    assert internet_route_problems(r, w) == ["subnet private-0-id: no default route to a NAT gateway"]


# --- image, repository, service ----------------------------------------------------------------------------
def test_the_repository_refuses_to_overwrite_a_tag_and_scans_on_push(stack: Rendered) -> None:
    repo = stack.by_name("dashboard-repo").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True


def test_the_task_names_its_image_by_the_content_derived_tag_of_the_stack(stack: Rendered) -> None:
    image = container(stack)["image"]
    repository, _, tag = image.rpartition(":")
    assert repository == stack.outputs["dashboard_repository_url"]
    assert DASHBOARD_IMAGE_TAG.fullmatch(tag), image
    assert tag != "latest"


def test_the_service_has_a_grace_period_and_keeps_its_circuit_breaker(stack: Rendered) -> None:
    service = stack.by_name("dashboard-service").inputs
    assert service["healthCheckGracePeriodSeconds"] >= 60
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert container(stack)["portMappings"] == [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}]


def test_no_app_runner_resource_is_declared(stack: Rendered) -> None:
    assert not [r for r in stack.resources if r.type.startswith("aws:apprunner")]


# --- settings ----------------------------------------------------------------------------------------------
def test_app_runner_is_refused_with_the_reasons() -> None:
    raw = {"dashboard": {**VALID["dashboard"], "hosting": "apprunner"}}
    with pytest.raises(InfraConfigError) as refused:
        StackSettings.from_mapping("dev", raw)
    message = str(refused.value)
    assert message.startswith("Pulumi.dev.yaml, dataforge:dashboard: `hosting: apprunner` is refused")
    assert "no longer open to new customers" in message
    assert "apprunner-availability-change" in message
    assert "without WebSockets" in message


@pytest.mark.parametrize(("tag", "expected"), [
    (None, "`imageTag` is missing"),
    ("latest", "`imageTag` 'latest' is not a content-derived tag"),
    ("v1.2.3", "'v1.2.3' is not"),
    ("src-" + "0" * 23, "is not a content-derived tag"),
    ("src-" + "G" * 24, "is not a content-derived tag"),
])
def test_a_missing_or_mutable_image_tag_is_refused(tag: str | None, expected: str) -> None:
    dashboard = {key: value for key, value in VALID["dashboard"].items() if key != "imageTag"}
    if tag is not None:
        dashboard["imageTag"] = tag
    with pytest.raises(InfraConfigError, match=f"Pulumi.dev.yaml, dataforge:dashboard: .*{expected}"):
        StackSettings.from_mapping("dev", {"dashboard": dashboard})


def test_a_content_derived_tag_is_accepted() -> None:
    assert StackSettings.from_mapping("dev", VALID).dashboard.image_tag == TAG


# --- the image command -------------------------------------------------------------------------------------
def _copy_sources(target: Path) -> Path:
    shutil.copytree(ROOT / "panel_dashboard", target / "panel_dashboard",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "dataforge", target / "dataforge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, target / name)
    return target


def test_the_tag_is_derived_from_what_the_image_is_built_from(tmp_path: Path) -> None:
    a = _copy_sources(tmp_path / "a")
    b = _copy_sources(tmp_path / "b")
    tag = image_tag(a)
    assert DASHBOARD_IMAGE_TAG.fullmatch(tag)
    assert image_tag(b) == tag  # same sources, elsewhere: same tag
    (b / "panel_dashboard" / "__pycache__").mkdir(exist_ok=True)
    (b / "panel_dashboard" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (b / "README.md").write_text("not copied by the Dockerfile\n")
    assert image_tag(b) == tag  # ignored or never copied: same tag
    (b / "panel_dashboard" / "layout.py").write_text((b / "panel_dashboard" / "layout.py").read_text() + "\n# x\n")
    assert image_tag(b) != tag  # the app changed
    (a / "uv.lock").write_text((a / "uv.lock").read_text() + "\n")
    assert image_tag(a) != tag  # the locked dependencies changed
    assert image_tag(_copy_sources(tmp_path / "c"), platform="linux/amd64") != tag


def test_the_tag_covers_every_file_the_dockerfile_copies() -> None:
    files = {str(f) for f in context_files(Dockerfile.parse(ROOT / DOCKERFILE), ROOT)}
    assert {"pyproject.toml", "uv.lock", "panel_dashboard/app.py", "dataforge/envvars.py",
            "panel_dashboard/Dockerfile"} <= files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if f.startswith(("devkit/", "infra/", "tests/", "native/"))]


def test_the_image_installs_the_locked_dashboard_packages_without_the_native_validator() -> None:
    text = (ROOT / DOCKERFILE).read_text()
    assert "uv export --frozen --no-dev --extra dashboard" in text
    assert "--no-emit-package dataforge-native" in text
    assert "--require-hashes" in text
    assert 'pip install ".[dashboard]"' not in text


def test_the_image_exports_the_lock_with_the_uv_the_makefile_bootstraps() -> None:
    makefile = re.search(r"^UV_VERSION\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    dockerfile = re.search(r"^ARG UV_VERSION=(\S+)$", (ROOT / DOCKERFILE).read_text(), re.MULTILINE)
    assert makefile is not None
    assert dockerfile is not None
    assert dockerfile.group(1) == makefile.group(1)


def test_the_build_command_builds_for_arm64_and_pushes_the_tag() -> None:
    repository = Repository.parse(REPO_URL)
    assert (repository.registry, repository.region, repository.name) == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", "dataforge-dev-dashboard")
    command = build_command(repository, TAG, ROOT, push=True)
    assert command == ["docker", "buildx", "build", "--platform", "linux/arm64", "--file", str(ROOT / DOCKERFILE),
                       "--tag", f"{REPO_URL}:{TAG}", "--provenance=false", "--push", str(ROOT)]
    with pytest.raises(Exception, match="not an ECR repository URL"):
        Repository.parse("dataforge-dashboard:latest")


class FakeRunner:
    def __init__(self, image_exists: bool) -> None:
        self.image_exists = image_exists
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, command: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(command), stdin))
        if command[:3] == ["aws", "ecr", "describe-images"]:
            return subprocess.CompletedProcess(list(command), 0 if self.image_exists else 254, "", "ImageNotFound")
        stdout = "password" if command[:3] == ["aws", "ecr", "get-login-password"] else ""
        return subprocess.CompletedProcess(list(command), 0, stdout, "")


@pytest.mark.parametrize("exists", [False, True])
def test_the_push_builds_only_a_tag_ecr_lacks_and_sets_the_stack_tag(exists: bool) -> None:
    job = ImagePush(stack="dev", repository=Repository.parse(REPO_URL), tag=TAG, root=ROOT)
    runner = FakeRunner(image_exists=exists)
    assert job.run(runner, log=lambda _: None) is not exists
    programs = [command[:3] for command, _ in runner.calls]
    if exists:
        assert programs == [["aws", "ecr", "describe-images"], ["pulumi", "config", "set"]]
    else:
        assert programs == [["aws", "ecr", "describe-images"], ["aws", "ecr", "get-login-password"],
                            ["docker", "login", "--username"], ["docker", "buildx", "build"],
                            ["pulumi", "config", "set"]]
        assert runner.calls[2][1] == "password"  # the password goes through stdin, never the command line
    assert runner.calls[-1][0] == ["pulumi", "config", "set", "--path", "dataforge:dashboard.imageTag", TAG,
                                   "--stack", "dev"]


def test_a_first_deploy_creates_the_repository_and_what_it_needs_first(stack: Rendered) -> None:
    targets = first_deploy_targets(stack)
    prefix = f"urn:pulumi:{stack.stack}::dataforge::"
    assert f"{prefix}dataforge:dashboard:Dashboard$aws:ecr/repository:Repository::dashboard-repo" in targets
    assert f"{prefix}dataforge:dashboard:Dashboard::dashboard" in targets
    repository = stack.by_name("dashboard-repo")
    names = {urn.rpartition("::")[2] for urn in targets}
    assert {dependency.partition("::")[2] for dependency in repository.dependencies} <= names
    assert "dashboard-service" not in names


def test_every_stack_file_names_a_content_derived_tag(stacks: dict[str, Rendered]) -> None:
    for stack in stacks.values():
        assert DASHBOARD_IMAGE_TAG.fullmatch(container(stack)["image"].rpartition(":")[2])


# --- a minimal network for the route check -----------------------------------------------------------------
def _resource(type_: str, name: str, **inputs: Any) -> dict[str, Any]:
    return {"type": type_, "name": name, "parent": None, "custom": True, "protect": False, "dependencies": [],
            "inputs": inputs}


def _minimal_route_stack() -> dict[str, Any]:
    api = "https://api-id.execute-api.us-east-1.amazonaws.com/api"
    task = {"name": "dashboard", "image": f"{REPO_URL}:{TAG}", "portMappings": [{"containerPort": 5006}],
            "environment": [{"name": envvars.API_URL, "value": api}], "secrets": []}
    ec2 = "aws:ec2/"
    return {"project": "p", "stack": "dev", "outputs": {"dashboard_url": "https://d.example.org"}, "resources": [
        _resource("aws:ecs/taskDefinition:TaskDefinition", "dashboard-task", containerDefinitions=json.dumps([task])),
        _resource("aws:ecs/service:Service", "dashboard-service",
                  loadBalancers=[{"containerPort": 5006}], healthCheckGracePeriodSeconds=60,
                  networkConfiguration={"subnets": ["private-0-id"], "securityGroups": ["task-sg-id"]}),
        _resource("aws:lb/targetGroup:TargetGroup", "dashboard-targets", port=5006,
                  healthCheck={"path": "/liveness", "port": "traffic-port", "matcher": "200"}),
        _resource("aws:lb/listener:Listener", "dashboard-https", port=443, protocol="HTTPS"),
        _resource(f"{ec2}securityGroup:SecurityGroup", "task-sg"),
        _resource(EGRESS_RULE, "task-egress", securityGroupId="task-sg-id", ipProtocol="tcp", fromPort=443,
                  toPort=443, cidrIpv4="0.0.0.0/0"),
        _resource(f"{ec2}routeTable:RouteTable", "private-rt"),
        _resource(f"{ec2}routeTableAssociation:RouteTableAssociation", "private-rta", subnetId="private-0-id",
                  routeTableId="private-rt-id"),
        _resource(f"{ec2}route:Route", "private-egress", routeTableId="private-rt-id",
                  destinationCidrBlock="0.0.0.0/0", natGatewayId="nat-id"),
        _resource(f"{ec2}natGateway:NatGateway", "nat", subnetId="public-0-id", allocationId="eip-id"),
        _resource(f"{ec2}internetGateway:InternetGateway", "igw"),
        _resource(f"{ec2}routeTable:RouteTable", "public-rt",
                  routes=[{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-id"}]),
        _resource(f"{ec2}routeTableAssociation:RouteTableAssociation", "public-rta", subnetId="public-0-id",
                  routeTableId="public-rt-id"),
    ]}
