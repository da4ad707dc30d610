"""The DataForge Pulumi program: settings -> components -> stack outputs.

``main()`` is what ``pulumi up`` runs (``infra/__main__.py``) and what the offline renderer runs
under Pulumi's mock engine; there is no other code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_aws as aws

from dataforge import envvars
from dataforge.lake import SupportBucket, Zone
from dataforge.settings import KAFKA_AUTH_IAM
from infra import artifacts, chalice_config, iam, tagging
from infra.components.account import ApiGatewayAccount, ApiGatewayAccountArgs, caller, check_reserved_concurrency
from infra.components.api import API_FUNCTION, Api, ApiArgs
from infra.components.catalog import Catalog, CatalogArgs
from infra.components.chaos import Chaos, ChaosArgs, lambda_extension
from infra.components.dashboard import Dashboard, DashboardArgs
from infra.components.dns import AliasArgs, CertificateArgs, DashboardAlias, DashboardCertificate, hosted_zone
from infra.components.ingestion import Ingestion, IngestionArgs
from infra.components.lake import Lake, LakeArgs
from infra.components.network import Network, NetworkArgs, choose_zones
from infra.components.observability import FRESHNESS_ALARM, Observability, ObservabilityArgs, Watched
from infra.components.processing import Processing, ProcessingArgs, standard_jobs
from infra.components.serving import Serving, ServingArgs
from infra.components.streaming import Streaming, StreamingArgs, TopicsFunctionArgs
from infra.refs import CatalogRefs, FunctionRuntime, LakeRefs, ServingRefs, StreamingRefs
from infra.settings import NAMESPACE, StackSettings, load


def main(source_root: Path | None = None) -> None:
    """The program. ``source_root``: the checkout whose runtime code is packaged (default: this one)."""
    settings = load()
    tagging.register(settings.tags())
    build(settings, source_root)


def build(s: StackSettings, source_root: Path | None = None) -> None:
    """The stack: each component gets its settings and the references of the components it uses."""
    base = s.base
    bundle = artifacts.build_bundle(source_root)
    # What the stack asks of the account, before any resource: a refusal here fails `pulumi preview`.
    account = caller()
    zones = choose_zones(s.network.availability_zone_count, s.env)
    check_reserved_concurrency(s)
    zone = hosted_zone(s)

    network = Network("network", NetworkArgs(base_name=base, region=s.region, settings=s.network,
                                             availability_zones=zones,
                                             # the dashboard's load balancer, and its tasks' route to the API
                                             public_subnets=True, nat_gateways=True)).refs
    lake = Lake("lake", LakeArgs(name_prefix=s.name_prefix, env=s.env, region=s.region,
                                 account_id=account.account_id, settings=s.lake, protect=s.protect,
                                 bucket_names={which: s.bucket_name(which, account.account_id)
                                               for which in (*Zone, *SupportBucket)})).refs
    catalog = Catalog("catalog", CatalogArgs(name_prefix=s.name_prefix, env=s.env, lake=lake)).refs
    core_layer = _core_layer(base, bundle)
    platform = _platform_environment(s)
    streaming = Streaming("streaming", StreamingArgs(
        base_name=base, settings=s.streaming, network=network, kms_key_arn=lake.kms_key_arn,
        log_retention_days=s.log_retention_days, protect=s.protect,
        # serverless: the kafka-topics function creates the topics (built only for a stack that runs it)
        topics_function=TopicsFunctionArgs(
            code=bundle.functions["kafka_topics"], layer=artifacts.topics_layer(artifacts.ARM64, source_root),
            core_layer_arn=core_layer.arn, environment=platform) if s.streaming.mode == "serverless" else None)).refs
    serving = Serving("serving", ServingArgs(base_name=base, settings=s.serving, lake=lake, protect=s.protect)).refs

    ingestion = Ingestion("ingestion", IngestionArgs(
        base_name=base, settings=s.ingestion,
        runtime=_runtime(bundle.functions, core_layer, {**platform, **_landing_environment(lake, streaming)}, lake, s),
        lake=lake, streaming=streaming, serving=serving, network=network,
        fis_extension=(fis_extension := lambda_extension(s.chaos, lake[SupportBucket.ARTIFACTS].arn))))
    processing = Processing("processing", ProcessingArgs(
        base_name=base, settings=s.processing, jobs=standard_jobs(_glue_scripts(source_root)), core=bundle.core_zip,
        job_settings=_job_settings(platform, lake, streaming, serving), lake=lake, catalog=catalog,
        streaming=streaming, serving=serving, network=network, availability_zone=zones[0],
        log_retention_days=s.log_retention_days,
        wheels=artifacts.glue_wheels(artifacts.glue_requirements(bundle.core_zip)),
        kafka_jars=artifacts.msk_iam_jars(source_root)))
    api_environment = _api_environment(s, platform, lake, serving)
    api_gateway_account = ApiGatewayAccount("apigateway-account", ApiGatewayAccountArgs(
        base_name=base, partition=account.partition))
    api = Api("api", ApiArgs(
        base_name=base, settings=s.api,
        runtime=_runtime({API_FUNCTION: bundle.api}, core_layer, api_environment, lake, s),
        statements=_api_statements(lake, catalog, serving),
        chalice=chalice_config.load(artifacts.chalice_project(source_root), s.env, api_environment,
                                    source_root=source_root or artifacts.project_root()),
        account_settings=api_gateway_account.account))
    certificate = DashboardCertificate("dashboard-certificate", CertificateArgs(
        domain_name=s.dashboard.domain_name, zone=zone, certificate_arn=s.dashboard.certificate_arn))
    dashboard = Dashboard("dashboard", DashboardArgs(
        base_name=base, region=s.region, settings=s.dashboard,
        environment={envvars.ENV: s.env, envvars.NAME_PREFIX: s.name_prefix, envvars.API_URL: api.url},
        api_key=api.api_key_value, network=network, kms_key_arn=lake.kms_key_arn,
        log_retention_days=s.log_retention_days, domain_name=s.dashboard.domain_name,
        certificate_arn=certificate.certificate_arn))
    if zone is not None:
        DashboardAlias("dashboard-dns", AliasArgs(zone=zone, domain_name=s.dashboard.domain_name,
                                                   target_dns_name=dashboard.load_balancer_dns_name,
                                                   target_zone_id=dashboard.load_balancer_zone_id))
    observability = Observability("observability", ObservabilityArgs(
        base_name=base, env=s.env, region=s.region, settings=s.alerts,
        runtime=_runtime(bundle.functions, core_layer, platform, lake, s), serving=serving, streaming=streaming,
        query_timeout_seconds=s.api.query_timeout_seconds,
        watched=Watched(lambda_functions={"msk-landing": ingestion.landing_function_name,
                                          "batch-landing": ingestion.batch_function_name, "api": api.function_name},
                        glue_job_names=list(processing.job_names.values()),
                        consumer_group=ingestion.consumer_group, api_name=api.rest_api_name,
                        landing_function=ingestion.landing_function_name),
        https_endpoint=pulumi.Config(NAMESPACE).require_secret("oncallHttpsEndpoint") if s.oncall_endpoint else None))
    # AWS FIS experiment templates (docs/chaos_testing.md, "On AWS"), stopped by the data-freshness alarm
    chaos = Chaos("chaos", ChaosArgs(
        base_name=base, settings=s.chaos, log_retention_days=s.log_retention_days,
        stop_alarm_arn=observability.alarm_arns[FRESHNESS_ALARM], cluster_name=dashboard.cluster_name,
        service_name=dashboard.service_name, vpc_id=network.vpc_id, private_subnet_ids=network.private_subnet_ids,
        kms_key_arn=lake.kms_key_arn, landing_function_arns=ingestion.landing_function_arns,
        extension=fis_extension)) if s.chaos.fis else None

    outputs: dict[str, pulumi.Input[object]] = {
        "environment": s.env, "region": s.region, "kms_key_arn": lake.kms_key_arn,
        **{f"{which.value.replace('-', '_')}_bucket": b.name for which, b in lake.buckets.items()},
        **{f"{zone.value}_database": db for zone, db in catalog.databases.items()},
        "kafka_bootstrap_servers": streaming.bootstrap_brokers, "kafka_cluster_arn": streaming.cluster_arn,
        "kafka_topic": streaming.topic_name,
        "landing_function": ingestion.landing_function_name, "batch_landing_function": ingestion.batch_function_name,
        "landing_dlq_url": ingestion.dead_letter_queue_url,
        "glue_jobs": processing.job_names, "glue_workflow": processing.workflow_name,
        "metrics_table": serving.metrics.name, "alerts_table": serving.alerts.name,
        "athena_workgroup": serving.workgroup.name, "api_url": api.url, "api_auth": s.api.auth,
        "dashboard_url": dashboard.url, "dashboard_repository_url": dashboard.repository_url,
        # where dashboard.domainName must point when the stack manages no DNS (certificateArn without a zone)
        "dashboard_load_balancer_dns": dashboard.load_balancer_dns_name,
        "dashboard_hosting": s.dashboard.hosting, "alerts_topic_arn": observability.topic_arn,
        "cloudwatch_dashboard": observability.dashboard_name,
    }
    if api.api_key_value is not None:
        outputs["api_key"] = api.api_key_value
    if chaos is not None:
        outputs["fis_experiment_templates"] = chaos.template_ids
    for key, value in sorted(outputs.items()):
        pulumi.export(key, value)


def _core_layer(base: str, bundle: artifacts.Bundle) -> aws.lambda_.LayerVersion:
    return aws.lambda_.LayerVersion(
        "core-layer", layer_name=f"{base}-core", code=pulumi.FileArchive(str(bundle.core_layer.path)),
        source_code_hash=bundle.core_layer.base64_sha256, compatible_runtimes=["python3.11"],
        compatible_architectures=["arm64"], description=f"dataforge core {bundle.core_layer.short_hash}")


def _runtime(code: Mapping[str, artifacts.Artifact], layer: aws.lambda_.LayerVersion,
             environment: Mapping[str, pulumi.Input[str]], lake: LakeRefs, s: StackSettings) -> FunctionRuntime:
    return FunctionRuntime(code=code, core_layer_arn=layer.arn, environment=environment,
                           kms_key_arn=lake.kms_key_arn, log_retention_days=s.log_retention_days)


def _platform_environment(s: StackSettings) -> dict[str, pulumi.Input[str]]:
    """What every runtime is told about the stack it runs in."""
    return {envvars.ENV: s.env, envvars.NAME_PREFIX: s.name_prefix, envvars.LOG_LEVEL: "INFO",
            envvars.GLUE_DATABASE_PREFIX: f"{s.name_prefix}_{s.env}".replace("-", "_")}


def _landing_environment(lake: LakeRefs, streaming: StreamingRefs) -> dict[str, pulumi.Input[str]]:
    return {envvars.LANDING_BUCKET: lake[Zone.LANDING].name, envvars.BRONZE_BUCKET: lake[Zone.BRONZE].name,
            envvars.QUARANTINE_BUCKET: lake[Zone.QUARANTINE].name, envvars.KAFKA_TOPIC: streaming.topic_name}


def _glue_scripts(source_root: Path | None) -> dict[str, artifacts.Artifact]:
    return {job: artifacts.glue_script(job, source_root) for job in artifacts.GLUE_JOBS}


def _job_settings(platform: Mapping[str, pulumi.Input[str]], lake: LakeRefs, streaming: StreamingRefs,
                  serving: ServingRefs) -> dict[str, pulumi.Input[str]]:
    """Every setting a Glue job may be given (``standard_jobs`` picks each job's)."""
    return {
        **platform, envvars.KAFKA_BOOTSTRAP_SERVERS: streaming.bootstrap_brokers,
        envvars.KAFKA_TOPIC: streaming.topic_name, envvars.METRICS_TABLE: serving.metrics.name,
        # the clusters accept IAM access control only (infra/components/streaming.py, client_authentication)
        envvars.KAFKA_AUTH: KAFKA_AUTH_IAM,
        **{var: lake[zone].name for var, zone in ((envvars.BRONZE_BUCKET, Zone.BRONZE),
                                                  (envvars.SILVER_BUCKET, Zone.SILVER),
                                                  (envvars.GOLD_BUCKET, Zone.GOLD),
                                                  (envvars.QUARANTINE_BUCKET, Zone.QUARANTINE))},
    }


def _api_environment(s: StackSettings, platform: Mapping[str, pulumi.Input[str]], lake: LakeRefs,
                     serving: ServingRefs) -> dict[str, pulumi.Input[str]]:
    env: dict[str, pulumi.Input[str]] = {
        **platform, envvars.QUERY_ENGINE: "athena", envvars.METRICS_TABLE: serving.metrics.name,
        envvars.ALERTS_TABLE: serving.alerts.name, envvars.ATHENA_WORKGROUP: serving.workgroup.name,
        envvars.ATHENA_RESULTS_BUCKET: lake[SupportBucket.ATHENA_RESULTS].name,
        envvars.SILVER_BUCKET: lake[Zone.SILVER].name, envvars.GOLD_BUCKET: lake[Zone.GOLD].name,
        envvars.QUERY_TIMEOUT_SECONDS: str(s.api.query_timeout_seconds),
    }
    if s.api.cors_origin:
        env[envvars.CORS_ORIGIN] = s.api.cors_origin
    return env


def _api_statements(lake: LakeRefs, catalog: CatalogRefs, serving: ServingRefs) -> list[iam.Statement]:
    """The API reads the metrics, reads and acknowledges alerts, and queries silver and gold on Athena."""
    results = lake[SupportBucket.ATHENA_RESULTS].arn
    return [
        iam.allow(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], [serving.metrics.arn],
                  sid="ReadMetrics"),
        iam.allow(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                  [serving.alerts.arn, pulumi.Output.concat(serving.alerts.arn, "/index/*")], sid="Alerts"),
        iam.allow(["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                   "athena:StopQueryExecution", "athena:GetWorkGroup"], [serving.workgroup.arn], sid="Athena"),
        iam.allow(["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                  catalog.resource_arns(Zone.SILVER, Zone.GOLD), sid="Catalog"),
        *iam.s3_read(lake[Zone.SILVER].arn), *iam.s3_read(lake[Zone.GOLD].arn),
        *iam.s3_read(results, "results/"), *iam.s3_write(results, "results/"),
    ]
