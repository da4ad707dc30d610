"""MSK landing processor (Lambda, MSK event source): Kafka records -> bronze + quarantine, and the
speed path's provisional realtime minutes in DynamoDB (``lambdas.common.speed_path``, ADR 0014).

Thin: parse the MSK event (Powertools ``KafkaEvent``), call ``lambdas.common.kafka_landing``, publish
metrics (EMF) and return a summary. Settings are read once, at the first invocation, into a frozen
``LandingConfig``; the S3 client is created on first use. A ``StorageError`` propagates: the event
source mapping retries the whole batch, which rewrites the same objects (no duplicates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KafkaEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from dataforge.settings import Settings
from dataforge.telemetry import FRESHNESS_METRIC
from lambdas.common.kafka_landing import BatchResult, KafkaLanding
from lambdas.common.lazy import Lazy
from lambdas.common.observability import logger as make_logger
from lambdas.common.observability import metrics as make_metrics
from lambdas.common.storage import ObjectStore
from lambdas.common.wiring import landing_parts, speed_path

SERVICE = "msk-landing"
logger = make_logger(SERVICE)
metrics = make_metrics(SERVICE)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]



def build_landing(settings: Settings | None = None, store: ObjectStore | None = None) -> KafkaLanding:
    """The production wiring (``landing_parts``), with the speed path when a metrics table is set."""
    parts = landing_parts(settings, store)
    return KafkaLanding(*parts, speed=speed_path(parts.config))


def _publish(result: BatchResult) -> None:
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=result.records)
    metrics.add_metric(name="RecordsValid", unit=MetricUnit.Count, value=result.valid)
    metrics.add_metric(name="RecordsQuarantined", unit=MetricUnit.Count, value=result.quarantined)
    metrics.add_metric(name="BatchDuration", unit=MetricUnit.Milliseconds, value=result.duration_ms)
    if result.newest_event_time is not None:
        lag = (datetime.now(UTC) - result.newest_event_time).total_seconds()
        metrics.add_metric(name=FRESHNESS_METRIC, unit=MetricUnit.Seconds, value=max(lag, 0.0))


def make_handler(get_landing: Callable[[], KafkaLanding]) -> Handler:
    """A Lambda handler over an injected landing core (tests and the local ESM inject theirs)."""

    @metrics.log_metrics(raise_on_empty_metrics=False)
    @logger.inject_lambda_context(clear_state=True)
    @event_source(data_class=KafkaEvent)
    def _handler(event: KafkaEvent, context: LambdaContext) -> dict[str, Any]:
        # The typed data class is the parse step; the hot loop reads the plain record dicts it wraps.
        records = event.raw_event["records"]
        result = get_landing().land(records)
        _publish(result)
        logger.info("batch landed", extra={"event_source_arn": event.event_source_arn, **result.as_dict(),
                                           "duration_ms": round(result.duration_ms, 1)})
        return result.as_dict()

    return _handler  # type: ignore[no-any-return]


handler: Handler = make_handler(Lazy(build_landing))
