"""Pure helpers of the dashboard: formatting, staleness, fixed-size buffers. No I/O, no Panel."""

from __future__ import annotations

import csv
import io
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

from panel_dashboard.models import Minute

DASH: Final = "—"


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def format_money(value: Any) -> str:
    number = to_decimal(value)
    if number is None:
        return DASH
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


def format_count(value: Any) -> str:
    number = to_decimal(value)
    return DASH if number is None else f"{int(number):,}"


def format_rate(value: Any) -> str:
    """A 0..1 rate as a percentage with two decimals (``"0.9312"`` -> ``"93.12%"``)."""
    number = to_decimal(value)
    if number is None:
        return DASH
    return f"{(number * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)}%"


def format_change(value: Any) -> tuple[str, str]:
    """A percent change (``"12.5"`` = +12.5 %) as text and a css class (``up``/``down``/``flat``)."""
    number = to_decimal(value)
    if number is None:
        return "no previous period", "flat"
    rounded = number.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    if rounded > 0:
        return f"▲ +{rounded}% vs previous day", "up"
    if rounded < 0:
        return f"▼ {rounded}% vs previous day", "down"
    return "= 0.0% vs previous day", "flat"


def parse_minute(text: str) -> datetime:
    """``YYYY-MM-DDTHH:MMZ`` (the contract's minute) as an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)


class MinuteBuffer:
    """The last ``size`` realtime minutes, keyed by minute: merging is idempotent and memory is fixed."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._items: OrderedDict[str, Minute] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def merge(self, items: Iterable[Minute]) -> None:
        for item in items:
            self._items[item["minute"]] = item
        keep = sorted(self._items)[-self.size:]
        self._items = OrderedDict((k, self._items[k]) for k in keep)

    def columns(self) -> dict[str, list[Any]]:
        """Column data for a Bokeh ``ColumnDataSource`` (floats only for drawing, never for sums)."""
        rows = list(self._items.values())
        return {
            "minute": [parse_minute(r["minute"]) for r in rows],
            "txn_count": [int(r["txn_count"]) for r in rows],
            "declined_count": [int(r["declined_count"]) for r in rows],
            "volume_usd": [float(to_decimal(r["volume_usd"]) or 0) for r in rows],
            "decline_rate": [float(to_decimal(r["decline_rate"]) or 0) * 100 for r in rows],
        }


def fingerprint(value: Any) -> str:
    """A cheap content fingerprint of a decoded API body (skip model updates when it did not change)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class SourceUpdate:
    """How to bring a chart's columns from ``old`` to ``new``: ``stream`` appended rows (dropping rows
    from the front with ``rollover``), ``patch`` changed cells, or ``replace`` everything."""

    replace: dict[str, list[Any]] | None
    stream: dict[str, list[Any]]
    patch: dict[str, list[tuple[int, Any]]]
    rollover: int

    @property
    def empty(self) -> bool:
        return self.replace is None and not self.stream and not self.patch


def source_update(old: Mapping[str, Sequence[Any]], new: Mapping[str, Sequence[Any]], key: str) -> SourceUpdate:
    """The smallest update of a ``ColumnDataSource`` sorted by ``key`` (e.g. minutes): when ``new`` is
    ``old`` shifted forward (``old[k:]`` is a prefix of ``new``), stream the new rows with a rollover
    and patch the overlapping cells that changed; otherwise replace."""
    old_keys, new_keys = list(old.get(key, [])), list(new[key])
    columns = list(new)
    if set(old) != set(new) or not old_keys:
        return SourceUpdate({c: list(new[c]) for c in columns}, {}, {}, len(new_keys))
    shift = next((k for k in range(len(old_keys))
                  if old_keys[k:] == new_keys[:len(old_keys) - k]), None)
    if shift is None or (shift and len(new_keys) <= len(old_keys) - shift):  # shrank: no rollover to drop rows
        return SourceUpdate({c: list(new[c]) for c in columns}, {}, {}, len(new_keys))
    overlap = len(old_keys) - shift
    patch: dict[str, list[tuple[int, Any]]] = {}
    for c in columns:
        # Patch indices are those of the source after the stream (rows shifted by ``shift``).
        changed = [(i, new[c][i]) for i in range(overlap) if new[c][i] != old[c][shift + i]]
        if changed:
            patch[c] = changed
    stream = {c: list(new[c][overlap:]) for c in columns} if len(new_keys) > overlap else {}
    return SourceUpdate(None, stream, patch, len(new_keys))


@dataclass(frozen=True, slots=True)
class Status:
    stale: bool
    banner: str  # empty when not stale
    indicator: str  # "last updated / data freshness" line


def _seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:g} s"


def status_of(now: datetime, *, last_success: datetime | None, last_error: str | None,
              freshness_seconds: float | None, data_stale_seconds: int, newest_event_time: str | None = None,
              lag_seconds: float | None = None) -> Status:
    """Whether the page shows stale data, and what to say. API failing -> stale; data lagging -> stale.

    Freshness is the age of the newest event time the API has counted, the lag the age of the newest
    ingest (Kafka) time counted (ADR 0014); the indicator shows both and the newest event time itself."""
    updated = DASH if last_success is None else f"{last_success:%H:%M:%S} UTC"
    newest = DASH if not newest_event_time else newest_event_time.replace("T", " ").replace("Z", " UTC")
    indicator = (f"Last updated {updated} · data freshness {_seconds(freshness_seconds)} · "
                 f"pipeline lag {_seconds(lag_seconds)} · newest event {newest}")
    if last_error is not None:
        since = "never" if last_success is None else f"{int((now - last_success).total_seconds())} s ago"
        return Status(True, f"Stale data: the API is not answering ({last_error}). Last good update {since}.",
                      indicator)
    if freshness_seconds is None:
        return Status(True, "Stale data: no realtime metrics have arrived yet.", indicator)
    if freshness_seconds > data_stale_seconds:
        return Status(True, f"Stale data: the newest metrics are {freshness_seconds} s old "
                            f"(more than {data_stale_seconds} s); the pipeline may be lagging.", indicator)
    return Status(False, "", indicator)


def rows_to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def runbook_link(alert: Mapping[str, Any], base: str) -> str:
    """The alert's runbook URL, or the rule's section of the incident-response runbook."""
    return str(alert.get("runbook_url") or f"{base}#{alert['rule']}")


KPI_CARDS: Final = (
    ("txn_count", "Transactions", format_count),
    ("gross_volume_usd", "Gross volume", format_money),
    ("approval_rate", "Approval rate", format_rate),
    ("net_volume_usd", "Net volume", format_money),
    ("avg_ticket_usd", "Average ticket", format_money),
    ("unique_accounts", "Unique accounts", format_count),
)
