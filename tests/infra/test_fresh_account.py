"""Every stack deploys to a fresh account: nothing account-specific is committed, and what the program
needs of the account (its id, its Availability Zones, its hosted zone, its Lambda quota, API Gateway's
logging role) is asked of the account and checked before anything is created.

The mock provider answers as a given account would (``MockAccount``); what it cannot prove (that EC2,
Route 53, ACM, Service Quotas and API Gateway answer and accept exactly this) is in docs/infra.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from dataforge import envvars
from dataforge.lake import SupportBucket, Zone, bucket_name
from infra.errors import RenderError
from infra.plan import Rendered, load_stack_config, render
from infra.plan.engine import (
    ACCOUNT_ID,
    ALB_HOSTED_ZONE_IDS,
    MockAccount,
    MockHostedZone,
    MockZone,
    acm_validation_options,
    stack_hosted_zones,
)

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
ACCOUNT_B = "210987654321"
BUCKET = "aws:s3/bucket:Bucket"
S3_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
CERTIFICATE_ARN = f"arn:aws:acm:us-east-1:{ACCOUNT_B}:certificate/0b8a4e2f-3c1d-4e5f-8a9b-0c1d2e3f4a5b"


def dashboard_of(root: Path, stack: str = "dev") -> dict[str, Any]:
    value: dict[str, Any] = dict(load_stack_config(stack, root).values["dataforge:dashboard"])
    return value


def with_section(root: Path, section: str, stack: str = "dev", **changes: Any) -> dict[str, Any]:
    """The stack's ``dataforge:<section>`` with ``changes`` (a None value removes the key)."""
    value = dict(load_stack_config(stack, root).values[f"dataforge:{section}"])
    value.update(changes)
    return {f"dataforge:{section}": {k: v for k, v in value.items() if v is not None}}


# --- the committed stack files -----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_commit_nothing_account_specific(stack: str) -> None:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    assert ACCOUNT_ID not in text, "no account id"
    assert not re.search(r"arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:[0-9]{12}:", text), "no ARN of an account"
    assert not re.search(r"(?i)account", "\n".join(line.split("#")[0] for line in text.splitlines())), \
        "no account setting"
    assert "arn:aws:acm" not in text, "no certificate ARN"
    assert not re.search(r"\b[a-z]{2}-[a-z]+-[0-9][a-z]\b", text), "no Availability Zone name"
    assert "reservedConcurrency" not in text, "reserved concurrency is opt-in"
    dashboard = yaml.safe_load(text)["config"]["dataforge:dashboard"]
    # the hostname and zone a user replaces: reserved example names, marked as such above them
    assert dashboard["domainName"].endswith(".example.com")
    assert dashboard["hostedZoneName"] == "dataforge.example.com"
    assert "certificateArn" not in dashboard
    comment = text[:text.index("domainName:")].rsplit("dataforge:dashboard:", 1)[1]
    assert "REPLACE" in comment


# --- bucket names ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_in_account_b(source_snapshot: Path) -> Rendered:
    """dev deployed by a second account."""
    return render("dev", source_snapshot, account=MockAccount(account_id=ACCOUNT_B))


def _bucket_names(r: Rendered) -> set[str]:
    return {b.inputs["bucket"] for b in r.of_type(BUCKET)}


def test_every_bucket_is_named_for_the_deploying_account_and_region(stack: Rendered) -> None:
    buckets = stack.of_type(BUCKET)
    assert len(buckets) == len(Zone) + len(SupportBucket)
    for b in buckets:
        name = b.inputs["bucket"]
        assert name.endswith(f"-{ACCOUNT_ID}-us-east-1-an"), name
        assert S3_NAME.fullmatch(name), name
        assert "--" not in name, name
        assert len(name) <= 63, name
        assert b.inputs["bucketNamespace"] == "account-regional", name


