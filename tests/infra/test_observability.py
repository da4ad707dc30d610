"""Every CloudWatch alarm and dashboard widget of every stack watches a metric that exists.

AWS services publish a fixed set of metrics per resource, each under documented dimension sets; an
alarm matches a metric only on exactly its namespace, name and dimensions (CloudWatch User Guide,
"Metrics concepts": each combination of dimensions is a separate metric). An alarm on anything else
sits in INSUFFICIENT_DATA or, worse, treats the silence as it is told to. ``AWS_METRICS`` is the part
of each service's published list the stacks use, kept as data with its source; the dimension values
must name resources the stack declares. Custom metrics (namespace ``DataForge``) are checked against
what the functions print when rehearsed (tests/rehearsal/test_alarms.py); here only their missing-data
treatment is. The runbook has one section per alarm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.plan import Rendered

ALARM: Final = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD: Final = "aws:cloudwatch/dashboard:Dashboard"
RUNBOOK: Final = Path(__file__).resolve().parents[2] / "docs" / "runbooks" / "cloudwatch_alarms.md"


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    """What one AWS namespace publishes: metric names and the dimension sets each is published under."""

    source: str
    metrics: frozenset[str]
    dimension_sets: tuple[frozenset[str], ...]


AWS_METRICS: Final[Mapping[str, ServiceMetrics]] = {
    "AWS/Lambda": ServiceMetrics(
        "AWS Lambda Developer Guide, 'Types of metrics for Lambda functions' (invocation and performance "
        "metrics; dimension FunctionName)",
        frozenset({"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions", "DeadLetterErrors",
                   "DestinationDeliveryFailures", "OffsetLag"}),
        (frozenset({"FunctionName"}),)),
    "AWS/Kafka": ServiceMetrics(
        "Amazon MSK Developer Guide, 'Monitor consumer lags' and 'Monitor serverless clusters' (MaxOffsetLag, "
        "SumOffsetLag, EstimatedMaxTimeLag per Cluster Name, Consumer Group, Topic)",
        frozenset({"MaxOffsetLag", "SumOffsetLag", "EstimatedMaxTimeLag"}),
        (frozenset({"Cluster Name", "Consumer Group", "Topic"}),)),
    "AWS/ApiGateway": ServiceMetrics(
        "Amazon API Gateway Developer Guide, 'Amazon API Gateway dimensions and metrics' (REST APIs: 4XXError, "
        "5XXError, CacheHitCount, CacheMissCount, Count, IntegrationLatency, Latency; per ApiName or "
        "ApiName, Stage)",
        frozenset({"4XXError", "5XXError", "CacheHitCount", "CacheMissCount", "Count", "IntegrationLatency",
                   "Latency"}),
        (frozenset({"ApiName"}), frozenset({"ApiName", "Stage"}))),
    "AWS/DynamoDB": ServiceMetrics(
        "Amazon DynamoDB Developer Guide, 'DynamoDB Metrics and dimensions': ReadThrottleEvents, "
        "WriteThrottleEvents, ConsumedRead/WriteCapacityUnits per TableName; ThrottledRequests, SystemErrors, "
        "SuccessfulRequestLatency per TableName and Operation only",
        frozenset({"ReadThrottleEvents", "WriteThrottleEvents", "ConsumedReadCapacityUnits",
                   "ConsumedWriteCapacityUnits"}),
        (frozenset({"TableName"}),)),
}
AWS_METRICS_PER_OPERATION: Final = {("AWS/DynamoDB", m) for m in
                                    ("ThrottledRequests", "SystemErrors", "SuccessfulRequestLatency")}
DYNAMODB_OPERATIONS: Final = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                                        "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})


def _values(rendered: Rendered, type_token: str, read: Callable[[Mapping[str, Any]], Any]) -> set[str]:
    found: set[str] = set()
    for resource in rendered.of_type(type_token):
        value = read(resource.inputs)
        found.update(value if isinstance(value, list) else [value] if value else [])
    return {str(v) for v in found}


def declared(rendered: Rendered, dimension: str) -> set[str]:
    """The values a dimension can take for the resources ``rendered`` declares."""
    mapping = "aws:lambda/eventSourceMapping:EventSourceMapping"
    readers: dict[str, Callable[[], set[str]]] = {
        "FunctionName": lambda: _values(rendered, "aws:lambda/function:Function", lambda i: i.get("name")),
        "Cluster Name": lambda: _values(rendered, "aws:msk/serverlessCluster:ServerlessCluster",
                                        lambda i: i.get("clusterName"))
        | _values(rendered, "aws:msk/cluster:Cluster", lambda i: i.get("clusterName")),
        "Consumer Group": lambda: _values(rendered, mapping, lambda i: (
            i.get("amazonManagedKafkaEventSourceConfig") or {}).get("consumerGroupId")),
        "Topic": lambda: _values(rendered, mapping, lambda i: i.get("topics")),
        "ApiName": lambda: _values(rendered, "aws:apigateway/restApi:RestApi", lambda i: i.get("name")),
        "Stage": lambda: _values(rendered, "aws:apigateway/stage:Stage", lambda i: i.get("stageName")),
        "TableName": lambda: _values(rendered, "aws:dynamodb/table:Table", lambda i: i.get("name")),
        "Operation": lambda: set(DYNAMODB_OPERATIONS),
    }
    return readers[dimension]() if dimension in readers else set()


def aws_metric_problem(rendered: Rendered, namespace: str, name: str, dimensions: Mapping[str, str]) -> str | None:
    """Why no AWS service publishes ``namespace``/``name`` with ``dimensions`` for this stack (None: it does)."""
    service = AWS_METRICS.get(namespace)
    if service is None:
        return f"{namespace} is not a namespace this test knows (add it to AWS_METRICS with its source)"
    if (namespace, name) in AWS_METRICS_PER_OPERATION:
        if set(dimensions) != {"TableName", "Operation"}:
            return f"{namespace} publishes {name} per TableName and Operation only, not {sorted(dimensions)}"
    elif name not in service.metrics:
        return f"{namespace} publishes no {name} ({service.source})"
    elif frozenset(dimensions) not in service.dimension_sets:
        return f"{namespace} publishes {name} under {[sorted(s) for s in service.dimension_sets]}, " \
               f"not {sorted(dimensions)} ({service.source})"
    for key, value in dimensions.items():
        if value not in declared(rendered, key):
            return f"{key}={value!r} names no resource the stack declares ({sorted(declared(rendered, key))})"
    return None


def alarms(rendered: Rendered) -> list[Mapping[str, Any]]:
    return [r.inputs for r in rendered.of_type(ALARM)]


def dashboard_metrics(rendered: Rendered) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Every metric of every widget of every dashboard: (namespace, name, dimensions)."""
    for board in rendered.of_type(DASHBOARD):
        for widget in json.loads(board.inputs["dashboardBody"])["widgets"]:
            for row in (widget.get("properties") or {}).get("metrics") or []:
                parts = [part for part in row if not isinstance(part, dict)]
                assert not {".", ".."} & set(parts), f"shorthand in {row}: spell the metric out"
                namespace, name, *pairs = (str(p) for p in parts)
                assert len(pairs) % 2 == 0, f"dimension without a value in {row}"
                yield namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))


