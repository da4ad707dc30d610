"""The mock engine: runs the program under Pulumi's mocks with the stack's real config.

It stands in for the Pulumi engine and the AWS provider only: it records each registration (type,
name, inputs, dependencies, protect), applies registered stack transforms as the engine would, and
answers with deterministic outputs (ids, ARNs, URLs) derived from the inputs. The provider functions
the program calls (caller identity, Availability Zones, Route 53 zones, a Service Quotas value) are
answered from a ``MockAccount``: by default a fresh, established account in the stack's region that
holds the hosted zone the stack names; tests pass another account to see the program refuse one.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.errors import RenderError
from infra.plan.config import SECRET_PLACEHOLDER, StackConfig, _wire, load_stack_config
from infra.plan.model import Rendered, Resource, _normalize

ACCOUNT_ID: Final = "123456789012"  # the default mock account (AWS's documentation example id)
BUCKET: Final = "aws:s3/bucket:Bucket"
# Lambda "Concurrent executions" (Service Quotas L-B99A9384): 1,000 by default, less on a new account.
DEFAULT_LAMBDA_CONCURRENCY: Final = 1000.0
# The canonical hosted zone of Application Load Balancers in us-east-1 (the alias target's zone id).
ALB_HOSTED_ZONE_IDS: Final = {"us-east-1": "Z35SXDOTRQ7X7K", "us-east-2": "Z3AADJGX6KTTL2",
                              "us-west-2": "Z1H1FL5HABSF5", "eu-west-1": "Z32O12XQLNTSW2"}


@dataclass(frozen=True, slots=True)
class MockZone:
    """One zone as EC2's DescribeAvailabilityZones describes it."""

    name: str
    zone_id: str
    zone_type: str = "availability-zone"  # or local-zone, wavelength-zone
    state: str = "available"
    opt_in_status: str = "opt-in-not-required"  # Local and Wavelength Zones: opted-in / not-opted-in


@dataclass(frozen=True, slots=True)
class MockHostedZone:
    zone_id: str
    name: str
    private: bool = False


@dataclass(frozen=True, slots=True)
class MockAccount:
    """What the mock AWS provider answers about the deploying account.

    ``zones=None``: the region's zones as a standard account sees them (six in us-east-1, three
    elsewhere) plus one opted-in Local Zone, as DescribeAvailabilityZones lists them for an account
    that opted into it. ``hosted_zones=None``: the public zone the stack's dashboard settings name."""

    account_id: str = ACCOUNT_ID
    zones: Sequence[MockZone] | None = None
    hosted_zones: Sequence[MockHostedZone] | None = None
    lambda_concurrency: float = DEFAULT_LAMBDA_CONCURRENCY


def region_zones(region: str) -> tuple[MockZone, ...]:
    """A region's zones as a default account sees them: its Availability Zones and one Local Zone."""
    short = "".join(part[0] for part in region.split("-")[:-1]) + region.split("-")[-1]  # us-east-1 -> ue1
    letters = "abcdef" if region == "us-east-1" else "abc"
    zones = [MockZone(f"{region}{letter}", f"{short}-az{index}") for index, letter in enumerate(letters, start=1)]
    zones.append(MockZone(f"{region}-bos-1a", f"{short}-bos1-az1", zone_type="local-zone", opt_in_status="opted-in"))
    return tuple(zones)


def _zone_id(name: str) -> str:
    return "Z" + hashlib.sha256(name.encode()).hexdigest()[:20].upper()


def stack_hosted_zones(config: StackConfig) -> tuple[MockHostedZone, ...]:
    """The public zone the stack's ``dataforge:dashboard`` settings name: by name (the id derived from it), or
    by id (named after the parent domain of ``domainName``, so that the name is in it)."""
    dashboard = config.values.get(f"{config.project}:dashboard")
    if not isinstance(dashboard, Mapping):
        return ()
    if dashboard.get("hostedZoneName"):
        name = str(dashboard["hostedZoneName"])
        return (MockHostedZone(_zone_id(name), name),)
    if dashboard.get("hostedZoneId"):
        domain = str(dashboard.get("domainName") or "example.com")
        return (MockHostedZone(str(dashboard["hostedZoneId"]), domain.partition(".")[2] or domain),)
    return ()


