"""JSON shapes of the API contract (``/v1``), as TypedDicts. Money and rates are decimal strings."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# One gold KPI row as the API serves it: ``event_date`` and the columns of ``schemas.GOLD_KPI_ROW``
# (keys as text, counts as integers, rates and money as decimal strings, nullable ones may be null).
DailyKpi = dict[str, Any]


class Summary(TypedDict):
    date: str
    current: dict[str, Any]
    previous: dict[str, Any] | None
    change: dict[str, Any]


class Minute(TypedDict):
    minute: str
    txn_count: int
    approved_count: int
    declined_count: int
    volume_usd: str
    decline_rate: str | None


class Realtime(TypedDict):
    items: list[Minute]
    freshness_seconds: float | None  # now - newest_event_time (ADR 0014)
    newest_event_time: NotRequired[str | None]  # RFC 3339: the newest event time the API has counted
    pipeline_lag_seconds: NotRequired[float | None]  # now - the newest Kafka timestamp counted


class Alert(TypedDict):
    alert_id: str
    rule: str
    severity: str
    status: str
    raised_at: str
    message: str
    value: str | None
    threshold: str | None
    acknowledged_by: str | None
    acknowledged_at: str | None
    runbook_url: str | None


class QueryColumn(TypedDict):
    name: str
    type: str


class QueryResults(TypedDict):
    columns: list[QueryColumn]
    rows: list[list[Any]]
    next_token: str | None


class CatalogTable(TypedDict):
    name: str
    columns: list[QueryColumn]
    partition_keys: list[Any]


class CatalogDatabase(TypedDict):
    name: str
    tables: list[CatalogTable]
