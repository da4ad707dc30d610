"""Live sample traffic for a served embedded platform (``dataforge run``), through the real path.

After the pipeline's one pass, ``LiveTraffic`` keeps a small trickle flowing so that the realtime
metrics stay fresh and the dashboard's charts move:

- producer: every few seconds, one seeded generator chunk whose event-time window is the time since
  the previous chunk (up to now), sent to the topic at ``rate`` events/s;
- ingestion: the local event source mapping with the real MSK landing Lambda, in the pipeline's
  consumer group (it continues from the committed offsets) -> bronze + quarantine;
- Spark streaming enrichment with a processing-time trigger, on the pipeline's checkpoint
  -> silver + realtime minutes in DynamoDB;
- the alert evaluator, every ``alert_every`` seconds.

Each part runs in its own thread under a supervisor: an error is logged with its traceback, counted,
kept (``LiveCounters.failures``) and the part restarts after a pause, so the API and the dashboard keep
serving. ``stop()`` sets the stop flag, stops the streaming query and joins every thread; a part that
fails because it was being stopped (a micro-batch cut short) counts as ``interrupted``, not as an error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from dataforge.settings import Settings
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events

logger = logging.getLogger(__name__)

_RESTART_PAUSE: Final = 5.0
_KEPT_FAILURES: Final = 10


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """How much live traffic, how often, and how the parts run."""

    rate: float = 20.0  # events/s sent to the topic
    chunk_seconds: float = 5.0  # event-time span of one generator chunk
    seed: int = 42  # the run's seed; each chunk's seed derives from it and the chunk's end
    invalid_fraction: float = 0.02
    duplicate_fraction: float = 0.01
    trigger: str = "processingTime=10 seconds"
    alert_every: float = 60.0
    query_stop_wait: float = 10.0  # on stop, how long to wait for the running micro-batch to end
    join_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.chunk_seconds <= 0 or self.alert_every <= 0:
            raise ValueError("chunk_seconds and alert_every must be > 0")


@dataclass(slots=True)
class LiveCounters:
    """What the live parts did so far (read while they run: approximate, never locked)."""

    chunks: int = 0
    produced: int = 0  # records the broker confirmed
    alert_runs: int = 0
    errors: int = 0  # parts that failed while serving (each then restarted)
    interrupted: int = 0  # parts that failed while being stopped (e.g. a micro-batch cut short)
    failures: deque[str] = field(default_factory=lambda: deque(maxlen=_KEPT_FAILURES))  # the latest errors


def supervise(name: str, body: Callable[[], None], stop: threading.Event, counters: LiveCounters,
              restart_pause: float = _RESTART_PAUSE) -> None:
    """Run ``body`` until it returns or ``stop`` is set; restart it after ``restart_pause`` when it fails.

    The outermost boundary of a live thread: every failure is logged with its traceback and counted,
    as an error while serving, as an interruption once ``stop`` is set (the part's work was cut short
    on purpose; the pipeline's checkpoints and offset commits make the cut safe).
    """
    while not stop.is_set():
        try:
            body()
        except Exception as exc:  # a thread's outermost boundary: log, count, restart; the server lives on
            if stop.is_set():
                counters.interrupted += 1
                logger.warning("live %s was interrupted while stopping: %s", name, exc, exc_info=True)
                return
            counters.errors += 1
            counters.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            logger.exception("live %s failed; restarting in %.0f s", name, restart_pause)
            stop.wait(restart_pause)
        else:
            return


def chunk_seed(seed: int, end: datetime) -> int:
    """A fresh generator seed per chunk: distinct event ids per chunk and per run of the same seed."""
    return seed * 10**13 + int(end.timestamp() * 1000)


class LiveTraffic:
    """The live parts of a served platform; ``start()`` once, ``stop()`` once (also as a context manager)."""

    def __init__(self, settings: Settings, spark: Any, config: LiveConfig | None = None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        from devkit.local.platform import msk_mapping

        self.settings = settings
        self.spark = spark
        self.config = config or LiveConfig()
        self.counters = LiveCounters()
        self.mapping = msk_mapping(settings)
        self._clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def landed(self) -> int:
        """Records the live event source mapping handed to the landing Lambda."""
        return self.mapping.stats.records

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        return tuple(self._threads)

    def __enter__(self) -> LiveTraffic:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("LiveTraffic already started")
        parts: tuple[tuple[str, Callable[[], None]], ...] = (
            ("producer", self._produce), ("ingest", self._ingest), ("enrich", self._enrich),
            ("alerts", self._alerts))
        for name, body in parts:
            thread = threading.Thread(target=supervise, args=(name, body, self._stop, self.counters),
                                      name=f"dataforge-live-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop every part and join its thread (each within ``join_timeout``); idempotent."""
        self._stop.set()
        deadline = time.monotonic() + self.config.join_timeout
        for thread in self._threads:
            while thread.is_alive() and time.monotonic() < deadline:
                if thread.name.endswith("enrich"):
                    self._stop_query()  # also a query the thread started after the flag was set
                thread.join(0.5)
            if thread.is_alive():
                logger.error("live %s thread did not stop within %.0f s", thread.name, self.config.join_timeout)

    # --- the parts --------------------------------------------------------------------------------
    def _produce(self) -> None:
        from devkit.generator_sinks import KafkaOptions, send_to_kafka

        cfg = self.config
        span = timedelta(seconds=cfg.chunk_seconds)
        start = self._clock() - span
        while not self._stop.is_set():
            end = self._clock()
            if end - start < span / 2:
                self._stop.wait((span / 2 - (end - start)).total_seconds())
                continue
            count = round(cfg.rate * (end - start).total_seconds())
            events = generate_events(GeneratorConfig(
                count=count, seed=chunk_seed(cfg.seed, end), start=start, end=end,
                invalid_fraction=cfg.invalid_fraction, duplicate_fraction=cfg.duplicate_fraction))
            report = send_to_kafka(self._until_stopped(events), rate=cfg.rate, options=KafkaOptions(sleep=self._pause),
                                   bootstrap_servers=self.settings.require("kafka_bootstrap_servers"),
                                   topic=self.settings.kafka_topic)
            self.counters.chunks += 1
            self.counters.produced += report.delivered
            if report.failed:
                logger.warning("live producer: %d of %d records not confirmed by Kafka", report.failed, report.sent)
            start = end

    def _until_stopped(self, events: Iterator[GeneratedEvent]) -> Iterator[GeneratedEvent]:
        for event in events:
            if self._stop.is_set():
                return
            yield event

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _ingest(self) -> None:
        self.mapping.run(stop=self._stop)

    def _enrich(self) -> None:
        from spark.jobs import streaming_enrichment

        metrics = streaming_enrichment.run(self.spark, self.settings, trigger=self.config.trigger)
        if not self._stop.is_set():  # the query ended without being asked to: the supervisor restarts it
            raise RuntimeError(f"the streaming query stopped on its own (metrics {metrics})")

    def _stop_query(self) -> None:
        """Stop the streaming query, between two micro-batches if the running one ends within
        ``query_stop_wait`` (stopping in the middle of one is safe: the next run replays it under the
        same batch id, and its commit marker prevents a second append; Spark logs the interruption)."""
        from spark.jobs.streaming_enrichment import QUERY_NAME

        for query in self.spark.streams.active:
            if query.name == QUERY_NAME:
                deadline = time.monotonic() + self.config.query_stop_wait
                while query.status.get("isTriggerActive") and time.monotonic() < deadline:
                    time.sleep(0.2)
                query.stop()

    def _alerts(self) -> None:
        from lambdas.alert_evaluator.handler import build_evaluator

        while not self._stop.wait(self.config.alert_every):
            build_evaluator(self.settings).run()
            self.counters.alert_runs += 1
