"""DynamoDB item design of the serving layer (ADR 0001), shared by every writer and reader.

Two tables, string keys ``pk`` / ``sk`` (and a GSI on alerts). Every read the API makes is a key
query; no scans.

metrics table (``DATAFORGE_METRICS_TABLE``):

=========================  =========================================  ===========================
item                       pk                                         sk
=========================  =========================================  ===========================
daily KPI, one grain row   ``KPI#D#<event_date>``                     ``<merchant>#<country>#<channel>``
daily KPI, by merchant     ``KPI#M#<merchant_id>``                    ``<event_date>#<country>#<channel>``
daily KPI, platform total  ``KPI#TOTAL``                              ``<event_date>``
realtime minute (final)    ``RT#<yyyy-mm-dd>``                        ``<yyyy-mm-ddTHH:MMZ>``
realtime minute, speed     ``RTS#<yyyy-mm-dd>``                       ``<yyyy-mm-ddTHH:MMZ>#<topic>-<partition>``
speed-path id set          ``RTD#<topic>-<partition>#<minute>``        ``IDS``
=========================  =========================================  ===========================

Realtime minutes have two writers (ADR 0014): Spark streaming writes the *final* minute items from
deduplicated silver; the MSK landing function folds each batch into one *speed* item per
(minute, topic-partition), guarded by the highest offset folded (``through_offset``), and keeps the
digests of the event ids it counted there (``RTD#``), so a duplicate re-sent in a later batch is not
counted again. The API
merges them per minute (``merge_realtime``): the final item once Spark has seen what the speed path
counted, else the sum of the speed items (provisional). Speed items and id sets expire through the
table's TTL attribute ``expires_at``.

alerts table (``DATAFORGE_ALERTS_TABLE``): pk ``ALERT#<alert_id>``, sk ``ALERT``; GSI
``by_status`` on (``status``, ``raised_at``) lists open/acknowledged/resolved alerts newest first.

Writers upsert whole items keyed as above, so re-running an export or a streaming micro-batch
overwrites the same items (idempotent). Money and rates are ``Decimal`` (DynamoDB numbers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, TypedDict

from dataforge.errors import ContractError
from dataforge.schemas import GOLD_KPI_ROW, KPI_DATE, PLATFORM_TOTAL, KpiKind

PK: Final = "pk"
SK: Final = "sk"
ALERTS_STATUS_INDEX: Final = "by_status"
ALERT_STATUS_ATTR: Final = "status"
ALERT_RAISED_AT_ATTR: Final = "raised_at"
ALERT_SK: Final = "ALERT"
ALERT_STATUSES: Final = ("open", "acknowledged", "resolved")

KPI_TOTAL_PK: Final = "KPI#TOTAL"
IDS_SK: Final = "IDS"
REALTIME_SPEED_PREFIX: Final = "RTS#"  # the pk prefix of speed-path minute items
TTL_ATTR: Final = "expires_at"  # the metrics table's time-to-live attribute (epoch seconds)
PROVISIONAL: Final = "provisional"
FINAL: Final = "final"
_SEP: Final = "#"


def _part(value: str) -> str:
    if _SEP in value and value != PLATFORM_TOTAL:
        raise ContractError(f"key part {value!r} must not contain {_SEP!r}")
    return value


def kpi_date_pk(event_date: date) -> str:
    return f"KPI#D#{event_date.isoformat()}"


def kpi_grain_sk(merchant_id: str, country: str, channel: str) -> str:
    return _SEP.join((_part(merchant_id), _part(country), _part(channel)))


def kpi_merchant_pk(merchant_id: str) -> str:
    return f"KPI#M#{_part(merchant_id)}"


def kpi_merchant_sk(event_date: date, country: str, channel: str) -> str:
    return _SEP.join((event_date.isoformat(), _part(country), _part(channel)))


def kpi_total_sk(event_date: date) -> str:
    return event_date.isoformat()


def minute_floor(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ContractError(f"realtime minute needs an aware timestamp, got {ts!r}")
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def realtime_pk(minute: datetime) -> str:
    return f"RT#{minute_floor(minute):%Y-%m-%d}"


def realtime_sk(minute: datetime) -> str:
    return f"{minute_floor(minute):%Y-%m-%dT%H:%MZ}"


def realtime_speed_pk(minute: datetime) -> str:
    return f"{REALTIME_SPEED_PREFIX}{minute_floor(minute):%Y-%m-%d}"


def realtime_speed_sk(minute: datetime, topic: str, partition: int) -> str:
    return f"{realtime_sk(minute)}{_SEP}{topic}-{partition}"


def realtime_ids_pk(minute: datetime, topic: str, partition: int) -> str:
    return f"RTD#{topic}-{partition}{_SEP}{realtime_sk(minute)}"


def instant(ts: datetime) -> str:
    """An aware timestamp as fixed-width RFC 3339 UTC with microseconds: such strings sort as the instants."""
    if ts.tzinfo is None:
        raise ContractError(f"an instant needs an aware timestamp, got {ts!r}")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def alert_pk(alert_id: str) -> str:
    return f"ALERT#{alert_id}"


class MinuteCounts(TypedDict):
    """What every realtime minute item holds: its key, its minute and the minute's payment counts."""

    pk: str
    sk: str
    minute: str
    txn_count: int
    approved_count: int
    declined_count: int
    volume_usd: Decimal


