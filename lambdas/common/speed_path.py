"""The speed path (ADR 0014): a landed Kafka batch -> provisional realtime minutes in DynamoDB.

For one topic-partition batch of valid records, ``SpeedPath.fold``:

1. keeps the payments with an FX rate (what the realtime KPIs count), the first of each event id
   within the batch;
2. reads, in one strongly consistent ``BatchGetItem``, for each minute the batch touches, this
   partition's speed item (counts, ``through_offset``, ``ids_len``) and its id set (``RTD#``: the 8-byte
   BLAKE2b digests of the event ids counted in that minute and partition, appended in order);
3. per minute, counts the records past the item's ``through_offset`` whose digest is not among the
   first ``ids_len`` digests of the set (a duplicate re-sent earlier), appends their digests to the
   set (``PutItem``), then puts the speed item back on the condition that its ``through_offset`` is
   still what it read (a conditional ``PutItem``), with the new ``ids_len``.

Why it is exact: the event source mapping hands a partition's batches to one invocation at a time, in
offset order, so a partition's items have a single writer; the offset guard makes a retried batch (even
one re-cut to a different offset range) add only what it has not added; digests appended by an attempt
that failed before its speed item was written lie past ``ids_len`` and are ignored. A duplicate is a
re-send of the same event: same ``account_id`` key (so the same partition) and same event time (so the
same minute), hence found in that one set. Two distinct ids share a 64-bit digest with a probability of
about n^2 / 2^65 for n ids in a minute and partition (below 1e-10 at 20,000): negligible for provisional
figures, which Spark's final ones replace. Speed items and id sets expire through the table's TTL.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from dataforge import aws, serving
from dataforge.contract import from_epoch_us
from dataforge.reference import FxTable
from lambdas.common.errors import StorageError

logger = logging.getLogger(__name__)

DIGEST_BYTES: Final = 8
# An id set stays below DynamoDB's 400 KB item limit: past this many digests in one (minute, partition)
# (about 660 counted events/s in a partition), further ids are counted without being recorded, so a
# duplicate of one of them may be counted twice provisionally (logged; Spark's final minute is exact).
MAX_IDS: Final = 40_000
SPEED_TTL_SECONDS: Final = 48 * 3600  # longer than the API's widest window (1440 minutes)
_GET_BATCH: Final = 100  # BatchGetItem: at most 100 keys per call
_MAX_ROUNDS: Final = 8  # unprocessed keys/items are resent this many times before the batch fails


class _Fields(msgspec.Struct):
    """The fields a realtime minute needs (the record is already valid: types are the contract's)."""

    event_type: str
    status: str
    amount: str | int | float
    currency: str


_decode = msgspec.json.Decoder(_Fields).decode


@dataclass(frozen=True, slots=True)
class ValidRecord:
    """One valid record of a batch: its offset, raw bytes, event id and event time (epoch µs)."""

    offset: int
    raw: bytes
    event_id: str
    event_us: int
    ingest_ms: int


@dataclass(frozen=True, slots=True)
class Counted:
    offset: int
    event_id: str
    minute: datetime
    event_time: datetime
    ingest_ms: int
    approved: bool
    volume_usd: Decimal  # approved payments only, else 0


def counted_events(admitted: Sequence[ValidRecord], fx: FxTable) -> list[Counted]:
    """The payments among ``admitted`` with a USD amount, first occurrence of each event id (by offset)."""
    seen: set[str] = set()
    out: list[Counted] = []
    for record in sorted(admitted, key=lambda r: r.offset):
        if record.event_id in seen:
            continue
        fields = _decode(record.raw)
        if fields.event_type != "payment":
            continue
        event_time = from_epoch_us(record.event_us)
        usd = fx.to_usd(Decimal(str(fields.amount)), fields.currency, event_time.date())
        if usd is None:  # Spark quarantines it as no_fx_rate: not a realtime event
            continue
        seen.add(record.event_id)
        approved = fields.status == "approved"
        out.append(Counted(record.offset, record.event_id, serving.minute_floor(event_time), event_time,
                           record.ingest_ms, approved, usd if approved else Decimal(0)))
    return out


def event_digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def fold_minute(item: dict[str, Any] | None, events: Sequence[Counted], *, minute: datetime, topic: str,
                partition: int, last_offset: int, expires_at: int) -> dict[str, Any] | None:
    """The speed item of (``minute``, topic-partition) after adding ``events`` past its ``through_offset``;
    None when the batch adds nothing (a retried batch already folded in)."""
    through = int(item["through_offset"]) if item else -1
    new = [e for e in events if e.offset > through]
    if item is not None and not new:
        return None
    base = item or {}
    approved = sum(1 for e in new if e.approved)
    newest_event = max([serving.instant(e.event_time) for e in new] + [str(base.get("newest_event_time", ""))])
    newest_ingest = max([serving.instant(datetime.fromtimestamp(e.ingest_ms / 1000, UTC)) for e in new]
                        + [str(base.get("newest_ingest_time", ""))])
    return {
        serving.PK: serving.realtime_speed_pk(minute), serving.SK: serving.realtime_speed_sk(minute, topic, partition),
        "minute": serving.realtime_sk(minute),
        "txn_count": int(base.get("txn_count", 0)) + len(new),
        "approved_count": int(base.get("approved_count", 0)) + approved,
        "declined_count": int(base.get("declined_count", 0)) + len(new) - approved,
        "volume_usd": Decimal(str(base.get("volume_usd", 0))) + sum((e.volume_usd for e in new), Decimal(0)),
        "through_offset": max(last_offset, through),
        "newest_event_time": newest_event, "newest_ingest_time": newest_ingest,
        serving.TTL_ATTR: expires_at,
    }


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize


def _to_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZE(v) for k, v in item.items()}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


