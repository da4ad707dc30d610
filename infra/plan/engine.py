"""The mock engine: runs the program under Pulumi's mocks with the stack's real config.

It stands in for the Pulumi engine and the AWS provider only: it records each registration (type,
name, inputs, dependencies, protect), applies registered stack transforms as the engine would, and
answers with deterministic outputs (ids, ARNs, URLs) derived from the inputs.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from infra.errors import RenderError
from infra.plan.config import SECRET_PLACEHOLDER, StackConfig, _wire, load_stack_config
from infra.plan.model import Rendered, Resource, _normalize

ACCOUNT_ID: Final = "123456789012"
BUCKET: Final = "aws:s3/bucket:Bucket"


def _arn(token: str, name: str, physical: str, region: str) -> str:
    module = token.split(":")[1].split("/")[0]
    service = {"lambda": "lambda", "cloudwatch": "logs", "msk": "kafka", "ec2": "ec2", "lb": "elasticloadbalancing",
               "apigateway": "apigateway"}.get(module, module)
    kind = token.split(":")[1].split("/")[1].lower() if "/" in token else name
    kafka = f"arn:aws:kafka:{region}:{ACCOUNT_ID}"
    special = {
        "aws:s3/bucket:Bucket": f"arn:aws:s3:::{physical}",
        "aws:msk/serverlessCluster:ServerlessCluster": f"{kafka}:cluster/{physical}/mock-uuid",
        "aws:msk/cluster:Cluster": f"{kafka}:cluster/{physical}/mock-uuid",
        "aws:glue/catalogDatabase:CatalogDatabase": f"arn:aws:glue:{region}:{ACCOUNT_ID}:database/{physical}",
        "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{physical}",
        "aws:dynamodb/table:Table": f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{physical}",
        "aws:lambda/function:Function": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{physical}",
        "aws:iam/role:Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{physical}",
        "aws:sns/topic:Topic": f"arn:aws:sns:{region}:{ACCOUNT_ID}:{physical}",
        "aws:sqs/queue:Queue": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{physical}",
    }
    return special.get(token, f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{kind}/{physical}")


def _state(type_: str, name: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    physical = str(inputs.get("bucket") if type_ == BUCKET else
                   inputs.get("name") or inputs.get("clusterName") or inputs.get("functionName")
                   or inputs.get("serviceName") or inputs.get("dashboardName") or inputs.get("layerName")
                   or name)
    arn = _arn(type_, name, physical, region)
    state: dict[str, Any] = {**inputs, "arn": arn, "id": physical}
    state.setdefault("name", physical)
    extra: dict[str, dict[str, Any]] = {
        "aws:s3/bucket:Bucket": {"bucket": physical},
        "aws:lambda/function:Function": {
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"},
        "aws:lambda/layerVersion:LayerVersion": {"arn": f"{arn}:1"},
        "aws:msk/serverlessCluster:ServerlessCluster": {
            "bootstrapBrokersSaslIam": f"boot-{physical}.kafka-serverless.{region}.amazonaws.com:9098"},
        "aws:msk/cluster:Cluster": {"bootstrapBrokersSaslIam": ",".join(
            f"b-{n}.{physical}.kafka.{region}.amazonaws.com:9098" for n in (1, 2))},
        "aws:sqs/queue:Queue": {"url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{physical}"},
        "aws:apigateway/restApi:RestApi": {"rootResourceId": f"{name}-root",
                                           "executionArn": f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{name}-id"},
        "aws:apigateway/stage:Stage": {"invokeUrl": f"https://{name}-id.execute-api.{region}.amazonaws.com/{inputs.get('stageName')}"},
        "aws:apigateway/apiKey:ApiKey": {"value": f"mock-api-key-{name}"},
        "aws:ecr/repository:Repository": {"repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{physical}"},
        "aws:lb/loadBalancer:LoadBalancer": {"dnsName": f"{physical}.{region}.elb.amazonaws.com"},
        "aws:apprunner/service:Service": {"serviceUrl": f"{physical}.{region}.awsapprunner.com"},
        "aws:ec2/vpcEndpoint:VpcEndpoint": {"prefixListId": f"pl-{name}"},
        "aws:kms/key:Key": {"keyId": f"{name}-key-id"},
    }
    state.update(extra.get(type_, {}))
    return physical if type_ == BUCKET else f"{name}-id", state


def _engine(config: StackConfig) -> tuple[Any, Any]:
    """The mocks and the recording monitor (built lazily: importing pulumi is slow)."""
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    region = str(config.values.get("aws:region", "us-east-1"))

    class Mocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.transforms: list[Any] = []
            self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

        def register_transform(self, transform: Any) -> None:
            self.transforms.append(transform)

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            props = _transformed(self.transforms, args)
            self.inputs[(args.typ, args.name)] = props
            return _state(args.typ, args.name, props, region)

        def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
            return _invoke(args.token, region)

    class Monitor(MockMonitor):
        def __init__(self, mocks: Mocks) -> None:
            super().__init__(mocks)
            self.registrations: list[dict[str, Any]] = []

        def RegisterResource(self, request: Any) -> Any:
            if request.type != "pulumi:pulumi:Stack":
                self.registrations.append({
                    "type": request.type, "name": request.name, "parent": request.parent,
                    "custom": bool(request.custom), "protect": bool(request.protect),
                    "dependencies": list(request.dependencies)})
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    mocks = Mocks()
    return mocks, Monitor(mocks)


def _transformed(transforms: list[Any], args: Any) -> dict[str, Any]:
    """A resource's inputs after the registered stack transforms, as the engine applies them."""
    import pulumi
    from pulumi.runtime.sync_await import _sync_await

    props = dict(args.inputs)
    for transform in transforms:
        result = transform(pulumi.ResourceTransformArgs(custom=bool(args.custom), type_=args.typ, name=args.name,
                                                        props=props, opts=pulumi.ResourceOptions()))
        if inspect.isawaitable(result):
            result = _sync_await(result)
        if result is not None:
            props = dict(result.props)
    return props


