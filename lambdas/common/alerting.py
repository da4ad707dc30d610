"""The alert evaluator's core: read recent metrics, evaluate the rules, keep alert items current.

Per rule and run: a breach with no active (open or acknowledged) alert raises a new one and
publishes it to SNS; a breach with an active alert refreshes its value; no breach resolves the
active alert. Reads are key queries (ADR 0001); the clock and the AWS clients are injected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from dataforge import serving
from dataforge.alerts import AlertRule, Evaluation, IngestPoint, MinutePoint, alert_id, evaluate, runbook_anchor
from lambdas.common.errors import StorageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    metrics_table: str
    alerts_table: str
    topic_arn: str | None
    rules: tuple[AlertRule, ...]


@dataclass(frozen=True, slots=True)
class RunResult:
    raised: tuple[str, ...]
    refreshed: tuple[str, ...]
    resolved: tuple[str, ...]
    evaluations: tuple[Evaluation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "raised": list(self.raised), "refreshed": list(self.refreshed), "resolved": list(self.resolved),
            "evaluations": [
                {"rule": e.rule.name, "breached": e.breached, "value": None if e.value is None else str(e.value),
                 "message": e.message}
                for e in self.evaluations
            ],
        }


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AlertEvaluator:
    """Dependencies injected: DynamoDB resource tables and an SNS client (created by the handler)."""

    def __init__(self, config: AlertingConfig, *, metrics: Any, alerts: Any, sns: Any,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self._metrics = metrics
        self._alerts = alerts
        self._sns = sns
        self._clock = clock

    def run(self) -> RunResult:
        now = self._clock()
        horizon = max(r.window_minutes + r.baseline_minutes for r in self.config.rules) if self.config.rules else 0
        try:
            minutes = self._minutes(now - timedelta(minutes=horizon), now)
            ingests = self._ingests(now - timedelta(minutes=horizon), now)
            active = self._active_alerts()
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot read metrics or alerts: {exc}") from exc
        raised: list[str] = []
        refreshed: list[str] = []
        resolved: list[str] = []
        evaluations = tuple(evaluate(rule, minutes, ingests, now) for rule in self.config.rules)
        for evaluation in evaluations:
            current = active.get(evaluation.rule.name)
            try:
                if evaluation.breached and current is None:
                    raised.append(self._raise(evaluation, now))
                elif evaluation.breached and current is not None:
                    self._refresh(current, evaluation, now)
                    refreshed.append(current["alert_id"])
                elif current is not None:
                    self._resolve(current, now)
                    resolved.append(current["alert_id"])
            except (BotoCoreError, ClientError) as exc:
                raise StorageError(f"cannot update alert for rule {evaluation.rule.name}: {exc}") from exc
        return RunResult(tuple(raised), tuple(refreshed), tuple(resolved), evaluations)

    def _minutes(self, since: datetime, now: datetime) -> list[MinutePoint]:
        points: list[MinutePoint] = []
        day = since.date()
        while day <= now.date():
            start = since if day == since.date() else datetime(day.year, day.month, day.day, tzinfo=UTC)
            condition = Key(serving.PK).eq(serving.realtime_pk(start)) & Key(serving.SK).between(
                serving.realtime_sk(start), serving.realtime_sk(now))
            for item in self._query(self._metrics, KeyConditionExpression=condition):
                points.append(MinutePoint(
                    minute=datetime.strptime(str(item["minute"]), "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC),
                    txn_count=int(item["txn_count"]), declined_count=int(item["declined_count"])))
            day += timedelta(days=1)
        return points

    def _ingests(self, since: datetime, now: datetime) -> list[IngestPoint]:
        points: list[IngestPoint] = []
        day = since.date()
        while day <= now.date():
            for item in self._query(self._metrics, KeyConditionExpression=Key(serving.PK).eq(serving.ingest_pk(day))):
                at = datetime.fromisoformat(str(item["at"]))
                if since <= at <= now:
                    points.append(IngestPoint(at, int(item["received"]), int(item["quarantined"])))
            day += timedelta(days=1)
        return points

    def _active_alerts(self) -> dict[str, dict[str, Any]]:
        active: dict[str, dict[str, Any]] = {}
        for status in ("acknowledged", "open"):  # an open alert wins over an acknowledged one
            for item in self._query(self._alerts, IndexName=serving.ALERTS_STATUS_INDEX,
                                    KeyConditionExpression=Key(serving.ALERT_STATUS_ATTR).eq(status)):
                active[str(item["rule"])] = item
        return active

    @staticmethod
    def _query(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _raise(self, evaluation: Evaluation, now: datetime) -> str:
        rule = evaluation.rule
        identifier = alert_id(rule, now)
        item = serving.without_none({
            "pk": serving.alert_pk(identifier), "sk": serving.ALERT_SK, "alert_id": identifier, "rule": rule.name,
            "kind": rule.kind.value, "severity": rule.severity.value, "status": "open", "raised_at": _iso(now),
            "updated_at": _iso(now), "message": evaluation.message,
            "value": evaluation.value if evaluation.value is not None else Decimal(0),
            "threshold": rule.threshold, "runbook_url": runbook_anchor(rule.kind),
        })
        self._alerts.put_item(Item=item)
        if self.config.topic_arn:
            self._sns.publish(
                TopicArn=self.config.topic_arn, Subject=f"[{rule.severity.value}] DataForge alert: {rule.name}"[:100],
                Message=json.dumps({k: str(v) for k, v in item.items() if k not in ("pk", "sk")}),
            )
        logger.warning("alert raised", extra={"alert_id": identifier, "rule": rule.name, "detail": evaluation.message})
        return identifier

    def _refresh(self, current: dict[str, Any], evaluation: Evaluation, now: datetime) -> None:
        self._alerts.update_item(
            Key={"pk": current["pk"], "sk": current["sk"]},
            UpdateExpression="SET #m = :m, #v = :v, updated_at = :u",
            ExpressionAttributeNames={"#m": "message", "#v": "value"},
            ExpressionAttributeValues={":m": evaluation.message, ":u": _iso(now),
                                       ":v": evaluation.value if evaluation.value is not None else Decimal(0)},
        )

    def _resolve(self, current: dict[str, Any], now: datetime) -> None:
        self._alerts.update_item(
            Key={"pk": current["pk"], "sk": current["sk"]},
            UpdateExpression="SET #s = :s, resolved_at = :r, updated_at = :r",
            ExpressionAttributeNames={"#s": serving.ALERT_STATUS_ATTR},
            ExpressionAttributeValues={":s": "resolved", ":r": _iso(now)},
        )
