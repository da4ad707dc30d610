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
realtime minute            ``RT#<yyyy-mm-dd>``                        ``<yyyy-mm-ddTHH:MMZ>``
=========================  =========================================  ===========================

alerts table (``DATAFORGE_ALERTS_TABLE``): pk ``ALERT#<alert_id>``, sk ``ALERT``; GSI
``by_status`` on (``status``, ``raised_at``) lists open/acknowledged/resolved alerts newest first.

Writers upsert whole items keyed as above, so re-running an export or a streaming micro-batch
overwrites the same items (idempotent). Money and rates are ``Decimal`` (DynamoDB numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
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


def alert_pk(alert_id: str) -> str:
    return f"ALERT#{alert_id}"


class RealtimeItem(TypedDict):
    pk: str
    sk: str
    minute: str
    txn_count: int
    approved_count: int
    declined_count: int
    volume_usd: Decimal
    decline_rate: Decimal | None


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
