"""The parts both landing functions are made of (``landing_parts``), built once per container."""

from __future__ import annotations

from typing import NamedTuple

from dataforge.contract import Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from lambdas.common.config import LandingConfig
from lambdas.common.counters import IngestCounters
from lambdas.common.speed_path import SpeedPath
from lambdas.common.storage import ObjectStore, S3ObjectStore


class LandingParts(NamedTuple):
    config: LandingConfig
    store: ObjectStore
    validator: Validator
    counters: IngestCounters | None


def landing_parts(settings: Settings | None = None, store: ObjectStore | None = None) -> LandingParts:
    """The production wiring of a landing function: settings from the environment, the S3 store, the
    validator on the FX table's currencies, and the ingest counters when a metrics table is set."""
    config = LandingConfig.from_settings(settings or Settings.from_env())
    counters = (IngestCounters(config.metrics_table, endpoint_url=config.endpoint_url, region=config.region)
                if config.metrics_table else None)
    return LandingParts(config, store or S3ObjectStore(endpoint_url=config.endpoint_url, region=config.region),
                        Validator(default_fx().currencies), counters)


def speed_path(config: LandingConfig) -> SpeedPath | None:
    """The MSK landing function's speed path (ADR 0014): on whenever a metrics table is set."""
    if not config.metrics_table:
        return None
    return SpeedPath(config.metrics_table, default_fx(), endpoint_url=config.endpoint_url, region=config.region)
