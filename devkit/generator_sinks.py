"""Where generated events go: a JSON-lines file (optionally gzip), a byte stream (stdout), or Kafka.

Every sink consumes an iterable of ``GeneratedEvent`` and returns a ``SinkReport``: how many records
were sent, how many the destination confirmed (Kafka delivery reports; a file counts what it wrote),
how long it took, and the ``GenerationSummary`` of what was sent (valid / invalid by reason /
duplicates) so a caller can reconcile what landed.

The Kafka producer is built only when ``send_to_kafka`` runs (never at import); ``confluent_kafka`` is
imported there too, so this module loads without it. Tests inject a fake through ``producer_factory``.
"""

from __future__ import annotations

import gzip as gzip_module
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from dataforge.errors import ServiceError
from devkit.generator import GeneratedEvent, GenerationSummary, SummaryCounter

log = logging.getLogger(__name__)
# librdkafka's own log lines (connection retries, ...) go here, never to its default stderr sink
LIBRDKAFKA_LOGGER: Final = logging.getLogger(f"{__name__}.librdkafka")

ProgressCallback = Callable[[int], None]
"""Called with the number of records handled so far (every ``progress_every`` records and at the end)."""

DEFAULT_PROGRESS_EVERY: Final = 5_000
_WRITE_BATCH: Final = 4_096
_POLL_EVERY: Final = 1_000
MAX_KEPT_ERRORS: Final = 5

#: Producer settings: exactly-once per partition on retries, all in-sync replicas, small batching delay.
KAFKA_PRODUCER_DEFAULTS: Final[Mapping[str, Any]] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "compression.type": "lz4",
    "client.id": "dataforge-generator",
    "message.timeout.ms": 60_000,
}
SERVICES_HINT: Final = "start the embedded services with `dataforge services up`, or pass --bootstrap-servers"


@dataclass(frozen=True, slots=True)
class SinkReport:
    """What a sink did. ``failed`` counts records the destination did not confirm."""

    destination: str
    sent: int
    delivered: int
    failed: int
    seconds: float
    summary: GenerationSummary
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rate(self) -> float:
        """Records sent per second."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class BinaryWriter(Protocol):
    """A binary stream: ``sys.stdout.buffer``, an open file, a ``GzipFile``."""

    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


def _noop(_: int) -> None:
    """The default progress callback."""


# --- files and streams ---------------------------------------------------------------------------


def write_stream(
    events: Iterable[GeneratedEvent],
    stream: BinaryWriter,
    *,
    destination: str = "stream",
    progress: ProgressCallback = _noop,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
) -> SinkReport:
    """Write one JSON value per line to a binary stream (``sys.stdout.buffer``, an open file)."""
    started = time.perf_counter()
    counter = SummaryCounter()
    batch: list[bytes] = []
    written = 0
    next_progress = progress_every
    for event in events:
        counter.add(event)
        batch.append(event.value)
        if len(batch) == _WRITE_BATCH:
            stream.write(b"\n".join(batch) + b"\n")
            written += len(batch)
            batch.clear()
            if written >= next_progress:
                progress(written)
                next_progress = written + progress_every
    if batch:
        stream.write(b"\n".join(batch) + b"\n")
        written += len(batch)
    stream.flush()
    progress(written)
    return SinkReport(destination, written, written, 0, time.perf_counter() - started, counter.result())


def write_jsonl(
    events: Iterable[GeneratedEvent],
    path: Path,
    *,
    gzip: bool = False,
    progress: ProgressCallback = _noop,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
) -> SinkReport:
    """Write a JSON-lines file (gzip-compressed when ``gzip``), atomically.

    The lines go to ``<path>.part`` first, renamed over ``path`` only when complete, so a watcher
    (the landing bucket, a tail) never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        if gzip:
            with gzip_module.open(partial, "wb", compresslevel=6) as handle:
                report = write_stream(events, handle, destination=str(path), progress=progress,
                                      progress_every=progress_every)
        else:
            with partial.open("wb") as handle:
                report = write_stream(events, handle, destination=str(path), progress=progress,
                                      progress_every=progress_every)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.info("wrote %d records to %s in %.2f s", report.sent, path, report.seconds)
    return report


# --- Kafka ---------------------------------------------------------------------------------------


class Producer(Protocol):
    """The part of ``confluent_kafka.Producer`` the generator uses (a fake implements it in tests)."""

    def produce(self, topic: str, *, value: bytes | None = ..., key: bytes | None = ...,
                on_delivery: Callable[[Any, Any], None] | None = ...) -> None: ...
    def poll(self, timeout: float = ...) -> int: ...
    def flush(self, timeout: float = ...) -> int: ...
    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...


ProducerFactory = Callable[[dict[str, Any]], Producer]


def _kafka_exception() -> type[Exception]:
    try:
        from confluent_kafka import KafkaException
    except ImportError as exc:  # the "cli" extra
        raise ServiceError("sending to Kafka needs confluent-kafka (the project's `cli` extra)") from exc
    exception: type[Exception] = KafkaException
    return exception