class SpeedPath:
    """Folds landed batches into speed items; the DynamoDB client is created on first use (or injected)."""

    def __init__(self, table_name: str, fx: FxTable, *, endpoint_url: str | None, region: str,
                 client: Any = None, clock: Callable[[], float] = time.time, max_ids: int = MAX_IDS) -> None:
        self._table = table_name
        self._fx = fx
        self._endpoint_url = endpoint_url
        self._region = region
        self._client = client
        self._clock = clock
        self._max_ids = max_ids

    def _ddb(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb", endpoint_url=self._endpoint_url, region=self._region)
        return self._client

    def fold(self, topic: str, partition: int, last_offset: int, admitted: Sequence[ValidRecord]) -> int:
        """Fold one topic-partition batch (its last offset and valid records); returns the events added."""
        events = counted_events(admitted, self._fx)
        if not events:
            return 0
        expires_at = int(self._clock()) + SPEED_TTL_SECONDS
        minutes = sorted({e.minute for e in events})
        speed_keys = [(serving.realtime_speed_pk(m), serving.realtime_speed_sk(m, topic, partition)) for m in minutes]
        id_keys = [(serving.realtime_ids_pk(m, topic, partition), serving.IDS_SK) for m in minutes]
        found = self._get([*speed_keys, *id_keys])
        added = 0
        for minute, speed_key, id_key in zip(minutes, speed_keys, id_keys, strict=True):
            current = found.get(speed_key)
            through = int(current["through_offset"]) if current else -1
            ids_len = int(current.get("ids_len", 0)) if current else 0
            stored = found.get(id_key, {}).get("ids")  # a boto3 ``Binary``
            digests = (b"" if stored is None else bytes(stored))[:ids_len * DIGEST_BYTES]
            seen = {digests[i:i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES)}
            fresh: list[Counted] = []
            for event in events:
                if event.minute != minute or event.offset <= through:
                    continue
                digest = event_digest(event.event_id)
                if digest not in seen:
                    seen.add(digest)
                    fresh.append(event)
            item = fold_minute(current, fresh, minute=minute, topic=topic, partition=partition,
                               last_offset=last_offset, expires_at=expires_at)
            if item is None:
                continue
            if fresh and len(digests) < self._max_ids * DIGEST_BYTES:
                room = self._max_ids - len(digests) // DIGEST_BYTES
                if len(fresh) > room:
                    logger.warning("realtime id set of %s-%d at %s is full (%d ids): duplicates of later events "
                                   "may be counted twice until Spark's final minute", topic, partition,
                                   serving.realtime_sk(minute), self._max_ids)
                digests += b"".join(event_digest(e.event_id) for e in fresh[:room])
                self._put({serving.PK: id_key[0], serving.SK: id_key[1], "ids": digests,
                           serving.TTL_ATTR: expires_at})
            item["ids_len"] = len(digests) // DIGEST_BYTES
            self._put_guarded(item, None if current is None else through)
            added += len(fresh)
        return added

    def _get(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), _GET_BATCH):
            request: dict[str, Any] = {self._table: {
                "Keys": [{serving.PK: {"S": pk}, serving.SK: {"S": sk}} for pk, sk in chunk],
                "ConsistentRead": True}}
            for _ in range(_MAX_ROUNDS):
                try:
                    response = self._ddb().batch_get_item(RequestItems=request)
                except (BotoCoreError, ClientError) as exc:
                    raise StorageError(f"cannot read realtime minutes from {self._table}: {exc}") from exc
                for raw in response.get("Responses", {}).get(self._table, []):
                    item = _from_ddb(raw)
                    found[(str(item[serving.PK]), str(item[serving.SK]))] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StorageError(f"DynamoDB left keys of {self._table} unprocessed {_MAX_ROUNDS} times")
        return found

    def _put(self, item: dict[str, Any]) -> None:
        try:
            self._ddb().put_item(TableName=self._table, Item=_to_ddb(item))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot write the realtime id set {item['pk']} to {self._table}: {exc}") from exc

    def _put_guarded(self, item: dict[str, Any], seen_through: int | None) -> None:
        if seen_through is None:
            condition = "attribute_not_exists(#pk)"
            values: dict[str, Any] = {}
        else:
            condition = "through_offset = :seen"
            values = {":seen": {"N": str(seen_through)}}
        request: dict[str, Any] = {"TableName": self._table, "Item": _to_ddb(item), "ConditionExpression": condition}
        if seen_through is None:
            request["ExpressionAttributeNames"] = {"#pk": serving.PK}
        else:
            request["ExpressionAttributeValues"] = values
        try:
            self._ddb().put_item(**request)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot fold the realtime minute {item['sk']} into {self._table} "
                                 f"(another writer changed it, or DynamoDB failed): {exc}") from exc
