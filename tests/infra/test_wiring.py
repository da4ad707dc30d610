"""The program wires every output into the runtimes, in every stack."""

from __future__ import annotations

import json
import re

import pytest

from dataforge import envvars, serving
from dataforge.lake import SupportBucket, Zone, bucket_name, glue_database
from dataforge.schemas import GOLD_DAILY_KPIS, QUARANTINE, RAW_EVENT, SILVER_TRANSACTIONS, glue_columns
from infra.artifacts import GLUE_JOBS
from infra.components.ingestion import MAX_POLLERS, MAX_RETRY_ATTEMPTS, MIN_POLLERS
from infra.plan import Rendered
from infra.plan.engine import ACCOUNT_ID
from infra.tagging import is_taggable

ENV_NAMES = {value for name, value in vars(envvars).items() if name.isupper() and isinstance(value, str)}


def bucket(r: Rendered, which: Zone | SupportBucket) -> str:
    """The stack's bucket for ``which``: named for the deploying account and region, in S3's account regional
    namespace (the mock account answers ``ACCOUNT_ID``; the stacks deploy to us-east-1)."""
    resource = r.by_name(f"lake-{which.value}-bucket").inputs
    name: str = resource["bucket"]
    assert name == f"{bucket_name('dataforge', r.stack, which)}-{ACCOUNT_ID}-us-east-1-an"
    assert resource["bucketNamespace"] == "account-regional"
    return name


def env_of(r: Rendered, function: str) -> dict[str, str]:
    variables: dict[str, str] = r.by_name(f"{function}-function").inputs["environment"]["variables"]
    return variables


def test_landing_lambda_writes_the_bronze_bucket_of_its_own_stack(stack: Rendered) -> None:
    env = env_of(stack, "ingestion-msk-landing")
    assert env[envvars.BRONZE_BUCKET] == bucket(stack, Zone.BRONZE)
    assert env[envvars.QUARANTINE_BUCKET] == bucket(stack, Zone.QUARANTINE)
    assert env[envvars.ENV] == stack.stack
    assert stack.stack in env[envvars.BRONZE_BUCKET]
    assert env[envvars.METRICS_TABLE] == stack.outputs["metrics_table"]  # ingest counts for the alerts


def test_msk_event_source_mapping_uses_config_and_has_an_on_failure_destination(stack: Rendered) -> None:
    mapping = stack.by_name("ingestion-msk-mapping").inputs
    cluster = next(r for r in stack.resources if r.name == "streaming-cluster")
    assert mapping["eventSourceArn"].startswith("arn:aws:kafka:")
    assert f"/{cluster.inputs['clusterName']}/" in mapping["eventSourceArn"]
    assert mapping["topics"] == ["transactions"]
    expected = {"dev": 100, "staging": 500, "prod": 1000}[stack.stack]
    assert mapping["batchSize"] == expected
    dlq = stack.by_name("ingestion-landing-dlq").inputs["name"]
    assert mapping["destinationConfig"]["onFailure"]["destinationArn"].endswith(f":{dlq}")
    landing = stack.by_name("ingestion-msk-landing-function").inputs["name"]
    assert mapping["functionName"].endswith(f":function:{landing}")


def test_msk_mapping_bounds_retries_and_waits_for_its_topic(stack: Rendered) -> None:
    """Lambda documents MaximumRetryAttempts and BisectBatchOnFunctionError for Kafka mappings in provisioned
    mode ("Configuring error handling controls for Kafka event sources"); a failed batch then goes to the
    on-failure destination. The mapping names the topic that the stack creates, so it is created after it: after
    the aws.msk.Topic on a provisioned cluster, after the kafka-topics function's Invocation on MSK Serverless."""
    mapping = stack.by_name("ingestion-msk-mapping")
    assert mapping.inputs["maximumRetryAttempts"] == MAX_RETRY_ATTEMPTS
    assert 0 <= MAX_RETRY_ATTEMPTS <= 10
    assert mapping.inputs["bisectBatchOnFunctionError"] is True
    assert mapping.inputs["provisionedPollerConfig"] == {"minimumPollers": MIN_POLLERS, "maximumPollers": MAX_POLLERS}
    assert mapping.inputs["destinationConfig"]["onFailure"]["destinationArn"].startswith("arn:aws:sqs:")
    topics = [r for r in stack.resources if r.type == "aws:msk/topic:Topic"]
    invocations = [json.loads(r.inputs["input"]) | {"address": f"{r.type}::{r.name}"}
                   for r in stack.resources if r.type == "aws:lambda/invocation:Invocation"]
    creators = [f"{t.type}::{t.name}" for t in topics if t.inputs["name"] in mapping.inputs["topics"]] + [
        i["address"] for i in invocations if {t["name"] for t in i["topics"]} & set(mapping.inputs["topics"])]
    assert creators == [d for d in mapping.dependencies
                        if d.startswith(("aws:msk/topic:Topic::", "aws:lambda/invocation:Invocation::"))] != []


