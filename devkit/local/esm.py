"""The embedded platform's Lambda event source mapping for Kafka: a confluent-kafka consumer group
that hands MSK-shaped events to the real handler, in-process.

Behaviour, as the managed MSK event source mapping:

- batches of up to ``batch_size`` records, gathered for at most ``batching_window`` seconds;
- the event is the MSK shape: ``records`` keyed ``topic-partition``, base64 key and value, headers as
  byte-value lists, ``timestamp`` in epoch milliseconds;
- offsets are committed (synchronously) only after the handler returned;
- a failing invocation is retried with the *same* event, with exponential backoff, until it succeeds
  (or ``max_attempts`` is exhausted: then the mapping stops with ``EsmError`` and commits nothing), so
  no record is ever skipped. While retrying, the assigned partitions are paused and the consumer keeps
  serving the group (no eviction for a slow retry); anything fetched meanwhile is rewound (seek);
- rebalances: every batch is committed before the next poll. A commit the coordinator refuses because
  the group is rebalancing (``REBALANCE_IN_PROGRESS``, ``ILLEGAL_GENERATION``, ``UNKNOWN_MEMBER_ID``: the
  commit carried the generation that the rebalance replaces) keeps its offsets pending: the mapping
  serves the group (partitions paused, anything fetched rewound) until the rebalance is over, then
  commits them again for the partitions it still owns. Partitions that move are revoked (with
  cooperative-sticky, at the end of the rebalance, in the new generation): their pending offsets are
  committed synchronously in the revocation callback, before the new owner reads them. Only offsets
  that could not be committed at all (partitions *lost*, a commit refused in the revocation callback
  too, or a rebalance outlasting ``commit_timeout``, after which they stay pending for the next
  commit) can make the new owner redeliver records: logged, at-least-once, and harmless for the
  handler's deterministic keys.

``EsmConfig.partitions`` replaces the group membership by a static assignment: the mapping reads
those partitions of its topics from the group's committed offsets and commits to the same group
(as above: only after success), but never joins or rebalances. Several processes that split the
partitions between them (``static_partitions``) scale like the managed mapping's pollers, without
the rebalance pauses of a group that grows while it consumes.
"""

from __future__ import annotations

import binascii
import gc
import logging
import operator
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from dataforge.errors import ServiceError
from devkit.fakes import LambdaContext

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

DEFAULT_BATCH_SIZE: Final = 10_000
DEFAULT_BATCHING_WINDOW: Final = 0.5
LOCAL_CLUSTER_ARN: Final = "arn:aws:kafka:us-east-1:000000000000:cluster/dataforge-local/local-1"
_TIMESTAMP_TYPES: Final = {1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}
_b64encode = binascii.b2a_base64
# the group coordinator's answers to a commit sent in a generation that a rebalance is replacing
REBALANCE_ERRORS: Final = frozenset({KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                                     KafkaError.UNKNOWN_MEMBER_ID})
_offset = operator.itemgetter("offset")


class EsmError(ServiceError):
    """The local event source mapping gave up (``max_attempts`` exhausted) or Kafka failed fatally."""


@dataclass(frozen=True, slots=True)
class EsmConfig:
    bootstrap_servers: str
    topics: tuple[str, ...]
    group_id: str = "dataforge-msk-landing"
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window: float = DEFAULT_BATCHING_WINDOW
    initial_backoff: float = 0.2
    max_backoff: float = 30.0
    max_attempts: int | None = None  # None: retry forever, never skip
    commit_timeout: float = 60.0  # how long a commit refused by a rebalance is retried before the next poll
    function_name: str = "msk-landing"
    event_source_arn: str = LOCAL_CLUSTER_ARN
    partitions: tuple[int, ...] | None = None  # static assignment (of every topic) instead of the group's
    extra: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def consumer_config(self) -> dict[str, str | int | float | bool]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            # Prefetch whole batches while the handler runs: librdkafka's 1 MB per partition and fetch
            # made a 10k-record consume wait for several fetch round trips.
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
            "queued.min.messages": max(100_000, self.batch_size * 2),
            "socket.connection.setup.timeout.ms": 10_000,
            **self.extra,
        }