def _arn(token: str, name: str, physical: str, region: str, account: str) -> str:
    module = token.split(":")[1].split("/")[0]
    service = {"lambda": "lambda", "cloudwatch": "logs", "msk": "kafka", "ec2": "ec2", "lb": "elasticloadbalancing",
               "apigateway": "apigateway"}.get(module, module)
    kind = token.split(":")[1].split("/")[1].lower() if "/" in token else name
    kafka = f"arn:aws:kafka:{region}:{account}"
    special = {
        "aws:s3/bucket:Bucket": f"arn:aws:s3:::{physical}",
        "aws:msk/serverlessCluster:ServerlessCluster": f"{kafka}:cluster/{physical}/mock-uuid",
        "aws:msk/cluster:Cluster": f"{kafka}:cluster/{physical}/mock-uuid",
        "aws:glue/catalogDatabase:CatalogDatabase": f"arn:aws:glue:{region}:{account}:database/{physical}",
        "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{physical}",
        "aws:dynamodb/table:Table": f"arn:aws:dynamodb:{region}:{account}:table/{physical}",
        "aws:lambda/function:Function": f"arn:aws:lambda:{region}:{account}:function:{physical}",
        "aws:iam/role:Role": f"arn:aws:iam::{account}:role/{physical}",
        "aws:sns/topic:Topic": f"arn:aws:sns:{region}:{account}:{physical}",
        "aws:sqs/queue:Queue": f"arn:aws:sqs:{region}:{account}:{physical}",
        "aws:cloudwatch/eventRule:EventRule": f"arn:aws:events:{region}:{account}:rule/{physical}",
        "aws:cloudwatch/metricAlarm:MetricAlarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:{physical}",
        # a parameter whose name starts with "/" keeps one slash: parameter/<path>
        "aws:ssm/parameter:Parameter": f"arn:aws:ssm:{region}:{account}:parameter/{physical.lstrip('/')}",
        "aws:acm/certificate:Certificate":
            f"arn:aws:acm:{region}:{account}:certificate/{uuid.uuid5(uuid.NAMESPACE_DNS, name)}",
    }
    return special.get(token, f"arn:aws:{service}:{region}:{account}:{kind}/{physical}")


def acm_validation_options(domain: str, certificate: str) -> list[dict[str, str]]:
    """ACM's DNS validation record of ``domain``: a CNAME ``_<x>.<domain>.`` -> ``_<y>.<z>.acm-validations.aws.``.
    The stand-in tokens derive from the certificate's resource name, not from the domain, so that two stacks
    that differ only by their environment's hostname render the same tokens."""
    digest = hashlib.sha256(certificate.encode()).hexdigest()
    return [{"domainName": domain, "resourceRecordName": f"_{digest[:32]}.{domain}.", "resourceRecordType": "CNAME",
             "resourceRecordValue": f"_{digest[32:]}.mock.acm-validations.aws."}]