def test_batch_landing_is_notified_by_the_landing_bucket(stack: Rendered) -> None:
    notification = stack.by_name("ingestion-landing-notification").inputs
    assert notification["bucket"] == bucket(stack, Zone.LANDING)
    target = notification["lambdaFunctions"][0]
    assert target["lambdaFunctionArn"].endswith(":" + stack.by_name("ingestion-batch-landing-function").inputs["name"])
    assert "aws:lambda/permission:Permission::ingestion-batch-landing-s3" in stack.by_name(
        "ingestion-landing-notification").dependencies


def test_every_glue_job_runs_an_uploaded_script_and_the_packaged_core(stack: Rendered) -> None:
    artifacts = bucket(stack, SupportBucket.ARTIFACTS)
    objects = stack.of_type("aws:s3/bucketObject:BucketObject")
    uploaded = {f"s3://{o.inputs['bucket']}/{o.inputs['key']}" for o in objects}
    jobs = {j.inputs["name"]: j.inputs for j in stack.of_type("aws:glue/job:Job")}
    assert set(jobs) == {f"dataforge-{stack.stack}-{job.replace('_', '-')}" for job in GLUE_JOBS}
    for job in jobs.values():
        location = job["command"]["scriptLocation"]
        assert location in uploaded
        assert location.startswith(f"s3://{artifacts}/glue/scripts/")
        assert re.search(r"-[0-9a-f]{16}\.py$", location), "script keys carry a content hash"
        assert job["defaultArguments"]["--extra-py-files"] in uploaded
        assert job["glueVersion"] == "5.1"
        assert job["defaultArguments"][f"--{envvars.ENV}"] == stack.stack
    streaming = jobs[f"dataforge-{stack.stack}-streaming-enrichment"]
    assert streaming["command"]["name"] == "gluestreaming"
    brokers = streaming["defaultArguments"][f"--{envvars.KAFKA_BOOTSTRAP_SERVERS}"]
    assert brokers == stack.outputs["kafka_bootstrap_servers"]
    daily = jobs[f"dataforge-{stack.stack}-daily-aggregation"]
    assert daily["defaultArguments"][f"--{envvars.GOLD_BUCKET}"] == bucket(stack, Zone.GOLD)


def test_daily_workflow_chains_aggregation_and_export(stack: Rendered) -> None:
    start = stack.by_name("processing-daily-start").inputs
    export = stack.by_name("processing-daily-export").inputs
    assert start["workflowName"] == export["workflowName"] == f"dataforge-{stack.stack}-daily"
    assert start["actions"][0]["jobName"].endswith("daily-aggregation")
    assert export["predicate"]["conditions"][0]["jobName"].endswith("daily-aggregation")
    assert export["actions"][0]["jobName"].endswith("export-gold")


def test_api_env_names_the_tables_and_the_athena_workgroup(stack: Rendered) -> None:
    env = env_of(stack, "api-handler")
    tables = {t.name: t.inputs["name"] for t in stack.of_type("aws:dynamodb/table:Table")}
    assert env[envvars.METRICS_TABLE] == tables["serving-metrics"] == stack.outputs["metrics_table"]
    assert env[envvars.ALERTS_TABLE] == tables["serving-alerts"]
    workgroup = stack.by_name("serving-workgroup").inputs
    assert env[envvars.ATHENA_WORKGROUP] == workgroup["name"] == stack.outputs["athena_workgroup"]
    assert env[envvars.QUERY_ENGINE] == "athena"
    assert workgroup["configuration"]["enforceWorkgroupConfiguration"] is True
    assert workgroup["configuration"]["resultConfiguration"]["outputLocation"].startswith(
        f"s3://{bucket(stack, SupportBucket.ATHENA_RESULTS)}/")


def test_tables_follow_the_serving_key_design(stack: Rendered) -> None:
    alerts = stack.by_name("serving-alerts").inputs
    assert (alerts["hashKey"], alerts["rangeKey"]) == (serving.PK, serving.SK)
    index = alerts["globalSecondaryIndexes"][0]
    assert (index["name"], index["hashKey"], index["rangeKey"]) == (
        serving.ALERTS_STATUS_INDEX, serving.ALERT_STATUS_ATTR, serving.ALERT_RAISED_AT_ATTR)


def test_runtime_env_uses_only_contract_names(stack: Rendered) -> None:
    for function in stack.of_type("aws:lambda/function:Function"):
        names = set(function.inputs["environment"]["variables"])
        assert names <= ENV_NAMES, names - ENV_NAMES
    for job in stack.of_type("aws:glue/job:Job"):
        ours = {k[2:] for k in job.inputs["defaultArguments"] if k.startswith("--DATAFORGE_")}
        assert ours <= ENV_NAMES


def test_catalog_tables_come_from_the_contract_with_partition_projection(stack: Rendered) -> None:
    expected = {"bronze": RAW_EVENT, "quarantine": QUARANTINE, "silver": SILVER_TRANSACTIONS, "gold": GOLD_DAILY_KPIS}
    for zone, table in expected.items():
        glue = stack.by_name(f"catalog-{zone}-{table.name}").inputs
        assert glue["databaseName"] == glue_database("dataforge", stack.stack, Zone(zone))
        names = [c["name"] for c in glue["storageDescriptor"]["columns"]]
        assert names[: len(table.columns)] == [c["Name"] for c in glue_columns(table.columns)]
        assert glue["parameters"]["projection.enabled"] == "true"
        assert glue["parameters"]["storage.location.template"].startswith(
            f"s3://{bucket(stack, Zone(zone))}/")


