"""Typed, frozen, validated stack settings, loaded once per stack from ``pulumi.Config``.

Environments differ only by the data in ``Pulumi.<stack>.yaml``; components never branch on the
stack name. Every field has a secure default (encryption, retention, protections) so a stack file
states only what differs. ``StackSettings.from_mapping`` is pure (no pulumi import) so the loader
is testable without an engine; ``load`` reads ``pulumi.Config``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from dataforge.alerts import parse_rules, to_json_rules
from dataforge.errors import DataForgeError
from dataforge.lake import DEFAULT_PREFIX, ENVIRONMENTS, TRANSACTIONS_TOPIC
from infra.errors import InfraConfigError

NAMESPACE: Final = "dataforge"
LOG_RETENTION_DAYS: Final = frozenset({1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                                       1827, 2192, 2557, 2922, 3288, 3653})

StreamingMode = Literal["serverless", "provisioned"]
DashboardHosting = Literal["ecs", "apprunner"]
ApiAuth = Literal["api_key", "iam"]


def _section(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise InfraConfigError(f"{NAMESPACE}:{key} must be an object, got {type(value).__name__}")
    return value


def _build(cls: type[Any], key: str, raw: Mapping[str, Any]) -> Any:
    """Build a settings dataclass from camelCase config keys, rejecting unknown keys."""
    section = _section(raw, key)
    fields_ = {f.name: f for f in cls.__dataclass_fields__.values()}
    camel = {_camel(name): name for name in fields_}
    unknown = sorted(set(section) - set(camel))
    if unknown:
        raise InfraConfigError(f"{NAMESPACE}:{key}: unknown keys {unknown}; known: {sorted(camel)}")
    kwargs: dict[str, Any] = {}
    for ckey, value in section.items():
        name = camel[ckey]
        default = fields_[name].default
        if isinstance(default, tuple):
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise InfraConfigError(f"{NAMESPACE}:{key}.{ckey} must be true or false, got {value!r}")
        elif isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            raise InfraConfigError(f"{NAMESPACE}:{key}.{ckey} must be an integer, got {value!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InfraConfigError(f"{NAMESPACE}:{key}: {exc}") from exc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InfraConfigError(message)


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    cidr: str = "10.40.0.0/16"
    availability_zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")

    def __post_init__(self) -> None:
        _require(2 <= len(self.availability_zones) <= 4, "network.availabilityZones: give 2 to 4 zones")
        _require(self.cidr.endswith("/16"), "network.cidr must be a /16 (subnets are /20 slices)")


@dataclass(frozen=True, slots=True)
class LakeSettings:
    landing_days: int = 30
    bronze_days: int = 365
    quarantine_days: int = 90
    silver_ia_days: int = 90
    gold_ia_days: int = 180
    noncurrent_days: int = 30
    athena_results_days: int = 7
    access_logs_days: int = 365
    force_destroy: bool = False

    def __post_init__(self) -> None:
        for name in ("landing_days", "bronze_days", "quarantine_days", "noncurrent_days",
                     "athena_results_days", "access_logs_days"):
            _require(getattr(self, name) >= 1, f"lake.{_camel(name)} must be at least 1 day")
        _require(self.silver_ia_days >= 30 and self.gold_ia_days >= 30,
                 "lake: S3 Standard-IA transitions need at least 30 days")


@dataclass(frozen=True, slots=True)
class StreamingSettings:
    mode: StreamingMode = "serverless"
    kafka_version: str = "3.6.0"
    broker_count: int = 2
    broker_instance_type: str = "kafka.m7g.large"
    broker_volume_gb: int = 100
    topic: str = TRANSACTIONS_TOPIC
    partitions: int = 6
    replication_factor: int = 2
    retention_hours: int = 168
    connectors: tuple[str, ...] = ()
    connector_plugin_arn: str = ""

    def __post_init__(self) -> None:
        _require(self.mode in ("serverless", "provisioned"), "streaming.mode must be serverless or provisioned")
        _require(self.partitions >= 1, "streaming.partitions must be >= 1")
        _require(self.replication_factor >= 1, "streaming.replicationFactor must be >= 1")
        _require(self.broker_count >= 2, "streaming.brokerCount must be at least 2")
        _require(not self.connectors or bool(self.connector_plugin_arn),
                 "streaming.connectors need streaming.connectorPluginArn (an MSK Connect custom plugin)")


@dataclass(frozen=True, slots=True)
class IngestionSettings:
    batch_size: int = 500
    batch_window_seconds: int = 5
    memory_mb: int = 512
    timeout_seconds: int = 60
    reserved_concurrency: int = -1
    archive_raw: bool = False

    def __post_init__(self) -> None:
        _require(1 <= self.batch_size <= 10_000, "ingestion.batchSize must be 1..10000")
        _require(0 <= self.batch_window_seconds <= 300, "ingestion.batchWindowSeconds must be 0..300")
        _require(128 <= self.memory_mb <= 10_240, "ingestion.memoryMb must be 128..10240")
        _require(1 <= self.timeout_seconds <= 900, "ingestion.timeoutSeconds must be 1..900")


@dataclass(frozen=True, slots=True)
class ProcessingSettings:
    worker_type: str = "G.1X"
    workers: int = 2
    streaming_workers: int = 2
    daily_schedule: str = "cron(30 1 * * ? *)"
    batch_schedule: str = "cron(0/15 * * * ? *)"
    timeout_minutes: int = 120
    max_retries: int = 1

    def __post_init__(self) -> None:
        _require(self.worker_type in ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X"), "processing.workerType unknown")
        _require(self.workers >= 2 and self.streaming_workers >= 2, "processing: Glue needs at least 2 workers")
        _require(self.daily_schedule.startswith("cron(") and self.batch_schedule.startswith("cron("),
                 "processing schedules must be cron(...) expressions")


@dataclass(frozen=True, slots=True)
class ServingSettings:
    point_in_time_recovery: bool = True
    deletion_protection: bool = True
    athena_bytes_scanned_cutoff: int = 10 * 1024**3

    def __post_init__(self) -> None:
        _require(self.athena_bytes_scanned_cutoff >= 10 * 1024**2,
                 "serving.athenaBytesScannedCutoff must be at least 10 MB (Athena's minimum)")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    auth: ApiAuth = "api_key"
    memory_mb: int = 512
    throttle_rate: int = 50
    throttle_burst: int = 100
    cors_origin: str = ""

    def __post_init__(self) -> None:
        _require(self.auth in ("api_key", "iam"), "api.auth must be api_key or iam")


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    hosting: DashboardHosting = "ecs"
    cpu: int = 512
    memory_mb: int = 1024
    desired_count: int = 1
    image_tag: str = "latest"
    certificate_arn: str = ""

    def __post_init__(self) -> None:
        _require(self.hosting in ("ecs", "apprunner"), "dashboard.hosting must be ecs or apprunner")
        _require(self.desired_count >= 1, "dashboard.desiredCount must be >= 1")


@dataclass(frozen=True, slots=True)
class AlertsSettings:
    emails: tuple[str, ...] = ()
    lambda_error_threshold: int = 1
    consumer_lag_threshold: int = 100_000
    freshness_minutes: int = 30
    api_latency_p99_ms: int = 3000
    api_5xx_threshold: int = 5
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


@dataclass(frozen=True, slots=True)
class StackSettings:
    """One stack's settings. ``env`` is the stack name (one of ``dataforge.lake.ENVIRONMENTS``)."""

    env: str
    region: str
    name_prefix: str = DEFAULT_PREFIX
    log_retention_days: int = 30
    protect: bool = False
    owner: str = "data-platform"
    cost_center: str = "dataforge"
    oncall_endpoint: bool = False  # the endpoint itself is the secret dataforge:oncallHttpsEndpoint
    network: NetworkSettings = field(default_factory=NetworkSettings)
    lake: LakeSettings = field(default_factory=LakeSettings)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    ingestion: IngestionSettings = field(default_factory=IngestionSettings)
    processing: ProcessingSettings = field(default_factory=ProcessingSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)

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
        """Settings from the ``dataforge:*`` config values (keys without the namespace)."""
        scalars: dict[str, Any] = {}
        for ckey, name, kind in (("namePrefix", "name_prefix", str), ("logRetentionDays", "log_retention_days", int),
                                 ("protect", "protect", bool), ("owner", "owner", str),
                                 ("costCenter", "cost_center", str), ("oncallEndpoint", "oncall_endpoint", bool)):
            if ckey in raw and raw[ckey] is not None:
                value = raw[ckey]
                if kind is int and isinstance(value, str) and value.isdigit():
                    value = int(value)
                if kind is bool and isinstance(value, str):
                    value = {"true": True, "false": False}.get(value, value)
                if not isinstance(value, kind):
                    raise InfraConfigError(f"{NAMESPACE}:{ckey} must be {kind.__name__}, got {value!r}")
                scalars[name] = value
        return cls(
            env=env,
            region=str(raw.get("region") or "us-east-1"),
            network=_build(NetworkSettings, "network", raw),
            lake=_build(LakeSettings, "lake", raw),
            streaming=_build(StreamingSettings, "streaming", raw),
            ingestion=_build(IngestionSettings, "ingestion", raw),
            processing=_build(ProcessingSettings, "processing", raw),
            serving=_build(ServingSettings, "serving", raw),
            api=_build(ApiSettings, "api", raw),
            dashboard=_build(DashboardSettings, "dashboard", raw),
            alerts=_build(AlertsSettings, "alerts", raw),
            **scalars,
        )


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
