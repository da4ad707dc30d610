"""Alert evaluator (scheduled Lambda, every minute): metrics -> alerts in DynamoDB + SNS, and the API's
Athena queries past the time limit stopped.

Thin: settings once at cold start, AWS clients created on first use, the work in
``lambdas.common.alerting`` and ``lambdas.common.query_timeouts``. A storage failure raises so the
schedule's retry runs it again; a run is idempotent (one alert per rule and raising minute;
refresh/resolve are updates; stopping a stopped query changes nothing). Both parts run even when the
other fails, and the invocation then fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dataforge import aws
from dataforge.alerts import parse_rules
from dataforge.settings import Settings
from lambdas.common.alerting import AlertEvaluator, AlertingConfig, RunResult
from lambdas.common.errors import QueryStopError
from lambdas.common.lazy import Lazy
from lambdas.common.observability import logger as make_logger
from lambdas.common.observability import metrics as make_metrics
from lambdas.common.query_timeouts import StopResult, stop_overdue_queries

SERVICE = "alert-evaluator"
logger = make_logger(SERVICE)
metrics = make_metrics(SERVICE)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
QueryStopper = Callable[[], StopResult | None]  # None: no workgroup to watch (the embedded platform)

def build_evaluator(settings: Settings | None = None,
                    clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> AlertEvaluator:
    settings = settings or Settings.from_env()
    config = AlertingConfig(
        metrics_table=settings.require("metrics_table"), alerts_table=settings.require("alerts_table"),
        topic_arn=settings.alerts_topic_arn, rules=parse_rules(settings.alert_rules),
    )
    session = boto3.session.Session(region_name=settings.region)
    ddb = aws.resource("dynamodb", session=session, endpoint_url=settings.endpoint_url, region=settings.region)
    sns = aws.client("sns", session=session, endpoint_url=settings.endpoint_url, region=settings.region)
    return AlertEvaluator(config, metrics=ddb.Table(config.metrics_table), alerts=ddb.Table(config.alerts_table),
                          sns=sns, clock=clock)


def build_stopper(settings: Settings | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                  client: Any = None) -> QueryStopper:
    """Stops the overdue queries of the API's workgroup (``DATAFORGE_ATHENA_WORKGROUP``, limit
    ``DATAFORGE_QUERY_TIMEOUT_SECONDS``); does nothing without a workgroup. ``client``: an Athena client
    (default: made on first use)."""
    settings = settings or Settings.from_env()
    workgroup = settings.athena_workgroup
    clients: list[Any] = [client] if client is not None else []

    def stop() -> StopResult | None:
        if not workgroup:
            return None
        if not clients:
            clients.append(aws.client("athena", endpoint_url=settings.endpoint_url, region=settings.region))
        return stop_overdue_queries(clients[0], workgroup=workgroup, timeout_seconds=settings.query_timeout_seconds,
                                    now=clock())

    return stop


def make_handler(get_evaluator: Callable[[], AlertEvaluator],
                 get_stopper: Callable[[], QueryStopper] = lambda: lambda: None) -> Handler:
    @metrics.log_metrics(raise_on_empty_metrics=False)
    @logger.inject_lambda_context(clear_state=True)
    def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        stop_failure: QueryStopError | None = None
        stopped: StopResult | None = None
        try:
            stopped = get_stopper()()
        except QueryStopError as exc:  # the alerts still run; the invocation fails after them
            logger.exception("stopping overdue queries failed")
            stop_failure = exc
        if stopped is not None:
            metrics.add_metric(name="OverdueQueriesStopped", unit=MetricUnit.Count, value=len(stopped.stopped))
        result: RunResult = get_evaluator().run()
        metrics.add_metric(name="AlertsRaised", unit=MetricUnit.Count, value=len(result.raised))
        metrics.add_metric(name="AlertsResolved", unit=MetricUnit.Count, value=len(result.resolved))
        answer = result.as_dict()
        if stopped is not None:
            answer["queries"] = stopped.as_dict()
        logger.info("alerts evaluated", extra=answer)
        if stop_failure is not None:
            raise stop_failure
        return answer

    return _handler  # type: ignore[no-any-return]


handler: Handler = make_handler(Lazy(build_evaluator), Lazy(build_stopper))