def base_name(rendered: Rendered) -> str:
    """The stack's resource-name prefix (``<prefix>-<env>``), read from the alerts topic's name."""
    (topic,) = [r for r in rendered.of_type("aws:sns/topic:Topic") if str(r.inputs.get("name")).endswith("-alerts")]
    return str(topic.inputs["name"]).removesuffix("-alerts")


def runbook_section(role: str) -> str:
    """The runbook section of an alarm: its role, with a Lambda alarm's function role as ``<function>``."""
    return re.sub(r"^lambda-.+-(errors|throttles)$", r"lambda-<function>-\1", role)


def runbook_sections() -> set[str]:
    return {m.group(1) for m in re.finditer(r"^## `([^`]+)`", RUNBOOK.read_text(), flags=re.MULTILINE)}


def test_every_alarm_on_an_aws_namespace_watches_a_published_metric_of_a_declared_resource(stack: Rendered) -> None:
    problems = [f"{a['name']}: {problem}" for a in alarms(stack) if str(a["namespace"]).startswith("AWS/")
                and (problem := aws_metric_problem(stack, a["namespace"], a["metricName"], a.get("dimensions") or {}))]
    assert alarms(stack)
    assert problems == []


def test_an_alarm_on_a_per_invocation_metric_does_not_page_on_a_quiet_period(stack: Rendered) -> None:
    """The custom metrics exist only while the functions are invoked: silence is not a breach."""
    breaching = [a["name"] for a in alarms(stack) if not str(a["namespace"]).startswith("AWS/")
                 and a.get("treatMissingData") == "breaching"]
    assert breaching == []


