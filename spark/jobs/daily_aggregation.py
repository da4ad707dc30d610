"""Glue job: silver for one ``--date`` -> gold daily KPIs (overwrite that date's partition).

    daily_aggregation [--date 2025-03-10] [--DATAFORGE_GOLD_BUCKET ...]

Without ``--date`` (the nightly workflow's scheduled start) the date is yesterday in UTC.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

from dataforge import lake, schemas
from dataforge.settings import Settings
from spark import runtime
from spark.jobs import common
from spark.transforms import dedupe, kpis

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run(spark: SparkSession, settings: Settings, day: date) -> dict[str, int]:
    where = runtime.Lake(settings)
    silver = runtime.read_table(spark, where.silver(day), schemas.SILVER_TRANSACTIONS, day)
    gold = kpis.daily_kpis(dedupe.dedupe_earliest(silver, dedupe.SILVER_ORDER)).cache()
    rows = gold.count()
    if rows == 0:  # nothing for that date (any more): the partition must not keep stale rows
        runtime.delete(spark, where.gold(day))
        runtime.drop_partition(settings, lake.Zone.GOLD, schemas.GOLD_DAILY_KPIS, day)
    else:
        gold.coalesce(1).write.mode("overwrite").partitionBy("event_date").parquet(where.gold())
        runtime.register_partitions(settings, lake.Zone.GOLD, schemas.GOLD_DAILY_KPIS, where.gold(), [day])
    gold.unpersist()
    metrics = {"gold_rows": rows}
    common.log_metrics(f"daily_aggregation {day}", metrics)
    return metrics


#: ``--date`` (``YYYY-MM-DD``) is optional: the nightly workflow's trigger passes none, and the job
#: then aggregates yesterday in UTC (``runtime.run_date``).
ARGUMENTS = runtime.JobArguments(optional={"date": ""})


def main(argv: list[str] | None = None, clock: runtime.Clock = runtime.utc_now) -> None:
    runtime.configure_logging()
    args = ARGUMENTS.parse(sys.argv[1:] if argv is None else argv)
    settings = runtime.settings_from(args)
    run(runtime.session("daily_aggregation", settings), settings, runtime.run_date(args, clock))


if __name__ == "__main__":
    main()
