"""Runtime settings: read once from the environment into frozen objects, failing fast.

The variable names live in ``dataforge.envvars``; ``infra/`` sets them from Pulumi outputs and the
embedded platform sets them with ``local_environment``. A runtime builds its settings at cold start
(``Settings.from_env()``) and asks for what it needs with ``require`` so that a missing name fails
with the variable to set, not with a ``None`` deep inside a boto3 call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dataforge import envvars
from dataforge.errors import SettingsError
from dataforge.lake import DEFAULT_PREFIX, ENVIRONMENTS, TRANSACTIONS_TOPIC, Zone, bucket_name

DEFAULT_REGION: Final = "us-east-1"
LOCAL_ENV: Final = "local"
DEFAULT_QUERY_TIMEOUT_SECONDS: Final = 60.0
"""An API query still running this long after its submission is stopped: by the API when it reads the
query's status, and on AWS by the scheduled evaluator without anyone asking."""
KAFKA_AUTH_IAM: Final = "iam"
"""MSK's IAM access control: SASL_SSL with the AWS_MSK_IAM mechanism (the brokers' port 9098)."""
KAFKA_AUTH_PLAINTEXT: Final = "plaintext"
"""No authentication, no TLS: the embedded platform's local broker."""
KAFKA_AUTH_MODES: Final = (KAFKA_AUTH_IAM, KAFKA_AUTH_PLAINTEXT)


@dataclass(frozen=True, slots=True)
class LakeBuckets:
    landing: str
    bronze: str
    quarantine: str
    silver: str
    gold: str

    @classmethod
    def named(cls, prefix: str, env: str) -> LakeBuckets:
        """The deterministic names of one environment's zone buckets (``bucket_name``)."""
        return cls(**{zone.value: bucket_name(prefix, env, zone) for zone in Zone})

    def for_zone(self, zone: Zone) -> str:
        name: str = getattr(self, zone.value)
        return name


