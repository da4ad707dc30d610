"""Create the embedded platform's AWS resources on the moto server: the local twin of ``infra/``.

Same names and contracts as a Pulumi stack (``dataforge.settings.local_environment`` gives the
env vars): zone and support buckets, Glue databases and tables from ``dataforge.schemas``, the
DynamoDB tables of ADR 0001 and the alerts SNS topic. Idempotent: existing resources are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dataforge import lake, schemas, serving
from dataforge.errors import ServiceError
from dataforge.settings import Settings

logger = logging.getLogger(__name__)

# Glue tables of the lake: (zone, table, location prefix, format).
_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
_JSON = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
}
_TABLES: tuple[tuple[lake.Zone, schemas.Table, str, Mapping[str, Any]], ...] = (
    (lake.Zone.SILVER, schemas.SILVER_TRANSACTIONS, lake.silver_prefix(), _PARQUET),
    (lake.Zone.GOLD, schemas.GOLD_DAILY_KPIS, lake.gold_prefix(), _PARQUET),
    (lake.Zone.QUARANTINE, schemas.QUARANTINE, f"{lake.TRANSACTIONS_TOPIC}/", _JSON),
)


@dataclass(frozen=True, slots=True)
class LocalResources:
    buckets: tuple[str, ...]
    databases: tuple[str, ...]
    tables: tuple[str, ...]
    dynamodb_tables: tuple[str, ...]
    alerts_topic_arn: str


def _ignore_exists(call: Any, *codes: str, **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in codes:
            raise ServiceError(f"creating a local resource failed: {exc}") from exc


def bootstrap(settings: Settings, session: boto3.Session | None = None) -> LocalResources:
    """Create (or keep) every resource the runtimes expect, on the endpoint in ``settings``."""
    session = session or boto3.Session(region_name=settings.region)
    where: dict[str, Any] = {"endpoint_url": settings.endpoint_url, "region_name": settings.region}
    s3, glue = session.client("s3", **where), session.client("glue", **where)
    ddb, sns = session.client("dynamodb", **where), session.client("sns", **where)
    prefix, env = settings.name_prefix, settings.env

    buckets = [lake.bucket_name(prefix, env, z) for z in lake.Zone]
    buckets += [lake.bucket_name(prefix, env, b) for b in lake.SupportBucket]
    for bucket in buckets:
        _ignore_exists(s3.create_bucket, "BucketAlreadyOwnedByYou", "BucketAlreadyExists", Bucket=bucket)

    databases, tables = [], []
    for zone in lake.Zone:
        db = lake.zone_database(settings.glue_database_prefix, zone)
        databases.append(db)
        _ignore_exists(glue.create_database, "AlreadyExistsException",
                       DatabaseInput={"Name": db, "Description": f"DataForge {env} {zone.value} zone"})
    for zone, table, location, fmt in _TABLES:
        db = lake.zone_database(settings.glue_database_prefix, zone)
        bucket = lake.bucket_name(prefix, env, zone)
        table_input = {
            "Name": table.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet" if fmt is _PARQUET else "json", "EXTERNAL": "TRUE"},
            "PartitionKeys": schemas.glue_columns(table.partition_keys),
            "StorageDescriptor": {
                "Columns": schemas.glue_columns(table.columns),
                "Location": lake.s3_uri(bucket, location),
                **fmt,
            },
        }
        _ignore_exists(glue.create_table, "AlreadyExistsException", DatabaseName=db, TableInput=table_input)
        tables.append(f"{db}.{table.name}")

    metrics, alerts = settings.require("metrics_table"), settings.require("alerts_table")
    key_schema = [{"AttributeName": serving.PK, "KeyType": "HASH"}, {"AttributeName": serving.SK, "KeyType": "RANGE"}]
    _ignore_exists(
        ddb.create_table, "ResourceInUseException",
        TableName=metrics, KeySchema=key_schema, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in (serving.PK, serving.SK)],
    )
    # as the stack declares it (infra/components/serving.py); enabling it twice is a ValidationException
    _ignore_exists(ddb.update_time_to_live, "ValidationException", TableName=metrics,
                   TimeToLiveSpecification={"AttributeName": serving.TTL_ATTR, "Enabled": True})
    _ignore_exists(
        ddb.create_table, "ResourceInUseException",
        TableName=alerts, KeySchema=key_schema, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"}
            for n in (serving.PK, serving.SK, serving.ALERT_STATUS_ATTR, serving.ALERT_RAISED_AT_ATTR)
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": serving.ALERTS_STATUS_INDEX,
            "KeySchema": [
                {"AttributeName": serving.ALERT_STATUS_ATTR, "KeyType": "HASH"},
                {"AttributeName": serving.ALERT_RAISED_AT_ATTR, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    topic_arn: str = sns.create_topic(Name=f"{prefix}-{env}-alerts")["TopicArn"]  # idempotent
    resources = LocalResources(tuple(buckets), tuple(databases), tuple(tables), (metrics, alerts), topic_arn)
    logger.info("local resources ready: %d buckets, %d tables", len(buckets), len(tables))
    return resources
