"""Steps shared by the jobs: reference frames, silver/quarantine writes, DynamoDB upserts."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from dataforge import lake, schemas, serving
from dataforge.reference import default_fx, default_merchants
from dataforge.settings import Settings
from spark import runtime
from spark.transforms import dedupe, enrich, kpis

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)


def reference_frames(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    return enrich.fx_frame(spark, default_fx()), enrich.merchants_frame(spark, default_merchants())


def currencies() -> frozenset[str]:
    return default_fx().currencies


def write_silver(spark: SparkSession, settings: Settings, silver: DataFrame, *, overwrite: bool) -> list[date]:
    """Append (streaming, incremental) or overwrite the touched ``event_date`` partitions (backfill);
    registers the partitions in the Glue catalog. Returns the dates written."""
    where = runtime.Lake(settings)
    written = sorted(r["event_date"] for r in silver.select("event_date").distinct().collect())
    if written:
        (silver.repartition("event_date").write.mode("overwrite" if overwrite else "append")
         .partitionBy("event_date").parquet(where.silver()))
        runtime.register_partitions(settings, lake.Zone.SILVER, schemas.SILVER_TRANSACTIONS, where.silver(), written)
    return written


def write_quarantine(spark: SparkSession, settings: Settings, rows: DataFrame, key: str, *, partitioned: bool) -> int:
    """QUARANTINE rows (gzip JSON lines) under ``enrichment/<key>``: overwritten per key (a retried
    micro-batch) or per ``event_date`` partition (a rebuilt date)."""
    count = rows.count()
    uri = runtime.Lake(settings).quarantine(key)
    if count == 0:
        return 0
    writer = rows.coalesce(1).write.mode("overwrite").option("compression", "gzip")
    if partitioned:
        writer.partitionBy("event_date").json(uri)
    else:
        writer.json(uri)
    return count


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts  # the Glue/local sessions run in UTC


def upsert_realtime(settings: Settings, minutes: DataFrame, as_of: datetime | None = None) -> int:
    """Whole-item upserts of realtime minute rows (ADR 0001 keys): idempotent. These are the *final*
    minutes (ADR 0014); ``as_of``, the newest Kafka timestamp of the micro-batch, tells the API which
    speed-path counts Spark has seen; ``newest_event_time``, when the rows carry it, feeds freshness."""
    table = runtime.dynamodb_table(settings)
    count = 0
    columns = set(minutes.columns)
    with table.batch_writer(overwrite_by_pkeys=[serving.PK, serving.SK]) as batch:
        for row in minutes.collect():
            minute = _aware(row["minute"])
            item: serving.RealtimeItem = {
                "pk": serving.realtime_pk(minute), "sk": serving.realtime_sk(minute),
                "minute": serving.realtime_sk(minute),
                "txn_count": int(row["txn_count"]), "approved_count": int(row["approved_count"]),
                "declined_count": int(row["declined_count"]), "volume_usd": row["volume_usd"],
                "decline_rate": row["decline_rate"],
            }
            extra: dict[str, object] = {}
            if as_of is not None:
                extra["as_of"] = serving.instant(_aware(as_of))
            if "newest_event_time" in columns and row["newest_event_time"] is not None:
                extra["newest_event_time"] = serving.instant(_aware(row["newest_event_time"]))
            batch.put_item(Item=serving.without_none({**item, **extra}))
            count += 1
    return count


def refresh_realtime(spark: SparkSession, settings: Settings, touched: Iterable[datetime],
                     as_of: datetime | None = None) -> int:
    """Recompute the touched minutes from silver (deduplicated) and upsert them: the items are a
    pure function of silver, so a retried or late micro-batch converges to the same values."""
    from pyspark.sql import functions as F

    minutes = sorted(set(touched))
    if not minutes:
        return 0
    days = sorted({m.date() for m in minutes})
    where = runtime.Lake(settings)
    frames = [runtime.read_table(spark, where.silver(d), schemas.SILVER_TRANSACTIONS, d) for d in days]
    silver = frames[0]
    for frame in frames[1:]:
        silver = silver.unionByName(frame)
    wanted = spark.createDataFrame([(m,) for m in minutes], "minute timestamp")
    scoped = silver.withColumn("minute", F.date_trunc("minute", F.col("event_time"))).join(
        F.broadcast(wanted), "minute", "left_semi").drop("minute")
    return upsert_realtime(settings, realtime_rows(scoped), as_of)


def realtime_rows(silver: DataFrame) -> DataFrame:
    """The realtime minute rows of ``silver`` (deduplicated first): one per minute holding a payment, with
    that minute's newest payment time (``upsert_realtime`` writes them)."""
    from pyspark.sql import functions as F

    deduped = dedupe.dedupe_earliest(silver, dedupe.SILVER_ORDER)
    newest = (deduped.filter(F.col("event_type") == "payment")
              .groupBy(F.date_trunc("minute", F.col("event_time")).alias("minute"))
              .agg(F.max("event_time").alias("newest_event_time")))
    return kpis.realtime_minutes(deduped).join(newest, "minute", "left")


def to_date(text: str) -> date:
    return date.fromisoformat(text)


def log_metrics(job: str, metrics: dict[str, Any]) -> None:
    logger.info("%s %s", job, " ".join(f"{k}={v}" for k, v in sorted(metrics.items())))
