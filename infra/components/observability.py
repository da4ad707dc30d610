"""Alerts and observability: the alerts SNS topic and its subscriptions, the scheduled alert
evaluator (it also stops the API workgroup's Athena queries past the time limit), alarms (Lambda
errors/throttles, MSK consumer lag, Glue failures, DynamoDB throttles, API 5XX/latency, data
freshness) and one CloudWatch dashboard.

Every alarm watches a metric that exists: an AWS service's documented metric of a resource the stack
declares, or one a function emits in CloudWatch embedded metric format (EMF, printed to stdout, which
CloudWatch Logs turns into metrics; no ``cloudwatch:PutMetricData`` permission is involved).
tests/infra/test_observability.py and tests/rehearsal/test_alarms.py check both; each alarm has a
section in docs/runbooks/cloudwatch_alarms.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge import envvars
from dataforge.telemetry import FRESHNESS_METRIC, METRICS_NAMESPACE
from infra import iam
from infra.components.functions import Function, FunctionArgs
from infra.refs import FunctionRuntime, ServingRefs, StreamingRefs
from infra.settings import AlertsSettings

LANDING_SERVICE: Final = "msk-landing"
"""The MSK landing handler's Powertools service: Powertools adds it to every metric as the ``service``
dimension."""
EVALUATOR_SCHEDULE: Final = "rate(1 minute)"
EVALUATOR_ROLE: Final = "alert-evaluator"
FRESHNESS_ALARM: Final = "data-freshness"
"""The data-freshness alarm's role: the alarm the FIS experiment templates stop on (infra.components.chaos)."""


@dataclass(frozen=True, slots=True)
class Alarm:
    """One CloudWatch metric alarm; its actions are the alerts topic."""

    role: str  # the alarm's name after the stack's base name; docs/runbooks/cloudwatch_alarms.md has its section
    description: pulumi.Input[str]
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    threshold: float
    statistic: str = "Sum"
    extended: str | None = None  # a percentile statistic ("p99") instead of ``statistic``
    comparison: str = "GreaterThanOrEqualToThreshold"
    periods: int = 1
    period: int = 300
    missing: str = "notBreaching"


@dataclass(frozen=True, slots=True)
class Watched:
    """What the alarms watch besides the serving tables and the stream."""

    lambda_functions: Mapping[str, pulumi.Input[str]]  # function name by role ("msk-landing"): names its alarms
    glue_job_names: Sequence[pulumi.Input[str]]
    consumer_group: str  # the landing function's MSK consumer group
    api_name: pulumi.Input[str]
    landing_function: pulumi.Input[str]  # the MSK landing function's name (it emits the freshness metric)


@dataclass(frozen=True, slots=True)
class ObservabilityArgs:
    base_name: str
    env: str
    region: str
    settings: AlertsSettings
    runtime: FunctionRuntime  # the alert evaluator's code and environment
    serving: ServingRefs
    streaming: StreamingRefs
    watched: Watched
    query_timeout_seconds: int  # the evaluator stops the API workgroup's queries running longer
    https_endpoint: pulumi.Input[str] | None = None  # the on-call endpoint (a secret)


