"""The API's settings, read once from the environment (``dataforge.settings``) into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dataforge import envvars
from dataforge.errors import SettingsError
from dataforge.lake import Zone, zone_database
from dataforge.settings import DEFAULT_QUERY_TIMEOUT_SECONDS, LOCAL_ENV, Settings, env_seconds

API_PREFIX: Final = "/v1"
API_KEY_HEADER: Final = "x-api-key"
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
MAX_KPI_RANGE_DAYS: Final = 366
MAX_QUERY_ROWS: Final = 10_000  # row limit the query guard enforces (LIMIT added or lowered)
QUERY_TIMEOUT_SECONDS: Final = DEFAULT_QUERY_TIMEOUT_SECONDS  # DATAFORGE_QUERY_TIMEOUT_SECONDS when set
MAX_RESULT_PAGE_BYTES: Final = 1024**2  # text of the cells of one results page (a Lambda answer is at most 6 MB)
MAX_RESULT_BYTES: Final = 16 * 1024**2  # text of the cells of a whole result (local engine: kept in memory)
LOCAL_QUERY_MEMORY_MB: Final = 1024  # the local engine's DuckDB memory limit (DATAFORGE_LOCAL_QUERY_MEMORY_MB)
MAX_SQL_CHARS: Final = 100_000
CATALOG_TTL_SECONDS: Final = 30.0
QUERYABLE_ZONES: Final = (Zone.SILVER, Zone.GOLD)

# Read-through cache of the DynamoDB reads (``chalicelib.cache``), per process / Lambda container.
# These variables are read by the API only, so their names live here next to their defaults.
CACHE_KPI_TTL_ENV: Final = envvars.API_CACHE_KPI_TTL_SECONDS
CACHE_REALTIME_TTL_ENV: Final = envvars.API_CACHE_REALTIME_TTL_SECONDS
CACHE_ALERTS_TTL_ENV: Final = envvars.API_CACHE_ALERTS_TTL_SECONDS
CACHE_MAX_ENTRIES_ENV: Final = envvars.API_CACHE_MAX_ENTRIES
CACHE_KPI_TTL_SECONDS: Final = 30.0  # daily KPIs and summaries: change only when the gold export runs
CACHE_REALTIME_TTL_SECONDS: Final = 0.25  # the speed path changes the current minute every batch (ADR 0014)
CACHE_ALERTS_TTL_SECONDS: Final = 0.0  # alerts are acted on: not cached unless asked for
CACHE_MAX_ENTRIES: Final = 1024  # per cache (KPIs, realtime, alerts)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    kpi_ttl_seconds: float = CACHE_KPI_TTL_SECONDS
    realtime_ttl_seconds: float = CACHE_REALTIME_TTL_SECONDS
    alerts_ttl_seconds: float = CACHE_ALERTS_TTL_SECONDS
    max_entries: int = CACHE_MAX_ENTRIES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CacheConfig:
        """Defaults for unset variables; ``SettingsError`` for a value that is not a number >= 0
        (0 turns that cache off)."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            return env_seconds(env, name, default, zero_allowed=True)

        max_entries = number(CACHE_MAX_ENTRIES_ENV, CACHE_MAX_ENTRIES)
        if max_entries != int(max_entries):
            raise SettingsError(f"{CACHE_MAX_ENTRIES_ENV} must be a whole number")
        return cls(
            kpi_ttl_seconds=number(CACHE_KPI_TTL_ENV, CACHE_KPI_TTL_SECONDS),
            realtime_ttl_seconds=number(CACHE_REALTIME_TTL_ENV, CACHE_REALTIME_TTL_SECONDS),
            alerts_ttl_seconds=number(CACHE_ALERTS_TTL_ENV, CACHE_ALERTS_TTL_SECONDS),
            max_entries=int(max_entries),
        )


@dataclass(frozen=True, slots=True)
class ApiConfig:
    settings: Settings
    metrics_table: str
    alerts_table: str
    api_key: str | None  # None on AWS when API Gateway's usage plan checks the key
    cors_origin: str | None
    allowed_databases: tuple[str, ...]
    query_engine: str
    athena_workgroup: str | None
    max_query_rows: int = MAX_QUERY_ROWS
    query_timeout_seconds: float = QUERY_TIMEOUT_SECONDS
    local_query_memory_mb: int = LOCAL_QUERY_MEMORY_MB
    cache: CacheConfig = CacheConfig()

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> ApiConfig:
        """Fails fast (``SettingsError``) on what the API cannot run without.

        The embedded platform has no API Gateway in front, so there the key is checked by the app and
        must be set; on AWS the usage plan checks it and the app checks it too when it is given.
        The cache TTLs and the local engine's memory come from ``environ`` (default: the process environment).
        """
        env = os.environ if environ is None else environ
        raw_memory = env.get(envvars.LOCAL_QUERY_MEMORY_MB, "").strip() or str(LOCAL_QUERY_MEMORY_MB)
        if not (raw_memory.isascii() and raw_memory.isdigit()) or int(raw_memory) < 64:
            raise SettingsError(f"{envvars.LOCAL_QUERY_MEMORY_MB}={raw_memory!r} must be a whole number of MB >= 64")
        api_key = settings.require("api_key") if settings.env == LOCAL_ENV else settings.api_key
        return cls(
            settings=settings,
            metrics_table=settings.require("metrics_table"),
            alerts_table=settings.require("alerts_table"),
            api_key=api_key,
            cors_origin=settings.cors_origin,
            allowed_databases=tuple(zone_database(settings.glue_database_prefix, z) for z in QUERYABLE_ZONES),
            query_engine=settings.query_engine,
            athena_workgroup=settings.require("athena_workgroup") if settings.query_engine == "athena" else None,
            query_timeout_seconds=settings.query_timeout_seconds,
            local_query_memory_mb=int(raw_memory),
            cache=CacheConfig.from_env(environ),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiConfig:
        return cls.from_settings(Settings.from_env(environ), environ)
