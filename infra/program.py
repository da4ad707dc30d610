"""The DataForge Pulumi program: settings -> components -> stack outputs.

``main()`` is what ``pulumi up`` runs (``infra/__main__.py``) and what the offline renderer runs
under Pulumi's mock engine; there is no other code path.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws

from dataforge import envvars
from dataforge.lake import SupportBucket, Zone
from infra import artifacts, iam, tagging
from infra.components.api import Api, ApiArgs
from infra.components.catalog import Catalog, CatalogArgs
from infra.components.dashboard import Dashboard, DashboardArgs
from infra.components.ingestion import Ingestion, IngestionArgs
from infra.components.lake import Lake, LakeArgs
from infra.components.network import Network, NetworkArgs
from infra.components.observability import Observability, ObservabilityArgs
from infra.components.processing import Processing, ProcessingArgs, standard_jobs
from infra.components.serving import Serving, ServingArgs
from infra.components.streaming import Streaming, StreamingArgs
from infra.settings import NAMESPACE, StackSettings, load


def main(source_root: Path | None = None) -> None:
    """The program. ``source_root``: the checkout whose runtime code is packaged (default: this one)."""
    settings = load()
    tagging.register(settings.tags())
    build(settings, source_root)


def build(s: StackSettings, source_root: Path | None = None) -> None:
    base = s.base
    bundle = artifacts.build_bundle(source_root)
    identity = aws.get_caller_identity_output()

    network = Network("network", NetworkArgs(
        base_name=base, region=s.region, cidr=s.network.cidr, availability_zones=s.network.availability_zones,
        public_subnets=s.dashboard.hosting == "ecs"))
    lake = Lake("lake", LakeArgs(
        name_prefix=s.name_prefix, env=s.env, landing_days=s.lake.landing_days, bronze_days=s.lake.bronze_days,
        quarantine_days=s.lake.quarantine_days, silver_ia_days=s.lake.silver_ia_days,
        gold_ia_days=s.lake.gold_ia_days, noncurrent_days=s.lake.noncurrent_days,
        athena_results_days=s.lake.athena_results_days, access_logs_days=s.lake.access_logs_days,
        region=s.region, account_id=identity.account_id, force_destroy=s.lake.force_destroy, protect=s.protect))
    bucket = {which: lake.bucket(which) for which in (*Zone, *SupportBucket)}
    catalog = Catalog("catalog", CatalogArgs(name_prefix=s.name_prefix, env=s.env,
                                             buckets={zone: bucket[zone].name for zone in Zone}))
    streaming = Streaming("streaming", StreamingArgs(
        base_name=base, mode=s.streaming.mode, subnet_ids=network.private_subnet_ids,
        kafka_sg_id=network.kafka_sg_id, compute_sg_id=network.compute_sg_id, kms_key_arn=lake.kms_key_arn,
        topic=s.streaming.topic, partitions=s.streaming.partitions, replication_factor=s.streaming.replication_factor,
        retention_hours=s.streaming.retention_hours, kafka_version=s.streaming.kafka_version,
        broker_count=s.streaming.broker_count, broker_instance_type=s.streaming.broker_instance_type,
        broker_volume_gb=s.streaming.broker_volume_gb, log_retention_days=s.log_retention_days,
        connectors=s.streaming.connectors, connector_dir=bundle.connectors,
        connector_plugin_arn=s.streaming.connector_plugin_arn, protect=s.protect))
    serving = Serving("serving", ServingArgs(
        base_name=base, kms_key_arn=lake.kms_key_arn, athena_results_bucket=bucket[SupportBucket.ATHENA_RESULTS].name,
        point_in_time_recovery=s.serving.point_in_time_recovery, deletion_protection=s.serving.deletion_protection,
        bytes_scanned_cutoff=s.serving.athena_bytes_scanned_cutoff, protect=s.protect))

    core_layer = aws.lambda_.LayerVersion(
        "core-layer", layer_name=f"{base}-core", code=pulumi.FileArchive(str(bundle.core_layer.path)),
        source_code_hash=bundle.core_layer.base64_sha256, compatible_runtimes=["python3.11"],
        compatible_architectures=["arm64"], description=f"dataforge core {bundle.core_layer.short_hash}")

    glue_db_prefix = f"{s.name_prefix}_{s.env}".replace("-", "_")
    platform: dict[str, pulumi.Input[str]] = {
        envvars.ENV: s.env, envvars.NAME_PREFIX: s.name_prefix, envvars.LOG_LEVEL: "INFO",
        envvars.GLUE_DATABASE_PREFIX: glue_db_prefix,
    }
    lake_env: dict[str, pulumi.Input[str]] = {
        envvars.LANDING_BUCKET: bucket[Zone.LANDING].name, envvars.BRONZE_BUCKET: bucket[Zone.BRONZE].name,
        envvars.QUARANTINE_BUCKET: bucket[Zone.QUARANTINE].name, envvars.KAFKA_TOPIC: streaming.topic_name,
    }
    ingestion = Ingestion("ingestion", IngestionArgs(
        base_name=base, code=bundle.lambdas, core_layer_arn=core_layer.arn, base_environment={**platform, **lake_env},
        kms_key_arn=lake.kms_key_arn, landing_bucket=bucket[Zone.LANDING].name,
        landing_bucket_arn=bucket[Zone.LANDING].arn, bronze_bucket_arn=bucket[Zone.BRONZE].arn,
        quarantine_bucket_arn=bucket[Zone.QUARANTINE].arn, metrics_table_name=serving.metrics_table_name,
        metrics_table_arn=serving.metrics_table_arn, cluster_arn=streaming.cluster_arn,
        topic_arn=streaming.topic_arn, group_arn_prefix=streaming.group_arn_prefix, topic=s.streaming.topic,
        subnet_ids=network.private_subnet_ids, security_group_id=network.compute_sg_id,
        batch_size=s.ingestion.batch_size, batch_window_seconds=s.ingestion.batch_window_seconds,
        memory_mb=s.ingestion.memory_mb, timeout_seconds=s.ingestion.timeout_seconds,
        reserved_concurrency=s.ingestion.reserved_concurrency, archive_raw=s.ingestion.archive_raw,
        log_retention_days=s.log_retention_days))

    job_settings: dict[str, pulumi.Input[str]] = {
        **platform, envvars.KAFKA_BOOTSTRAP_SERVERS: streaming.bootstrap_brokers,
        envvars.KAFKA_TOPIC: streaming.topic_name, envvars.METRICS_TABLE: serving.metrics_table_name,
        **{var: bucket[zone].name for var, zone in ((envvars.BRONZE_BUCKET, Zone.BRONZE),
                                                     (envvars.SILVER_BUCKET, Zone.SILVER),
                                                     (envvars.GOLD_BUCKET, Zone.GOLD),
                                                     (envvars.QUARANTINE_BUCKET, Zone.QUARANTINE))},
    }
    scripts = {job: artifacts.glue_script(job, source_root) for job in artifacts.GLUE_JOBS}
    processing = Processing("processing", ProcessingArgs(
        base_name=base, jobs=standard_jobs(scripts), core=bundle.core_zip,
        artifacts_bucket=bucket[SupportBucket.ARTIFACTS].name, artifacts_bucket_arn=bucket[SupportBucket.ARTIFACTS].arn,
        bucket_arns={zone.value: bucket[zone].arn for zone in Zone}, settings=job_settings,
        kms_key_arn=lake.kms_key_arn, glue_catalog_arn=catalog.catalog_arns[0],
        glue_resource_arns=[*(catalog.database_arns[z] for z in Zone), *(catalog.table_arns[z] for z in Zone)],
        metrics_table_arn=serving.metrics_table_arn, cluster_arn=streaming.cluster_arn,
        topic_arn=streaming.topic_arn, group_arn_prefix=streaming.group_arn_prefix,
        subnet_id=network.private_subnet_ids[0], availability_zone=s.network.availability_zones[0],
        security_group_id=network.compute_sg_id, worker_type=s.processing.worker_type, workers=s.processing.workers,
        streaming_workers=s.processing.streaming_workers, daily_schedule=s.processing.daily_schedule,
        batch_schedule=s.processing.batch_schedule, timeout_minutes=s.processing.timeout_minutes,
        max_retries=s.processing.max_retries, log_retention_days=s.log_retention_days))

    athena_results = bucket[SupportBucket.ATHENA_RESULTS]
    api_env: dict[str, pulumi.Input[str]] = {
        **platform, envvars.QUERY_ENGINE: "athena", envvars.METRICS_TABLE: serving.metrics_table_name,
        envvars.ALERTS_TABLE: serving.alerts_table_name, envvars.ATHENA_WORKGROUP: serving.workgroup_name,
        envvars.ATHENA_RESULTS_BUCKET: athena_results.name, envvars.SILVER_BUCKET: bucket[Zone.SILVER].name,
        envvars.GOLD_BUCKET: bucket[Zone.GOLD].name,
    }
    if s.api.cors_origin:
        api_env[envvars.CORS_ORIGIN] = s.api.cors_origin
    api_statements = [
        iam.allow(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], [serving.metrics_table_arn],
                  sid="ReadMetrics"),
        iam.allow(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                  [serving.alerts_table_arn, pulumi.Output.concat(serving.alerts_table_arn, "/index/*")],
                  sid="Alerts"),
        iam.allow(["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                   "athena:StopQueryExecution", "athena:GetWorkGroup"], [serving.workgroup_arn], sid="Athena"),
        iam.allow(["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                   "glue:GetPartitions"],
                  [*catalog.catalog_arns, *(catalog.database_arns[z] for z in (Zone.SILVER, Zone.GOLD)),
                   *(catalog.table_arns[z] for z in (Zone.SILVER, Zone.GOLD))], sid="Catalog"),
        *iam.s3_read(bucket[Zone.SILVER].arn), *iam.s3_read(bucket[Zone.GOLD].arn),
        *iam.s3_read(athena_results.arn, "results/"), *iam.s3_write(athena_results.arn, "results/"),
    ]
    api = Api("api", ApiArgs(
        base_name=base, code=bundle.api, core_layer_arn=core_layer.arn, environment=api_env,
        statements=api_statements, kms_key_arn=lake.kms_key_arn, log_retention_days=s.log_retention_days,
        auth=s.api.auth, memory_mb=s.api.memory_mb, throttle_rate=s.api.throttle_rate,
        throttle_burst=s.api.throttle_burst))

    dashboard = Dashboard("dashboard", DashboardArgs(
        base_name=base, hosting=s.dashboard.hosting, region=s.region, kms_key_arn=lake.kms_key_arn,
        environment={envvars.ENV: s.env, envvars.NAME_PREFIX: s.name_prefix, envvars.API_URL: api.url},
        api_key=api.api_key_value, log_retention_days=s.log_retention_days, vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids, public_subnet_ids=network.public_subnet_ids,
        certificate_arn=s.dashboard.certificate_arn, cpu=s.dashboard.cpu, memory_mb=s.dashboard.memory_mb,
        desired_count=s.dashboard.desired_count, image_tag=s.dashboard.image_tag))

    oncall = pulumi.Config(NAMESPACE).require_secret("oncallHttpsEndpoint") if s.oncall_endpoint else None
    observability = Observability("observability", ObservabilityArgs(
        base_name=base, env=s.env, region=s.region, kms_key_arn=lake.kms_key_arn, code=bundle.lambdas,
        core_layer_arn=core_layer.arn, base_environment=platform, metrics_table_name=serving.metrics_table_name,
        metrics_table_arn=serving.metrics_table_arn, alerts_table_name=serving.alerts_table_name,
        alerts_table_arn=serving.alerts_table_arn,
        lambda_functions=[ingestion.landing_function_name, ingestion.batch_function_name, api.function_name],
        glue_job_names=list(processing.job_names.values()), cluster_name=streaming.cluster_name,
        consumer_group=f"{base}-landing", topic=s.streaming.topic, api_name=api.rest_api_name,
        log_retention_days=s.log_retention_days, emails=s.alerts.emails, https_endpoint=oncall,
        lambda_error_threshold=s.alerts.lambda_error_threshold,
        consumer_lag_threshold=s.alerts.consumer_lag_threshold, freshness_minutes=s.alerts.freshness_minutes,
        api_latency_p99_ms=s.alerts.api_latency_p99_ms, api_5xx_threshold=s.alerts.api_5xx_threshold,
        alert_rules=s.alerts.rules_json))

    outputs: dict[str, pulumi.Input[object]] = {
        "environment": s.env, "region": s.region, "kms_key_arn": lake.kms_key_arn,
        **{f"{which.value.replace('-', '_')}_bucket": b.name for which, b in bucket.items()},
        **{f"{zone.value}_database": db for zone, db in catalog.databases.items()},
        "kafka_bootstrap_servers": streaming.bootstrap_brokers, "kafka_cluster_arn": streaming.cluster_arn,
        "kafka_topic": streaming.topic_name,
        "landing_function": ingestion.landing_function_name, "batch_landing_function": ingestion.batch_function_name,
        "landing_dlq_url": ingestion.dead_letter_queue_url,
        "glue_jobs": processing.job_names, "glue_workflow": processing.workflow_name,
        "metrics_table": serving.metrics_table_name, "alerts_table": serving.alerts_table_name,
        "athena_workgroup": serving.workgroup_name, "api_url": api.url, "api_auth": s.api.auth,
        "dashboard_url": dashboard.url, "dashboard_repository_url": dashboard.repository_url,
        "dashboard_hosting": s.dashboard.hosting, "alerts_topic_arn": observability.topic_arn,
        "cloudwatch_dashboard": observability.dashboard_name,
    }
    if api.api_key_value is not None:
        outputs["api_key"] = api.api_key_value
    for key, value in sorted(outputs.items()):
        pulumi.export(key, value)
