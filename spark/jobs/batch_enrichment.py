"""Glue job: new bronze batch-file records -> silver, incrementally.

The bronze ``source=file`` objects are read as a file stream with the ``availableNow`` trigger: its
checkpoint (on S3) records which objects were processed, so each run handles only the new ones, on
Glue and locally alike (the role Glue job bookmarks play for DynamicFrames; see docs/spark.md).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from dataforge import lake
from dataforge.settings import Settings
from spark import runtime
from spark.jobs import common
from spark.transforms import dedupe, enrich, validate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULTS = {"checkpoint_location": "", "max_files_per_trigger": "1000"}
ARGUMENTS = runtime.JobArguments(optional=DEFAULTS)


def run(spark: SparkSession, settings: Settings, **options: str) -> dict[str, Any]:
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v}}
    where = runtime.Lake(settings)
    checkpoint = (opts["checkpoint_location"] or where.state("batch_enrichment/checkpoint")).rstrip("/")
    base = where.bronze(f"{lake.TRANSACTIONS_TOPIC}/source={lake.Source.FILE.value}/")
    metrics: Counter[str] = Counter()
    if not runtime.exists(spark, base):
        return dict(metrics)
    lines = (spark.readStream.format("text").option("maxFilesPerTrigger", opts["max_files_per_trigger"])
             .option("pathGlobFilter", f"*{lake.BRONZE_SUFFIX}").option("recursiveFileLookup", "true")
             .load(base).withColumnRenamed("value", "raw"))

    def write(batch: DataFrame, batch_id: int) -> None:
        marker = f"{checkpoint}/sink_commits/{batch_id}"
        if runtime.exists(spark, marker):
            return
        validated = validate.validate_bronze(batch, common.currencies()).persist()
        fx, merchants = common.reference_frames(spark)
        enriched = enrich.enrich(dedupe.dedupe_earliest(validate.valid(validated)), fx, merchants).persist()
        key = f"job=batch/batch={batch_id:012d}"
        rejected = enrich.rejected_rows(validated).unionByName(enrich.no_rate_rows(enriched))
        quarantined = common.write_quarantine(spark, settings, rejected, key, partitioned=False)
        silver = enrich.silver_rows(enriched)
        rows = silver.count()
        common.write_silver(spark, settings, silver, overwrite=False)
        runtime.touch(spark, marker, str(rows))
        metrics.update({"silver_rows": rows, "quarantined": quarantined, "batches": 1})
        enriched.unpersist()
        validated.unpersist()

    query = (lines.writeStream.foreachBatch(write).option("checkpointLocation", checkpoint)
             .trigger(availableNow=True).queryName("batch_enrichment").start())
    query.awaitTermination()
    common.log_metrics("batch_enrichment", dict(metrics))
    return dict(metrics)


def main(argv: list[str] | None = None) -> None:
    runtime.configure_logging()
    args = ARGUMENTS.parse(sys.argv[1:] if argv is None else argv)
    settings = runtime.settings_from(args)
    run(runtime.session("batch_enrichment", settings), settings, **{k: args[k] for k in DEFAULTS})


if __name__ == "__main__":
    main()
