"""Every environment-variable name DataForge reads, in one place.

This is the infrastructure -> runtime contract: ``infra/`` sets these from Pulumi outputs (Lambda
environment, Glue job arguments, container environment) and each runtime reads them once into a
frozen settings object (``dataforge.settings``). Nothing else in the code base spells these names.
"""

from __future__ import annotations

from typing import Final

# --- platform-wide -----------------------------------------------------------------------------
ENV: Final = "DATAFORGE_ENV"  # dev | staging | prod | local
NAME_PREFIX: Final = "DATAFORGE_NAME_PREFIX"  # prefix of every resource name, e.g. "dataforge"
AWS_REGION: Final = "AWS_REGION"
AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"  # set only on the embedded platform (moto server)
# AWS_ENDPOINT_URL_<SERVICE> (e.g. AWS_ENDPOINT_URL_S3): one service's endpoint, over AWS_ENDPOINT_URL (dataforge.aws)
AWS_ENDPOINT_URL_SERVICE_PREFIX: Final = "AWS_ENDPOINT_URL_"
LOG_LEVEL: Final = "DATAFORGE_LOG_LEVEL"

# --- lake -------------------------------------------------------------------------------------
LANDING_BUCKET: Final = "DATAFORGE_LANDING_BUCKET"
BRONZE_BUCKET: Final = "DATAFORGE_BRONZE_BUCKET"
QUARANTINE_BUCKET: Final = "DATAFORGE_QUARANTINE_BUCKET"
SILVER_BUCKET: Final = "DATAFORGE_SILVER_BUCKET"
GOLD_BUCKET: Final = "DATAFORGE_GOLD_BUCKET"
ARTIFACTS_BUCKET: Final = "DATAFORGE_ARTIFACTS_BUCKET"
ATHENA_RESULTS_BUCKET: Final = "DATAFORGE_ATHENA_RESULTS_BUCKET"
ARCHIVE_RAW: Final = "DATAFORGE_ARCHIVE_RAW"  # "true" -> raw stream batches also kept in landing

# --- catalog and query ------------------------------------------------------------------------
GLUE_DATABASE_PREFIX: Final = "DATAFORGE_GLUE_DATABASE_PREFIX"
ATHENA_WORKGROUP: Final = "DATAFORGE_ATHENA_WORKGROUP"
QUERY_ENGINE: Final = "DATAFORGE_QUERY_ENGINE"  # athena | duckdb
QUERY_TIMEOUT_SECONDS: Final = "DATAFORGE_QUERY_TIMEOUT_SECONDS"  # API queries are stopped past it (default 60)
LOCAL_QUERY_MEMORY_MB: Final = "DATAFORGE_LOCAL_QUERY_MEMORY_MB"  # the local engine's DuckDB memory (default 1024)

# --- streaming --------------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS: Final = "DATAFORGE_KAFKA_BOOTSTRAP_SERVERS"
KAFKA_TOPIC: Final = "DATAFORGE_KAFKA_TOPIC"
KAFKA_AUTH: Final = "DATAFORGE_KAFKA_AUTH"  # iam (MSK IAM access control) | plaintext (a local broker)

# --- serving ----------------------------------------------------------------------------------
METRICS_TABLE: Final = "DATAFORGE_METRICS_TABLE"
ALERTS_TABLE: Final = "DATAFORGE_ALERTS_TABLE"
ALERTS_TOPIC_ARN: Final = "DATAFORGE_ALERTS_TOPIC_ARN"
ALERT_RULES: Final = "DATAFORGE_ALERT_RULES"  # JSON list of dataforge.alerts.AlertRule (default rules if unset)
API_KEY: Final = "DATAFORGE_API_KEY"
API_URL: Final = "DATAFORGE_API_URL"
CORS_ORIGIN: Final = "DATAFORGE_CORS_ORIGIN"
API_CACHE_KPI_TTL_SECONDS: Final = "DATAFORGE_API_CACHE_KPI_TTL_SECONDS"  # daily KPIs (default 30)
API_CACHE_REALTIME_TTL_SECONDS: Final = "DATAFORGE_API_CACHE_REALTIME_TTL_SECONDS"  # realtime (default 0.25)
API_CACHE_ALERTS_TTL_SECONDS: Final = "DATAFORGE_API_CACHE_ALERTS_TTL_SECONDS"  # alerts (default 0 = off)
API_CACHE_MAX_ENTRIES: Final = "DATAFORGE_API_CACHE_MAX_ENTRIES"  # per process (default 1024)

# --- dashboard --------------------------------------------------------------------------------
REALTIME_REFRESH_SECONDS: Final = "DATAFORGE_REALTIME_REFRESH_SECONDS"
DAILY_REFRESH_SECONDS: Final = "DATAFORGE_DAILY_REFRESH_SECONDS"

# --- local files ------------------------------------------------------------------------------
HOME: Final = "DATAFORGE_HOME"  # runtime state of the embedded platform (default ./.dataforge)
CACHE_DIR: Final = "DATAFORGE_CACHE_DIR"  # downloads: Maven repository, jars (default ./.cache)
REFERENCE_DIR: Final = "DATAFORGE_REFERENCE_DIR"  # merchants + FX rates (default: packaged copy)