# Env var of each optional setting, by field name: one table, used by from_env and require.
_OPTIONAL: Final[Mapping[str, str]] = {
    "endpoint_url": envvars.AWS_ENDPOINT_URL,
    "landing_bucket": envvars.LANDING_BUCKET,
    "bronze_bucket": envvars.BRONZE_BUCKET,
    "quarantine_bucket": envvars.QUARANTINE_BUCKET,
    "silver_bucket": envvars.SILVER_BUCKET,
    "gold_bucket": envvars.GOLD_BUCKET,
    "artifacts_bucket": envvars.ARTIFACTS_BUCKET,
    "athena_results_bucket": envvars.ATHENA_RESULTS_BUCKET,
    "athena_workgroup": envvars.ATHENA_WORKGROUP,
    "kafka_bootstrap_servers": envvars.KAFKA_BOOTSTRAP_SERVERS,
    "metrics_table": envvars.METRICS_TABLE,
    "alerts_table": envvars.ALERTS_TABLE,
    "alerts_topic_arn": envvars.ALERTS_TOPIC_ARN,
    "alert_rules": envvars.ALERT_RULES,
    "api_key": envvars.API_KEY,
    "api_url": envvars.API_URL,
    "cors_origin": envvars.CORS_ORIGIN,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a runtime may need; each runtime ``require``s the subset it uses."""

    env: str
    name_prefix: str
    region: str
    kafka_topic: str
    glue_database_prefix: str
    archive_raw: bool
    query_engine: str
    log_level: str
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS
    kafka_auth: str = KAFKA_AUTH_PLAINTEXT  # how a Kafka client authenticates: KAFKA_AUTH_MODES
    endpoint_url: str | None = None
    landing_bucket: str | None = None
    bronze_bucket: str | None = None
    quarantine_bucket: str | None = None
    silver_bucket: str | None = None
    gold_bucket: str | None = None
    artifacts_bucket: str | None = None
    athena_results_bucket: str | None = None
    athena_workgroup: str | None = None
    kafka_bootstrap_servers: str | None = None
    metrics_table: str | None = None
    alerts_table: str | None = None
    alerts_topic_arn: str | None = None
    alert_rules: str | None = None
    api_key: str | None = None
    api_url: str | None = None
    cors_origin: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env_map = os.environ if environ is None else environ
        env = env_map.get(envvars.ENV, LOCAL_ENV)
        if env not in ENVIRONMENTS:
            raise SettingsError(f"{envvars.ENV}={env!r} is not one of {', '.join(ENVIRONMENTS)}")
        prefix = env_map.get(envvars.NAME_PREFIX, DEFAULT_PREFIX)
        archive = env_map.get(envvars.ARCHIVE_RAW, "false").strip().lower()
        if archive not in ("true", "false"):
            raise SettingsError(f"{envvars.ARCHIVE_RAW} must be true or false, got {archive!r}")
        engine = env_map.get(envvars.QUERY_ENGINE, "duckdb" if env == LOCAL_ENV else "athena")
        if engine not in ("athena", "duckdb"):
            raise SettingsError(f"{envvars.QUERY_ENGINE} must be athena or duckdb, got {engine!r}")
        timeout = env_seconds(env_map, envvars.QUERY_TIMEOUT_SECONDS, DEFAULT_QUERY_TIMEOUT_SECONDS)
        kafka_auth = env_map.get(envvars.KAFKA_AUTH, "").strip().lower() or KAFKA_AUTH_PLAINTEXT
        if kafka_auth not in KAFKA_AUTH_MODES:
            raise SettingsError(f"{envvars.KAFKA_AUTH} must be {' or '.join(KAFKA_AUTH_MODES)}, got {kafka_auth!r}: "
                                f"{KAFKA_AUTH_IAM} for MSK (IAM access control), {KAFKA_AUTH_PLAINTEXT} for a local "
                                "broker")
        optional = {name: env_map.get(var) or None for name, var in _OPTIONAL.items()}
        return cls(
            env=env,
            name_prefix=prefix,
            region=env_map.get(envvars.AWS_REGION) or env_map.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            kafka_topic=env_map.get(envvars.KAFKA_TOPIC, TRANSACTIONS_TOPIC),
            glue_database_prefix=env_map.get(envvars.GLUE_DATABASE_PREFIX, f"{prefix}_{env}").replace("-", "_"),
            archive_raw=archive == "true",
            query_engine=engine,
            log_level=env_map.get(envvars.LOG_LEVEL, "INFO").upper(),
            query_timeout_seconds=timeout,
            kafka_auth=kafka_auth,
            **optional,
        )

    def require(self, name: str) -> str:
        """The value of an optional setting, or a ``SettingsError`` naming the variable to set."""
        if name not in _OPTIONAL:
            raise SettingsError(f"unknown setting {name!r}; known: {', '.join(sorted(_OPTIONAL))}")
        value: str | None = getattr(self, name)
        if not value:
            raise SettingsError(f"setting {name} is required here: set the environment variable {_OPTIONAL[name]}")
        return value

    def lake(self) -> LakeBuckets:
        """The zone buckets; every one of them must be set."""
        return LakeBuckets(**{zone.value: self.require(f"{zone.value}_bucket") for zone in Zone})


def env_seconds(env_map: Mapping[str, str], name: str, default: float, *, zero_allowed: bool = False) -> float:
    """The number of seconds in variable ``name`` (``default`` when unset or blank); ``SettingsError`` for
    anything but a finite number > 0 (>= 0 with ``zero_allowed``)."""
    raw = env_map.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if zero_allowed and not 0 <= value < float("inf"):
        raise SettingsError(f"{name}={raw!r} must be a finite number >= 0")
    if not zero_allowed and not 0 < value < float("inf"):
        raise SettingsError(f"{name}={raw!r} must be a finite number of seconds > 0")
    return value
