"""Stack settings are typed, validated and come from each stack's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.errors import InfraConfigError
from infra.plan import load_stack_config
from infra.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
IMAGE_TAG = "src-" + "0" * 24
# The smallest valid dashboard: a hostname in a hosted zone the program creates the certificate in.
CERT = {"dashboard": {"domainName": "dashboard.data.example.org", "hostedZoneName": "data.example.org",
                      "imageTag": IMAGE_TAG}}


def settings_of(stack: str) -> StackSettings:
    config = load_stack_config(stack, ROOT)
    raw = {key.split(":", 1)[1]: value for key, value in config.values.items() if key.startswith("dataforge:")}
    raw["region"] = config.values["aws:region"]
    return StackSettings.from_mapping(stack, raw)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_file_loads(stack: str) -> None:
    settings = settings_of(stack)
    assert settings.env == stack
    assert settings.tags()["environment"] == stack


def test_stack_files_hold_the_environment_differences() -> None:
    dev, prod = settings_of("dev"), settings_of("prod")
    assert (dev.streaming.mode, prod.streaming.mode) == ("serverless", "provisioned")
    assert not dev.serving.deletion_protection
    assert prod.serving.deletion_protection
    assert prod.protect
    assert not dev.protect
    assert prod.dashboard.hosting == dev.dashboard.hosting == "ecs"


def test_secure_defaults() -> None:
    settings = StackSettings.from_mapping("staging", CERT)
    assert settings.api.query_timeout_seconds == 60
    assert settings.serving.point_in_time_recovery
    assert settings.serving.deletion_protection
    assert not settings.lake.force_destroy


@pytest.mark.parametrize(("raw", "message"), [
    ({"dashboard": {"hosting": "lightsail"}}, "dashboard.hosting"),
    ({"dashboard": {"hosting": "ecs", "imageTag": IMAGE_TAG}}, "dataforge:dashboard.domainName.*certificateArn"),
    ({**CERT, "lake": {"landingDayz": 3}}, "dataforge:lake: Object contains unknown field `landingDayz`"),
    ({**CERT, "ingestion": {"batchSize": "many"}}, r"dataforge:ingestion.batchSize: Expected `int`"),
    ({**CERT, "ingestion": {"batchSize": 0}}, r"dataforge:ingestion.batchSize: Expected `int` >= 1"),
    ({**CERT, "lake": {"silverIaDays": 7}}, r"dataforge:lake.silverIaDays: Expected `int` >= 30"),
    ({**CERT, "processing": {"dailySchedule": "rate(1 day)"}}, "dataforge:processing.dailySchedule"),
    ({**CERT, "namePrefx": "acme"}, "unknown field `namePrefx`"),
    ({**CERT, "logRetentionDays": 13}, "retention"),
    ({**CERT, "streaming": {"mode": "provisioned", "brokerCount": 3}}, "multiple"),
    ({**CERT, "api": {"queryTimeoutSeconds": 0}}, r"dataforge:api.queryTimeoutSeconds: Expected `int` >= 1"),
    ({**CERT, "api": {"queryTimeoutSeconds": 86400}}, r"dataforge:api.queryTimeoutSeconds: Expected `int` <= 14400"),
])
def test_invalid_config_fails_with_the_key_to_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InfraConfigError, match=message):
        StackSettings.from_mapping("dev", raw)


def test_keys_are_the_stack_files_camel_case_names() -> None:
    settings = StackSettings.from_mapping("dev", {**CERT, "alerts": {"api5xxThreshold": 7, "apiLatencyP99Ms": 900},
                                                  "lake": {"landingDays": 3}, "logRetentionDays": None})
    assert (settings.alerts.api_5xx_threshold, settings.alerts.api_latency_p99_ms) == (7, 900)
    assert settings.lake.landing_days == 3
    assert settings.log_retention_days == 30  # null takes the default


def test_local_is_not_a_deployable_stack() -> None:
    with pytest.raises(InfraConfigError, match="deployable"):
        StackSettings.from_mapping("local", CERT)


# --- a fresh account: the dashboard's certificate, zones, bucket names, reserved concurrency ---------

UUID = "0b8a4e2f-3c1d-4e5f-8a9b-0c1d2e3f4a5b"


def dashboard(**values: object) -> dict[str, object]:
    return {"dashboard": {"imageTag": IMAGE_TAG, **values}}


@pytest.mark.parametrize(("raw", "message"), [
    # neither a zone nor a certificate: refused, naming the keys that give one
    (dashboard(), r"Pulumi\.dev\.yaml, dataforge:dashboard\.domainName: the dashboard's public hostname is "
                  r"required.*dashboard\.hostedZoneName.*dashboard\.certificateArn"),
    (dashboard(domainName="dash.example.org"), r"Pulumi\.dev\.yaml, dataforge:dashboard: no certificate for "
                                               r"dash\.example\.org: set dashboard\.hostedZoneName"),
    # the placeholders the stack files used to carry, and ARNs of another region or service
    (dashboard(domainName="d.example.org",
               certificateArn="arn:aws:acm:us-east-1:123456789012:certificate/dataforge-dev-dashboard"),
     "dataforge:dashboard.certificateArn"),
    (dashboard(domainName="d.example.org", certificateArn=f"arn:aws:acm:eu-west-1:123456789012:certificate/{UUID}"),
     r"dataforge:dashboard\.certificateArn: .* not the ARN of an ACM certificate in us-east-1"),
    (dashboard(domainName="d.example.org", certificateArn=f"arn:aws:acm:us-east-1:12345:certificate/{UUID}"),
     "dataforge:dashboard.certificateArn"),
    (dashboard(domainName="d.example.org", certificateArn=f"arn:aws:iam::123456789012:server-certificate/{UUID}"),
     "dataforge:dashboard.certificateArn"),
    (dashboard(domainName="Dash.Example.org", hostedZoneName="example.org"), "dataforge:dashboard.domainName"),
    (dashboard(domainName="https://d.example.org", hostedZoneName="example.org"), "dataforge:dashboard.domainName"),
    (dashboard(domainName="d.example.org", hostedZoneName="example.net"),
     r"dataforge:dashboard\.hostedZoneName: dashboard\.domainName 'd\.example\.org' is not in the zone"),
    (dashboard(domainName="d.notexample.org", hostedZoneName="example.org"), "is not in the zone"),
    (dashboard(domainName="d.example.org", hostedZoneName="example.org", hostedZoneId="Z0ABC"), "not both"),
    (dashboard(domainName="d.example.org", hostedZoneId="/hostedzone/Z0ABC"), "dataforge:dashboard.hostedZoneId"),
    (dashboard(domainName=f"{'d' * 60}.example.org", hostedZoneName="example.org"), "64 characters"),
])
def test_the_dashboard_certificate_settings_are_refused_with_the_keys_to_fix(raw: dict[str, object],
                                                                              message: str) -> None:
    with pytest.raises(InfraConfigError, match=message):
        StackSettings.from_mapping("dev", raw)


def test_the_dashboard_takes_a_zone_or_an_existing_certificate_of_its_region() -> None:
    by_name = StackSettings.from_mapping("dev", dashboard(domainName="d.example.org", hostedZoneName="example.org"))
    by_id = StackSettings.from_mapping("dev", dashboard(domainName="example.org", hostedZoneId="Z0123456789ABCDEFGHIJ"))
    arn = f"arn:aws:acm:eu-west-1:210987654321:certificate/{UUID}"
    long_name = f"{'d' * 40}.{'e' * 30}.org"
    existing = StackSettings.from_mapping("dev", {"region": "eu-west-1",
                                                  **dashboard(domainName=long_name, certificateArn=arn)})
    assert (by_name.dashboard.hosted_zone_name, by_id.dashboard.hosted_zone_id) == ("example.org",
                                                                                     "Z0123456789ABCDEFGHIJ")
    assert existing.dashboard.certificate_arn == arn  # an existing certificate may carry a long name as a SAN


@pytest.mark.parametrize(("network", "message"), [
    ({"availabilityZones": ["us-east-1a", "us-east-1b"]}, "network.availabilityZones is replaced by "
                                                          "network.availabilityZoneCount"),
    ({"availabilityZoneCount": 1}, r"dataforge:network\.availabilityZoneCount: Expected `int` >= 2"),
    ({"availabilityZoneCount": 5}, r"dataforge:network\.availabilityZoneCount: Expected `int` <= 4"),
])
def test_zones_are_a_count(network: dict[str, object], message: str) -> None:
    with pytest.raises(InfraConfigError, match=message):
        StackSettings.from_mapping("dev", {**CERT, "network": network})


def test_a_provisioned_cluster_spans_three_zones_at_most() -> None:
    raw = {**CERT, "streaming": {"mode": "provisioned", "brokerCount": 4}, "network": {"availabilityZoneCount": 4}}
    with pytest.raises(InfraConfigError, match=r"dataforge:network\.availabilityZoneCount: 4 zones, but a "
                                               r"provisioned MSK cluster takes 3"):
        StackSettings.from_mapping("prod", raw)
    two_zones = StackSettings.from_mapping("prod", {**raw, "network": {"availabilityZoneCount": 2}})
    assert two_zones.streaming.broker_count == 4


def test_bucket_names_are_in_the_accounts_regional_namespace() -> None:
    from dataforge.lake import SupportBucket, Zone

    settings = StackSettings.from_mapping("staging", CERT)
    assert settings.bucket_name(Zone.BRONZE, "210987654321") == "dataforge-staging-bronze-210987654321-us-east-1-an"
    assert settings.bucket_name(SupportBucket.ATHENA_RESULTS, "210987654321") == (
        "dataforge-staging-athena-results-210987654321-us-east-1-an")
    with pytest.raises(InfraConfigError, match="12-digit"):
        settings.bucket_name(Zone.BRONZE, "1234")


@pytest.mark.parametrize(("raw", "message"), [
    # the longest stem (staging, athena-results) in a 14-character region leaves 9 characters for the prefix
    ({"region": "ap-southeast-2", "namePrefix": "acme-data"}, None),
    ({"region": "ap-southeast-2", "namePrefix": "acme-datax"},
     r"Pulumi\.staging\.yaml, dataforge:namePrefix: .* longer than S3's 63 characters; for stack staging in "
     r"ap-southeast-2 the prefix can have at most 9 characters"),
    ({"region": "ap-southeast-2", "namePrefix": "acme-dataforge-platform-team"}, "at most 9 characters"),
    ({"namePrefix": "Acme"}, r"dataforge:namePrefix: bucket name 'Acme-staging-landing' is not a valid S3 bucket name"),
    ({"region": "me-south-1"}, r"Pulumi\.staging\.yaml, aws:region: me-south-1 does not offer S3's account regional"),
    ({"region": "me-central-1"}, "aws:region"),
])
def test_bucket_names_fit_s3s_rules_in_every_account(raw: dict[str, object], message: str | None) -> None:
    if message is None:
        assert StackSettings.from_mapping("staging", {**CERT, **raw}).name_prefix == raw["namePrefix"]
        return
    with pytest.raises(InfraConfigError, match=message):
        StackSettings.from_mapping("staging", {**CERT, **raw})


def test_reserved_concurrency_is_unset_unless_a_stack_opts_in() -> None:
    assert StackSettings.from_mapping("prod", CERT).ingestion.reserved_concurrency == -1
    for stack in ("dev", "staging", "prod"):
        assert settings_of(stack).ingestion.reserved_concurrency == -1
    opted = StackSettings.from_mapping("prod", {**CERT, "ingestion": {"reservedConcurrency": 50}})
    assert opted.ingestion.reserved_concurrency == 50
