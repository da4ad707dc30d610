"""The landing Lambdas' settings: read once at cold start into a frozen object, failing fast."""

from __future__ import annotations

from dataclasses import dataclass

from dataforge.settings import Settings


@dataclass(frozen=True, slots=True)
class LandingConfig:
    bronze_bucket: str
    quarantine_bucket: str
    landing_bucket: str | None
    archive_raw: bool
    endpoint_url: str | None
    region: str
    metrics_table: str | None = None  # when set: per-batch counts (quarantine-ratio alert), the MSK speed path

    @classmethod
    def from_settings(cls, settings: Settings) -> LandingConfig:
        return cls(
            bronze_bucket=settings.require("bronze_bucket"),
            quarantine_bucket=settings.require("quarantine_bucket"),
            landing_bucket=settings.require("landing_bucket") if settings.archive_raw else settings.landing_bucket,
            archive_raw=settings.archive_raw,
            endpoint_url=settings.endpoint_url,
            region=settings.region,
            metrics_table=settings.metrics_table,
        )