@dataclass(slots=True)
class EsmStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    commits: int = 0
    refused_commits: int = 0
    rebalances: int = 0
    seconds: float = 0.0
    # where the time went: waiting for/decoding Kafka messages, building events + the handler (of
    # which building the MSK events: event_seconds), commits
    consume_seconds: float = 0.0
    invoke_seconds: float = 0.0
    event_seconds: float = 0.0
    commit_seconds: float = 0.0


def msk_record(message: Any) -> dict[str, Any]:
    """One Kafka message as a record of the Lambda MSK event."""
    ts_type, ts = message.timestamp()
    key = message.key()
    value = message.value()
    headers = message.headers()
    record: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": ts,
        "timestampType": _TIMESTAMP_TYPES.get(ts_type, "CREATE_TIME"),
        "value": "" if value is None else _b64encode(value, newline=False).decode("ascii"),
        "headers": [{name: list(data or b"")} for name, data in headers] if headers else [],
    }
    if key is not None:
        record["key"] = _b64encode(key, newline=False).decode("ascii")
    return record


def msk_batch(messages: Sequence[Any], *, event_source_arn: str,
              bootstrap_servers: str) -> tuple[dict[str, Any], list[TopicPartition]]:
    """An MSK event of ``messages`` (records grouped by ``topic-partition``, in offset order) and the
    offsets to commit after it (the last offset + 1 of each topic-partition), without a second
    pass over the messages."""
    records: dict[str, list[dict[str, Any]]] = {}
    partitions: dict[tuple[str, int], list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    current_partition: tuple[str, int] | None = None
    for message in messages:  # (a consumed batch comes partition by partition: look the list up once per run)
        partition = (message.topic(), message.partition())
        if partition != current_partition:
            current = records.setdefault(f"{partition[0]}-{partition[1]}", [])
            partitions[partition] = current
            current_partition = partition
        current.append(msk_record(message))
    event = {"eventSource": "aws:kafka", "eventSourceArn": event_source_arn,
             "bootstrapServers": bootstrap_servers, "records": records}
    offsets = [TopicPartition(topic, partition, max(map(_offset, partitions[(topic, partition)])) + 1)
               for topic, partition in sorted(partitions)]
    return event, offsets


def _freeze_cold_start() -> None:
    """After the first invocation, move what the cold start allocated (boto3 clients and their models,
    Powertools, the validator) out of the garbage collector's generations, as a warm Lambda instance
    keeps them for good: the collections that every batch's ~10k record dicts trigger then no longer
    traverse them."""
    gc.freeze()


def static_partitions(index: int, mappings: int, partitions: int) -> tuple[int, ...]:
    """The partitions that mapping ``index`` of ``mappings`` reads under a static assignment (round robin)."""
    if not 0 <= index < mappings:
        raise ValueError(f"mapping index {index} is not in 0..{mappings - 1}")
    return tuple(range(index, partitions, mappings))


class LocalEventSourceMapping:
    """Consumes ``config.topics`` and invokes ``handler(event, context)`` batch by batch."""

    def __init__(self, config: EsmConfig, handler: Handler, *,
                 consumer_factory: Callable[[dict[str, Any]], Any] = Consumer,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.handler = handler
        self._consumer_factory = consumer_factory
        self._sleep = sleep
        self._consumer: Any = None
        self._assigned: set[tuple[str, int]] = set()
        # processed offsets not committed yet (a commit refused during a rebalance), by topic-partition
        self._pending: dict[tuple[str, int], int] = {}
        self._idle_since = time.monotonic()
        self.stats = EsmStats()

    # --- rebalance callbacks ----------------------------------------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        self._assigned.update((p.topic, p.partition) for p in partitions)
        # idle time counts from the assignment: the first fetch of new partitions takes a while
        self._idle_since = time.monotonic()
        logger.info("assigned %s", [f"{p.topic}-{p.partition}" for p in partitions])

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Commit the pending offsets of the partitions leaving, before they leave (in this callback the
        membership is current: with cooperative-sticky it runs at the end of the rebalance)."""
        self.stats.rebalances += 1
        revoked = self._release(partitions)
        logger.info("revoked %s", [f"{p.topic}-{p.partition}" for p in partitions])
        if not revoked:
            return
        error = self._commit_offsets(revoked)
        if error is not None:
            self.stats.refused_commits += 1
            logger.warning("commit of revoked partitions %s refused (%s): their new owner redelivers these "
                           "records (at-least-once)", _names(revoked), error)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """The group went on without this member: its pending offsets can no longer be committed."""
        self.stats.rebalances += 1
        lost = self._release(partitions)
        logger.warning("lost %s", [f"{p.topic}-{p.partition}" for p in partitions])
        if lost:
            logger.warning("offsets %s of lost partitions were never committed: their new owner redelivers "
                           "these records (at-least-once)", _names(lost))

    def _release(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Forget ``partitions``; their pending offsets, no longer pending."""
        released = []
        for p in partitions:
            key = (p.topic, p.partition)
            self._assigned.discard(key)
            if key in self._pending:
                released.append(TopicPartition(p.topic, p.partition, self._pending.pop(key)))
        return released

    # --- the loop ------------------------------------------------------------------------------------
    def run(self, *, stop: threading.Event | None = None, until_idle: float | None = None) -> EsmStats:
        """Poll, invoke, commit until ``stop`` is set, or (``until_idle``) after that many seconds
        without a record once partitions were assigned."""
        cfg = self.config
        consumer = self._consumer = self._consumer_factory(cfg.consumer_config())
        if cfg.partitions is None:
            consumer.subscribe(list(cfg.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_lost)
        else:  # static: from the group's committed offsets (else auto.offset.reset), no membership
            assignment = self._committed([TopicPartition(topic, p) for topic in cfg.topics for p in cfg.partitions])
            consumer.assign(assignment)
            self._assigned.update((tp.topic, tp.partition) for tp in assignment)
        started = time.monotonic()
        self._idle_since = started
        try:
            clock = time.perf_counter
            stats = self.stats
            while stop is None or not stop.is_set():
                polled = clock()
                messages = consumer.consume(num_messages=cfg.batch_size, timeout=cfg.batching_window)
                batch = self._usable(messages)
                invoked = clock()
                stats.consume_seconds += invoked - polled
                if not batch:
                    if (until_idle is not None and self._assigned
                            and time.monotonic() - self._idle_since >= until_idle):
                        break
                    continue
                offsets = self._invoke(batch)
                if stats.invocations == 1:
                    _freeze_cold_start()
                committed = clock()
                self._commit(offsets)
                stats.invoke_seconds += committed - invoked
                stats.commit_seconds += clock() - committed
                self._idle_since = time.monotonic()
        finally:
            self.stats.seconds = time.monotonic() - started
            consumer.close()
            self._consumer = None
        return self.stats

    def _committed(self, partitions: list[TopicPartition], timeout: float = 60.0) -> list[TopicPartition]:
        """The group's committed offsets of ``partitions``, waiting (up to ``timeout``) for the group
        coordinator of a fresh cluster; partitions without a commit come back as ``OFFSET_INVALID``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                committed: list[TopicPartition] = self._consumer.committed(partitions, timeout=10.0)
                return committed
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise EsmError(f"no committed offsets for group {self.config.group_id}: {exc}") from exc
                logger.info("waiting for the group coordinator: %s", exc)
                self._sleep(0.5)

    @staticmethod
    def _usable(messages: Sequence[Any]) -> list[Any]:
        batch = []
        for message in messages:
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal():
                raise EsmError(f"fatal Kafka error: {error}")
            else:
                logger.warning("Kafka error (librdkafka retries): %s", error)
        return batch

    def _invoke(self, batch: list[Any]) -> list[TopicPartition]:
        """Invoke the handler on ``batch`` until it succeeds; the offsets to commit after it."""
        cfg = self.config
        built = time.perf_counter()
        event, offsets = msk_batch(batch, event_source_arn=cfg.event_source_arn,
                                   bootstrap_servers=cfg.bootstrap_servers)
        self.stats.event_seconds += time.perf_counter() - built
        backoff = cfg.initial_backoff
        attempt = 0
        paused: list[TopicPartition] = []
        try:
            while True:
                attempt += 1
                context = LambdaContext(cfg.function_name)
                try:
                    self.handler(event, context)
                except Exception as exc:  # the ESM boundary: any handler failure is retried
                    self.stats.failures += 1
                    if cfg.max_attempts is not None and attempt >= cfg.max_attempts:
                        raise EsmError(f"handler failed {attempt} times on {len(batch)} records; "
                                       "stopping without committing (nothing skipped)") from exc
                    logger.warning("handler failed (attempt %d), retrying in %.1fs: %s", attempt, backoff, exc)
                    if not paused:
                        paused = self._consumer.assignment()
                        self._consumer.pause(paused)
                    self._wait(backoff, paused)
                    backoff = min(backoff * 2, cfg.max_backoff)
                    continue
                self.stats.invocations += 1
                self.stats.records += len(batch)
                return offsets
        finally:
            if paused:
                self._consumer.resume(paused)

    def _wait(self, seconds: float, paused: list[TopicPartition]) -> None:
        """Sleep while serving the group; anything fetched meanwhile is rewound so it is not skipped."""
        deadline = time.monotonic() + seconds
        while True:
            self._serve(paused)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._sleep(min(remaining, 0.2))

    def _serve(self, paused: list[TopicPartition]) -> None:
        """One poll(0): runs the rebalance callbacks and heartbeats; a message fetched meanwhile is rewound
        (seek) and its partition paused (appended to ``paused``, to resume later)."""
        message = self._consumer.poll(0)
        if message is not None and message.error() is None:
            self._consumer.seek(TopicPartition(message.topic(), message.partition(), message.offset()))
            newly = TopicPartition(message.topic(), message.partition())
            self._consumer.pause([newly])
            paused.append(newly)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        """Commit ``offsets`` (and any still pending). Refused because the group is rebalancing: serve
        the group until the rebalance is over and commit again what this consumer still owns (what it
        gives up meanwhile is committed by ``_on_revoke``), for at most ``commit_timeout`` seconds."""
        gone = [tp for tp in offsets if (tp.topic, tp.partition) not in self._assigned]
        if gone:  # revoked while a failing invocation was retried: the new owner read them from the group
            logger.warning("offsets %s of partitions revoked before the invocation succeeded are not committed: "
                           "their new owner redelivers these records (at-least-once)", _names(gone))
        self._pending.update(((tp.topic, tp.partition), tp.offset) for tp in offsets
                             if (tp.topic, tp.partition) in self._assigned)
        deadline = time.monotonic() + self.config.commit_timeout
        paused: list[TopicPartition] = []
        refused = False
        try:
            while self._pending:
                pending = [TopicPartition(topic, partition, offset)
                           for (topic, partition), offset in sorted(self._pending.items())]
                error = self._commit_offsets(pending)
                if error is None:
                    self._pending.clear()
                    return
                self.stats.refused_commits += 1
                if error.code() not in REBALANCE_ERRORS:
                    logger.warning("commit of %s refused (%s): kept pending for the next commit",
                                   _names(pending), error)
                    return
                if time.monotonic() >= deadline:
                    logger.warning("commit of %s still refused after %.0fs of rebalance (%s): kept pending "
                                   "for the next commit or revocation", _names(pending),
                                   self.config.commit_timeout, error)
                    return
                if not refused:
                    logger.info("commit of %s refused during a rebalance (%s): retried once it is over",
                                _names(pending), error)
                    refused = True
                    paused = self._consumer.assignment()
                    self._consumer.pause(paused)
                rebalancing = time.monotonic() + 0.2
                while time.monotonic() < rebalancing:  # let the group finish the rebalance
                    self._serve(paused)
                    self._sleep(0.02)
        finally:
            if paused:
                self._consumer.resume(paused)

    def _commit_offsets(self, offsets: list[TopicPartition]) -> KafkaError | None:
        """Commit ``offsets`` synchronously; None, or the error of the refused commit."""
        try:
            committed = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            return error
        for tp in committed or ():
            if tp.error is not None:
                return tp.error  # type: ignore[no-any-return]
        self.stats.commits += 1
        return None


def _names(offsets: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}-{tp.partition}@{tp.offset}" for tp in offsets]


def committed_lag(bootstrap_servers: str, group_id: str, topic: str, timeout: float = 10.0) -> int:
    """Records of ``topic`` not yet committed by ``group_id`` (high watermark - committed, summed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group_id,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        committed = consumer.committed(partitions, timeout=timeout)
        lag = 0
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()
