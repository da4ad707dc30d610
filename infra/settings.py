"""Typed, frozen, validated stack settings, loaded once per stack from ``pulumi.Config``.

Environments differ only by the data in ``Pulumi.<stack>.yaml``; components never branch on the
stack name. Every field has a secure default (encryption, retention, protections) so a stack file
states only what differs. The settings are declarative ``msgspec`` structs: the YAML's camelCase keys
map to the fields by renaming, an unknown key is refused with its name and path, types and bounds
are checked by the decoder, and the few rules across fields live in ``__post_init__``.
``StackSettings.from_mapping`` is pure (no pulumi import) so the loader is testable without an
engine; ``load`` reads ``pulumi.Config``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, NoReturn, cast

import msgspec

from dataforge.alerts import parse_rules, to_json_rules
from dataforge.errors import DataForgeError, LakeLayoutError
from dataforge.lake import DEFAULT_PREFIX, ENVIRONMENTS, TRANSACTIONS_TOPIC, SupportBucket, Zone
from dataforge.lake import bucket_name as lake_bucket_name
from dataforge.settings import DEFAULT_QUERY_TIMEOUT_SECONDS
from infra.errors import InfraConfigError

NAMESPACE: Final = "dataforge"
LOG_RETENTION_DAYS: Final = frozenset({1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                                       1827, 2192, 2557, 2922, 3288, 3653})

StreamingMode = Literal["serverless", "provisioned"]
DashboardHosting = Literal["ecs", "apprunner"]
ApiAuth = Literal["api_key", "iam"]
GlueWorkerType = Literal["G.025X", "G.1X", "G.2X", "G.4X", "G.8X"]

Days = Annotated[int, msgspec.Meta(ge=1)]
IaDays = Annotated[int, msgspec.Meta(ge=30, description="S3 Standard-IA transitions need at least 30 days")]
Positive = Annotated[int, msgspec.Meta(ge=1)]
GlueWorkers = Annotated[int, msgspec.Meta(ge=2, description="Glue needs at least 2 workers")]
Cron = Annotated[str, msgspec.Meta(pattern=r"^cron\(.+\)$")]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InfraConfigError(message)


class _Section(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A ``dataforge:<section>`` object of a stack file (camelCase keys, unknown keys refused)."""


class NetworkSettings(_Section, frozen=True):
    cidr: str = "10.40.0.0/16"
    # How many Availability Zones the VPC spans. The zones themselves are chosen at deploy time from those the
    # account sees as available in the region (``infra.components.network.choose_zones``): AZ names map to
    # different physical zones in every account, so a stack file names none.
    availability_zone_count: Annotated[int, msgspec.Meta(ge=2, le=4)] = 2
    availability_zones: tuple[str, ...] = ()  # the former list of names: refused, pointing at the count

    def __post_init__(self) -> None:
        _require(not self.availability_zones,
                 "network.availabilityZones is replaced by network.availabilityZoneCount (2 to 4): the zones are "
                 "chosen at deploy time from the account's available Availability Zones")
        _require(self.cidr.endswith("/16"), "network.cidr must be a /16 (subnets are /20 slices)")


class LakeSettings(_Section, frozen=True):
    landing_days: Days = 30
    bronze_days: Days = 365
    quarantine_days: Days = 90
    silver_ia_days: IaDays = 90
    gold_ia_days: IaDays = 180
    noncurrent_days: Days = 30
    athena_results_days: Days = 7
    access_logs_days: Days = 365
    force_destroy: bool = False


#: Why the streaming section's connector keys are refused (``StreamingSettings``).
KAFKA_CONNECT_REFUSED: Final = (
    "{keys}: not a stack setting; the program declares no Kafka Connect (MSK Connect) connector "
    "(docs/adr/0013-no-kafka-connect-yet.md says why, and what a deployable connector needs)")


class StreamingSettings(_Section, frozen=True):
    mode: StreamingMode = "serverless"
    kafka_version: str = "3.6.0"
    broker_count: Annotated[int, msgspec.Meta(ge=2)] = 2
    broker_instance_type: str = "kafka.m7g.large"
    broker_volume_gb: int = 100
    topic: str = TRANSACTIONS_TOPIC
    partitions: Positive = 6
    replication_factor: Positive = 2
    retention_hours: Positive = 168
    # The keys of an MSK Connect connector, which the program does not declare: refused whatever their value
    # (null and [] included), pointing at the ADR, so a stack file that asks for a connector fails loudly.
    connectors: object = msgspec.UNSET
    connector_plugin_arn: object = msgspec.UNSET

    def __post_init__(self) -> None:
        # A ValueError here reaches ``from_mapping`` as msgspec's ValidationError at `$.streaming`, so the
        # message names the stack file and the section.
        given = (("connectors", self.connectors), ("connectorPluginArn", self.connector_plugin_arn))
        named = [key for key, value in given if value is not msgspec.UNSET]
        if named:
            raise ValueError(KAFKA_CONNECT_REFUSED.format(keys=", ".join(f"`{key}`" for key in named)))


