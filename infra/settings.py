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
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, cast

import msgspec

from dataforge.alerts import parse_rules, to_json_rules
from dataforge.errors import DataForgeError
from dataforge.lake import DEFAULT_PREFIX, ENVIRONMENTS, TRANSACTIONS_TOPIC
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
    availability_zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")

    def __post_init__(self) -> None:
        _require(2 <= len(self.availability_zones) <= 4, "network.availabilityZones: give 2 to 4 zones")
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
    connectors: tuple[str, ...] = ()
    connector_plugin_arn: str = ""

    def __post_init__(self) -> None:
        _require(not self.connectors or bool(self.connector_plugin_arn),
                 "streaming.connectors need streaming.connectorPluginArn (an MSK Connect custom plugin)")


class IngestionSettings(_Section, frozen=True):
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    batch_window_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 5
    memory_mb: Annotated[int, msgspec.Meta(ge=128, le=10_240)] = 512
    timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=900)] = 60
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


class ServingSettings(_Section, frozen=True):
    point_in_time_recovery: bool = True
    deletion_protection: bool = True
    # Athena's minimum cutoff is 10 MB.
    athena_bytes_scanned_cutoff: Annotated[int, msgspec.Meta(ge=10 * 1024**2)] = 10 * 1024**3


class ApiSettings(_Section, frozen=True):
    auth: ApiAuth = "api_key"
    memory_mb: Annotated[int, msgspec.Meta(ge=128, le=10_240)] = 512
    throttle_rate: Positive = 50
    throttle_burst: Positive = 100
    cors_origin: str = ""
    # An API query still running this long after its submission is stopped (by the API when its status is
    # read, and by the alert evaluator every minute); at most 4 h, longer than Athena lets a query run.
    query_timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=4 * 3600)] = int(DEFAULT_QUERY_TIMEOUT_SECONDS)


class DashboardSettings(_Section, frozen=True):
    hosting: DashboardHosting = "ecs"
    cpu: Positive = 512
    memory_mb: Positive = 1024
    desired_count: Positive = 1
    image_tag: str = "latest"
    certificate_arn: str = ""


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

    def __post_init__(self) -> None:
        _require(self.env in ENVIRONMENTS and self.env != "local",
                 f"stack {self.env!r} is not a deployable environment (dev, staging, prod)")
        zones = len(self.network.availability_zones)
        _require(self.streaming.mode == "serverless" or self.streaming.broker_count % zones == 0,
                 f"streaming.brokerCount must be a multiple of the {zones} availability zones")
        _require(self.dashboard.hosting != "ecs" or self.dashboard.certificate_arn.startswith("arn:aws:acm:"),
                 "dashboard.certificateArn (an ACM certificate ARN) is required for dashboard.hosting: ecs")
        _require(self.log_retention_days in LOG_RETENTION_DAYS,
                 f"{NAMESPACE}:logRetentionDays={self.log_retention_days} is not a CloudWatch retention value")

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
                    "alerts")


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
