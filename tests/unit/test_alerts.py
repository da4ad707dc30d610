"""Alert rules: parsing and evaluation of each rule kind (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dataforge.alerts import (
    DEFAULT_RULES,
    AlertRule,
    IngestPoint,
    MinutePoint,
    RuleKind,
    alert_id,
    evaluate,
    parse_rules,
    runbook_anchor,
    to_json_rules,
)
from dataforge.errors import SettingsError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def minutes(count: int, payments: int, declined: int, *, end: datetime = NOW) -> list[MinutePoint]:
    return [MinutePoint(end - timedelta(minutes=i), payments, declined) for i in range(count)]


def test_default_rules_cover_every_kind_and_round_trip_through_json() -> None:
    assert {r.kind for r in DEFAULT_RULES} == set(RuleKind)
    assert parse_rules(to_json_rules(DEFAULT_RULES)) == DEFAULT_RULES
    assert parse_rules(None) == DEFAULT_RULES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"name": "x", "kind": "nope", "threshold": "1"}]', "not valid"),
        ('[{"name": "x", "kind": "decline_rate"}]', "not valid"),
        ('[{"name": "a", "kind": "decline_rate", "threshold": "0.1"},'
         ' {"name": "a", "kind": "volume_drop", "threshold": "0.1"}]', "unique"),
        ('[{"name": "a#b", "kind": "decline_rate", "threshold": "0.1"}]', "not valid"),
        ("not json", "not valid"),
    ],
)
def test_bad_rules_fail_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_rules(text)


RATE = AlertRule("decline", RuleKind.DECLINE_RATE, Decimal("0.25"), window_minutes=10, min_count=50)


def test_decline_rate_breach_and_calm() -> None:
    high = evaluate(RATE, minutes(10, 20, 6), [], NOW)  # 60 of 200 = 30 %
    assert high.breached
    assert high.value == Decimal("0.3000")
    calm = evaluate(RATE, minutes(10, 20, 4), [], NOW)  # 20 %
    assert not calm.breached
    assert calm.value == Decimal("0.2000")


def test_decline_rate_needs_enough_payments() -> None:
    quiet = evaluate(RATE, minutes(2, 5, 5), [], NOW)
    assert not quiet.breached
    assert quiet.value is None


def test_decline_rate_ignores_minutes_outside_the_window() -> None:
    old_bad = minutes(10, 20, 20, end=NOW - timedelta(minutes=30))
    assert not evaluate(RATE, old_bad + minutes(10, 20, 1), [], NOW).breached


DROP = AlertRule("drop", RuleKind.VOLUME_DROP, Decimal("0.5"), window_minutes=10, min_count=10, baseline_minutes=60)


def test_volume_drop_against_the_baseline() -> None:
    baseline = minutes(60, 10, 0, end=NOW - timedelta(minutes=11))
    dropped = evaluate(DROP, baseline + minutes(10, 4, 0), [], NOW)
    assert dropped.breached
    assert dropped.value == Decimal("0.4000")
    steady = evaluate(DROP, baseline + minutes(10, 9, 0), [], NOW)
    assert not steady.breached


def test_volume_drop_needs_a_baseline() -> None:
    assert not evaluate(DROP, minutes(10, 1, 0), [], NOW).breached


FRESH = AlertRule("fresh", RuleKind.FRESHNESS_LAG, Decimal("15"))


def test_freshness_lag() -> None:
    assert evaluate(FRESH, minutes(1, 1, 0, end=NOW - timedelta(minutes=20)), [], NOW).breached
    assert not evaluate(FRESH, minutes(1, 1, 0, end=NOW - timedelta(minutes=5)), [], NOW).breached
    no_data = evaluate(FRESH, [], [], NOW)
    assert no_data.breached
    assert "no realtime data" in no_data.message


RATIO = AlertRule("q", RuleKind.QUARANTINE_RATIO, Decimal("0.05"), window_minutes=60, min_count=100)


def test_quarantine_ratio() -> None:
    bad = [IngestPoint(NOW - timedelta(minutes=5), 1000, 80)]
    assert evaluate(RATIO, [], bad, NOW).breached
    good = [IngestPoint(NOW - timedelta(minutes=5), 1000, 20)]
    assert not evaluate(RATIO, [], good, NOW).breached
    outside = [IngestPoint(NOW - timedelta(minutes=90), 1000, 900)]
    assert not evaluate(RATIO, [], outside, NOW).breached


def test_alert_ids_and_runbook_anchors() -> None:
    assert alert_id(RATE, NOW) == "decline-20261126T1200"
    assert runbook_anchor(RuleKind.FRESHNESS_LAG) == "docs/runbooks/incident_response.md#freshness_lag"
