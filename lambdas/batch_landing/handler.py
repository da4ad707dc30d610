"""S3 batch landing processor (Lambda, landing-bucket object-created events): files -> bronze + quarantine.

Thin: parse the S3 event (Powertools ``S3Event``), land each created object with
``lambdas.common.file_landing``, publish metrics (EMF), return a summary. Keys come from the source
object and the version (or ETag) read, so a redelivered event rewrites the same objects. A
``StorageError`` propagates (the invocation is retried); a malformed file is quarantined whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from dataforge.settings import Settings
from lambdas.common.errors import SupersededObjectError
from lambdas.common.file_landing import FileLanding, is_batch_file
from lambdas.common.lazy import Lazy
from lambdas.common.observability import logger as make_logger
from lambdas.common.observability import metrics as make_metrics
from lambdas.common.storage import ObjectStore
from lambdas.common.wiring import landing_parts

SERVICE = "batch-landing"
logger = make_logger(SERVICE)
metrics = make_metrics(SERVICE)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

def build_landing(settings: Settings | None = None, store: ObjectStore | None = None) -> FileLanding:
    """The production wiring (``landing_parts``)."""
    return FileLanding(*landing_parts(settings, store))


def make_handler(get_landing: Callable[[], FileLanding]) -> Handler:
    """A Lambda handler over an injected landing core (tests and the local poller inject theirs)."""

    @metrics.log_metrics(raise_on_empty_metrics=False)
    @logger.inject_lambda_context(clear_state=True)
    @event_source(data_class=S3Event)
    def _handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
        landed: list[dict[str, Any]] = []
        for record in event.records:
            if not record.event_name.startswith("ObjectCreated"):
                continue
            s3 = record.s3
            key = unquote_plus(s3.get_object.key)
            if not is_batch_file(key):
                continue
            try:
                result = get_landing().land(s3.bucket.name, key, s3.get_object.version_id, s3.get_object.etag)
            except SupersededObjectError as exc:
                logger.warning("object version gone; its successor's event lands it", extra={"error": str(exc)})
                continue
            metrics.add_metric(name="FilesIn", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=result.records)
            metrics.add_metric(name="RecordsValid", unit=MetricUnit.Count, value=result.valid)
            metrics.add_metric(name="RecordsQuarantined", unit=MetricUnit.Count, value=result.quarantined)
            if result.malformed:
                metrics.add_metric(name="MalformedFiles", unit=MetricUnit.Count, value=1)
                logger.warning("malformed file quarantined whole", extra=result.as_dict())
            else:
                logger.info("file landed", extra=result.as_dict())
            landed.append(result.as_dict())
        return {"files": landed}

    return _handler  # type: ignore[no-any-return]


handler: Handler = make_handler(Lazy(build_landing))
