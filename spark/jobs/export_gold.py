"""Glue job: gold KPIs of one ``--date`` -> DynamoDB items (ADR 0001 keys), idempotently.

Every row is upserted whole under each of its keys (``serving.kpi_items``); items of that date
whose grain is no longer in gold (a rebuilt date) are deleted, so the table mirrors gold exactly.
Without ``--date`` (the nightly workflow's start, after ``daily_aggregation``) the date is yesterday
in UTC, the date ``daily_aggregation`` aggregated in the same workflow run.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key

from dataforge import schemas, serving
from dataforge.settings import Settings
from spark import runtime
from spark.jobs import common

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run(spark: SparkSession, settings: Settings, day: date, *, session: Any = None) -> dict[str, int]:
    """Export gold of ``day``; ``session``: an injected ``boto3.Session`` for DynamoDB (default: a new one)."""
    where = runtime.Lake(settings)
    rows = [r.asDict() for r in runtime.read_table(spark, where.gold(day), schemas.GOLD_DAILY_KPIS, day).collect()]
    table = runtime.dynamodb_table(settings, session)
    items = [item for row in rows for item in serving.kpi_items(row, day)]
    wanted = {(str(i["pk"]), str(i["sk"])) for i in items}
    stale: set[tuple[str, str]] = set()
    query: dict[str, Any] = {"KeyConditionExpression": Key(serving.PK).eq(serving.kpi_date_pk(day))}
    while True:
        page = table.query(**query)
        for old in page["Items"]:
            merchant, country, channel = str(old["sk"]).split("#")
            stale.update(k for k in serving.kpi_item_keys(day, merchant, country, channel) if k not in wanted)
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    with table.batch_writer(overwrite_by_pkeys=[serving.PK, serving.SK]) as batch:
        for item in items:
            batch.put_item(Item=item)
        for pk, sk in stale:
            batch.delete_item(Key={serving.PK: pk, serving.SK: sk})
    metrics = {"items_upserted": len(items), "items_deleted": len(stale)}
    common.log_metrics(f"export_gold {day}", metrics)
    return metrics


#: ``--date`` (``YYYY-MM-DD``) is optional: the nightly workflow's trigger passes none, and the job
#: then aggregates yesterday in UTC (``runtime.run_date``).
ARGUMENTS = runtime.JobArguments(optional={"date": ""})


def main(argv: list[str] | None = None, clock: runtime.Clock = runtime.utc_now) -> None:
    runtime.configure_logging()
    args = ARGUMENTS.parse(sys.argv[1:] if argv is None else argv)
    settings = runtime.settings_from(args)
    run(runtime.session("export_gold", settings), settings, runtime.run_date(args, clock))


if __name__ == "__main__":
    main()