def test_a_second_account_and_a_second_region_get_buckets_of_their_own(source_snapshot: Path,
                                                                       stacks: dict[str, Rendered],
                                                                       dev_in_account_b: Rendered) -> None:
    other_account = dev_in_account_b
    other_region = render("dev", source_snapshot, overrides={"aws:region": "ap-southeast-2"})
    assert all(n.endswith(f"-{ACCOUNT_B}-us-east-1-an") for n in _bucket_names(other_account))
    assert all(n.endswith(f"-{ACCOUNT_ID}-ap-southeast-2-an") for n in _bucket_names(other_region))
    assert not _bucket_names(stacks["dev"]) & _bucket_names(other_account)
    assert not _bucket_names(stacks["dev"]) & _bucket_names(other_region)
    # the longest name, in a region with one of the longest codes, still fits S3's 63 characters
    staging = render("staging", source_snapshot, overrides={"aws:region": "ap-southeast-2"})
    assert max(len(n) for n in _bucket_names(staging)) == 63
    # the runtimes get the names from the stack, not from a naming rule of their own
    env = other_account.by_name("ingestion-msk-landing-function").inputs["environment"]["variables"]
    assert env[envvars.BRONZE_BUCKET] == other_account.by_name("lake-bronze-bucket").inputs["bucket"]
    assert other_account.outputs["bronze_bucket"] == env[envvars.BRONZE_BUCKET]


def test_the_embedded_platform_keeps_its_plain_names() -> None:
    assert bucket_name("dataforge", "local", Zone.BRONZE) == "dataforge-local-bronze"


def test_the_lake_key_trusts_the_deploying_account(dev_in_account_b: Rendered) -> None:
    policy = json.loads(dev_in_account_b.by_name("lake-key").inputs["policy"])
    assert policy["Statement"][0]["Principal"]["AWS"] == f"arn:aws:iam::{ACCOUNT_B}:root"


# --- Availability Zones ------------------------------------------------------------------------


def _zones(r: Rendered, kind: str) -> list[str]:
    subnets = sorted((s.name, s.inputs["availabilityZone"]) for s in r.of_type("aws:ec2/subnet:Subnet")
                     if s.name.startswith(f"network-{kind}-"))
    return [zone for _, zone in subnets]


def test_zones_are_the_accounts_available_availability_zones(stack: Rendered) -> None:
    count = {"dev": 2, "staging": 2, "prod": 3}[stack.stack]
    # the default mock account also sees an opted-in Local Zone, us-east-1-bos-1a, which sorts first
    expected = ["us-east-1a", "us-east-1b", "us-east-1c"][:count]
    assert _zones(stack, "private") == _zones(stack, "public") == expected


def test_zones_skip_impaired_zones_and_local_zones(source_snapshot: Path) -> None:
    account = MockAccount(zones=(
        MockZone("us-east-1-bos-1a", "use1-bos1-az1", zone_type="local-zone", opt_in_status="opted-in"),
        MockZone("us-east-1a", "use1-az4", state="impaired"),
        MockZone("us-east-1b", "use1-az6"), MockZone("us-east-1c", "use1-az1"), MockZone("us-east-1d", "use1-az2")))
    prod = render("prod", source_snapshot, account=account)
    assert _zones(prod, "private") == ["us-east-1b", "us-east-1c", "us-east-1d"]
    connection = prod.by_name("processing-vpc").inputs["physicalConnectionRequirements"]
    assert connection["availabilityZone"] == "us-east-1b"  # the Glue connection sits in the first private subnet


def test_more_zones_than_the_account_offers_are_refused(source_snapshot: Path) -> None:
    account = MockAccount(zones=(MockZone("us-west-1a", "usw1-az1"), MockZone("us-west-1c", "usw1-az3")))
    with pytest.raises(RenderError, match=r"Pulumi\.prod\.yaml, dataforge:network\.availabilityZoneCount: 3 zones "
                                          r"asked, but the account has 2 available Availability Zones"):
        render("prod", source_snapshot, overrides={"aws:region": "us-west-1"}, account=account)


# --- reserved concurrency ------------------------------------------------------------------------


def test_no_stack_reserves_lambda_concurrency(stack: Rendered) -> None:
    for function in stack.of_type("aws:lambda/function:Function"):
        assert function.inputs.get("reservedConcurrentExecutions", -1) == -1, function.name


