"""Every alarm and dashboard metric on a custom namespace is one a deployed function emits.

The rehearsal runs each Lambda function from its artifacts with the events of its triggers and keeps
the CloudWatch embedded-metric-format lines it prints (``Report.emitted``). CloudWatch Logs extracts
exactly those metrics, with exactly those dimensions; an alarm whose namespace, name and dimensions
match none of them watches a metric that never exists. Metrics of AWS services are checked against
their documented lists in tests/infra/test_observability.py (``AWS_METRICS``), reused here.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

import tests.infra.test_observability as catalog
from devkit.rehearse.lambdas import EmittedMetric, emitted_metrics
from devkit.rehearse.run import Report
from infra.plan import Rendered

pytestmark = pytest.mark.integration




def _emitted(report: Report) -> list[EmittedMetric]:
    return [metric for metrics in report.emitted.values() for metric in metrics]


def _problem(rendered: Rendered, report: Report, namespace: str, name: str,
             dimensions: Mapping[str, str]) -> str | None:
    if namespace.startswith("AWS/"):
        return catalog.aws_metric_problem(rendered, namespace, name, dimensions)
    if any(m.matches(namespace, name, dimensions) for m in _emitted(report)):
        return None
    same_name = [f"{m.namespace}/{m.name} {dict(m.dimensions)}" for m in _emitted(report) if m.name == name]
    return f"no rehearsed function emits {namespace}/{name} with {dict(dimensions)} (emitted: {same_name or 'none'})"


def test_every_function_emits_its_metrics(rendered: Rendered, report: Report) -> None:
    assert report.ok, "\n".join(report.lines())
    declared = {str(f.inputs["name"]) for f in rendered.of_type("aws:lambda/function:Function")}
    assert set(report.emitted) == declared
    # The API and the deploy-time kafka-topics function emit no custom metrics (their alarms are AWS/Lambda's).
    silent = [name for name, metrics in report.emitted.items()
              if not metrics and not name.endswith(("-api", "-kafka-topics"))]
    assert silent == []


def test_every_alarm_watches_an_emitted_or_published_metric(rendered: Rendered, report: Report) -> None:
    problems = [f"{a['name']}: {problem}" for a in catalog.alarms(rendered)
                if (problem := _problem(rendered, report, a["namespace"], a["metricName"], a.get("dimensions") or {}))]
    assert catalog.alarms(rendered)
    assert problems == []


def test_every_dashboard_metric_is_emitted_or_published(rendered: Rendered, report: Report) -> None:
    rows = list(catalog.dashboard_metrics(rendered))
    problems = [f"{row}: {problem}" for row in rows if (problem := _problem(rendered, report, *row))]
    assert rows
    assert problems == []


def test_the_freshness_alarm_watches_the_landing_functions_lag(rendered: Rendered, report: Report) -> None:
    (alarm,) = [a for a in catalog.alarms(rendered) if str(a["name"]).endswith("-data-freshness")]
    (landing,) = [name for name in report.emitted if name.endswith("-msk-landing")]
    assert any(m.matches(alarm["namespace"], alarm["metricName"], alarm["dimensions"]) for m in report.emitted[landing])
    assert alarm["treatMissingData"] == "notBreaching"


def test_an_alarm_on_a_metric_nothing_emits_is_caught(rendered: Rendered, report: Report) -> None:
    assert _problem(rendered, report, "DataForge", "FreshnessLagSeconds", {"Environment": rendered.stack})
    assert _problem(rendered, report, "DataForge", "NoSuchMetric", {"service": "msk-landing"})


def test_emf_lines_are_read_as_cloudwatch_extracts_them() -> None:
    line = ('{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"DataForge","Dimensions":[["service"],'
            '["service","FunctionName"]],"Metrics":[{"Name":"RecordsIn","Unit":"Count"}]}]},'
            '"service":"msk-landing","FunctionName":"f","RecordsIn":[3]}')
    found = emitted_metrics(f"not json\n{{\"level\":\"INFO\"}}\n{line}\n")
    assert found == [EmittedMetric("DataForge", "RecordsIn", (("FunctionName", "f"), ("service", "msk-landing"))),
                     EmittedMetric("DataForge", "RecordsIn", (("service", "msk-landing"),))]