class IngestionSettings(_Section, frozen=True):
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # The MSK mapping's batching window: the speed path shows an event once its batch lands (ADR 0014), so the
    # window bounds realtime freshness; Lambda takes whole seconds here (its 500 ms default cannot be set back).
    batch_window_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 1
    memory_mb: Annotated[int, msgspec.Meta(ge=128, le=10_240)] = 512
    timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=900)] = 60
    # Reserved concurrency of the MSK landing function; -1 (the default) reserves none, so the function draws
    # on the account's unreserved pool. Opt-in only: Lambda lets a function reserve at most the account's
    # concurrency quota minus the 100 it keeps unreserved, and a new account's quota can be as low as 10, so
    # any reservation fails there until a quota increase is granted. The program checks the value against the
    # account's quota before it creates anything (``infra.components.account.check_reserved_concurrency``).
    reserved_concurrency: Annotated[int, msgspec.Meta(ge=-1)] = -1
    archive_raw: bool = False


class ProcessingSettings(_Section, frozen=True):
    worker_type: GlueWorkerType = "G.1X"
    workers: GlueWorkers = 2
    streaming_workers: GlueWorkers = 2
    daily_schedule: Cron = "cron(30 1 * * ? *)"
    batch_schedule: Cron = "cron(0/15 * * * ? *)"
    timeout_minutes: Positive = 120
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1

    def __post_init__(self) -> None:
        # A ValueError here reaches ``from_mapping`` as msgspec's ValidationError at `$.processing`, so the
        # message names the stack file and the section. ``workerType`` sizes the batch jobs too
        # (``infra.components.processing``), and AWS offers G.025X to streaming jobs only.
        if self.worker_type == "G.025X":
            raise ValueError(
                "`workerType: G.025X` is refused: it sizes the batch jobs too, and AWS Glue offers G.025X "
                "(0.25 DPU) only to streaming jobs (Glue 3.0 or later; AWS Glue API, Job.WorkerType). Use G.1X "
                "or larger")


class ServingSettings(_Section, frozen=True):
    point_in_time_recovery: bool = True
    deletion_protection: bool = True
    # Athena's minimum cutoff is 10 MB.
    athena_bytes_scanned_cutoff: Annotated[int, msgspec.Meta(ge=10 * 1024**2)] = 10 * 1024**3


class ApiSettings(_Section, frozen=True):
    # ``auth`` names the authorization the Chalice app's routes declare (api_key_required -> api_key); the
    # program checks that the app's API Gateway definition agrees (``infra.components.api.check``).
    auth: ApiAuth = "api_key"
    # The function's memory, timeout and architecture are the Chalice app's (lambda_memory_size, lambda_timeout,
    # lambda_architecture in chalice_api/.chalice/config.json, per stage): one source, read by the program with
    # Chalice's own config lookup. The former memoryMb key is refused, pointing there.
    memory_mb: int | None = None
    throttle_rate: Positive = 50
    throttle_burst: Positive = 100
    cors_origin: str = ""
    # An API query still running this long after its submission is stopped (by the API when its status is
    # read, and by the alert evaluator every minute); at most 4 h, longer than Athena lets a query run.
    query_timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=4 * 3600)] = int(DEFAULT_QUERY_TIMEOUT_SECONDS)

    def __post_init__(self) -> None:
        _require(self.memory_mb is None,
                 "api.memoryMb is not a stack setting: the API function's memory is lambda_memory_size in "
                 "chalice_api/.chalice/config.json (stages.<stack> or the top level), with its timeout and "
                 "architecture")