def _state(type_: str, name: str, inputs: dict[str, Any], region: str,
           account: str = ACCOUNT_ID) -> tuple[str, dict[str, Any]]:
    physical = str(inputs.get("bucket") if type_ == BUCKET else
                   inputs.get("name") or inputs.get("clusterName") or inputs.get("functionName")
                   or inputs.get("serviceName") or inputs.get("dashboardName") or inputs.get("layerName")
                   or inputs.get("domainName") or name)
    arn = _arn(type_, name, physical, region, account)
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
        "aws:sqs/queue:Queue": {"url": f"https://sqs.{region}.amazonaws.com/{account}/{physical}"},
        "aws:apigateway/restApi:RestApi": {"rootResourceId": f"{name}-root",
                                           "executionArn": f"arn:aws:execute-api:{region}:{account}:{name}-id"},
        "aws:apigateway/stage:Stage": {"invokeUrl": f"https://{name}-id.execute-api.{region}.amazonaws.com/{inputs.get('stageName')}"},
        "aws:apigateway/apiKey:ApiKey": {"value": f"mock-api-key-{name}"},
        "aws:ecr/repository:Repository": {"repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}"},
        "aws:lb/loadBalancer:LoadBalancer": {"dnsName": f"{physical}.{region}.elb.amazonaws.com",
                                             "zoneId": ALB_HOSTED_ZONE_IDS.get(region, "Z00ALBMOCK")},
        "aws:acm/certificate:Certificate": {"domainValidationOptions": acm_validation_options(physical, name),
                                            "status": "PENDING_VALIDATION"},
        "aws:route53/record:Record": {"fqdn": str(inputs.get("name", "")).rstrip(".")},
        "aws:apprunner/service:Service": {"serviceUrl": f"{physical}.{region}.awsapprunner.com"},
        "aws:ec2/vpcEndpoint:VpcEndpoint": {"prefixListId": f"pl-{name}"},
        "aws:kms/key:Key": {"keyId": f"{name}-key-id"},
    }
    state.update(extra.get(type_, {}))
    return physical if type_ == BUCKET else f"{name}-id", state


def _engine(config: StackConfig, account: MockAccount) -> tuple[Any, Any]:
    """The mocks and the recording monitor (built lazily: importing pulumi is slow)."""
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    region = str(config.values.get("aws:region", "us-east-1"))
    if account.hosted_zones is None:
        account = MockAccount(account_id=account.account_id, zones=account.zones,
                              hosted_zones=stack_hosted_zones(config), lambda_concurrency=account.lambda_concurrency)

    class Mocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.transforms: list[Any] = []
            self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

        def register_transform(self, transform: Any) -> None:
            self.transforms.append(transform)

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            props = _transformed(self.transforms, args)
            self.inputs[(args.typ, args.name)] = props
            return _state(args.typ, args.name, props, region, account.account_id)

        def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
            return _invoke(args.token, dict(args.args), region, account)

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


ZONE_FILTERS: Final = {"zone-type": "zone_type", "state": "state", "opt-in-status": "opt_in_status",
                       "zone-name": "name", "zone-id": "zone_id"}


def _availability_zones(args: Mapping[str, Any], region: str, account: MockAccount) -> dict[str, Any]:
    """DescribeAvailabilityZones as the provider's ``getAvailabilityZones`` asks it: ``state``, ``filters``,
    ``excludeNames``, ``excludeZoneIds``; an account that did not opt into a Local Zone does not see it."""
    zones = [z for z in (account.zones if account.zones is not None else region_zones(region))
             if z.opt_in_status != "not-opted-in" or args.get("allAvailabilityZones")]
    if args.get("state"):
        zones = [z for z in zones if z.state == args["state"]]
    for spec in args.get("filters") or []:
        attribute = ZONE_FILTERS.get(spec["name"])
        if attribute is None:
            raise RenderError(f"the offline renderer does not model the zone filter {spec['name']!r}")
        zones = [z for z in zones if getattr(z, attribute) in spec["values"]]
    zones = [z for z in zones if z.name not in (args.get("excludeNames") or [])
             and z.zone_id not in (args.get("excludeZoneIds") or [])]
    zones.sort(key=lambda z: z.name)
    return {"id": region, "names": [z.name for z in zones], "zoneIds": [z.zone_id for z in zones],
            "groupNames": [region if z.zone_type == "availability-zone" else z.name[:-1] for z in zones],
            "state": args.get("state")}