@pytest.mark.parametrize(("quota", "reserved", "allowed"), [(10, 1, False), (1000, 50, True), (150, 50, True),
                                                            (150, 51, False)])
def test_a_reservation_is_checked_against_the_accounts_quota(source_snapshot: Path, quota: float, reserved: int,
                                                             allowed: bool) -> None:
    overrides = with_section(source_snapshot, "ingestion", "prod", reservedConcurrency=reserved)
    account = MockAccount(lambda_concurrency=quota)
    if allowed:
        prod = render("prod", source_snapshot, overrides=overrides, account=account)
        landing = prod.by_name("ingestion-msk-landing-function").inputs
        assert landing["reservedConcurrentExecutions"] == reserved
        return
    with pytest.raises(RenderError, match=rf"dataforge:ingestion\.reservedConcurrency: {reserved} cannot be reserved"
                                          rf".* quota in us-east-1 is {int(quota)} .*request-service-quota-increase "
                                          r"--service-code lambda --quota-code L-B99A9384"):
        render("prod", source_snapshot, overrides=overrides, account=account)


# --- the dashboard's certificate and hostname --------------------------------------------------------


def test_the_certificate_is_requested_and_validated_through_dns(stack: Rendered, source_snapshot: Path) -> None:
    config = load_stack_config(stack.stack, source_snapshot)
    domain = config.values["dataforge:dashboard"]["domainName"]
    (zone,) = stack_hosted_zones(config)
    certificate = stack.by_name("dashboard-certificate-cert").inputs
    assert (certificate["domainName"], certificate["validationMethod"]) == (domain, "DNS")
    (option,) = acm_validation_options(domain, "dashboard-certificate-cert")
    record = stack.by_name("dashboard-certificate-validation-0").inputs
    assert (record["zoneId"], record["name"], record["type"], record["records"]) == (
        zone.zone_id, option["resourceRecordName"], "CNAME", [option["resourceRecordValue"]])
    validation = stack.by_name("dashboard-certificate-validation")
    assert validation.inputs["validationRecordFqdns"] == [option["resourceRecordName"].rstrip(".")]
    assert re.fullmatch(rf"arn:aws:acm:us-east-1:{ACCOUNT_ID}:certificate/[0-9a-f-]{{36}}",
                        validation.inputs["certificateArn"])
    # the HTTPS listener takes the certificate once it is validated
    listener = stack.by_name("dashboard-https")
    assert listener.inputs["certificateArn"] == validation.inputs["certificateArn"]
    assert validation.address in listener.dependencies


def test_the_hostname_points_at_the_load_balancer_and_is_the_url(stack: Rendered, source_snapshot: Path) -> None:
    config = load_stack_config(stack.stack, source_snapshot)
    domain = config.values["dataforge:dashboard"]["domainName"]
    (zone,) = stack_hosted_zones(config)
    alias = stack.by_name("dashboard-dns-a").inputs
    assert (alias["zoneId"], alias["name"], alias["type"]) == (zone.zone_id, domain, "A")
    assert alias["aliases"] == [{"name": stack.outputs["dashboard_load_balancer_dns"],
                                 "zoneId": ALB_HOSTED_ZONE_IDS["us-east-1"], "evaluateTargetHealth": True}]
    assert stack.outputs["dashboard_url"] == f"https://{domain}"


def test_an_existing_certificate_is_used_as_given_without_dns(source_snapshot: Path) -> None:
    overrides = with_section(source_snapshot, "dashboard", hostedZoneName=None, certificateArn=CERTIFICATE_ARN)
    dev = render("dev", source_snapshot, overrides=overrides)
    assert not dev.of_type("aws:acm/certificate:Certificate")
    assert not dev.of_type("aws:route53/record:Record")
    assert dev.by_name("dashboard-https").inputs["certificateArn"] == CERTIFICATE_ARN
    assert dev.outputs["dashboard_url"] == f"https://{dashboard_of(source_snapshot)['domainName']}"
    assert dev.outputs["dashboard_load_balancer_dns"].endswith(".elb.amazonaws.com")


