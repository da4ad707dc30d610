"""The independent KPI computation the pipeline is checked against (ARCHITECTURE.md definitions).

Plain Python with ``Decimal`` over the generated input, sharing no code with ``spark/``: one event
per ``event_id`` (the first valid occurrence), ``amount_usd`` per record half-even to cents with the
latest FX rate on or before the event date (no rate -> not in silver), gold grain plus platform totals.
Keys: ``(event_date, merchant_id, country, channel)``; values: the gold KPI tuple in column order.
The realtime minutes count the same events' payments per event-time minute.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from dataforge import serving
from dataforge.reference import default_fx
from devkit.generator import GeneratedEvent

Q4, CENT = Decimal("0.0001"), Decimal("0.01")


def _half_even(num: Decimal, den: int, q: Decimal) -> Decimal | None:
    return None if den == 0 else (num / den).quantize(q, rounding=ROUND_HALF_EVEN)


def _silver_events(events: Iterable[GeneratedEvent]) -> Iterable[tuple[dict[str, Any], datetime, Decimal]]:
    """The events silver holds, once each: (record, event time in UTC, amount in USD)."""
    fx = default_fx()
    seen: set[str] = set()
    for e in events:
        if not e.is_valid:
            continue
        obj = json.loads(e.value, parse_float=Decimal)
        if obj["event_id"] in seen:
            continue
        seen.add(obj["event_id"])
        moment = datetime.fromisoformat(obj["event_time"]).astimezone(UTC)
        usd = fx.to_usd(Decimal(str(obj["amount"])), obj["currency"], moment.date())
        if usd is not None:
            yield obj, moment, usd


def expected_realtime_counts(events: Iterable[GeneratedEvent]) -> dict[str, int]:
    """Payments per event-time minute, keyed like the realtime items (``serving.realtime_sk``)."""
    return dict(Counter(serving.realtime_sk(moment) for obj, moment, _ in _silver_events(events)
                        if obj["event_type"] == "payment"))


def expected_gold(events: Iterable[GeneratedEvent]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    acc: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {"txn": 0, "ok": 0, "no": 0, "gross": Decimal(0), "rc": 0, "rv": Decimal(0), "acc": set()})
    for obj, moment, usd in _silver_events(events):
        day = moment.date()
        for key in ((day, obj["merchant_id"], obj["country"], obj["channel"]), (day, "*", "*", "*")):
            a = acc[key]
            approved = obj["status"] == "approved"
            if obj["event_type"] == "payment":
                a["txn"] += 1
                a["ok" if approved else "no"] += 1
                a["gross"] += usd if approved else 0
                a["acc"].add(obj["account_id"])
            elif approved:
                a["rc"] += 1
                a["rv"] += usd
    return {
        key: (a["txn"], a["ok"], a["no"], _half_even(Decimal(a["ok"]), a["txn"], Q4), a["gross"], a["rc"], a["rv"],
              a["gross"] - a["rv"], _half_even(a["gross"], a["ok"], CENT), len(a["acc"]))
        for key, a in acc.items()
    }


