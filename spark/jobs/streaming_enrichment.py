"""Glue streaming job: Kafka ``transactions`` -> silver (append) + final realtime minute items in DynamoDB.

    streaming_enrichment [--trigger availableNow | --trigger "processingTime=30 seconds"]
                         [--checkpoint_location s3://...] [--dedupe_delay "1 hour"]
                         [--max_offsets_per_trigger N] [--starting_offsets earliest]

Per micro-batch (``foreachBatch``): records failing the contract are counted and skipped (the landing
Lambda quarantines them: it is the system of record for raw data); valid ones, deduplicated by
``event_id`` within a watermark on ingest (Kafka) time, are enriched; those without an FX rate go to
quarantine ``enrichment/job=streaming/batch=<id>/``, the rest are appended to silver; the minutes the
batch touched are recomputed from silver and upserted as final, with the batch's newest Kafka timestamp
(``as_of``: the API then prefers them to the speed path's provisional minutes, ADR 0014). A commit
marker per batch id makes a retried batch skip the appends it already made (Spark replays an
uncommitted batch with the same id). A start marker, written before the first append, tells a replay
of a batch whose run died between its silver append and its commit marker (a driver killed, tests/chaos
experiment ``streaming_sigkill``): that replay appends only the rows whose Kafka-source ``event_id`` silver
does not hold yet on the dates they touch, so silver never gets a row twice. Spark runs ``foreachBatch`` at
least once per batch id (Structured Streaming programming guide, "Using Foreach and ForeachBatch":
foreachBatch provides only at-least-once write guarantees; the batchId is the way to deduplicate the
output for an exactly-once guarantee).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from dataforge.settings import Settings
from spark import kafka, runtime
from spark.jobs import common
from spark.transforms import dedupe, enrich, validate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

QUERY_NAME: Final = "streaming_enrichment"  # the streaming query's name (spark.streams.active)

DEFAULTS = {
    "trigger": "availableNow",
    "dedupe_delay": "1 hour",
    "starting_offsets": "earliest",
    "max_offsets_per_trigger": "",
    "checkpoint_location": "",
}
ARGUMENTS = runtime.JobArguments(optional=DEFAULTS)


def source(spark: SparkSession, settings: Settings, starting_offsets: str, max_offsets: str) -> DataFrame:
    from pyspark.sql import functions as F

    reader = (spark.readStream.format("kafka")
              .options(**kafka.source_options(settings))
              .option("startingOffsets", starting_offsets)
              .option("failOnDataLoss", "false"))
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets)
    return reader.load().select(
        F.col("value").alias("raw"),
        F.lit("kafka").alias("source"),
        F.concat_ws("", F.col("topic"), F.lit("-"), F.col("partition").cast("string"), F.lit("@"),
                    F.col("offset").cast("string")).alias("position"),
        F.col("timestamp").alias("ingested_at"),
    )


class BatchWriter:
    """The ``foreachBatch`` function; keeps running totals for the job's metrics."""

    def __init__(self, settings: Settings, checkpoint: str) -> None:
        self.settings = settings
        self.checkpoint = checkpoint.rstrip("/")
        self.metrics: Counter[str] = Counter()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        spark = batch.sparkSession
        batch = batch.persist()
        groups = (batch.groupBy(F.col("reason").isNull().alias("ok"))
                  .agg(F.count(F.lit(1)).alias("n"), F.max("ingested_at").alias("as_of")).collect())
        counts = {r["ok"]: r["n"] for r in groups}
        # the newest Kafka timestamp of the batch: the speed-path counts up to it are in these final minutes
        as_of = max((r["as_of"] for r in groups if r["as_of"] is not None), default=None)
        fx, merchants = common.reference_frames(spark)
        enriched = enrich.enrich(validate.valid(batch), fx, merchants).persist()
        silver = enrich.silver_rows(enriched)
        marker = f"{self.checkpoint}/sink_commits/{batch_id}"
        started = f"{self.checkpoint}/sink_started/{batch_id}"
        if runtime.exists(spark, marker):
            logger.info("batch %d already written (retry): skipping the appends", batch_id)
            silver_rows = 0
            no_rate = 0
        else:
            appended = silver
            if runtime.exists(spark, started):
                logger.warning("batch %d was cut short after it began appending: appending only the rows "
                               "silver does not hold yet", batch_id)
                appended = not_in_silver(spark, self.settings, silver)
            else:
                runtime.touch(spark, started)
            no_rate = common.write_quarantine(spark, self.settings, enrich.no_rate_rows(enriched),
                                              f"job=streaming/batch={batch_id:012d}", partitioned=False)
            silver_rows = appended.count()
            common.write_silver(spark, self.settings, appended, overwrite=False)
            if appended is not silver:
                appended.unpersist()
            runtime.touch(spark, marker, str(silver_rows))
        # every minute of the batch, also those whose rows an earlier, cut-short run appended
        touched = [r["minute"] for r in silver.filter(F.col("event_type") == "payment")
                   .select(F.date_trunc("minute", "event_time").alias("minute")).distinct().collect()]
        minutes = common.refresh_realtime(spark, self.settings, touched, as_of)
        enriched.unpersist()
        batch.unpersist()
        batch_metrics = {"valid": counts.get(True, 0), "invalid_skipped": counts.get(False, 0),
                         "silver_rows": silver_rows, "no_fx_rate": no_rate, "minutes_upserted": minutes}
        self.metrics.update(batch_metrics)
        self.metrics["batches"] += 1
        common.log_metrics(f"streaming_enrichment batch {batch_id}", dict(batch_metrics))