def test_dashboard_gets_the_api_url_and_ecs_is_the_default(stack: Rendered) -> None:
    task = stack.by_name("dashboard-task").inputs
    import json

    container = json.loads(task["containerDefinitions"])[0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env[envvars.API_URL] == stack.outputs["api_url"]
    assert container["secrets"][0]["name"] == envvars.API_KEY
    group = stack.by_name("dashboard-targets").inputs
    assert group["stickiness"]["enabled"] is True
    assert stack.by_name("dashboard-https").inputs["protocol"] == "HTTPS"
    assert stack.outputs["dashboard_hosting"] == "ecs"


def test_tags_are_applied_centrally(stack: Rendered) -> None:
    taggable = [r for r in stack.resources if r.custom and is_taggable(r.type)]
    assert len(taggable) > 50
    for resource in taggable:
        assert resource.inputs["tags"]["environment"] == stack.stack, resource.address
    assert not is_taggable("aws:s3/bucketVersioning:BucketVersioning")


def test_s3_resources_are_the_unsuffixed_pulumi_aws_7_ones(stack: Rendered) -> None:
    assert not [r for r in stack.resources if r.type.startswith("aws:s3/") and re.search(r"V2$|v2$", r.type)]


def test_environment_differences_are_config_data(stacks: dict[str, Rendered]) -> None:
    assert stacks["dev"].of_type("aws:msk/serverlessCluster:ServerlessCluster")
    assert stacks["prod"].of_type("aws:msk/cluster:Cluster")
    assert stacks["prod"].by_name("streaming-cluster").inputs["numberOfBrokerNodes"] == 3
    assert all(r.protect for r in stacks["prod"].of_type("aws:s3/bucket:Bucket"))
    assert not any(r.protect for r in stacks["dev"].of_type("aws:s3/bucket:Bucket"))


@pytest.mark.parametrize("output", ["api_url", "dashboard_url", "kafka_bootstrap_servers", "athena_workgroup",
                                    "metrics_table", "alerts_table", "bronze_bucket", "glue_jobs", "alerts_topic_arn"])
def test_stack_outputs_name_what_users_need(stack: Rendered, output: str) -> None:
    assert stack.outputs[output]


def test_alert_evaluator_gets_valid_rules_and_its_tables(stack: Rendered) -> None:
    from dataforge.alerts import DEFAULT_RULES, parse_rules

    env = env_of(stack, "observability-alert-evaluator")
    assert parse_rules(env[envvars.ALERT_RULES]) == DEFAULT_RULES
    assert env[envvars.ALERTS_TABLE] == stack.outputs["alerts_table"]
    assert env[envvars.METRICS_TABLE] == stack.outputs["metrics_table"]


def test_batch_landing_is_notified_for_the_files_prefix_only(stack: Rendered) -> None:
    from dataforge.lake import LANDING_FILES_PREFIX

    notifications = [r for r in stack.resources if r.type.endswith("BucketNotification")]
    filters = [f.get("filterPrefix") for n in notifications for f in n.inputs.get("lambdaFunctions", [])]
    assert filters == [LANDING_FILES_PREFIX]


def _statements(r: Rendered, role_policy: str) -> dict[str, dict[str, object]]:
    import json

    doc = json.loads(r.by_name(role_policy).inputs["policy"])
    return {s.get("Sid", ""): s for s in doc["Statement"]}


def test_alert_evaluator_stops_overdue_queries_of_the_api_workgroup_only(stack: Rendered) -> None:
    evaluator, api = env_of(stack, "observability-alert-evaluator"), env_of(stack, "api-handler")
    assert evaluator[envvars.ATHENA_WORKGROUP] == api[envvars.ATHENA_WORKGROUP] == stack.outputs["athena_workgroup"]
    assert evaluator[envvars.QUERY_TIMEOUT_SECONDS] == api[envvars.QUERY_TIMEOUT_SECONDS] == "60"
    statements = _statements(stack, "observability-alert-evaluator-role-policy")
    stop = statements["StopOverdueQueries"]
    assert stop["Action"] == ["athena:BatchGetQueryExecution", "athena:ListQueryExecutions",
                              "athena:StopQueryExecution"]
    workgroup_arn = _statements(stack, "api-handler-role-policy")["Athena"]["Resource"]
    assert stop["Resource"] == workgroup_arn
    assert len(workgroup_arn) == 1  # type: ignore[arg-type]
    others = [s for sid, s in statements.items() if sid != "StopOverdueQueries"]
    assert not any("athena" in str(s["Action"]) for s in others)


def test_the_api_usage_plan_limits_the_rate_per_key(stack: Rendered) -> None:
    plans = stack.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert len(plans) == 1
    throttle = plans[0].inputs["throttleSettings"]
    assert throttle["rateLimit"] > 0
    assert throttle["burstLimit"] > 0
    assert stack.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