def freshness_dimensions(landing_function: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The dimensions the landing handler's EMF gives the freshness metric: Powertools' ``service`` and
    the ``FunctionName`` default dimension ``lambdas.common.observability.metrics`` sets from Lambda's
    ``AWS_LAMBDA_FUNCTION_NAME``, which keeps two stacks in one account apart. An alarm matches a
    metric only on exactly its dimensions (CloudWatch User Guide, "Dimensions")."""
    return {"service": LANDING_SERVICE, "FunctionName": landing_function}


class Observability(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    evaluator_function_name: pulumi.Output[str]
    alarm_arns: dict[str, pulumi.Output[str]]  # by role ("data-freshness"): the FIS templates' stop condition

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:observability:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        alerts, runtime, watched = args.settings, args.runtime, args.watched
        metrics_table, alerts_table, kafka = args.serving.metrics, args.serving.alerts, args.streaming
        topic = aws.sns.Topic(f"{name}-alerts", name=f"{args.base_name}-alerts", kms_master_key_id=runtime.kms_key_arn,
                              opts=child)
        for index, email in enumerate(alerts.emails):
            aws.sns.TopicSubscription(f"{name}-email-{index}", topic=topic.arn, protocol="email", endpoint=email,
                                      opts=child)
        if args.https_endpoint is not None:
            aws.sns.TopicSubscription(f"{name}-oncall", topic=topic.arn, protocol="https",
                                      endpoint=args.https_endpoint, endpoint_auto_confirms=True, opts=child)
        self.topic_arn = topic.arn

        evaluator = Function(f"{name}-alert-evaluator", FunctionArgs(
            function_name=f"{args.base_name}-alert-evaluator", handler="lambdas.alert_evaluator.handler.handler",
            code=runtime.code_of("alert_evaluator"), layers=[runtime.core_layer_arn],
            environment={**runtime.environment, envvars.METRICS_TABLE: metrics_table.name,
                         envvars.ALERTS_TABLE: alerts_table.name, envvars.ALERTS_TOPIC_ARN: topic.arn,
                         envvars.ALERT_RULES: alerts.rules_json, envvars.ATHENA_WORKGROUP: args.serving.workgroup.name,
                         envvars.QUERY_TIMEOUT_SECONDS: str(args.query_timeout_seconds)},
            statements=[
                iam.allow(["dynamodb:GetItem", "dynamodb:Query"], [metrics_table.arn], sid="ReadMetrics"),
                iam.allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                          [alerts_table.arn, pulumi.Output.concat(alerts_table.arn, "/index/*")],
                          sid="WriteAlerts"),
                iam.allow(["sns:Publish"], [topic.arn], sid="PublishAlerts"),
                iam.allow(["athena:ListQueryExecutions", "athena:BatchGetQueryExecution", "athena:StopQueryExecution"],
                          [args.serving.workgroup.arn], sid="StopOverdueQueries"),
            ],
            log_retention_days=runtime.log_retention_days, kms_key_arn=runtime.kms_key_arn, memory_mb=256,
            timeout_seconds=60, description="evaluates alert rules, writes alerts, publishes to SNS"), opts=child)
        schedule = aws.cloudwatch.EventRule(f"{name}-evaluator-schedule", name=f"{args.base_name}-alert-evaluator",
                                            schedule_expression=EVALUATOR_SCHEDULE, opts=child)
        # The rule's ARN names the account, so SourceArn alone binds the permission to this rule.
        invoke = aws.lambda_.Permission(f"{name}-evaluator-invoke", action="lambda:InvokeFunction",
                                        function=evaluator.name, principal="events.amazonaws.com",
                                        source_arn=schedule.arn, opts=child)
        aws.cloudwatch.EventTarget(f"{name}-evaluator-target", rule=schedule.name, arn=evaluator.arn,
                                   opts=pulumi.ResourceOptions(parent=self, depends_on=[invoke]))
        self.evaluator_function_name = evaluator.name

        actions = [topic.arn]
        functions = {**watched.lambda_functions, EVALUATOR_ROLE: evaluator.name}
        # A function's alarms are named after its role, so adding or removing a function renames no other alarm.
        alarms = [
            *(alarm for role, function_name in functions.items()
              for alarm in (
                  Alarm(f"lambda-{role}-errors", pulumi.Output.concat("Lambda errors of ", function_name),
                        "AWS/Lambda", "Errors", {"FunctionName": function_name}, alerts.lambda_error_threshold),
                  Alarm(f"lambda-{role}-throttles", pulumi.Output.concat("Lambda throttles of ", function_name),
                        "AWS/Lambda", "Throttles", {"FunctionName": function_name}, 1))),
            Alarm("msk-consumer-lag", "MSK landing consumer lag", "AWS/Kafka", "MaxOffsetLag",
                  {"Cluster Name": kafka.cluster_name, "Consumer Group": watched.consumer_group, "Topic": kafka.topic},
                  alerts.consumer_lag_threshold, statistic="Maximum", periods=3),
            # DynamoDB publishes ThrottledRequests per TableName *and* Operation only; the table-level
            # throttle metrics are ReadThrottleEvents and WriteThrottleEvents (dimension TableName; the
            # table's own events, not its indexes'). DynamoDB Developer Guide, "DynamoDB Metrics and
            # dimensions". Alarms on AWS/DynamoDB always keep their state on missing data.
            *(Alarm(f"dynamodb-{role}-{kind.lower()}-throttles",
                    f"DynamoDB {role} table {kind.lower()} throttle events", "AWS/DynamoDB", f"{kind}ThrottleEvents",
                    {"TableName": table}, 1)
              for role, table in (("metrics", metrics_table.name), ("alerts", alerts_table.name))
              for kind in ("Read", "Write")),
            Alarm("api-5xx", "API 5XX errors", "AWS/ApiGateway", "5XXError", {"ApiName": watched.api_name},
                  alerts.api_5xx_threshold),
            Alarm("api-latency-p99", "API p99 latency", "AWS/ApiGateway", "Latency", {"ApiName": watched.api_name},
                  alerts.api_latency_p99_ms, extended="p99", periods=3),
            # The landing handler emits the lag once per MSK batch, so the metric exists only while events
            # flow. A quiet stream is not stale data: missing periods count as within the threshold
            # ("notBreaching", CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing
            # data"). A stalled consumer with events waiting is the msk-consumer-lag alarm's and the
            # Lambda errors alarms' to catch (docs/runbooks/cloudwatch_alarms.md, data-freshness).
            Alarm(FRESHNESS_ALARM, "newest landed event older than the freshness threshold", METRICS_NAMESPACE,
                  FRESHNESS_METRIC, freshness_dimensions(watched.landing_function),
                  alerts.freshness_minutes * 60, statistic="Maximum", periods=2),
        ]
        self.alarm_arns = {}
        for alarm in alarms:
            self.alarm_arns[alarm.role] = aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm.role}", name=f"{args.base_name}-{alarm.role}", alarm_description=alarm.description,
                namespace=alarm.namespace, metric_name=alarm.metric, dimensions=dict(alarm.dimensions),
                statistic=None if alarm.extended else alarm.statistic, extended_statistic=alarm.extended,
                period=alarm.period, evaluation_periods=alarm.periods, threshold=alarm.threshold,
                comparison_operator=alarm.comparison, treat_missing_data=alarm.missing, alarm_actions=actions,
                ok_actions=actions, opts=child).arn
        glue_failures = aws.cloudwatch.EventRule(
            f"{name}-glue-failures", name=f"{args.base_name}-glue-failures",
            event_pattern=pulumi.Output.json_dumps({
                "source": ["aws.glue"], "detail-type": ["Glue Job State Change"],
                "detail": {"state": ["FAILED", "TIMEOUT", "ERROR"], "jobName": list(watched.glue_job_names)}}),
            opts=child)
        # Who may publish: this stack's alarms and its Glue-failure rule, each bound to its source
        # (aws:SourceArn, and aws:SourceAccount for CloudWatch), as the SNS Developer Guide's access
        # policy cases and the EventBridge User Guide's "Amazon SNS permissions" show.
        topic_policy = aws.sns.TopicPolicy(f"{name}-alerts-policy", arn=topic.arn, policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17", "Statement": [
                {"Sid": "StackAlarms", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": "sns:Publish", "Resource": topic.arn,
                 "Condition": iam.confused_deputy(iam.account_of(topic.arn), iam.arn_like(
                     topic.arn, "cloudwatch", f"alarm:{args.base_name}-*"))},
                {"Sid": "GlueFailureEvents", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                 "Action": "sns:Publish", "Resource": topic.arn,
                 "Condition": {"ArnEquals": {"aws:SourceArn": glue_failures.arn}}},
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
                 "Resource": topic.arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]}), opts=child)
        aws.cloudwatch.EventTarget(f"{name}-glue-failures-target", rule=glue_failures.name, arn=topic.arn,
                                   opts=pulumi.ResourceOptions(parent=self, depends_on=[topic_policy]))

        widgets = [
            {"type": "metric", "width": 12, "height": 6, "properties": {
                "title": "Lambda errors", "region": args.region, "stat": "Sum", "period": 300,
                "metrics": [["AWS/Lambda", "Errors", "FunctionName", fn] for fn in functions.values()]}},
            {"type": "metric", "width": 12, "height": 6, "properties": {
                "title": "MSK consumer lag", "region": args.region, "stat": "Maximum", "period": 60,
                "metrics": [["AWS/Kafka", "MaxOffsetLag", "Cluster Name", kafka.cluster_name, "Consumer Group",
                             watched.consumer_group, "Topic", kafka.topic]]}},
            {"type": "metric", "width": 12, "height": 6, "properties": {
                "title": "API", "region": args.region, "period": 60,
                "metrics": [["AWS/ApiGateway", "5XXError", "ApiName", watched.api_name, {"stat": "Sum"}],
                            ["AWS/ApiGateway", "Latency", "ApiName", watched.api_name, {"stat": "p99"}]]}},
            {"type": "metric", "width": 12, "height": 6, "properties": {
                "title": "Data freshness (s)", "region": args.region, "stat": "Maximum", "period": 60,
                "metrics": [[METRICS_NAMESPACE, FRESHNESS_METRIC,
                             *(part for item in freshness_dimensions(watched.landing_function).items()
                               for part in item)]]}},
        ]
        board = aws.cloudwatch.Dashboard(f"{name}-dashboard", dashboard_name=f"{args.base_name}-overview",
                                         dashboard_body=pulumi.Output.json_dumps({"widgets": widgets}), opts=child)
        self.dashboard_name = board.dashboard_name
        self.register_outputs({"topic_arn": self.topic_arn, "dashboard": self.dashboard_name})