def _hosted_zone(args: Mapping[str, Any], account: MockAccount) -> dict[str, Any] | tuple[dict[str, Any], list[
        tuple[str, str]]]:
    """Route 53's ``getZone``: by ``zoneId``, or by ``name`` among the public (or, with ``privateZone``, the
    private) zones; none found fails the invoke as the provider does."""
    zones = account.hosted_zones or ()
    if args.get("zoneId"):
        found = [z for z in zones if z.zone_id == args["zoneId"]]
    else:
        wanted = str(args.get("name", "")).rstrip(".").lower()
        found = [z for z in zones if z.name.rstrip(".").lower() == wanted
                 and z.private == bool(args.get("privateZone"))]
    if len(found) != 1:
        return {}, [("name", f"no matching Route 53 Hosted Zone found ({len(found)} matched {dict(args)})")]
    zone = found[0]
    return {"id": zone.zone_id, "zoneId": zone.zone_id, "name": zone.name, "privateZone": zone.private,
            "arn": f"arn:aws:route53:::hostedzone/{zone.zone_id}", "callerReference": "mock", "comment": "",
            "nameServers": [f"ns-{n}.awsdns-{n:02d}.org" for n in (1, 2, 3, 4)], "resourceRecordSetCount": 2,
            "tags": {}, "linkedServiceDescription": "", "linkedServicePrincipal": "", "primaryNameServer": "",
            "enableAcceleratedRecovery": False}


def _service_quota(args: Mapping[str, Any], region: str, account: MockAccount) -> dict[str, Any]:
    if (args.get("serviceCode"), args.get("quotaCode")) != ("lambda", "L-B99A9384"):
        raise RenderError(f"the offline renderer has no answer for the service quota {dict(args)}")
    return {"id": "lambda/L-B99A9384", "serviceCode": "lambda", "quotaCode": "L-B99A9384",
            "quotaName": "Concurrent executions", "serviceName": "AWS Lambda", "value": account.lambda_concurrency,
            "defaultValue": DEFAULT_LAMBDA_CONCURRENCY, "adjustable": True, "globalQuota": False,
            "arn": f"arn:aws:servicequotas:{region}:{account.account_id}:lambda/L-B99A9384", "usageMetrics": []}


def _invoke(token: str, args: Mapping[str, Any], region: str,
            account: MockAccount) -> dict[str, Any] | tuple[dict[str, Any], list[tuple[str, str]]]:
    """The answers to the provider functions the program calls."""
    answers: dict[str, Any] = {
        "aws:index/getCallerIdentity:getCallerIdentity": lambda: {
            "accountId": account.account_id, "arn": f"arn:aws:iam::{account.account_id}:user/plan",
            "userId": "plan", "id": account.account_id},
        "aws:index/getRegion:getRegion": lambda: {"name": region, "region": region, "id": region},
        "aws:index/getAvailabilityZones:getAvailabilityZones": lambda: _availability_zones(args, region, account),
        "aws:route53/getZone:getZone": lambda: _hosted_zone(args, account),
        "aws:servicequotas/getServiceQuota:getServiceQuota": lambda: _service_quota(args, region, account),
    }
    if token not in answers:
        raise RenderError(f"the offline renderer has no answer for invoke {token}")
    answer: dict[str, Any] | tuple[dict[str, Any], list[tuple[str, str]]] = answers[token]()
    return answer


def _urn_address(urn: str) -> str | None:
    if not urn:
        return None
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{parts[3]}" if len(parts) >= 4 else urn


def render(stack: str, root: Path | None = None, overrides: Mapping[str, Any] | None = None,
           account: MockAccount | None = None) -> Rendered:
    """Run the program for ``stack`` under the mock engine and return what it registered. ``account``: what
    the mock provider answers about the deploying account (default ``MockAccount()``)."""
    import pulumi
    from pulumi.runtime import settings as runtime_settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from infra import program
    from infra.artifacts import project_root

    base = project_root() if root is None else root
    config = load_stack_config(stack, base, overrides)
    pulumi.runtime.set_all_config({k: _wire(v) for k, v in config.values.items()}, list(config.secret_keys))
    mocks, monitor = _engine(config, account or MockAccount())
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
