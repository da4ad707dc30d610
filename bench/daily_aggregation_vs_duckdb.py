"""Daily aggregation (gold KPIs) with local Spark vs. DuckDB on the same Parquet files (issue 5).

    .venv/bin/python bench/daily_aggregation_vs_duckdb.py [--rows 10000000] [--dir /tmp/df-bench]

Writes ``rows`` synthetic silver rows of one date (1 % duplicated event ids, ~3 % refunds, 10 %
declines, 200 merchants x 12 countries x 3 channels) as Parquet with the silver schema, then, in the
same run, times:

- Spark (``local[2]``, the Glue-like session): read -> dedupe by event_id (earliest ingested) ->
  ``spark.transforms.kpis.daily_kpis`` -> collect;
- DuckDB: the same dedupe and the same KPI SQL (integer half-even ratios), over the same files.

Both engines get the same memory (``--memory-gb``, default half of RAM): Spark's driver heap (in local
mode the executor too) and DuckDB's ``memory_limit``.

Checks that both give identical rows, prints the best of ``--rounds`` timings of each, and as the
last lines the goal and the
ratio Spark/DuckDB (goal: <= 4). The files live on local disk: this measures the engines, not S3.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from decimal import Decimal
from pathlib import Path

GOAL_RATIO = 4.0

DUCKDB_SQL = """
WITH silver AS (SELECT * FROM read_parquet('{path}/*/*.parquet', hive_partitioning = true)),
d AS (
  SELECT * FROM silver
  QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingested_at, source, transaction_id) = 1
),
g AS (
  SELECT event_date,
         CASE WHEN grouping(merchant_id) = 1 THEN '*' ELSE merchant_id END AS merchant_id,
         CASE WHEN grouping(country) = 1 THEN '*' ELSE country END AS country,
         CASE WHEN grouping(channel) = 1 THEN '*' ELSE channel END AS channel,
         count(*) FILTER (WHERE event_type = 'payment') AS txn_count,
         count(*) FILTER (WHERE event_type = 'payment' AND status = 'approved') AS approved_count,
         count(*) FILTER (WHERE event_type = 'payment' AND status = 'declined') AS declined_count,
         coalesce(sum(amount_usd) FILTER (WHERE event_type = 'payment' AND status = 'approved'), 0)
             ::DECIMAL(18,2) AS gross_volume_usd,
         count(*) FILTER (WHERE event_type = 'refund' AND status = 'approved') AS refund_count,
         coalesce(sum(amount_usd) FILTER (WHERE event_type = 'refund' AND status = 'approved'), 0)
             ::DECIMAL(18,2) AS refund_volume_usd,
         count(DISTINCT account_id) FILTER (WHERE event_type = 'payment') AS unique_accounts
  FROM d
  GROUP BY GROUPING SETS ((event_date, merchant_id, country, channel), (event_date))
)
SELECT *, CAST((gross_volume_usd * 100) AS BIGINT) AS gross_cents FROM g
"""


def half_even(num: int, den: int, scale: int) -> Decimal | None:
    if den == 0:
        return None
    n = num * 10**scale
    q, r = divmod(n, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return Decimal(q).scaleb(-scale)


def write_silver(spark, path: Path, rows: int) -> None:
    from pyspark.sql import functions as F

    from dataforge.schemas import SILVER_TRANSACTIONS
    from spark.schemas import spark_type

    ids = spark.range(rows).withColumn("k", F.when(F.col("id") % 100 == 99, F.col("id") - 1).otherwise(F.col("id")))
    h = F.xxhash64("id")
    df = ids.select(
        F.format_string("00000000-0000-4000-8000-%012d", "k").alias("event_id"),
        F.when(F.abs(h) % 100 < 3, "refund").otherwise("payment").alias("event_type"),
        F.lit(1).alias("schema_version"),
        (F.lit("2025-03-10 00:00:00").cast("timestamp") + F.expr("make_interval(0,0,0,0,0,0, id % 86400)"))
        .alias("event_time"),
        F.format_string("txn_%d", "id").alias("transaction_id"),
        F.format_string("acc_%07d", F.abs(F.xxhash64("k", F.lit(1))) % 500000).alias("account_id"),
        F.format_string("mrc_%04d", F.abs(F.xxhash64("k", F.lit(2))) % 200).alias("merchant_id"),
        (F.abs(F.xxhash64("k", F.lit(3))) % 100000 / 100).cast("decimal(18,2)").alias("amount"),
        F.lit("USD").alias("currency"),
        F.when(F.abs(F.xxhash64("k", F.lit(4))) % 10 == 0, "declined").otherwise("approved").alias("status"),
        F.lit(None).cast("string").alias("decline_reason"),
        F.element_at(F.array(*map(F.lit, ("web", "mobile", "pos"))),
                     (F.abs(F.xxhash64("k", F.lit(5))) % 3 + 1).cast("int")).alias("channel"),
        F.element_at(F.array(*map(F.lit, ("US", "GB", "DE", "FR", "JP", "BR", "MX", "CA", "AU", "IN", "SG", "PL"))),
                     (F.abs(F.xxhash64("k", F.lit(6))) % 12 + 1).cast("int")).alias("country"),
        F.lit("card").alias("payment_method"),
        F.lit(0.1).alias("risk_score"),
        F.lit(Decimal(1)).cast("decimal(18,8)").alias("usd_rate"),
        (F.abs(F.xxhash64("k", F.lit(3))) % 100000 / 100).cast("decimal(18,2)").alias("amount_usd"),
        F.lit("m").alias("merchant_name"), F.lit("c").alias("merchant_category"), F.lit("t").alias("merchant_tier"),
        F.when(F.col("id") % 2 == 0, "kafka").otherwise("file").alias("source"),
        (F.lit("2025-03-10 00:00:00").cast("timestamp") + F.expr("make_interval(0,0,0,0,0,0, id % 86400 + 60)"))
        .alias("ingested_at"),
        F.lit("2025-03-10").cast("date").alias("event_date"),
    ).select(*(F.col(c.name).cast(spark_type(c.type)) for c in SILVER_TRANSACTIONS.all_columns))
    df.write.mode("overwrite").partitionBy("event_date").parquet(str(path))


def half_of_ram_gb() -> int:
    """Half of physical memory in GiB (at least 2): the same budget for both engines. Left alone,
    DuckDB takes 80 % of RAM while Spark's local session defaults to a 2 GB heap and spills."""
    return max(2, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**31)


