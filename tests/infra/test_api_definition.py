"""The API is deployed from Chalice's own definition of it: the REST API's body is the document Chalice
generates for the app (checked against ``chalice generate-models``, Chalice's CLI), wired to the
function; the function's memory, timeout and architecture are those of ``.chalice/config.json`` for the
stack's stage (read here with Chalice's own ``Config``); the API zip is what Chalice's app-only packager
ships, nothing that could shadow the layer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.deploy.packager import AppOnlyDeploymentPackager
from chalice.utils import UI, OSUtils

from infra import artifacts, chalice_config
from infra.components.api import check
from infra.errors import InfraConfigError
from infra.plan import Rendered
from infra.settings import ApiSettings, StackSettings

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
CORS_ORIGIN = "https://dashboard.example.com"


def _body(stack: Rendered) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(stack.by_name("api-rest").inputs["body"])
    return body


def _invoke_arn(stack: Rendered) -> str:
    function = stack.by_name("api-handler-function").inputs["name"]
    return f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/" \
           f"arn:aws:lambda:us-east-1:123456789012:function:{function}/invocations"


def _generate_models(project: Path, stage: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``chalice generate-models``: the definition Chalice's CLI prints for the app (integration URIs as
    a template with ``{api_handler_lambda_arn}``)."""
    done = subprocess.run([sys.executable, "-c", "from chalice.cli import main; main()", "--project-dir",
                           str(project), "generate-models", "--stage", stage],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ.get("PATH", ""), **(env or {})})
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _with_arn(document: dict[str, Any], function_arn: str) -> dict[str, Any]:
    text = json.dumps(document).replace("{partition}", "aws").replace("{region_name}", "us-east-1") \
        .replace("{api_handler_lambda_arn}", function_arn)
    result: dict[str, Any] = json.loads(text)
    return result


def _chalice_config(project: Path, stage: str) -> Config:
    """The stage's settings as ``chalice deploy`` reads them (the CLI's defaults)."""
    return Config(chalice_stage=stage, config_from_disk=json.loads((project / ".chalice/config.json").read_text()),
                  default_params={"project_dir": str(project), "api_gateway_stage": "api",
                                  "api_gateway_endpoint_type": "EDGE", "autogen_policy": True})


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory, source_snapshot: Path) -> Path:
    """A copy of the snapshot's Chalice project (Chalice's CLI runs in it)."""
    target = tmp_path_factory.mktemp("chalice") / "chalice_api"
    shutil.copytree(source_snapshot / "chalice_api", target)
    return target


def test_the_rest_api_body_is_the_definition_chalice_generates(stack: Rendered, project_copy: Path) -> None:
    function_arn = _invoke_arn(stack).split("/functions/")[1].removesuffix("/invocations")
    assert _body(stack) == _with_arn(_generate_models(project_copy, stack.stack), function_arn)


def test_every_route_is_its_own_resource_with_a_lambda_proxy_integration(stack: Rendered) -> None:
    import app  # the Chalice app the definition is generated from

    body = _body(stack)
    declared = {(path, method.upper()) for path, ops in body["paths"].items() for method in ops}
    assert declared == {(path, method) for path, methods in app.app.routes.items() for method in methods}
    assert "/{proxy+}" not in body["paths"]
    for path, ops in body["paths"].items():
        for op in ops.values():
            integration = op["x-amazon-apigateway-integration"]
            assert (integration["type"], integration["httpMethod"]) == ("aws_proxy", "POST"), path
            assert integration["uri"] == _invoke_arn(stack)
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == {s[1:-1] for s in path.split("/") if s.startswith("{")}
    assert not stack.of_type("aws:apigateway/resource:Resource")
    assert not stack.of_type("aws:apigateway/method:Method")


def test_protected_routes_require_the_api_key_that_the_usage_plan_issues(stack: Rendered) -> None:
    body = _body(stack)
    assert body["securityDefinitions"] == {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}}
    public = {path for path, ops in body["paths"].items() for op in ops.values() if "security" not in op}
    assert public == {"/v1/health", "/v1/openapi.json"}
    rest = stack.by_name("api-rest").inputs
    assert rest["apiKeySource"] == "HEADER"
    plan = stack.by_name("api-usage-plan").inputs
    assert plan["apiStages"] == [{"apiId": "api-rest-id", "stage": stack.by_name("api-stage").inputs["stageName"]}]