def test_a_zone_given_by_id_is_looked_up_and_must_hold_the_hostname(source_snapshot: Path) -> None:
    overrides = with_section(source_snapshot, "dashboard", hostedZoneName=None, hostedZoneId="Z0ABCDEF123")
    elsewhere = MockAccount(hosted_zones=(MockHostedZone("Z0ABCDEF123", "other.example.net"),))
    with pytest.raises(RenderError, match=r"dataforge:dashboard\.hostedZoneId: dashboard\.domainName "
                                          r"'dashboard\.dev\.dataforge\.example\.com' is not in the zone "
                                          r"'other\.example\.net'"):
        render("dev", source_snapshot, overrides=overrides, account=elsewhere)
    private = MockAccount(hosted_zones=(MockHostedZone("Z0ABCDEF123", "dataforge.example.com.", private=True),))
    with pytest.raises(RenderError, match=r"dataforge:dashboard\.hostedZoneId: dataforge\.example\.com "
                                          r"\(Z0ABCDEF123\) is a private hosted zone"):
        render("dev", source_snapshot, overrides=overrides, account=private)
    holding = MockAccount(hosted_zones=(MockHostedZone("Z0ABCDEF123", "dataforge.example.com."),))
    dev = render("dev", source_snapshot, overrides=overrides, account=holding)
    assert dev.by_name("dashboard-dns-a").inputs["zoneId"] == "Z0ABCDEF123"
    assert dev.by_name("dashboard-certificate-validation-0").inputs["zoneId"] == "Z0ABCDEF123"


def test_a_zone_the_account_does_not_have_stops_the_preview(source_snapshot: Path) -> None:
    # the committed example zone in an account that has no such public zone (only a private one)
    account = MockAccount(hosted_zones=(MockHostedZone("Z0PRIVATE1", "dataforge.example.com", private=True),))
    with pytest.raises(RenderError, match="no matching Route 53 Hosted Zone found"):
        render("dev", source_snapshot, account=account)


# --- API Gateway's account-level logging role -----------------------------------------------------


def test_api_gateway_has_a_cloudwatch_role_before_the_stage_logs(stack: Rendered) -> None:
    role = stack.by_name("apigateway-account-cloudwatch-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                      "Action": "sts:AssumeRole"}]
    attachment = stack.by_name("apigateway-account-cloudwatch-policy")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    assert attachment.inputs["role"] == role.inputs.get("name", role.name)
    settings = stack.by_name("apigateway-account-settings")
    assert settings.inputs["cloudwatchRoleArn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{role.name}"
    assert attachment.address in settings.dependencies  # the role can write logs once API Gateway takes it
    stages = [s for s in stack.of_type("aws:apigateway/stage:Stage") if s.inputs.get("accessLogSettings")]
    assert stages
    for stage in stages:
        assert settings.address in stage.dependencies, stage.name


def _registrations(build: Callable[[], None]) -> Mapping[str, Any]:
    """The registration requests of what ``build`` declares, under Pulumi's mocks (by resource name)."""
    import pulumi
    from pulumi.runtime import settings as runtime_settings
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", {**args.inputs, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{args.name}",
                                       "name": args.name}

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
            return {}, None

    requests: dict[str, Any] = {}

    class Monitor(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            requests[request.name] = request
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    mocks = Mocks()
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="dataforge", stack="dev", preview=False, monitor=Monitor(mocks))
    _sync_await(run_pulumi_func(build))
    return requests


def test_the_account_setting_and_its_role_outlive_a_destroy() -> None:
    """Destroying the resource would reset the region's setting for every API (pulumi-aws 7): it is kept."""
    from infra.components.account import ApiGatewayAccount, ApiGatewayAccountArgs

    def build() -> None:
        ApiGatewayAccount("apigateway-account", ApiGatewayAccountArgs(base_name="dataforge-dev"))

    requests = _registrations(build)
    custom = {name: bool(r.retainOnDelete) for name, r in requests.items() if r.custom}
    assert custom == {"apigateway-account-cloudwatch-role": True, "apigateway-account-cloudwatch-policy": True,
                      "apigateway-account-settings": True}