def prepare_silver(spark, args: argparse.Namespace) -> None:
    """The silver files of ``args.rows`` rows in ``args.dir``: written, or kept from an earlier run (``--reuse``)."""
    marker = args.dir / "_ROWS"
    started = time.perf_counter()
    if args.reuse and marker.is_file() and marker.read_text() == str(args.rows):
        how = "reused"
    else:
        shutil.rmtree(args.dir, ignore_errors=True)
        write_silver(spark, args.dir, args.rows)
        marker.write_text(str(args.rows))
        how = f"written in {time.perf_counter() - started:.1f}s"
    size = sum(p.stat().st_size for p in args.dir.rglob("*.parquet"))
    print(f"silver: {args.rows:,} rows, {size / 1e6:,.1f} MB Parquet, {how}")


def time_spark(spark, path: Path, rounds: int) -> tuple[float, list]:
    """Best seconds of ``rounds`` Spark runs (read, dedupe, daily KPIs, collect), and the gold rows."""
    from spark.transforms import dedupe, kpis

    best = float("inf")
    for _ in range(rounds):  # the first round also pays JVM warm-up and code generation
        started = time.perf_counter()
        silver = spark.read.parquet(str(path))
        rows = kpis.daily_kpis(dedupe.dedupe_earliest(silver, dedupe.SILVER_ORDER)).collect()
        best = min(best, time.perf_counter() - started)
    return best, rows


def time_duckdb(path: Path, threads: int, memory_gb: int, rounds: int) -> tuple[float, list[dict]]:
    """Best seconds of ``rounds`` DuckDB runs of ``DUCKDB_SQL``, and the gold rows with Spark's ratios."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_gb}GB'")
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        duck = con.execute(DUCKDB_SQL.format(path=path)).fetchall()
        best = min(best, time.perf_counter() - started)
    cols = [d[0] for d in con.description]
    rows = []
    for values in duck:
        r = dict(zip(cols, values, strict=True))
        r["approval_rate"] = half_even(r["approved_count"], r["txn_count"], 4)
        r["avg_ticket_usd"] = None if r["approved_count"] == 0 else half_even(r["gross_cents"], r["approved_count"], 0)
        r["avg_ticket_usd"] = None if r["avg_ticket_usd"] is None else r["avg_ticket_usd"].scaleb(-2)
        rows.append(r)
    return best, rows


def same_kpis(spark_rows: list, duck_rows: list[dict]) -> bool:
    """Whether both engines give the same KPI values for every (merchant, country, channel)."""

    def key(r):
        return (r["merchant_id"], r["country"], r["channel"])

    check = ("txn_count", "approved_count", "declined_count", "gross_volume_usd", "refund_count",
             "refund_volume_usd", "unique_accounts", "approval_rate", "avg_ticket_usd")
    s = {key(r.asDict()): tuple(r[c] for c in check) for r in spark_rows}
    d = {key(r): tuple(r[c] for c in check) for r in duck_rows}
    return s == d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/dataforge-bench-silver"))
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (Spark runs local[2]).")
    parser.add_argument("--memory-gb", type=int, default=half_of_ram_gb(),
                        help="Memory of each engine: Spark's driver (local mode: driver = executor) and "
                             "DuckDB's memory_limit. Default: half of this machine's RAM.")
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each engine; the best is reported.")
    parser.add_argument("--reuse", action="store_true",
                        help="Keep the silver files of an earlier run with the same --rows and --dir.")
    args = parser.parse_args()

    from devkit.local.spark import build_session

    spark = build_session("bench-daily-aggregation", endpoint_url="", driver_memory=f"{args.memory_gb}g")
    prepare_silver(spark, args)

    spark_s, spark_rows = time_spark(spark, args.dir, args.rounds)
    print(f"spark  local[2], {args.memory_gb} GB: {spark_s:8.2f}s  "
          f"({args.rows / spark_s:,.0f} rows/s, {len(spark_rows)} gold rows)")
    duck_s, duck_rows = time_duckdb(args.dir, args.threads, args.memory_gb, args.rounds)
    print(f"duckdb {args.threads} threads, {args.memory_gb} GB: {duck_s:8.2f}s  "
          f"({args.rows / duck_s:,.0f} rows/s, {len(duck_rows)} gold rows)")

    print(f"results identical: {same_kpis(spark_rows, duck_rows)}")
    spark.stop()
    print(f"goal: Spark within {GOAL_RATIO:.0f}x of DuckDB (ratio <= {GOAL_RATIO:.1f})")
    print(f"ratio spark/duckdb: {spark_s / duck_s:.2f}")


if __name__ == "__main__":
    main()
