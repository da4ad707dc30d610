"""The API's settings, read once from the environment (``dataforge.settings``) into a frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dataforge.lake import Zone, zone_database
from dataforge.settings import LOCAL_ENV, Settings

API_PREFIX: Final = "/v1"
API_KEY_HEADER: Final = "x-api-key"
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
MAX_KPI_RANGE_DAYS: Final = 366
MAX_QUERY_ROWS: Final = 10_000  # row limit the query guard enforces (LIMIT added or lowered)
QUERY_TIMEOUT_SECONDS: Final = 60.0  # a query still running after this is stopped
MAX_SQL_CHARS: Final = 100_000
CATALOG_TTL_SECONDS: Final = 30.0
QUERYABLE_ZONES: Final = (Zone.SILVER, Zone.GOLD)


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

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        """Fails fast (``SettingsError``) on what the API cannot run without.

        The embedded platform has no API Gateway in front, so there the key is checked by the app and
        must be set; on AWS the usage plan checks it and the app checks it too when it is given.
        """
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
        )

    @classmethod
    def from_env(cls) -> ApiConfig:
        return cls.from_settings(Settings.from_env())