#: The dashboard image's tag: ``src-`` and 24 hex digits of the SHA-256 of what the image is built from
#: (``devkit.dashboard_image.image_tag``: the Dockerfile, its ignore file, the platform and every file
#: its COPY instructions take from the build context). The ECR repository's tags are immutable, so one
#: tag names one image for good; ``latest`` or any other hand-written name is refused.
DASHBOARD_IMAGE_TAG_PREFIX: Final = "src-"
DASHBOARD_IMAGE_TAG_DIGITS: Final = 24
DASHBOARD_IMAGE_TAG: Final = re.compile(rf"^{DASHBOARD_IMAGE_TAG_PREFIX}[0-9a-f]{{{DASHBOARD_IMAGE_TAG_DIGITS}}}$")
APPRUNNER_REFUSED: Final = (
    "`hosting: apprunner` is refused: AWS App Runner is no longer open to new customers, so a new account "
    "cannot create the service (https://docs.aws.amazon.com/apprunner/latest/dg/apprunner-availability-change.html), "
    "and App Runner passes HTTP/1.0 and HTTP/1.1 requests to the container without WebSockets "
    "(https://docs.aws.amazon.com/apprunner/latest/dg/develop.html; aws/apprunner-roadmap#13), while every "
    "Panel (Bokeh) session runs over a WebSocket. Use `hosting: ecs` (Fargate behind an ALB, ADR 0002)")


class DashboardSettings(_Section, frozen=True):
    hosting: DashboardHosting = "ecs"
    cpu: Positive = 512
    memory_mb: Positive = 1024
    desired_count: Positive = 1
    image_tag: str = ""
    # HTTPS for the load balancer (``dashboard.hosting: ecs``; rules in ``StackSettings._check_dashboard_tls``):
    # the public hostname, and either the public Route 53 hosted zone that holds it (the program then requests
    # the ACM certificate, validates it through DNS and points the hostname at the load balancer) or the ARN of
    # an existing ACM certificate for the hostname in the stack's region.
    domain_name: str = ""
    hosted_zone_name: str = ""
    hosted_zone_id: str = ""
    certificate_arn: str = ""

    def __post_init__(self) -> None:
        # A ValueError here reaches ``from_mapping`` as msgspec's ValidationError at `$.dashboard`, so the
        # message names the stack file and the section.
        if self.hosting == "apprunner":
            raise ValueError(APPRUNNER_REFUSED)
        if not DASHBOARD_IMAGE_TAG.fullmatch(self.image_tag):
            found = f"{self.image_tag!r} is not" if self.image_tag else "is missing, it must be"
            raise ValueError(
                f"`imageTag` {found} a content-derived tag (src- and {DASHBOARD_IMAGE_TAG_DIGITS} hex digits): the "
                "repository's tags are immutable and the task names one image by what it is built from; "
                "`make dashboard-image STACK=<env>` builds and pushes the image and sets this key")


class AlertsSettings(_Section, frozen=True):
    emails: tuple[str, ...] = ()
    lambda_error_threshold: Positive = 1
    consumer_lag_threshold: Positive = 100_000
    freshness_minutes: Positive = 30
    api_latency_p99_ms: Positive = 3000
    api_5xx_threshold: Positive = msgspec.field(default=5, name="api5xxThreshold")
    # Declarative alert rules (dataforge.alerts.AlertRule objects); empty = the platform defaults.
    rules: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        for email in self.emails:
            _require("@" in email, f"alerts.emails: {email!r} is not an e-mail address")
        try:
            parse_rules(json.dumps(list(self.rules)) if self.rules else None)
        except DataForgeError as exc:
            raise InfraConfigError(f"alerts.rules: {exc}") from exc

    @property
    def rules_json(self) -> str:
        """The evaluator's ``DATAFORGE_ALERT_RULES`` value (validated, normalised)."""
        return to_json_rules(parse_rules(json.dumps(list(self.rules)) if self.rules else None))


# The AWS FIS Lambda extension, published by AWS per region and architecture; its ARN is the value of the public
# SSM parameter /aws/service/fis/lambda-extension/AWS-FIS-extension-arm64/1.x.x in the stack's region (FIS User
# Guide, "Available versions of the AWS FIS extension for Lambda").
_FIS_EXTENSION_LAYER: Final = re.compile(r"^arn:aws(?:-cn|-us-gov)?:lambda:(?P<region>[a-z0-9-]+):[0-9]{12}:layer:"
                                         r"[A-Za-z0-9_-]+:[0-9]+$")


