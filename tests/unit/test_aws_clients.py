"""Every AWS client a runtime creates gets the one retry configuration (``dataforge.aws``): botocore's
adaptive mode with ``MAX_ATTEMPTS`` attempts, and the SDKs' endpoint precedence."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dataforge import aws
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.chaos.botocore_faults import S3_INTERNAL_ERROR, FaultInjector
from devkit.local import local_environment
from devkit.paths import project_root

ENDPOINT = "http://127.0.0.1:9"  # never reached: these tests only build clients or inject every answer
REGION = "us-east-1"
WANTED = {"mode": aws.RETRY_MODE, "total_max_attempts": aws.MAX_ATTEMPTS}
# the packages that ship: the core and the deployables (devkit is the toolkit, never deployed)
RUNTIME_SOURCES = ("dataforge", "lambdas", "spark", "chalice_api/chalicelib", "chalice_api/app.py",
                   "panel_dashboard")


def _retries(client: Any) -> dict[str, Any]:
    retries: dict[str, Any] = client.meta.config.retries
    return retries


def test_the_one_configuration_is_adaptive_with_five_attempts() -> None:
    assert aws.RETRY_MODE == "adaptive"
    assert _retries(aws.client("s3", endpoint_url=ENDPOINT, region=REGION)) == WANTED
    assert _retries(aws.resource("dynamodb", endpoint_url=ENDPOINT, region=REGION).meta.client) == WANTED
    assert aws.client("dynamodb", region=REGION, max_pool_connections=64).meta.config.max_pool_connections == 64
    with pytest.raises(TypeError, match="configured once"):
        aws.client_config(retries={"mode": "legacy"})


def test_a_call_is_attempted_max_attempts_times_then_fails() -> None:
    """botocore counts the first attempt in ``total_max_attempts``: a call that keeps failing is sent
    ``MAX_ATTEMPTS`` times, then raises the service's error."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    faults = FaultInjector(S3_INTERNAL_ERROR, count=2 * aws.MAX_ATTEMPTS, operations=frozenset({"ListBuckets"}))
    faults.attach(session)
    client = aws.client("s3", session=session, endpoint_url=ENDPOINT, region=REGION)
    with pytest.raises(ClientError) as failed:
        client.list_buckets()
    assert failed.value.response["Error"]["Code"] == "InternalError"
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == aws.MAX_ATTEMPTS - 1
    assert faults.injected == aws.MAX_ATTEMPTS


def test_a_service_specific_endpoint_overrides_the_global_one() -> None:
    environ = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7"}
    assert aws.endpoint_for("s3", ENDPOINT, environ) == "http://127.0.0.1:7"
    assert aws.endpoint_for("dynamodb", ENDPOINT, environ) == ENDPOINT
    assert aws.endpoint_for("s3", None, environ) is None  # botocore resolves configured endpoints itself


def test_a_client_made_with_a_service_specific_endpoint_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7")
    assert aws.client("s3", endpoint_url=ENDPOINT, region=REGION).meta.endpoint_url == "http://127.0.0.1:7"
    assert aws.client("dynamodb", endpoint_url=ENDPOINT, region=REGION).meta.endpoint_url == ENDPOINT


def test_the_runtime_factories_build_their_clients_with_it() -> None:
    from chalicelib.config import ApiConfig
    from chalicelib.services import Services

    from lambdas.common.counters import IngestCounters
    from lambdas.common.speed_path import SpeedPath
    from lambdas.common.storage import S3ObjectStore
    from spark import runtime

    settings = Settings.from_env(local_environment(endpoint_url=ENDPOINT, kafka_bootstrap_servers="127.0.0.1:9"))
    made = {
        "landing store (S3)": S3ObjectStore(endpoint_url=ENDPOINT, region=REGION).client,
        "speed path (DynamoDB)": SpeedPath("t", default_fx(), endpoint_url=ENDPOINT, region=REGION)._ddb(),
        "ingest counters (DynamoDB)": IngestCounters("t", endpoint_url=ENDPOINT, region=REGION)._ddb(),
        "Glue jobs' catalog (Glue)": runtime._glue(settings),
        "Glue jobs' exports (DynamoDB)": runtime.dynamodb_table(settings).meta.client,
        "API (DynamoDB)": Services(ApiConfig.from_settings(settings, {})).dynamodb(),
    }
    assert {name: _retries(client) for name, client in made.items()} == dict.fromkeys(made, WANTED)


def _direct_creations(path: Path) -> list[str]:
    """Calls that make a boto3 client or resource without ``dataforge.aws``: ``boto3.client(...)``,
    ``<session>.client("s3", ...)``, ``<session>.resource("dynamodb", ...)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("client", "resource")):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id == "aws":
            continue  # dataforge.aws.client / .resource: the one place
        names_a_service = bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(
            node.args[0].value, str)
        client_keywords = {k.arg for k in node.keywords} & {"region_name", "endpoint_url", "config"}
        if names_a_service or client_keywords or (isinstance(owner, ast.Name) and owner.id == "boto3"):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def test_no_runtime_makes_a_client_outside_dataforge_aws() -> None:
    root = project_root()
    files = [p for source in RUNTIME_SOURCES for p in
             ([root / source] if source.endswith(".py") else sorted((root / source).rglob("*.py")))]
    assert len(files) > 50  # the scan sees the packages
    offenders = [hit for path in files if path != root / "dataforge" / "aws.py" for hit in _direct_creations(path)]
    assert offenders == []


def test_the_scan_finds_a_direct_creation(tmp_path: Path) -> None:
    source = tmp_path / "direct.py"
    source.write_text('import boto3\ns3 = boto3.session.Session().client("s3")\nddb = boto3.resource("dynamodb")\n'
                      'ok = aws.client("s3", endpoint_url=None)\n')
    assert [hit.split(": ", 1)[0].rsplit(":", 1)[1] for hit in _direct_creations(source)] == ["2", "3"]