def test_the_rest_api_carries_what_chalice_sets_outside_its_document(stack: Rendered, project_copy: Path) -> None:
    config = _chalice_config(project_copy, stack.stack)
    rest = stack.by_name("api-rest").inputs
    assert rest["endpointConfiguration"] == {"types": config.api_gateway_endpoint_type}
    assert rest["binaryMediaTypes"] == _body(stack)["x-amazon-apigateway-binary-media-types"]
    assert rest.get("minimumCompressionSize") == (None if config.minimum_compression_size is None
                                                  else str(config.minimum_compression_size))
    assert rest["putRestApiMode"] == "overwrite"
    stage = stack.by_name("api-stage").inputs
    assert stage["stageName"] == config.api_gateway_stage
    assert stage["xrayTracingEnabled"] == bool(config.xray_enabled)


def test_the_function_has_the_memory_timeout_and_architecture_of_chalices_config(stack: Rendered,
                                                                                project_copy: Path) -> None:
    config = _chalice_config(project_copy, stack.stack).scope(stack.stack, "api_handler")
    function = stack.by_name("api-handler-function").inputs
    assert function["memorySize"] == (config.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE)
    assert function["timeout"] == (config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT)
    assert function["architectures"] == [config.lambda_architecture] == [artifacts.ARM64.name]
    assert function["handler"] == "app.app"
    layer = stack.by_name("core-layer").inputs
    assert config.lambda_architecture in layer["compatibleArchitectures"]


def test_every_stack_has_a_chalice_stage_and_every_stage_a_stack() -> None:
    config = json.loads((ROOT / "chalice_api/.chalice/config.json").read_text())
    assert set(config["stages"]) == set(STACKS)
    memory = {stage: _chalice_config(ROOT / "chalice_api", stage).scope(stage, "api_handler").lambda_memory_size
              for stage in STACKS}
    assert memory == {"dev": 1024, "staging": 1024, "prod": 2048}


def test_the_definition_changes_redeploy_the_stage(stack: Rendered) -> None:
    import hashlib

    deployment = stack.by_name("api-deployment").inputs
    document = stack.by_name("api-rest").inputs["body"].replace(_invoke_arn(stack), chalice_config.INVOKE_ARN_MARKER)
    assert deployment["triggers"] == {"definition": hashlib.sha256(document.encode()).hexdigest(),
                                      "integration": _invoke_arn(stack)}
    assert stack.by_name("api-stage").inputs["deployment"] == "api-deployment-id"


def test_the_stage_waits_for_the_accounts_api_gateway_logging_role(stack: Rendered) -> None:
    """A stage with access logging is refused while the region's API Gateway account setting names no
    CloudWatch role (a fresh account)."""
    (account,) = stack.of_type("aws:apigateway/account:Account")
    stage = stack.by_name("api-stage")
    assert "accessLogSettings" in stage.inputs
    assert account.address in stage.dependencies


def test_api_gateway_may_invoke_the_function_only_from_the_apis_stage(stack: Rendered) -> None:
    permission = stack.by_name("api-invoke").inputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["function"] == stack.by_name("api-handler-function").inputs["name"]
    assert permission["sourceArn"] == "arn:aws:execute-api:us-east-1:123456789012:api-rest-id/api/*/*"


