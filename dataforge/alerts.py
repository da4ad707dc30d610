"""Alert rules: declarative, per environment, evaluated on a schedule (pure functions).

A rule names a metric, a comparison and a window. Four kinds (ARCHITECTURE.md, "Alerts"):

- ``decline_rate``: declined / payments over the last ``window_minutes`` is above ``threshold``
  (and at least ``min_count`` payments were seen, so a quiet minute does not page anyone);
- ``volume_drop``: payments in the window fell below ``threshold`` x the average of the same-size
  windows over the ``baseline_minutes`` before it;
- ``freshness_lag``: the newest realtime minute is older than ``threshold`` minutes;
- ``quarantine_ratio``: quarantined / received records over the window is above ``threshold``.

Rules arrive as JSON in ``DATAFORGE_ALERT_RULES`` (set by ``infra/`` from the stack config); the
defaults below apply when it is unset. The runbook has one section per rule kind
(``docs/runbooks/incident_response.md#<kind>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Final

import msgspec

from dataforge.errors import SettingsError

RUNBOOK_PATH: Final = "docs/runbooks/incident_response.md"


class RuleKind(StrEnum):
    DECLINE_RATE = "decline_rate"
    VOLUME_DROP = "volume_drop"
    FRESHNESS_LAG = "freshness_lag"
    QUARANTINE_RATIO = "quarantine_ratio"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    kind: RuleKind
    threshold: Decimal
    window_minutes: int = 15
    severity: Severity = Severity.WARNING
    min_count: int = 50
    baseline_minutes: int = 120

    def __post_init__(self) -> None:
        if not self.name or "#" in self.name:
            raise ValueError(f"rule name {self.name!r} must be non-empty and contain no '#'")
        if self.window_minutes < 1 or self.baseline_minutes < self.window_minutes:
            raise ValueError(f"rule {self.name}: need 1 <= window_minutes <= baseline_minutes")
        if self.threshold < 0:
            raise ValueError(f"rule {self.name}: threshold must be >= 0")


DEFAULT_RULES: Final[tuple[AlertRule, ...]] = (
    AlertRule("high-decline-rate", RuleKind.DECLINE_RATE, Decimal("0.25"), 15, Severity.CRITICAL),
    AlertRule("volume-drop", RuleKind.VOLUME_DROP, Decimal("0.5"), 15, Severity.WARNING, baseline_minutes=120),
    AlertRule("stale-data", RuleKind.FRESHNESS_LAG, Decimal("15"), 15, Severity.CRITICAL),
    AlertRule("quarantine-ratio", RuleKind.QUARANTINE_RATIO, Decimal("0.05"), 60, Severity.WARNING),
)


def parse_rules(text: str | None) -> tuple[AlertRule, ...]:
    """The rules in ``DATAFORGE_ALERT_RULES`` (a JSON list), or the defaults when unset."""
    if not text:
        return DEFAULT_RULES
    try:
        rules = msgspec.json.decode(text, type=tuple[AlertRule, ...])
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise SettingsError(f"alert rules are not valid: {exc}") from exc
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise SettingsError(f"alert rule names must be unique, got {names}")
    return rules


@dataclass(frozen=True, slots=True)
class MinutePoint:
    """One realtime minute (``dataforge.serving.RealtimeItem``, typed)."""

    minute: datetime
    txn_count: int
    declined_count: int


@dataclass(frozen=True, slots=True)
class IngestPoint:
    """Records landed by one batch (received and quarantined), at the batch's ingest time."""

    at: datetime
    received: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    rule: AlertRule
    breached: bool
    value: Decimal | None
    message: str


_RATE = Decimal("0.0001")


def _ratio(numerator: int, denominator: int) -> Decimal:
    return (Decimal(numerator) / Decimal(denominator)).quantize(_RATE, rounding=ROUND_HALF_EVEN)


def evaluate(rule: AlertRule, minutes: Sequence[MinutePoint], ingests: Sequence[IngestPoint],
             now: datetime) -> Evaluation:
    """Evaluate one rule against the recent metrics (all timestamps aware)."""
    window_start = now - timedelta(minutes=rule.window_minutes)
    recent = [m for m in minutes if window_start <= m.minute <= now]
    if rule.kind is RuleKind.DECLINE_RATE:
        payments = sum(m.txn_count for m in recent)
        if payments < rule.min_count:
            return Evaluation(rule, False, None, f"only {payments} payments in {rule.window_minutes} min")
        rate = _ratio(sum(m.declined_count for m in recent), payments)
        return Evaluation(rule, rate > rule.threshold, rate,
                          f"decline rate {rate:.2%} over {rule.window_minutes} min (threshold {rule.threshold:.2%})")
    if rule.kind is RuleKind.VOLUME_DROP:
        baseline_start = window_start - timedelta(minutes=rule.baseline_minutes)
        baseline = sum(m.txn_count for m in minutes if baseline_start <= m.minute < window_start)
        expected = Decimal(baseline) * rule.window_minutes / rule.baseline_minutes
        if expected < rule.min_count:
            return Evaluation(rule, False, None, f"baseline too small ({expected:.0f} expected payments)")
        current = sum(m.txn_count for m in recent)
        share = (Decimal(current) / expected).quantize(_RATE, rounding=ROUND_HALF_EVEN)
        return Evaluation(rule, share < rule.threshold, share,
                          f"{current} payments in {rule.window_minutes} min, {share:.0%} of the baseline "
                          f"(threshold {rule.threshold:.0%})")
    if rule.kind is RuleKind.FRESHNESS_LAG:
        newest = max((m.minute for m in minutes if m.minute <= now), default=None)
        if newest is None:
            return Evaluation(rule, True, None, "no realtime data at all")
        lag = Decimal(int((now - newest).total_seconds() // 60))
        return Evaluation(rule, lag > rule.threshold, lag,
                          f"newest data is {lag} min old (threshold {rule.threshold} min)")
    received = sum(i.received for i in ingests if window_start <= i.at <= now)
    if received < rule.min_count:
        return Evaluation(rule, False, None, f"only {received} records received in {rule.window_minutes} min")
    ratio = _ratio(sum(i.quarantined for i in ingests if window_start <= i.at <= now), received)
    return Evaluation(rule, ratio > rule.threshold, ratio,
                      f"{ratio:.2%} of records quarantined over {rule.window_minutes} min "
                      f"(threshold {rule.threshold:.2%})")


def alert_id(rule: AlertRule, raised_at: datetime) -> str:
    """Deterministic: one alert per rule and raising minute (a retried evaluation rewrites it)."""
    return f"{rule.name}-{raised_at:%Y%m%dT%H%M}"


def runbook_anchor(kind: RuleKind | str) -> str:
    return f"{RUNBOOK_PATH}#{RuleKind(kind).value}"


def to_json_rules(rules: Sequence[AlertRule]) -> str:
    """The ``DATAFORGE_ALERT_RULES`` value for ``rules`` (used by ``infra/``)."""
    return msgspec.json.encode([msgspec.structs.asdict(r) for r in rules], enc_hook=_enc).decode()


def _enc(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")