class RealtimeItem(MinuteCounts):
    decline_rate: Decimal | None


class SpeedItem(MinuteCounts):
    """One (minute, topic-partition) fold of the speed path: the counted events of that partition's batches."""

    through_offset: int  # the last offset of the newest batch folded in: a retried batch skips what it folded
    ids_len: int  # how many digests of the id set these counts include (later ones: an unfinished attempt)
    newest_event_time: str  # ``instant``: the newest event time counted
    newest_ingest_time: str  # ``instant``: the newest Kafka timestamp counted
    expires_at: int  # epoch seconds (the table's TTL attribute)


class IdSetItem(TypedDict):
    pk: str
    sk: str
    ids: bytes  # 8-byte BLAKE2b digests of the event ids counted, appended in offset order
    expires_at: int


class AlertItem(TypedDict):
    pk: str
    sk: str
    alert_id: str
    rule: str
    severity: str
    status: str
    raised_at: str
    message: str
    value: Decimal
    threshold: Decimal
    acknowledged_by: str | None
    acknowledged_at: str | None
    runbook_url: str  # docs/runbooks/incident_response.md#<rule kind>


def kpi_item_keys(event_date: date, merchant_id: str, country: str, channel: str) -> list[tuple[str, str]]:
    """Every (pk, sk) a gold row is written under: by date, and by merchant or as the platform total."""
    keys = [(kpi_date_pk(event_date), kpi_grain_sk(merchant_id, country, channel))]
    if merchant_id == PLATFORM_TOTAL and country == PLATFORM_TOTAL and channel == PLATFORM_TOTAL:
        keys.append((KPI_TOTAL_PK, kpi_total_sk(event_date)))
    elif merchant_id != PLATFORM_TOTAL:
        keys.append((kpi_merchant_pk(merchant_id), kpi_merchant_sk(event_date, country, channel)))
    return keys


def kpi_items(row: Mapping[str, Any], event_date: date) -> list[dict[str, object]]:
    """The DynamoDB items of one gold row (``schemas.GOLD_KPI_ROW``), one per key it is served under:
    counts as integers, money and rates as the ``Decimal`` gold holds, no null attributes."""
    values: dict[str, object] = {KPI_DATE: event_date.isoformat()}
    for column in GOLD_KPI_ROW:
        value = row[column.name]
        values[column.name] = int(value) if column.kind is KpiKind.COUNT else value
    return [
        without_none({PK: pk, SK: sk, **values})
        for pk, sk in kpi_item_keys(event_date, row["merchant_id"], row["country"], row["channel"])
    ]


def without_none(item: dict[str, object]) -> dict[str, object]:
    """DynamoDB items carry no null attributes: absent means null (readers use ``.get``)."""
    return {key: value for key, value in item.items() if value is not None}


