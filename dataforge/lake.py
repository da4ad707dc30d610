"""Lake layout: zones, bucket naming per environment, deterministic object keys and partitions.

Keys are derived from the *input* only (topic-partition-offset range, or source object + version),
never from the clock of the run that writes them, so a retried batch overwrites its own objects
instead of writing duplicates (ARCHITECTURE.md, "Zones").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

from dataforge.errors import LakeLayoutError

DEFAULT_PREFIX: Final = "dataforge"
ENVIRONMENTS: Final = ("dev", "staging", "prod", "local")
TRANSACTIONS_TOPIC: Final = "transactions"
BRONZE_SUFFIX: Final = ".jsonl.gz"
OFFSET_WIDTH: Final = 20  # Kafka offsets are int64: 19 digits + sign room; zero-padded to sort

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._-]+")


class Zone(StrEnum):
    """Data zones of the lake (one bucket each)."""

    LANDING = "landing"
    BRONZE = "bronze"
    QUARANTINE = "quarantine"
    SILVER = "silver"
    GOLD = "gold"


class SupportBucket(StrEnum):
    """Buckets that hold no lake data."""

    ARTIFACTS = "artifacts"
    ATHENA_RESULTS = "athena-results"
    ACCESS_LOGS = "access-logs"


class Source(StrEnum):
    KAFKA = "kafka"
    FILE = "file"


# Landing-bucket prefixes: batch files dropped by upstream (the batch landing Lambda is notified for
# these only) and raw stream batches archived by the MSK landing processor.
LANDING_FILES_PREFIX: Final = "files/"
LANDING_STREAM_PREFIX: Final = "stream/"

# Table prefixes inside the zone buckets (one dataset per prefix).
SILVER_TRANSACTIONS: Final = "transactions"
GOLD_DAILY_KPIS: Final = "daily_kpis"


def bucket_name(prefix: str, env: str, bucket: Zone | SupportBucket) -> str:
    """``{prefix}-{env}-{zone}``, e.g. ``acme-dataforge-prod-bronze``; checked against S3's rules."""
    name = f"{prefix}-{env}-{bucket.value}"
    if not _BUCKET_NAME.fullmatch(name) or "--" in name:
        raise LakeLayoutError(
            f"bucket name {name!r} is not a valid S3 bucket name: use a lowercase prefix of letters,"
            " digits and single hyphens (3-63 characters in all)"
        )
    return name


def glue_database(prefix: str, env: str, zone: Zone) -> str:
    """Glue database per zone: ``{prefix}_{env}_{zone}`` (Glue/Athena names take no hyphens)."""
    return zone_database(f"{prefix}_{env}", zone)


def zone_database(database_prefix: str, zone: Zone) -> str:
    """Glue database of a zone from the stack's database prefix (``DATAFORGE_GLUE_DATABASE_PREFIX``)."""
    return f"{database_prefix}_{zone.value}".replace("-", "_")


def hive_partition(ts: datetime) -> str:
    """``ingest_date=YYYY-MM-DD/ingest_hour=HH`` of an aware timestamp, in UTC."""
    if ts.tzinfo is None:
        raise LakeLayoutError(f"partition timestamp must be timezone-aware, got {ts!r}")
    utc = ts.astimezone(UTC)
    return f"ingest_date={utc:%Y-%m-%d}/ingest_hour={utc:%H}"


@dataclass(frozen=True, slots=True)
class KafkaBatchPosition:
    """Where a batch of Kafka records came from: one topic-partition and its offset range.

    ``received_at`` is a time the *input* carries (the first record's Kafka timestamp), so that it,
    and the partition derived from it, are the same on every retry of the batch.
    """

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    received_at: datetime

    def __post_init__(self) -> None:
        if self.partition < 0 or self.first_offset < 0 or self.last_offset < self.first_offset:
            raise LakeLayoutError(f"bad Kafka position {self}")

    @property
    def stem(self) -> str:
        return (
            f"{_safe(self.topic)}-{self.partition}-"
            f"{self.first_offset:0{OFFSET_WIDTH}d}-{self.last_offset:0{OFFSET_WIDTH}d}"
        )


@dataclass(frozen=True, slots=True)
class FilePosition:
    """A landed batch file: the source object and the version (or ETag) that was read."""

    bucket: str
    key: str
    version: str
    received_at: datetime

    @property
    def stem(self) -> str:
        digest = hashlib.sha256(f"{self.bucket}/{self.key}#{self.version}".encode()).hexdigest()[:16]
        base = _safe(self.key.rsplit("/", 1)[-1])[:80] or "file"
        return f"{base}-{digest}"


def _safe(text: str) -> str:
    return _SAFE_SEGMENT.sub("_", text)


def bronze_key(position: KafkaBatchPosition | FilePosition, zone: Zone = Zone.BRONZE) -> str:
    """The one object key a batch's valid (bronze) or rejected (quarantine) records are written to."""
    if zone not in (Zone.BRONZE, Zone.QUARANTINE):
        raise LakeLayoutError(f"bronze keys are for bronze or quarantine, not {zone}")
    source = Source.KAFKA if isinstance(position, KafkaBatchPosition) else Source.FILE
    return (
        f"{TRANSACTIONS_TOPIC}/source={source.value}/{hive_partition(position.received_at)}/"
        f"{position.stem}{BRONZE_SUFFIX}"
    )


def raw_archive_key(position: KafkaBatchPosition) -> str:
    """Landing-zone key of a raw stream batch (when archiving is on)."""
    return f"{LANDING_STREAM_PREFIX}{hive_partition(position.received_at)}/{position.stem}.jsonl.gz"


def silver_prefix(event_date: date | None = None) -> str:
    base = f"{SILVER_TRANSACTIONS}/"
    return base if event_date is None else f"{base}event_date={event_date.isoformat()}/"


def gold_prefix(event_date: date | None = None) -> str:
    base = f"{GOLD_DAILY_KPIS}/"
    return base if event_date is None else f"{base}event_date={event_date.isoformat()}/"


def s3_uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"
