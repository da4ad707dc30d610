"""Alert evaluator (scheduled Lambda): metrics -> alerts in DynamoDB + SNS.

Thin: settings once at cold start, AWS clients created on first use, the work in
``lambdas.common.alerting``. A storage failure raises so the schedule's retry runs it again; a run
is idempotent (one alert per rule and raising minute; refresh/resolve are updates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dataforge.alerts import parse_rules
from dataforge.settings import Settings
from lambdas.common.alerting import AlertEvaluator, AlertingConfig
from lambdas.common.observability import logger as make_logger
from lambdas.common.observability import metrics as make_metrics

SERVICE = "alert-evaluator"
logger = make_logger(SERVICE)
metrics = make_metrics(SERVICE)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_evaluator: AlertEvaluator | None = None


def build_evaluator(settings: Settings | None = None,
                    clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> AlertEvaluator:
    settings = settings or Settings.from_env()
    config = AlertingConfig(
        metrics_table=settings.require("metrics_table"), alerts_table=settings.require("alerts_table"),
        topic_arn=settings.alerts_topic_arn, rules=parse_rules(settings.alert_rules),
    )
    session = boto3.session.Session(region_name=settings.region)
    ddb = session.resource("dynamodb", endpoint_url=settings.endpoint_url, region_name=settings.region)
    sns = session.client("sns", endpoint_url=settings.endpoint_url, region_name=settings.region)
    return AlertEvaluator(config, metrics=ddb.Table(config.metrics_table), alerts=ddb.Table(config.alerts_table),
                          sns=sns, clock=clock)


def _default_evaluator() -> AlertEvaluator:
    global _evaluator
    if _evaluator is None:
        _evaluator = build_evaluator()
    return _evaluator


def make_handler(get_evaluator: Callable[[], AlertEvaluator]) -> Handler:
    @metrics.log_metrics(raise_on_empty_metrics=False)
    @logger.inject_lambda_context(clear_state=True)
    def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result = get_evaluator().run()
        metrics.add_metric(name="AlertsRaised", unit=MetricUnit.Count, value=len(result.raised))
        metrics.add_metric(name="AlertsResolved", unit=MetricUnit.Count, value=len(result.resolved))
        logger.info("alerts evaluated", extra=result.as_dict())
        return result.as_dict()

    return _handler  # type: ignore[no-any-return]


handler: Handler = make_handler(_default_evaluator)