class ChaosSettings(_Section, frozen=True):
    """AWS Fault Injection Service experiment templates (``infra.components.chaos``, docs/chaos_testing.md).

    ``fis`` declares the templates, their role and their log group: a template does nothing until someone
    starts an experiment from it, but its role may stop the dashboard's tasks and cut the private subnets off,
    so a stack asks for it explicitly (on in dev and staging, off in prod until a game day turns it on).
    ``lambdaExtensionLayerArn`` adds the two Lambda templates: FIS injects Lambda faults only through its
    extension, a layer AWS publishes, which the landing functions then carry with its wrapper and
    configuration location (FIS User Guide, "Use the AWS FIS aws:lambda:function actions"). Empty (the
    default), the functions stay as they are and no Lambda template is declared."""

    fis: bool = False
    action_minutes: Annotated[int, msgspec.Meta(ge=1, le=60)] = 5  # how long each fault lasts (FIS: PT1M..PT12H)
    lambda_extension_layer_arn: str = ""


# Provisioned MSK takes two or three client subnets, each in its own zone (two only in us-west-1):
# https://docs.aws.amazon.com/msk/latest/developerguide/msk-create-cluster.html
MSK_PROVISIONED_MAX_ZONES: Final = 3

# S3 general purpose buckets in the account regional namespace: the name is a prefix followed by the
# account's 12-digit id, the region code and "-an", at most 63 characters in all; only that account can
# create names with that suffix. Every AWS Region offers it except Middle East (Bahrain) and Middle East
# (UAE). https://docs.aws.amazon.com/AmazonS3/latest/userguide/gpbucketnamespaces.html
BUCKET_NAMESPACE: Final = "account-regional"
ACCOUNT_REGIONAL_SUFFIX: Final = "an"
NO_ACCOUNT_REGIONAL_NAMESPACE: Final = frozenset({"me-south-1", "me-central-1"})
BUCKET_NAME_MAX: Final = 63
ACCOUNT_ID: Final = re.compile(r"^[0-9]{12}$")
_SAMPLE_ACCOUNT: Final = "000000000000"

# ACM: the first domain name of a certificate request is its common name, at most 64 characters (RFC 5280).
ACM_COMMON_NAME_MAX: Final = 64
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME: Final = re.compile(rf"^(?=.{{1,253}}$)(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?$")
# Route 53 hosted zone ids as the API returns them after /hostedzone/ (e.g. Z0123456789ABCDEFGHIJ).
_HOSTED_ZONE_ID: Final = re.compile(r"^Z[A-Z0-9]{1,31}$")
_TLS_CHOICES: Final = ("dashboard.hostedZoneName (or dashboard.hostedZoneId), a public Route 53 hosted zone of the "
                       "account that holds dashboard.domainName, to have the certificate created and validated "
                       "through DNS, or dashboard.certificateArn, an existing ACM certificate for "
                       "dashboard.domainName")


