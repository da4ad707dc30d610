"""The MSK landing core: one MSK event (records keyed ``topic-partition``) -> bronze + quarantine.

One bronze object and one quarantine object per topic-partition offset range
(``dataforge.lake.bronze_key``), written whole; an empty one is not written. Everything in them is
derived from the input (offsets, Kafka timestamps), and the future-time rule is judged against the
record's own Kafka timestamp, so a retried batch rewrites byte-identical objects under the same keys.
A bad record never raises; a storage failure does (``StorageError``), failing the whole batch. Should
judging one record raise anyway (the contract gives every input a verdict, so it should not), that
record is quarantined as ``validation_error`` with the exception text and logged, and the batch lands.
"""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from dataforge.bronze import BronzeLines, gzip_bytes, kafka_position, quarantine_line, rfc3339
from dataforge.contract import MAX_FUTURE_SKEW, Admitted, Rejection, Validator, from_epoch_us, validation_error
from dataforge.lake import KafkaBatchPosition, Source, Zone, bronze_key, raw_archive_key
from lambdas.common.config import LandingConfig
from lambdas.common.counters import IngestCounters
from lambdas.common.speed_path import SpeedPath, ValidRecord
from lambdas.common.storage import ObjectStore

logger = logging.getLogger(__name__)

_b64decode = binascii.a2b_base64  # the C function (base64.b64decode adds a Python layer)
_NO_TIME: Final = -(2**63)
_SKEW_US: Final = MAX_FUTURE_SKEW // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class PartitionOutput:
    """What one topic-partition's records become (before they are stored)."""

    position: KafkaBatchPosition
    bronze: bytes  # uncompressed JSON lines
    quarantine: bytes
    records: int
    valid: int
    quarantined: int
    newest_event_time: datetime | None
    valid_records: list[ValidRecord] = field(default_factory=list)  # kept only for the speed path


@dataclass(slots=True)
class BatchResult:
    records: int = 0
    valid: int = 0
    quarantined: int = 0
    partitions: int = 0
    objects: list[str] = field(default_factory=list)
    newest_event_time: datetime | None = None
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records, "valid": self.valid, "quarantined": self.quarantined,
            "partitions": self.partitions, "objects": list(self.objects),
        }


def land_partition(topic: str, partition: int, records: Sequence[Mapping[str, Any]],
                   validator: Validator, *, keep_valid: bool = False) -> PartitionOutput:
    """Validate one topic-partition's records (any order) and build its bronze/quarantine lines;
    ``keep_valid`` also returns the valid records (for the speed path)."""
    offsets = [r["offset"] for r in records]
    if offsets != sorted(offsets):  # MSK sends a partition's records in offset order; be safe anyway
        records = sorted(records, key=lambda r: r["offset"])
    first = records[0]
    position = KafkaBatchPosition(topic, partition, first["offset"], records[-1]["offset"],
                                  datetime.fromtimestamp(first["timestamp"] / 1000, UTC))
    lines = BronzeLines(Source.KAFKA, f"{topic}-{partition}@")
    add_line = lines.add
    admit = validator.admit
    rejected: list[bytes] = []
    newest = _NO_TIME
    valid: list[ValidRecord] = []
    last_ms = -1
    horizon_us = 0
    ingested = b""
    for record in records:
        ms = record["timestamp"]
        if ms != last_ms:  # records of a burst share their timestamp: convert it once
            horizon_us = ms * 1000 + _SKEW_US
            ingested = rfc3339(datetime.fromtimestamp(ms / 1000, UTC)).encode()
            last_ms = ms
        value = record.get("value")
        raw = _b64decode(value) if value else b""
        try:
            result: Admitted | Rejection = admit(raw, horizon_us)
        except Exception as exc:  # the per-record backstop: one record never fails its batch
            logger.exception("judging a record raised; it is quarantined as validation_error",
                             extra={"position": kafka_position(topic, partition, record["offset"])})
            result = validation_error(exc)
        if isinstance(result, Rejection):
            rejected.append(quarantine_line(result, raw, Source.KAFKA,
                                            kafka_position(topic, partition, record["offset"]),
                                            ingested.decode()))
            continue
        event_id, event_us = result
        add_line(raw, event_id, record["offset"], ingested)
        if keep_valid:
            valid.append(ValidRecord(record["offset"], raw, event_id.decode(), event_us, ms))
        if event_us > newest:
            newest = event_us
    return PartitionOutput(position, lines.body(), b"".join(rejected), len(records), lines.count,
                           len(rejected), None if newest == _NO_TIME else from_epoch_us(newest), valid)


def _split_partition_key(key: str, records: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    if records:
        return str(records[0]["topic"]), int(records[0]["partition"])
    topic, _, partition = key.rpartition("-")
    return topic, int(partition)


class KafkaLanding:
    """Lands MSK events: validate, encode, store. Dependencies are injected (store, validator, clock)."""

    def __init__(self, config: LandingConfig, store: ObjectStore, validator: Validator,
                 counters: IngestCounters | None = None, speed: SpeedPath | None = None) -> None:
        self.config = config
        self.store = store
        self.validator = validator
        self.counters = counters
        self.speed = speed  # the speed path (ADR 0014): provisional realtime minutes from each batch

    def land(self, records_by_partition: Mapping[str, Sequence[Mapping[str, Any]]]) -> BatchResult:
        started = time.perf_counter()
        result = BatchResult()
        for key, records in records_by_partition.items():
            if not records:
                continue
            topic, partition = _split_partition_key(key, records)
            output = land_partition(topic, partition, records, self.validator, keep_valid=self.speed is not None)
            self._store(output, records, result)
            if self.speed is not None:  # after bronze: a minute counted here is always replayable from bronze
                self.speed.fold(topic, partition, output.position.last_offset, output.valid_records)
            result.partitions += 1
            result.records += output.records
            result.valid += output.valid
            result.quarantined += output.quarantined
            if output.newest_event_time is not None and (
                result.newest_event_time is None or output.newest_event_time > result.newest_event_time
            ):
                result.newest_event_time = output.newest_event_time
        if self.counters is not None:
            self.counters.record(Source.KAFKA.value, result.objects, result.records, result.quarantined)
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    def _store(self, output: PartitionOutput, records: Iterable[Mapping[str, Any]], result: BatchResult) -> None:
        cfg = self.config
        if cfg.archive_raw and cfg.landing_bucket:
            archive = b"".join(msgspec.json.encode(r) + b"\n" for r in records)
            key = raw_archive_key(output.position)
            self.store.put(cfg.landing_bucket, key, gzip_bytes(archive))
            result.objects.append(f"s3://{cfg.landing_bucket}/{key}")
        if output.quarantine:
            key = bronze_key(output.position, Zone.QUARANTINE)
            self.store.put(cfg.quarantine_bucket, key, gzip_bytes(output.quarantine))
            result.objects.append(f"s3://{cfg.quarantine_bucket}/{key}")
        if output.bronze:
            key = bronze_key(output.position, Zone.BRONZE)
            self.store.put(cfg.bronze_bucket, key, gzip_bytes(output.bronze))
            result.objects.append(f"s3://{cfg.bronze_bucket}/{key}")
