"""Processing: Glue 5.1 jobs for every ``spark/jobs`` script, scripts and the shared core uploaded
under content-hashed keys, job arguments built from outputs, triggers and the daily workflow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge import envvars
from dataforge.lake import SupportBucket, Zone
from infra import iam
from infra.artifacts import Artifact
from infra.refs import CatalogRefs, LakeRefs, NetworkRefs, ServingRefs, StreamingRefs
from infra.settings import ProcessingSettings

GLUE_VERSION: Final = "5.1"
SCRIPTS_PREFIX: Final = "glue/scripts"
LIBS_PREFIX: Final = "glue/libs"
JARS_PREFIX: Final = "glue/jars"
WHEELS_PREFIX: Final = "glue/wheels"
#: pip's option that keeps the jobs' installs to the wheels named in ``--additional-python-modules``: the
#: jobs' VPC has no route to PyPI. Glue 5.x installs those modules with pip3 and passes this argument's
#: value to it ("Using Python libraries with AWS Glue": ``--python-modules-installer-option``; its zip of
#: wheels example pairs S3 wheels with ``--no-index``).
INSTALLER_OPTION: Final = "--no-index"
TEMP_PREFIX: Final = "glue/tmp/"


#: The job parameters Glue itself reads ("Using job parameters in AWS Glue jobs", AWS Glue Developer
#: Guide): a job's default or trigger arguments are these or arguments the job's script reads
#: (``spark.runtime.JobArguments``). ``tests/infra/test_glue_schedule.py`` holds every declared
#: argument to that rule.
GLUE_PARAMETERS: Final = frozenset({
    "--additional-python-modules", "--auto-scale-within-microbatch", "--class", "--conf",
    "--continuous-log-conversionPattern", "--continuous-log-logGroup", "--continuous-log-logStreamPrefix",
    "--custom-logGroup-prefix", "--custom-logStream-prefix", "--datalake-formats", "--disable-proxy-v2",
    "--enable-auto-scaling", "--enable-continuous-cloudwatch-log", "--enable-continuous-log-filter",
    "--enable-glue-datacatalog", "--enable-job-insights", "--enable-metrics", "--enable-observability-metrics",
    "--enable-rename-algorithm-v2", "--enable-s3-parquet-optimized-committer", "--enable-spark-ui",
    "--encryption-type", "--executor-cores", "--extra-files", "--extra-jars", "--extra-py-files",
    "--job-bookmark-option", "--job-language", "--python-modules-installer-option", "--scriptLocation",
    "--spark-event-logs-path", "--TempDir", "--use-postgres-driver", "--user-jars-first",
})


def glue_log_groups(security_configuration: str, role_name: str) -> tuple[str, str]:
    """The log groups a Glue job run writes to when its security configuration encrypts CloudWatch
    Logs: ``/aws-glue/jobs/<security-configuration>-role/<role-name>/output`` (the script's stdout and
    stderr) and ``.../error`` (Spark, Glue and the Glue logger). Without a security configuration
    Glue 5.x writes to ``/aws-glue/jobs/output`` and ``/aws-glue/jobs/error`` ("Logging for AWS Glue
    jobs"); with one, the group's name carries the security configuration and the job's role, so
    Glue can associate the configuration's KMS key with it (``logs:AssociateKmsKey``). The AWS Glue
    API reference (``JobRun.LogGroupName``) says such a group is named after the role and the
    security configuration but spells it ``/aws-glue/jobs-<role>-<configuration>/``; the form here is
    the one Glue jobs are reported to write to, which no AWS page at hand spells out: check it
    against a first run on AWS (docs/spark.md, "Logs")."""
    prefix = f"/aws-glue/jobs/{security_configuration}-role/{role_name}"
    return f"{prefix}/output", f"{prefix}/error"


def job_argument(env_var: str) -> str:
    """The Glue job argument carrying an ``envvars`` setting: ``--DATAFORGE_BRONZE_BUCKET``."""
    return f"--{env_var}"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One Glue job: which buckets it reads/writes, which settings it gets, how it is started."""

    job: str
    script: Artifact
    reads: tuple[str, ...]  # zones (``dataforge.lake.Zone`` values)
    writes: tuple[str, ...]
    settings: tuple[str, ...]  # envvars names passed as job arguments
    streaming: bool = False
    dynamodb: bool = False
    kafka: bool = False
    bookmarks: bool = False
    # Keeps state (streaming checkpoints, commit markers) under ``jobs/<job>/`` in the artifacts
    # bucket (``spark.runtime.Lake.state``): needs the bucket's name and that prefix.
    state: bool = False


@dataclass(frozen=True, slots=True)
class ProcessingArgs:
    base_name: str
    settings: ProcessingSettings
    jobs: Sequence[JobSpec]
    core: Artifact
    job_settings: Mapping[str, pulumi.Input[str]]  # envvars name -> value, passed as job arguments
    lake: LakeRefs
    catalog: CatalogRefs
    streaming: StreamingRefs
    serving: ServingRefs
    network: NetworkRefs
    availability_zone: str  # of the first private subnet, where the jobs' network connection is
    log_retention_days: int
    #: the jobs' third-party wheels for Glue's platform (``infra.artifacts.glue_wheels``)
    wheels: Sequence[Artifact] = ()
    #: the Kafka jobs' ``--extra-jars``: the MSK IAM authentication library (``infra.artifacts.msk_iam_jars``)
    kafka_jars: Sequence[Artifact] = ()


class Processing(pulumi.ComponentResource):
    job_names: dict[str, pulumi.Output[str]]
    workflow_name: pulumi.Output[str]

    def __init__(self, name: str, args: ProcessingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:processing:Processing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sizing, kms_key_arn, artifacts = args.settings, args.lake.kms_key_arn, args.lake[SupportBucket.ARTIFACTS]
        glue_catalog_arn = args.catalog.catalog_arns[0]
        core_key = args.core.key(LIBS_PREFIX)
        core_object = aws.s3.BucketObject(f"{name}-core", bucket=artifacts.name, key=core_key,
                                          source=pulumi.FileAsset(str(args.core.path)),
                                          source_hash=args.core.sha256, server_side_encryption="aws:kms",
                                          kms_key_id=kms_key_arn, opts=child)
        core_uri = pulumi.Output.concat("s3://", core_object.bucket, "/", core_object.key)
        # pip installs a wheel only under its own file name (the name carries its version and tags), so
        # the content hash goes in the folder: glue/wheels/<hash>/<wheel file name>.
        wheel_objects = [aws.s3.BucketObject(f"{name}-wheel-{wheel.name}", bucket=artifacts.name,
                                             key=f"{WHEELS_PREFIX}/{wheel.short_hash}/{wheel.path.name}",
                                             source=pulumi.FileAsset(str(wheel.path)), source_hash=wheel.sha256,
                                             server_side_encryption="aws:kms", kms_key_id=kms_key_arn, opts=child)
                         for wheel in args.wheels]
        wheel_uris = pulumi.Output.all(*[pulumi.Output.concat("s3://", o.bucket, "/", o.key) for o in wheel_objects]
                                       ).apply(lambda uris: ",".join(uris))
        # The MSK IAM library's jars, under content-hashed keys in glue/ (which every job role reads).
        jar_objects = [aws.s3.BucketObject(f"{name}-jar-{jar.name}", bucket=artifacts.name, key=jar.key(JARS_PREFIX),
                                           source=pulumi.FileAsset(str(jar.path)), source_hash=jar.sha256,
                                           server_side_encryption="aws:kms", kms_key_id=kms_key_arn, opts=child)
                       for jar in args.kafka_jars]
        jar_uris = pulumi.Output.all(*[pulumi.Output.concat("s3://", o.bucket, "/", o.key) for o in jar_objects]
                                     ).apply(lambda uris: ",".join(uris))
        security = aws.glue.SecurityConfiguration(f"{name}-security", name=f"{args.base_name}-glue",
                                                  encryption_configuration={
            "s3_encryption": {"s3_encryption_mode": "SSE-KMS", "kms_key_arn": kms_key_arn},
            "job_bookmarks_encryption": {"job_bookmarks_encryption_mode": "CSE-KMS",
                                         "kms_key_arn": kms_key_arn},
            "cloudwatch_encryption": {"cloudwatch_encryption_mode": "SSE-KMS", "kms_key_arn": kms_key_arn},
        }, opts=child)
        connection = aws.glue.Connection(f"{name}-vpc", name=f"{args.base_name}-vpc", connection_type="NETWORK",
                                         physical_connection_requirements={
                                             "availability_zone": args.availability_zone,
                                             "subnet_id": args.network.private_subnet_ids[0],
                                             "security_group_id_lists": [args.network.compute_sg_id]}, opts=child)
        connection_arn = pulumi.Output.concat(
            glue_catalog_arn.apply(lambda arn: arn.removesuffix(":catalog")), ":connection/", connection.name)
        # The network connection's interfaces, as AWSGlueServiceRole grants them (AWS managed policy
        # reference), scoped to the stack's account and region: Describe* support only "*"; Glue
        # tags what it creates with the aws-glue-service-resource key only.
        glue_vpc = [
            iam.allow(["ec2:DescribeNetworkInterfaces", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
                       "ec2:DescribeSubnets", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs"], ["*"],
                      sid="GlueVpcDescribe"),
            iam.allow(["ec2:DescribeVpcAttribute"], [iam.arn_like(glue_catalog_arn, "ec2", "vpc/*")],
                      sid="GlueVpcAttributes"),
            iam.allow(["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
                      [iam.arn_like(glue_catalog_arn, "ec2", r) for r in iam.ENI_RESOURCES],
                      sid="GlueNetworkInterfaces"),
            iam.allow(["ec2:CreateTags", "ec2:DeleteTags"],
                      [iam.arn_like(glue_catalog_arn, "ec2", r)
                       for r in ("instance/*", "network-interface/*", "security-group/*")],
                      sid="GlueResourceTags",
                      conditions={"ForAllValues:StringEquals": {"aws:TagKeys": "aws-glue-service-resource"}}),
        ]
        self.job_names = {}
        jobs: dict[str, aws.glue.Job] = {}
        for spec in args.jobs:
            role_name = spec.job.replace("_", "-")
            script = aws.s3.BucketObject(f"{name}-{role_name}-script", bucket=artifacts.name,
                                         key=spec.script.key(SCRIPTS_PREFIX),
                                         source=pulumi.FileAsset(str(spec.script.path)),
                                         source_hash=spec.script.sha256, server_side_encryption="aws:kms",
                                         kms_key_id=kms_key_arn, opts=child)
            statements: list[iam.Statement] = [
                *iam.s3_read(artifacts.arn, "glue/"),
                *iam.s3_write(artifacts.arn, TEMP_PREFIX, delete=True),
                iam.kms_use(kms_key_arn),
                iam.allow(["cloudwatch:PutMetricData"], ["*"], sid="GlueMetrics"),
                iam.allow(["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition",
                           "glue:GetPartitions", "glue:BatchGetPartition", "glue:UpdateTable",
                           "glue:CreatePartition", "glue:BatchCreatePartition", "glue:DeletePartition",
                           "glue:BatchDeletePartition", "glue:UpdatePartition", "glue:GetConnection"],
                          [*args.catalog.resource_arns(*Zone), connection_arn],
                          sid="GlueCatalog"),
                *glue_vpc,
            ]
            if spec.state:
                statements += [*iam.s3_read(artifacts.arn, f"jobs/{spec.job}/"),
                               *iam.s3_write(artifacts.arn, f"jobs/{spec.job}/", delete=True)]
            for bucket in spec.reads:
                statements += iam.s3_read(args.lake[Zone(bucket)].arn)
            for bucket in spec.writes:
                statements += iam.s3_write(args.lake[Zone(bucket)].arn, delete=True)
            if spec.dynamodb:
                statements.append(iam.allow(["dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                             "dynamodb:DescribeTable"], [args.serving.metrics.arn], sid="Metrics"))
            if spec.kafka:
                statements += [
                    iam.allow(["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], [args.streaming.cluster_arn]),
                    iam.allow(["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], [args.streaming.topic_arn]),
                    iam.allow(["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                              [pulumi.Output.concat(args.streaming.group_arn_prefix, "/*")]),
                ]
            # No aws:SourceAccount/aws:SourceArn in the trust policy: the Glue Developer Guide's
            # service-role trust policy names only glue.amazonaws.com and documents no source keys.
            role = iam.service_role(f"{name}-{role_name}-role", ["glue.amazonaws.com"], statements, self,
                                    f"Glue job {spec.job}")
            # The job's log groups are named after its role (``glue_log_groups``), so they and their
            # permission follow the role: declared with the stack's retention and the key the
            # security configuration encrypts CloudWatch Logs with (a group Glue created itself
            # would keep its logs forever), and the role may write to exactly these two.
            names = pulumi.Output.all(security.name, role.role.name).apply(
                lambda values: glue_log_groups(values[0], values[1]))
            groups = [aws.cloudwatch.LogGroup(f"{name}-{role_name}-logs-{kind}", name=names[index],
                                              retention_in_days=args.log_retention_days, kms_key_id=kms_key_arn,
                                              opts=child)
                      for index, kind in enumerate(("output", "error"))]
            # CloudWatch Logs authorizes CreateLogGroup and AssociateKmsKey on the log group and
            # CreateLogStream and PutLogEvents on its streams (``log-group:<name>:*``).
            logs_policy = aws.iam.RolePolicy(f"{name}-{role_name}-role-logs", role=role.role.id, policy=iam.document([
                iam.allow(["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                          [arn for group in groups for arn in (group.arn, pulumi.Output.concat(group.arn, ":*"))],
                          sid="GlueLogs")]), opts=child)
            arguments: dict[str, pulumi.Input[str]] = {
                "--extra-py-files": core_uri,
                # The core's third-party packages Glue 5.1 does not provide (msgspec, isal), from the
                # artifacts bucket only; the job role reads glue/ there. The compiled fast path is left
                # out (infra.artifacts.GLUE_LEFT_OUT): the pure contract gives the same answers.
                **({"--additional-python-modules": wheel_uris, "--python-modules-installer-option": INSTALLER_OPTION}
                   if wheel_objects else {}),
                # A Kafka job authenticates to MSK with IAM (spark.kafka.source_options); Glue puts the
                # comma-separated S3 paths of --extra-jars on the job's Java classpath ("Using job
                # parameters in AWS Glue jobs").
                **({"--extra-jars": jar_uris} if spec.kafka and jar_objects else {}),
                "--TempDir": pulumi.Output.concat("s3://", artifacts.name, "/", TEMP_PREFIX, spec.job, "/"),
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--enable-glue-datacatalog": "true",
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-enable" if spec.bookmarks else "job-bookmark-disable",
            }
            for setting in spec.settings:
                arguments[job_argument(setting)] = args.job_settings[setting]
            if spec.state:
                arguments[job_argument(envvars.ARTIFACTS_BUCKET)] = artifacts.name
            job = aws.glue.Job(
                f"{name}-{role_name}", name=f"{args.base_name}-{role_name}", role_arn=role.arn,
                glue_version=GLUE_VERSION,
                command={"name": "gluestreaming" if spec.streaming else "glueetl", "python_version": "3",
                         "script_location": pulumi.Output.concat("s3://", script.bucket, "/", script.key)},
                default_arguments=dict(sorted(arguments.items())),
                worker_type=sizing.worker_type,
                number_of_workers=sizing.streaming_workers if spec.streaming else sizing.workers,
                timeout=None if spec.streaming else sizing.timeout_minutes,
                max_retries=0 if spec.streaming else sizing.max_retries,
                execution_property={"max_concurrent_runs": 1},
                security_configuration=security.name,
                connections=[connection.name] if spec.kafka else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*role.ready, logs_policy]))
            jobs[spec.job] = job
            self.job_names[spec.job] = job.name
        workflow = aws.glue.Workflow(f"{name}-daily", name=f"{args.base_name}-daily",
                                     description="daily aggregation -> export gold to DynamoDB",
                                     max_concurrent_runs=1, opts=child)
        self.workflow_name = workflow.name
        if "daily_aggregation" in jobs and "export_gold" in jobs:
            aws.glue.Trigger(f"{name}-daily-start", name=f"{args.base_name}-daily-start", type="SCHEDULED",
                             schedule=sizing.daily_schedule, workflow_name=workflow.name,
                             actions=[{"job_name": jobs["daily_aggregation"].name}], opts=child)
            aws.glue.Trigger(f"{name}-daily-export", name=f"{args.base_name}-daily-export", type="CONDITIONAL",
                             workflow_name=workflow.name, actions=[{"job_name": jobs["export_gold"].name}],
                             predicate={"conditions": [{"job_name": jobs["daily_aggregation"].name,
                                                        "state": "SUCCEEDED"}]}, opts=child)
        if "batch_enrichment" in jobs:
            aws.glue.Trigger(f"{name}-batch-enrichment-schedule", name=f"{args.base_name}-batch-enrichment",
                             type="SCHEDULED", schedule=sizing.batch_schedule,
                             actions=[{"job_name": jobs["batch_enrichment"].name}], opts=child)
        if "streaming_enrichment" in jobs:
            # A streaming job runs until stopped; the hourly trigger restarts it after a failure
            # (max_concurrent_runs=1 makes it a no-op while it runs).
            aws.glue.Trigger(f"{name}-streaming-keepalive", name=f"{args.base_name}-streaming-keepalive",
                             type="SCHEDULED", schedule="cron(5 * * * ? *)",
                             actions=[{"job_name": jobs["streaming_enrichment"].name}], opts=child)
        self.register_outputs({"jobs": self.job_names, "workflow": self.workflow_name})


def standard_jobs(scripts: Mapping[str, Artifact]) -> list[JobSpec]:
    """The platform's Glue jobs and what each may touch (least privilege per job)."""
    common = (envvars.ENV, envvars.NAME_PREFIX, envvars.GLUE_DATABASE_PREFIX, envvars.LOG_LEVEL)
    return [
        JobSpec("streaming_enrichment", scripts["streaming_enrichment"], reads=(), writes=("silver", "quarantine"),
                settings=(*common, envvars.KAFKA_BOOTSTRAP_SERVERS, envvars.KAFKA_TOPIC, envvars.KAFKA_AUTH,
                          envvars.SILVER_BUCKET, envvars.QUARANTINE_BUCKET, envvars.METRICS_TABLE),
                streaming=True, dynamodb=True, kafka=True, state=True),
        JobSpec("batch_enrichment", scripts["batch_enrichment"], reads=("bronze",), writes=("silver", "quarantine"),
                settings=(*common, envvars.BRONZE_BUCKET, envvars.SILVER_BUCKET, envvars.QUARANTINE_BUCKET),
                bookmarks=True, state=True),
        JobSpec("daily_aggregation", scripts["daily_aggregation"], reads=("silver",), writes=("gold",),
                settings=(*common, envvars.SILVER_BUCKET, envvars.GOLD_BUCKET)),
        JobSpec("backfill", scripts["backfill"], reads=("bronze",), writes=("silver", "gold", "quarantine"),
                settings=(*common, envvars.BRONZE_BUCKET, envvars.SILVER_BUCKET, envvars.GOLD_BUCKET,
                          envvars.QUARANTINE_BUCKET, envvars.METRICS_TABLE), dynamodb=True),
        JobSpec("export_gold", scripts["export_gold"], reads=("gold",), writes=(),
                settings=(*common, envvars.GOLD_BUCKET, envvars.METRICS_TABLE), dynamodb=True),
    ]