def _certificate_arn(region: str) -> re.Pattern[str]:
    return re.compile(rf"^arn:aws(?:-cn|-us-gov)?:acm:{re.escape(region)}:[0-9]{{12}}:certificate/"
                      r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def in_zone(domain: str, zone: str) -> bool:
    """True when the hostname ``domain`` is the zone's apex or a name under it (both without a trailing dot)."""
    domain, zone = domain.rstrip(".").lower(), zone.rstrip(".").lower()
    return domain == zone or domain.endswith(f".{zone}")


class StackSettings(_Section, frozen=True):
    """One stack's settings. ``env`` is the stack name (one of ``dataforge.lake.ENVIRONMENTS``)."""

    env: str
    region: str = "us-east-1"
    name_prefix: str = DEFAULT_PREFIX
    log_retention_days: int = 30
    protect: bool = False
    owner: str = "data-platform"
    cost_center: str = "dataforge"
    oncall_endpoint: bool = False  # the endpoint itself is the secret dataforge:oncallHttpsEndpoint
    network: NetworkSettings = msgspec.field(default_factory=NetworkSettings)
    lake: LakeSettings = msgspec.field(default_factory=LakeSettings)
    streaming: StreamingSettings = msgspec.field(default_factory=StreamingSettings)
    ingestion: IngestionSettings = msgspec.field(default_factory=IngestionSettings)
    processing: ProcessingSettings = msgspec.field(default_factory=ProcessingSettings)
    serving: ServingSettings = msgspec.field(default_factory=ServingSettings)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    dashboard: DashboardSettings = msgspec.field(default_factory=DashboardSettings)
    alerts: AlertsSettings = msgspec.field(default_factory=AlertsSettings)
    chaos: ChaosSettings = msgspec.field(default_factory=ChaosSettings)

    def __post_init__(self) -> None:
        _require(self.env in ENVIRONMENTS and self.env != "local",
                 f"stack {self.env!r} is not a deployable environment (dev, staging, prod)")
        zones = self.network.availability_zone_count
        _require(self.streaming.mode == "serverless" or self.streaming.broker_count % zones == 0,
                 f"streaming.brokerCount must be a multiple of the {zones} availability zones")
        if self.streaming.mode == "provisioned" and zones > MSK_PROVISIONED_MAX_ZONES:
            self._fail("network.availabilityZoneCount", f"{zones} zones, but a provisioned MSK cluster takes "
                       f"{MSK_PROVISIONED_MAX_ZONES} client subnets at most (one per zone)")
        self._check_dashboard_tls()
        self._check_bucket_names()
        self._check_chaos()
        _require(self.log_retention_days in LOG_RETENTION_DAYS,
                 f"{NAMESPACE}:logRetentionDays={self.log_retention_days} is not a CloudWatch retention value")

    def _fail(self, key: str, message: str) -> NoReturn:
        """Refuse the stack naming the key to fix (``dataforge:<key>``, or a full key such as ``aws:region``)."""
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        raise InfraConfigError(f"Pulumi.{self.env}.yaml, {full}: {message}")

    def _check_dashboard_tls(self) -> None:
        """The HTTPS listener needs a certificate for the hostname users open. Either the program creates
        it (``domainName`` + the public hosted zone that holds it: an ACM certificate validated through
        DNS, and an alias record to the load balancer) or the stack names an existing one (``domainName``
        + ``certificateArn``, in this stack's region: a load balancer takes certificates of its own region
        only). There is no default: a stack with neither is refused."""
        d = self.dashboard
        if d.domain_name and not _HOSTNAME.fullmatch(d.domain_name):
            self._fail("dashboard.domainName", f"{d.domain_name!r} is not a lowercase DNS hostname "
                       "(labels of letters, digits and inner hyphens, e.g. dashboard.data.example.org)")
        if d.hosted_zone_name and d.hosted_zone_id:
            self._fail("dashboard.hostedZoneName", "set dashboard.hostedZoneName or dashboard.hostedZoneId, not both")
        if d.hosted_zone_name:
            if not _HOSTNAME.fullmatch(d.hosted_zone_name):
                self._fail("dashboard.hostedZoneName", f"{d.hosted_zone_name!r} is not a lowercase DNS name "
                           "without a trailing dot (e.g. data.example.org)")
            if d.domain_name and not in_zone(d.domain_name, d.hosted_zone_name):
                self._fail("dashboard.hostedZoneName", f"dashboard.domainName {d.domain_name!r} is not in the "
                           f"zone {d.hosted_zone_name!r}")
        if d.hosted_zone_id and not _HOSTED_ZONE_ID.fullmatch(d.hosted_zone_id):
            self._fail("dashboard.hostedZoneId", f"{d.hosted_zone_id!r} is not a Route 53 hosted zone id (Z and "
                       "upper-case letters and digits, without /hostedzone/)")
        if d.certificate_arn and not _certificate_arn(self.region).fullmatch(d.certificate_arn):
            self._fail("dashboard.certificateArn", f"{d.certificate_arn!r} is not the ARN of an ACM certificate in "
                       f"{self.region} (arn:aws:acm:{self.region}:<12-digit account id>:certificate/<uuid>); "
                       "the load balancer takes a certificate of its own region only")
        if d.hosting != "ecs":
            return
        if not d.domain_name:
            self._fail("dashboard.domainName", "the dashboard's public hostname is required for dashboard.hosting: "
                       f"ecs, with {_TLS_CHOICES}")
        if not (d.hosted_zone_name or d.hosted_zone_id or d.certificate_arn):
            self._fail("dashboard", f"no certificate for {d.domain_name}: set {_TLS_CHOICES}")
        if not d.certificate_arn and len(d.domain_name) > ACM_COMMON_NAME_MAX:
            self._fail("dashboard.domainName", f"{d.domain_name!r} is longer than the {ACM_COMMON_NAME_MAX} "
                       "characters ACM allows for a certificate's first domain name (RFC 5280 common name)")

    def _check_chaos(self) -> None:
        """The FIS Lambda extension is a layer of the stack's region (a function takes layers of its own region
        only), and it serves only the Lambda templates, which ``chaos.fis`` declares."""
        layer = self.chaos.lambda_extension_layer_arn
        if not layer:
            return
        match = _FIS_EXTENSION_LAYER.fullmatch(layer)
        if match is None or match["region"] != self.region:
            self._fail("chaos.lambdaExtensionLayerArn", f"{layer!r} is not a Lambda layer version ARN in "
                       f"{self.region}; take the value of `aws ssm get-parameter --name "
                       f"/aws/service/fis/lambda-extension/AWS-FIS-extension-arm64/1.x.x --region {self.region}`")
        if not self.chaos.fis:
            self._fail("chaos.lambdaExtensionLayerArn", "the FIS Lambda extension serves the FIS experiment "
                       "templates only: set chaos.fis: true as well, or remove the layer")

    def _check_bucket_names(self) -> None:
        """Every bucket name fits S3's rules in every account (the account id always has 12 digits)."""
        for which in (*Zone, *SupportBucket):
            self.bucket_name(which, _SAMPLE_ACCOUNT)

    def bucket_name(self, which: Zone | SupportBucket, account_id: str) -> str:
        """The S3 name of one of the stack's buckets, ``{prefix}-{env}-{bucket}-{account id}-{region}-an``, created
        in the account regional namespace (``BUCKET_NAMESPACE``): only the deploying account can create a name
        with its own suffix, so the names are unique per account and region and no other account can take them
        first. The embedded platform keeps the plain ``dataforge.lake.bucket_name``."""
        if self.region in NO_ACCOUNT_REGIONAL_NAMESPACE:
            self._fail("aws:region", f"{self.region} does not offer S3's account regional namespace, which the "
                       "stack's bucket names use (every other commercial region does)")
        if not ACCOUNT_ID.fullmatch(account_id):
            raise InfraConfigError(f"{account_id!r} is not a 12-digit AWS account id")
        try:
            stem = lake_bucket_name(self.name_prefix, self.env, which)
        except LakeLayoutError as exc:
            self._fail("namePrefix", str(exc))
        name = f"{stem}-{account_id}-{self.region}-{ACCOUNT_REGIONAL_SUFFIX}"
        if len(name) > BUCKET_NAME_MAX:
            longest = max(len(w.value) for w in (*Zone, *SupportBucket))
            budget = BUCKET_NAME_MAX - (len(name) - len(self.name_prefix) - len(which.value) + longest)
            self._fail("namePrefix", f"{name!r} is longer than S3's {BUCKET_NAME_MAX} characters; for stack "
                       f"{self.env} in {self.region} the prefix can have at most {budget} characters")
        return name

    @property
    def base(self) -> str:
        """``{prefix}-{env}``: the stem of every physical name."""
        return f"{self.name_prefix}-{self.env}"

    def tags(self) -> dict[str, str]:
        """Tags every taggable resource carries (applied centrally by ``infra.tagging``)."""
        return {"project": "dataforge", "environment": self.env, "owner": self.owner,
                "cost-center": self.cost_center, "managed-by": "pulumi"}

    @classmethod
    def from_mapping(cls, env: str, raw: Mapping[str, Any]) -> StackSettings:
        """Settings from the ``dataforge:*`` config values (keys without the namespace; ``region`` from
        ``aws:region``); a key set to null takes its default. An invalid value raises
        ``InfraConfigError`` naming its key (``$.<section>.<key>``) and the stack file to fix."""
        values = {key: value for key, value in raw.items() if value is not None}
        try:
            return msgspec.convert({**values, "env": env}, cls)
        except msgspec.ValidationError as exc:
            message, _, path = str(exc).partition(" - at `$")
            where = f"{NAMESPACE}:{path.rstrip('`').lstrip('.')}" if path else NAMESPACE
            raise InfraConfigError(f"Pulumi.{env}.yaml, {where}: {message}") from exc


_SECTIONS: Final = ("network", "lake", "streaming", "ingestion", "processing", "serving", "api", "dashboard",
                    "alerts", "chaos")


def load() -> StackSettings:
    """The current stack's settings from ``pulumi.Config`` (the real stack config, or the mocks')."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {key: config.get_object(key) for key in _SECTIONS}
    raw["namePrefix"] = config.get("namePrefix")
    raw["owner"] = config.get("owner")
    raw["costCenter"] = config.get("costCenter")
    raw["logRetentionDays"] = config.get_int("logRetentionDays")
    raw["protect"] = config.get_bool("protect")
    raw["oncallEndpoint"] = config.get("oncallHttpsEndpoint") is not None
    raw["region"] = pulumi.Config("aws").get("region")
    return StackSettings.from_mapping(pulumi.get_stack(), cast(Mapping[str, Any], raw))