# --- ingest counters (landing handlers -> quarantine-ratio alert) -------------------------------


def ingest_pk(ingest_date: date) -> str:
    """Per-batch landing counts: ``INGEST#<date>`` / ``<source>#<batch digest>`` (ADR 0001)."""
    return f"INGEST#{ingest_date.isoformat()}"


def ingest_sk(source: str, batch_digest: str) -> str:
    return f"{_part(source)}{_SEP}{_part(batch_digest)}"


class IngestCounterItem(TypedDict):
    pk: str
    sk: str
    source: str
    received: int
    quarantined: int
    at: str  # RFC 3339 UTC: when the batch was landed (last write wins on a retry)


# --- realtime: final (Spark) and provisional (speed path) minutes --------------------------------


@dataclass(frozen=True, slots=True)
class RealtimeMinute:
    minute: str
    status: str  # PROVISIONAL | FINAL
    txn_count: int
    approved_count: int
    declined_count: int
    volume_usd: Decimal
    decline_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class RealtimeView:
    minutes: list[RealtimeMinute]
    newest_event_time: datetime | None  # the newest event time counted (either path)
    newest_ingest_time: datetime | None  # the newest Kafka timestamp counted (either path)


def decline_rate(declined: int, txn_count: int) -> Decimal | None:
    """declined / txn_count, half-even 4 decimals; None without payments (the KPI definition)."""
    if txn_count == 0:
        return None
    return (Decimal(declined) / Decimal(txn_count)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _newest(current: datetime | None, text: Any) -> datetime | None:
    moment = parse_instant(text) if isinstance(text, str) else None
    if moment is None or (current is not None and current >= moment):
        return current
    return moment


def merge_realtime(final: Iterable[Mapping[str, Any]], speed: Iterable[Mapping[str, Any]]) -> RealtimeView:
    """Per minute, the final item when Spark has seen what the speed path counted, else the speed sum.

    Spark's item is final once its ``as_of`` (the newest Kafka timestamp of the micro-batch that wrote
    it) is at or after the newest Kafka timestamp any speed item of that minute counted; a final item
    without ``as_of`` always wins. The speed items of a minute (one per topic-partition) add up: each
    counts distinct event ids (id sets) exactly once (offset guard)."""
    finals = {str(item.get("minute", "")): item for item in final}
    sums: dict[str, list[Any]] = {}
    newest_event: datetime | None = None
    newest_ingest: datetime | None = None
    for item in speed:
        minute = str(item.get("minute", ""))
        acc = sums.setdefault(minute, [0, 0, 0, Decimal(0), ""])
        acc[0] += _int(item.get("txn_count"))
        acc[1] += _int(item.get("approved_count"))
        acc[2] += _int(item.get("declined_count"))
        acc[3] += Decimal(str(item.get("volume_usd", 0)))
        acc[4] = max(acc[4], str(item.get("newest_ingest_time", "")))
        newest_event = _newest(newest_event, item.get("newest_event_time"))
        newest_ingest = _newest(newest_ingest, item.get("newest_ingest_time"))
    rows: list[RealtimeMinute] = []
    for minute in sorted(finals.keys() | sums.keys()):
        done = finals.get(minute)
        partial = sums.get(minute)
        if done is not None:
            newest_event = _newest(newest_event, done.get("newest_event_time"))
            newest_ingest = _newest(newest_ingest, done.get("as_of"))
            as_of = done.get("as_of")
            if partial is None or not isinstance(as_of, str) or as_of >= partial[4]:
                rows.append(RealtimeMinute(
                    minute, FINAL, _int(done.get("txn_count")), _int(done.get("approved_count")),
                    _int(done.get("declined_count")), Decimal(str(done.get("volume_usd", 0))),
                    None if done.get("decline_rate") is None else Decimal(str(done["decline_rate"]))))
                continue
        assert partial is not None
        rows.append(RealtimeMinute(minute, PROVISIONAL, partial[0], partial[1], partial[2], partial[3],
                                   decline_rate(partial[2], partial[0])))
    return RealtimeView(rows, newest_event, newest_ingest)
