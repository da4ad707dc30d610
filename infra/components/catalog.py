"""Catalog: one Glue database per zone and the lake's tables, generated from the schema-v1 contract,
with partition projection so Athena never needs ``MSCK REPAIR`` or crawlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge.lake import GOLD_DAILY_KPIS, SILVER_TRANSACTIONS, TRANSACTIONS_TOPIC, Zone, glue_database
from dataforge.schemas import GOLD_DAILY_KPIS as GOLD_TABLE
from dataforge.schemas import QUARANTINE, RAW_EVENT, Column, Table, glue_columns
from dataforge.schemas import SILVER_TRANSACTIONS as SILVER_TABLE
from infra.refs import CatalogRefs, LakeRefs

PROJECTION_START: Final = "2024-01-01"
JSON_SERDE: Final = "org.openx.data.jsonserde.JsonSerDe"
PARQUET: Final = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}
TEXT: Final = {
    "input_format": "org.apache.hadoop.mapred.TextInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "serde": JSON_SERDE,
}
INGEST_PARTITIONS: Final = (Column("source", "string", False, "kafka or file"),
                            Column("ingest_date", "string", False, "UTC ingest date"),
                            Column("ingest_hour", "string", False, "UTC ingest hour, 00-23"))
INGEST_METADATA: Final = (Column("_source_position", "string", True, "topic-partition@offset or file#line"),
                          Column("_ingested_at", "string", True, "when the record was landed"))


def ingest_projection(location: str) -> dict[str, str]:
    return {
        "projection.enabled": "true",
        "projection.source.type": "enum", "projection.source.values": "kafka,file",
        "projection.ingest_date.type": "date", "projection.ingest_date.format": "yyyy-MM-dd",
        "projection.ingest_date.range": f"{PROJECTION_START},NOW", "projection.ingest_date.interval": "1",
        "projection.ingest_date.interval.unit": "DAYS",
        "projection.ingest_hour.type": "integer", "projection.ingest_hour.range": "0,23",
        "projection.ingest_hour.digits": "2",
        "storage.location.template":
            f"{location}source=${{source}}/ingest_date=${{ingest_date}}/ingest_hour=${{ingest_hour}}",
    }


def event_date_projection(location: str) -> dict[str, str]:
    return {
        "projection.enabled": "true",
        "projection.event_date.type": "date", "projection.event_date.format": "yyyy-MM-dd",
        "projection.event_date.range": f"{PROJECTION_START},NOW", "projection.event_date.interval": "1",
        "projection.event_date.interval.unit": "DAYS",
        "storage.location.template": f"{location}event_date=${{event_date}}",
    }


@dataclass(frozen=True, slots=True)
class CatalogArgs:
    name_prefix: str
    env: str
    lake: LakeRefs  # the zones' buckets


class Catalog(pulumi.ComponentResource):
    refs: CatalogRefs

    def __init__(self, name: str, args: CatalogArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:catalog:Catalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        databases: dict[Zone, pulumi.Output[str]] = {}
        database_arns: dict[Zone, pulumi.Output[str]] = {}
        table_arns: dict[Zone, pulumi.Output[str]] = {}
        dbs: dict[Zone, aws.glue.CatalogDatabase] = {}
        for zone in Zone:
            db = aws.glue.CatalogDatabase(f"{name}-{zone.value}-db",
                                          name=glue_database(args.name_prefix, args.env, zone),
                                          description=f"DataForge {args.env} {zone.value} zone", opts=child)
            dbs[zone] = db
            databases[zone] = db.name
            database_arns[zone] = db.arn
            table_arns[zone] = pulumi.Output.concat(
                db.arn.apply(lambda arn: arn.replace(":database/", ":table/", 1)), "/*")
        catalog_arn = dbs[Zone.LANDING].arn.apply(lambda arn: arn.split(":database/", 1)[0] + ":catalog")
        specs: tuple[tuple[Zone, Table, str, dict[str, str], tuple[Column, ...], tuple[Column, ...], str], ...] = (
            (Zone.BRONZE, RAW_EVENT, f"{TRANSACTIONS_TOPIC}/", TEXT, RAW_EVENT.columns + INGEST_METADATA,
             INGEST_PARTITIONS, "ingest"),
            (Zone.QUARANTINE, QUARANTINE, f"{TRANSACTIONS_TOPIC}/", TEXT, QUARANTINE.columns, INGEST_PARTITIONS,
             "ingest"),
            (Zone.SILVER, SILVER_TABLE, f"{SILVER_TRANSACTIONS}/", PARQUET, SILVER_TABLE.columns,
             SILVER_TABLE.partition_keys, "event_date"),
            (Zone.GOLD, GOLD_TABLE, f"{GOLD_DAILY_KPIS}/", PARQUET, GOLD_TABLE.columns, GOLD_TABLE.partition_keys,
             "event_date"),
        )
        for zone, table, prefix, fmt, columns, partitions, projection in specs:
            bucket = args.lake[zone].name

            def parameters(bucket_name: str, prefix: str = prefix, projection: str = projection,
                           fmt: dict[str, str] = fmt) -> dict[str, str]:
                location = f"s3://{bucket_name}/{prefix}"
                params = ingest_projection(location) if projection == "ingest" else event_date_projection(location)
                params["classification"] = "json" if fmt is TEXT else "parquet"
                if fmt is PARQUET:
                    params["parquet.compression"] = "SNAPPY"
                return params

            aws.glue.CatalogTable(
                f"{name}-{zone.value}-{table.name}", name=table.name, database_name=dbs[zone].name,
                table_type="EXTERNAL_TABLE",
                parameters=pulumi.Output.from_input(bucket).apply(parameters),
                partition_keys=[{"name": c["Name"], "type": c["Type"], "comment": c["Comment"]}
                                for c in glue_columns(partitions)],
                storage_descriptor={
                    "location": pulumi.Output.concat("s3://", bucket, "/", prefix),
                    "input_format": fmt["input_format"], "output_format": fmt["output_format"],
                    "compressed": fmt is TEXT,
                    "ser_de_info": {"serialization_library": fmt["serde"],
                                    "parameters": {"ignore.malformed.json": "true"} if fmt is TEXT else {}},
                    "columns": [{"name": c["Name"], "type": c["Type"], "comment": c["Comment"]}
                                for c in glue_columns(columns)],
                },
                opts=child)
        self.refs = CatalogRefs(catalog_arns=(catalog_arn,), databases=databases, database_arns=database_arns,
                                table_arns=table_arns)
        self.register_outputs({f"{zone.value}_database": db for zone, db in databases.items()})
