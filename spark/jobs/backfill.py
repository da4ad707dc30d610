"""Glue job: rebuild silver, gold, the DynamoDB export and the realtime minutes of one ``--date`` from bronze.

Bronze is partitioned by *ingest* date, so the events of ``D`` are read from the bronze objects
ingested on ``D - 1`` (producer clock skew) through ``D + --late_days`` (late arrivals; default 7),
of both sources; validated with the core validator, deduplicated (earliest ingested wins), enriched;
silver ``event_date=D`` is overwritten (dynamic partition overwrite), then gold, the export and
``D``'s final realtime minutes (recomputed from the rebuilt silver, so records replayed from quarantine
or arrived late count in the realtime chart too). Rerunning it gives the same bytes of data and the
same items: it only ever replaces ``D``.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dataforge import lake, schemas
from dataforge.settings import Settings
from spark import runtime
from spark.jobs import common, daily_aggregation, export_gold
from spark.transforms import dedupe, enrich, validate

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_LATE_DAYS = 7


def bronze_objects(settings: Settings, day: date, late_days: int = DEFAULT_LATE_DAYS) -> list[tuple[str, str]]:
    """``(key, etag)`` of every bronze object that may hold events of ``day``."""
    from dataforge import aws

    s3 = aws.client("s3", endpoint_url=settings.endpoint_url, region=settings.region)
    bucket = runtime.Lake(settings).bucket(lake.Zone.BRONZE)
    found: list[tuple[str, str]] = []
    for source in lake.Source:
        for offset in range(-1, late_days + 1):
            prefix = f"{lake.TRANSACTIONS_TOPIC}/source={source.value}/ingest_date={day + timedelta(days=offset)}/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                found += [(o["Key"], o["ETag"]) for o in page.get("Contents", [])
                          if o["Key"].endswith(lake.BRONZE_SUFFIX)]
    return sorted(found)


def fingerprint(objects: list[tuple[str, str]]) -> str:
    """What the input of a date's rebuild is: changes exactly when its bronze objects change."""
    digest = hashlib.sha256()
    for key, etag in objects:
        digest.update(f"{key}\0{etag}\n".encode())
    return digest.hexdigest()


def rebuild_silver(spark: SparkSession, settings: Settings, day: date,
                   objects: list[tuple[str, str]]) -> dict[str, int]:
    from pyspark.sql import functions as F

    where = runtime.Lake(settings)
    if not objects:
        runtime.delete(spark, where.silver(day))
        runtime.drop_partition(settings, lake.Zone.SILVER, schemas.SILVER_TRANSACTIONS, day)
        return {"bronze_objects": 0, "silver_rows": 0, "no_fx_rate": 0}
    lines = spark.read.text([where.bronze(key) for key, _ in objects]).withColumnRenamed("value", "raw")
    validated = validate.validate_bronze(lines, common.currencies())
    valid = validate.valid(validated).filter(F.to_date("event_time") == F.lit(day))
    fx, merchants = common.reference_frames(spark)
    enriched = enrich.enrich(dedupe.dedupe_earliest(valid, dedupe.BRONZE_ORDER), fx, merchants).cache()
    silver = enrich.silver_rows(enriched)
    rows = silver.count()
    if rows:
        silver.coalesce(1).write.mode("overwrite").partitionBy("event_date").parquet(where.silver())
        runtime.register_partitions(settings, lake.Zone.SILVER, schemas.SILVER_TRANSACTIONS, where.silver(), [day])
    else:
        runtime.delete(spark, where.silver(day))
    quarantined = common.write_quarantine(spark, settings, enrich.no_rate_rows(enriched), "job=backfill",
                                          partitioned=True)
    enriched.unpersist()
    return {"bronze_objects": len(objects), "silver_rows": rows, "no_fx_rate": quarantined}


def run(spark: SparkSession, settings: Settings, day: date, late_days: int = DEFAULT_LATE_DAYS) -> dict[str, Any]:
    objects = bronze_objects(settings, day, late_days)
    metrics: dict[str, Any] = rebuild_silver(spark, settings, day, objects)
    metrics.update(daily_aggregation.run(spark, settings, day))
    metrics.update(export_gold.run(spark, settings, day))
    # every minute of D holding a payment, from the rebuilt silver; no ``as_of``: a rebuilt minute is final,
    # whatever the speed path counted for it
    silver = runtime.read_table(spark, runtime.Lake(settings).silver(day), schemas.SILVER_TRANSACTIONS, day)
    metrics["realtime_minutes"] = common.upsert_realtime(settings, common.realtime_rows(silver))
    metrics["fingerprint"] = fingerprint(objects)
    common.log_metrics(f"backfill {day}", metrics)
    return metrics


#: A backfill is started by hand for a named date (no trigger starts it): ``--date`` is required.
ARGUMENTS = runtime.JobArguments(required=("date",), optional={"late_days": str(DEFAULT_LATE_DAYS)})


def main(argv: list[str] | None = None) -> None:
    runtime.configure_logging()
    args = ARGUMENTS.parse(sys.argv[1:] if argv is None else argv)
    settings = runtime.settings_from(args)
    run(runtime.session("backfill", settings), settings, runtime.run_date(args), int(args["late_days"]))


if __name__ == "__main__":
    main()