def _invoke(token: str, region: str) -> dict[str, str]:
    """The answers to the provider functions the program calls."""
    answers = {
        "aws:index/getCallerIdentity:getCallerIdentity": {
            "accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/plan", "userId": "plan", "id": ACCOUNT_ID},
        "aws:index/getRegion:getRegion": {"name": region, "region": region, "id": region},
    }
    if token not in answers:
        raise RenderError(f"the offline renderer has no answer for invoke {token}")
    return answers[token]


def _urn_address(urn: str) -> str | None:
    if not urn:
        return None
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{parts[3]}" if len(parts) >= 4 else urn


def render(stack: str, root: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Rendered:
    """Run the program for ``stack`` under the mock engine and return what it registered."""
    import pulumi
    from pulumi.runtime import settings as runtime_settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from infra import program
    from infra.artifacts import project_root

    base = project_root() if root is None else root
    config = load_stack_config(stack, base, overrides)
    pulumi.runtime.set_all_config({k: _wire(v) for k, v in config.values.items()}, list(config.secret_keys))
    mocks, monitor = _engine(config)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=config.project, stack=stack, preview=False, monitor=monitor)
    try:
        _sync_await(run_pulumi_func(lambda: program.main(base)))
        root_resource = runtime_settings.get_root_resource()
        outputs_raw = getattr(root_resource, "outputs", {}) or {}
        outputs = _sync_await(pulumi.Output.from_input(outputs_raw).future(with_unknowns=False)) or {}
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(f"rendering stack {stack!r} failed: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            from pulumi.runtime.settings import _shutdown_callbacks

            _sync_await(_shutdown_callbacks())  # type: ignore[no-untyped-call]
    resources = []
    for reg in monitor.registrations:
        inputs = mocks.inputs.get((reg["type"], reg["name"]), {}) if reg["custom"] else {}
        deps = sorted({a for a in (_urn_address(u) for u in reg["dependencies"]) if a})
        resources.append(Resource(type=reg["type"], name=reg["name"], parent=_urn_address(reg["parent"]),
                                  custom=reg["custom"], protect=reg["protect"], inputs=_normalize(inputs),
                                  dependencies=deps))
    resources.sort(key=lambda r: (r.type, r.name))
    secret_outputs = {"api_key"}
    shown = {k: (SECRET_PLACEHOLDER if k in secret_outputs else _normalize(v)) for k, v in sorted(outputs.items())}
    return Rendered(project=config.project, stack=stack, resources=resources, outputs=shown)


def enable_bytecode_cache() -> None:
    """Let an entry point (CLI, bench, tests) cache compiled pulumi-aws modules under ``.cache``.

    pulumi-aws is thousands of modules; with ``PYTHONDONTWRITEBYTECODE`` set, every process would
    compile them again (tens of seconds). The cache goes to the project's ignored ``.cache``."""
    from infra.artifacts import cache_dir

    if sys.dont_write_bytecode or sys.pycache_prefix is None:
        sys.dont_write_bytecode = False
        sys.pycache_prefix = str(cache_dir() / "pycache")