def test_cors_preflights_follow_the_origin_the_function_gets(source_snapshot: Path, project_copy: Path) -> None:
    from infra import plan as engine

    config = engine.load_stack_config("dev", source_snapshot)
    api = {**(config.values.get("dataforge:api") or {}), "corsOrigin": CORS_ORIGIN}
    with_cors = engine.render("dev", source_snapshot, overrides={"dataforge:api": api})
    body = _body(with_cors)
    function_arn = _invoke_arn(with_cors).split("/functions/")[1].removesuffix("/invocations")
    assert body == _with_arn(_generate_models(project_copy, "dev", {"DATAFORGE_CORS_ORIGIN": CORS_ORIGIN}),
                             function_arn)
    preflight = body["paths"]["/v1/queries/{query_id}"]["options"]
    assert preflight["x-amazon-apigateway-integration"]["type"] == "mock"
    headers = preflight["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
    assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{CORS_ORIGIN}'"


# --- Chalice's config: the one source, and its errors ----------------------------------------------------


def _project(tmp_path: Path, **top_level: Any) -> Path:
    project = tmp_path / "chalice_api"
    shutil.copytree(ROOT / "chalice_api", project, ignore=shutil.ignore_patterns("__pycache__", "deployments"))
    config_file = project / ".chalice/config.json"
    config = json.loads(config_file.read_text())
    for key, value in top_level.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    config_file.write_text(json.dumps(config))
    return project


@pytest.mark.parametrize(("change", "message"), [
    ({"lambda_memory_size": 64}, r"lambda_memory_size for stage dev is 64; Lambda's MemorySize \(MB\) takes"),
    ({"lambda_timeout": 30}, r"lambda_timeout for stage dev is 30; behind API Gateway.s 29 s integration timeout"),
    ({"api_gateway_endpoint_type": "PRIVATE"}, r"api_gateway_endpoint_type for stage dev is 'PRIVATE'"),
    ({"stages": {"staging": {}, "prod": {}}}, r"stages.dev is missing"),
])
def test_a_value_lambda_or_api_gateway_refuses_names_its_config_key(tmp_path: Path, change: dict[str, Any],
                                                                    message: str) -> None:
    project = _project(tmp_path, **change)
    with pytest.raises(InfraConfigError, match=message):
        chalice_config.load(project, "dev", {}, source_root=tmp_path)


def test_an_x86_64_api_is_refused_because_the_layer_is_arm64(tmp_path: Path) -> None:
    chalice = chalice_config.load(_project(tmp_path, lambda_architecture=None), "dev", {}, source_root=tmp_path)
    assert chalice.architecture == "x86_64"  # Chalice's default
    with pytest.raises(InfraConfigError, match=r"chalice_api/.chalice/config.json: lambda_architecture for stage "
                                               r"dev is 'x86_64'; the API imports the core layer's packages"):
        check(chalice, ApiSettings())


def test_iam_auth_is_refused_while_the_routes_require_api_keys(tmp_path: Path) -> None:
    chalice = chalice_config.load(_project(tmp_path), "dev", {}, source_root=tmp_path)
    check(chalice, ApiSettings(auth="api_key"))
    with pytest.raises(InfraConfigError, match=r"dataforge:api\.auth is iam, but the Chalice app's routes require"):
        check(chalice, ApiSettings(auth="iam"))


def test_the_generation_sees_only_the_functions_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFORGE_CORS_ORIGIN", "https://somewhere-else.example.com")  # the deploying machine's
    project = _project(tmp_path)
    plain = chalice_config.load(project, "dev", {"DATAFORGE_ENV": "dev"}, source_root=tmp_path)
    assert not any("options" in ops for ops in plain.definition["paths"].values())
    with_cors = chalice_config.load(project, "dev", {"DATAFORGE_ENV": "dev", "DATAFORGE_CORS_ORIGIN": CORS_ORIGIN},
                                    source_root=tmp_path)
    assert "options" in with_cors.definition["paths"]["/v1/health"]
    assert not list(project.rglob("__pycache__"))  # nothing written into the project


def test_api_memory_is_not_a_stack_setting() -> None:
    with pytest.raises(InfraConfigError, match=r"api.memoryMb is not a stack setting: .*lambda_memory_size in "
                                               r"chalice_api/.chalice/config.json"):
        StackSettings.from_mapping("dev", {"api": {"memoryMb": 2048}})


def test_chalice_config_for_a_stack_keeps_the_stages_lambda_settings(tmp_path: Path) -> None:
    config_file = _project(tmp_path) / ".chalice/config.json"
    written = chalice_config.write_stage(config_file, "prod", {"environment": "prod", "metrics_table": "m"})
    prod = written["stages"]["prod"]
    assert prod["lambda_memory_size"] == 2048
    assert "api_gateway_stage" not in prod  # the top level's, which the stack deploys
    assert prod["environment_variables"]["DATAFORGE_METRICS_TABLE"] == "m"


# --- the API zip ------------------------------------------------------------------------------------------


def test_the_api_zip_is_what_chalices_app_only_packager_ships() -> None:
    packager = AppOnlyDeploymentPackager(OSUtils(), None, UI())
    chalice_files = {name for _, name in packager._iter_app_filenames(str(ROOT / "chalice_api"))
                     if "__pycache__" not in name and not name.endswith(".pyc")}
    with zipfile.ZipFile(artifacts.build_bundle().api.path) as archive:
        assert set(archive.namelist()) == chalice_files


def test_a_chalice_package_build_never_becomes_the_api_zip(tmp_path: Path, source_snapshot: Path) -> None:
    """A ``chalice package`` zip has its wheels (x86_64 by default) at the root, ahead of the layer's."""
    root = tmp_path / "tree"
    shutil.copytree(source_snapshot, root)
    stray = root / "build/chalice/deployment.zip"
    stray.parent.mkdir(parents=True)
    with zipfile.ZipFile(stray, "w") as archive:
        archive.writestr("msgspec/_core.cpython-311-x86_64-linux-gnu.so", b"\x7fELF")
        archive.writestr("app.py", "")
    with zipfile.ZipFile(artifacts.build_bundle(root).api.path) as archive:
        names = archive.namelist()
    assert not [n for n in names if n.startswith("msgspec/")]
    assert {n.split("/")[0] for n in names} == {"app.py", "chalicelib", "chalice"}