def test_every_alarm_notifies_someone(stack: Rendered) -> None:
    assert [a["name"] for a in alarms(stack) if not a.get("alarmActions")] == []


def test_every_dashboard_metric_on_an_aws_namespace_is_published_for_a_declared_resource(stack: Rendered) -> None:
    rows = list(dashboard_metrics(stack))
    assert rows
    problems = [f"{row}: {problem}" for row in rows if row[0].startswith("AWS/")
                and (problem := aws_metric_problem(stack, *row))]
    assert problems == []


def test_the_dashboard_shows_what_the_alarms_watch(stack: Rendered) -> None:
    shown = {(ns, name) for ns, name, _ in dashboard_metrics(stack)}
    watched = {(a["namespace"], a["metricName"]) for a in alarms(stack)}
    assert {m for m in watched if m[0] in ("AWS/Kafka", "AWS/ApiGateway") or not m[0].startswith("AWS/")} <= shown


def test_the_runbook_has_one_section_per_alarm(stack: Rendered) -> None:
    prefix = f"{base_name(stack)}-"
    roles = {runbook_section(str(a["name"]).removeprefix(prefix)) for a in alarms(stack)}
    assert all(str(a["name"]).startswith(prefix) for a in alarms(stack))
    sections = runbook_sections()
    assert roles - sections == set(), "alarms without a runbook section"
    assert sections - roles == set(), "runbook sections for alarms the stack does not declare"


def test_the_checks_catch_a_metric_nobody_publishes(stack: Rendered) -> None:
    table = next(iter(declared(stack, "TableName")))
    assert aws_metric_problem(stack, "AWS/DynamoDB", "ThrottledRequests", {"TableName": table})
    assert aws_metric_problem(stack, "AWS/DynamoDB", "ReadThrottleEvents", {"TableName": "not-declared"})
    assert aws_metric_problem(stack, "AWS/Lambda", "Errors", {"FunctionName": "x", "Resource": "y"})
    assert aws_metric_problem(stack, "AWS/DynamoDB", "ReadThrottleEvents", {"TableName": table}) is None


INCIDENT_RUNBOOK: Final = RUNBOOK.with_name("incident_response.md")


def declared_rule_kinds(rendered: Rendered) -> set[str]:
    """The kinds of the alert rules the stack's evaluator runs (its ``DATAFORGE_ALERT_RULES``)."""
    from dataforge import envvars
    from dataforge.alerts import parse_rules

    kinds: set[str] = set()
    for function in rendered.of_type("aws:lambda/function:Function"):
        variables = (function.inputs.get("environment") or {}).get("variables") or {}
        if envvars.ALERT_RULES in variables:
            kinds.update(rule.kind.value for rule in parse_rules(str(variables[envvars.ALERT_RULES])))
    return kinds


def test_the_incident_runbook_has_one_section_per_alert_rule(stack: Rendered) -> None:
    """The dashboard links an alert to ``incident_response.md#<rule kind>`` (``dataforge.alerts.runbook_anchor``)."""
    kinds = declared_rule_kinds(stack)
    sections = {m.group(1) for m in re.finditer(r"^## ([a-z_]+)$", INCIDENT_RUNBOOK.read_text(), flags=re.MULTILINE)}
    assert kinds, "the stack's evaluator runs alert rules"
    assert kinds - sections == set(), "alert rules without a runbook section"
    assert sections - kinds == set(), "runbook sections for alert rules the stack does not declare"