def not_in_silver(spark: SparkSession, settings: Settings, silver: DataFrame) -> DataFrame:
    """The rows of ``silver`` (a micro-batch's) whose ``event_id`` silver does not hold yet as a Kafka-source
    row, on the dates they belong to (persisted: computed once, before the append that follows)."""
    from pyspark.sql import functions as F

    where = runtime.Lake(settings)
    paths = [where.silver(r["event_date"]) for r in silver.select("event_date").distinct().collect()]
    paths = [path for path in paths if runtime.exists(spark, path)]
    if not paths:
        return silver
    held = (spark.read.parquet(*paths).filter(F.col("source") == "kafka").select("event_id").distinct())
    return silver.join(held, "event_id", "left_anti").select(*silver.columns).persist()


def run(spark: SparkSession, settings: Settings, **options: str) -> dict[str, Any]:
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    checkpoint = opts["checkpoint_location"] or runtime.Lake(settings).state("streaming_enrichment/checkpoint")
    stream = source(spark, settings, opts["starting_offsets"], opts["max_offsets_per_trigger"])
    validated = validate.validate_events(stream, common.currencies())
    deduped = dedupe.dedupe_within_watermark(validated, opts["dedupe_delay"])
    writer = BatchWriter(settings, checkpoint)
    query = deduped.writeStream.foreachBatch(writer).option("checkpointLocation", checkpoint)
    trigger = opts["trigger"]
    if trigger == "availableNow":
        query = query.trigger(availableNow=True)
    elif trigger.startswith("processingTime="):
        query = query.trigger(processingTime=trigger.split("=", 1)[1])
    else:
        raise ValueError(f"--trigger must be availableNow or processingTime=<interval>, got {trigger!r}")
    handle = query.queryName(QUERY_NAME).start()
    handle.awaitTermination()
    return dict(writer.metrics)


def main(argv: list[str] | None = None) -> None:
    runtime.configure_logging()
    args = ARGUMENTS.parse(sys.argv[1:] if argv is None else argv)
    settings = runtime.settings_from(args)
    run(runtime.session("streaming_enrichment", settings), settings,
        **{k: args[k] for k in DEFAULTS})


if __name__ == "__main__":
    main()