def _confluent_producer(config: dict[str, Any]) -> Producer:
    from confluent_kafka import Producer as ConfluentProducer

    try:
        producer: Producer = ConfluentProducer(config, logger=LIBRDKAFKA_LOGGER)
    except _kafka_exception() as exc:  # e.g. a malformed setting in extra_config
        raise ServiceError(f"cannot create a Kafka producer: {exc}") from exc
    return producer


def producer_config(bootstrap_servers: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The producer configuration: ``KAFKA_PRODUCER_DEFAULTS`` + servers + ``extra`` (TLS, SASL, ...)."""
    return {**KAFKA_PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap_servers, **(extra or {})}


def _check_reachable(producer: Producer, bootstrap_servers: str, topic: str, timeout: float) -> None:
    """Fail fast, with a hint, when no broker answers or the topic does not exist."""
    try:
        metadata = producer.list_topics(topic=topic, timeout=timeout)
    except _kafka_exception() as exc:
        raise ServiceError(
            f"Kafka is not reachable at {bootstrap_servers} (no answer within {timeout:g} s: {exc}); "
            + SERVICES_HINT
        ) from exc
    topics = getattr(metadata, "topics", {}) or {}
    info = topics.get(topic)
    if info is None or getattr(info, "error", None) is not None:
        detail = getattr(info, "error", None) or "not in the cluster metadata"
        raise ServiceError(
            f"Kafka topic {topic!r} is not available at {bootstrap_servers} ({detail}); "
            "`dataforge services up` creates the platform's topics"
        )


class _Deliveries:
    """Delivery-report callback state: counts and the first few errors."""

    __slots__ = ("delivered", "errors", "failed")

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.errors: list[str] = []

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(str(err))


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    """How ``send_to_kafka`` builds its producer, waits on the broker and paces itself (tests inject a
    fake producer, sleep and clock here)."""

    producer_factory: ProducerFactory = _confluent_producer
    extra_config: Mapping[str, Any] | None = None  # producer settings over the defaults (TLS, SASL, ...)
    connect_timeout: float = 10.0  # seconds for the broker to answer before the sink fails fast
    flush_timeout: float = 60.0  # seconds to wait for the last delivery reports
    sleep: Callable[[float], None] = time.sleep  # waits out the rate limit
    clock: Callable[[], float] = time.monotonic  # the rate limit's clock


DEFAULT_KAFKA_OPTIONS: Final = KafkaOptions()


def send_to_kafka(
    events: Iterable[GeneratedEvent],
    *,
    bootstrap_servers: str,
    topic: str,
    rate: float = 0.0,
    progress: ProgressCallback = _noop,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
    options: KafkaOptions = DEFAULT_KAFKA_OPTIONS,
) -> SinkReport:
    """Produce each event to ``topic`` keyed by its ``key`` (the account id), at most ``rate``/s.

    ``rate`` 0 means as fast as the producer takes them. Records still unconfirmed after
    ``options.flush_timeout`` count as failed. Raises ``ServiceError`` when the broker or topic is missing.
    """
    if rate < 0:
        raise ValueError(f"rate must be >= 0, got {rate}")
    sleep, clock, flush_timeout = options.sleep, options.clock, options.flush_timeout
    kafka_error = _kafka_exception()
    producer = options.producer_factory(producer_config(bootstrap_servers, options.extra_config))
    _check_reachable(producer, bootstrap_servers, topic, options.connect_timeout)
    deliveries = _Deliveries()
    counter = SummaryCounter()
    started = clock()
    perf_started = time.perf_counter()
    sent = 0
    next_progress = progress_every
    try:
        for event in events:
            if rate:
                ahead = started + sent / rate - clock()
                if ahead > 0.001:
                    sleep(ahead)
            while True:
                try:
                    producer.produce(topic, value=event.value, key=event.key, on_delivery=deliveries)
                    break
                except BufferError:  # the local queue is full: serve delivery reports, then retry
                    producer.poll(0.1)
                except kafka_error as exc:  # fatal producer state (e.g. an idempotence violation)
                    raise ServiceError(f"Kafka producer failed after {sent} records: {exc}") from exc
            counter.add(event)
            sent += 1
            if sent % _POLL_EVERY == 0:
                producer.poll(0)
            if sent >= next_progress:
                progress(sent)
                next_progress = sent + progress_every
    finally:
        unconfirmed = producer.flush(flush_timeout)
    progress(sent)
    failed = deliveries.failed + unconfirmed
    errors = list(deliveries.errors)
    if unconfirmed:
        errors.append(f"{unconfirmed} records not confirmed within {flush_timeout:g} s")
    if failed:
        log.warning("kafka: %d of %d records failed: %s", failed, sent, "; ".join(errors))
    return SinkReport(f"kafka://{bootstrap_servers}/{topic}", sent, deliveries.delivered, failed,
                      time.perf_counter() - perf_started, counter.result(), tuple(errors))
