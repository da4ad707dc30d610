"""Gold daily KPIs and realtime minute metrics (ARCHITECTURE.md, "KPI definitions"), exactly.

Rates and averages are integer ratios rounded half-even by integer arithmetic (quotient, remainder),
so no intermediate rounding can ever flip a result (Spark's ``round`` is HALF_UP and a decimal
division is itself rounded to a scale of 6 before any ``bround`` could apply).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataforge.schemas import GOLD_DAILY_KPIS, PLATFORM_TOTAL, REALTIME_MINUTE

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def half_even_ratio(numerator: str, denominator: str, scale: int, result_type: str) -> Column:
    """``numerator / denominator`` rounded half-even to ``scale`` decimals, exactly; null when the
    denominator is 0. Both are SQL expressions of non-negative integers (BIGINT range)."""
    from pyspark.sql import functions as F

    n = f"(CAST({numerator} AS BIGINT) * {10 ** scale})"
    d = f"CAST({denominator} AS BIGINT)"
    q = f"({n} div {d})"
    r = f"({n} - {q} * {d})"
    bump = f"CASE WHEN 2 * {r} > {d} OR (2 * {r} = {d} AND {q} % 2 = 1) THEN 1 ELSE 0 END"
    unit = f"CAST(1E-{scale} AS DECIMAL({scale + 1},{scale}))" if scale else "CAST(1 AS DECIMAL(1,0))"
    return F.expr(
        f"CASE WHEN {d} = 0 THEN NULL ELSE CAST(CAST({q} + {bump} AS DECIMAL(20,0)) * {unit} AS {result_type}) END"
    )


def daily_kpis(silver: DataFrame) -> DataFrame:
    """Deduplicated silver rows -> gold rows: one per ``event_date x merchant_id x country x channel``
    plus one platform-total row (``'*'``) per date, with GOLD_DAILY_KPIS' columns and types."""
    from pyspark.sql import functions as F

    payment = F.col("event_type") == "payment"
    approved = F.col("status") == "approved"
    declined = F.col("status") == "declined"
    refund = (F.col("event_type") == "refund") & approved
    base = silver.select(
        "event_date", "merchant_id", "country", "channel",
        F.when(payment, 1).otherwise(0).alias("is_payment"),
        F.when(payment & approved, 1).otherwise(0).alias("is_approved"),
        F.when(payment & declined, 1).otherwise(0).alias("is_declined"),
        F.when(payment & approved, F.col("amount_usd")).alias("approved_usd"),
        F.when(refund, 1).otherwise(0).alias("is_refund"),
        F.when(refund, F.col("amount_usd")).alias("refund_usd"),
        F.when(payment, F.col("account_id")).alias("payment_account"),
    )
    total = f"'{PLATFORM_TOTAL}'"
    grouped = silver.sparkSession.sql(
        f"""
        SELECT event_date,
               CASE WHEN grouping(merchant_id) = 1 THEN {total} ELSE merchant_id END AS merchant_id,
               CASE WHEN grouping(country) = 1 THEN {total} ELSE country END AS country,
               CASE WHEN grouping(channel) = 1 THEN {total} ELSE channel END AS channel,
               CAST(sum(is_payment) AS BIGINT) AS txn_count,
               CAST(sum(is_approved) AS BIGINT) AS approved_count,
               CAST(sum(is_declined) AS BIGINT) AS declined_count,
               CAST(coalesce(sum(approved_usd), 0) AS DECIMAL(18,2)) AS gross_volume_usd,
               CAST(sum(is_refund) AS BIGINT) AS refund_count,
               CAST(coalesce(sum(refund_usd), 0) AS DECIMAL(18,2)) AS refund_volume_usd,
               CAST(count(DISTINCT payment_account) AS BIGINT) AS unique_accounts
        FROM {{base}}
        GROUP BY GROUPING SETS ((event_date, merchant_id, country, channel), (event_date))
        """,
        base=base,
    )
    return grouped.select(
        "merchant_id", "country", "channel", "txn_count", "approved_count", "declined_count",
        half_even_ratio("approved_count", "txn_count", 4, "DECIMAL(5,4)").alias("approval_rate"),
        "gross_volume_usd", "refund_count", "refund_volume_usd",
        (F.col("gross_volume_usd") - F.col("refund_volume_usd")).cast("decimal(18,2)").alias("net_volume_usd"),
        half_even_ratio("gross_volume_usd * 100", "approved_count", 0, "DECIMAL(18,0)")
        .__mul__(F.lit(0.01).cast("decimal(2,2)")).cast("decimal(18,2)").alias("avg_ticket_usd"),
        "unique_accounts", "event_date",
    ).select(*GOLD_DAILY_KPIS.column_names)


def realtime_minutes(silver: DataFrame) -> DataFrame:
    """Deduplicated silver rows -> per event-time minute over payments: counts, approved volume and
    decline rate (REALTIME_MINUTE columns)."""
    from pyspark.sql import functions as F

    payments = silver.filter(F.col("event_type") == "payment")
    grouped = payments.groupBy(F.date_trunc("minute", F.col("event_time")).alias("minute")).agg(
        F.count(F.lit(1)).cast("bigint").alias("txn_count"),
        F.sum(F.when(F.col("status") == "approved", 1).otherwise(0)).cast("bigint").alias("approved_count"),
        F.sum(F.when(F.col("status") == "declined", 1).otherwise(0)).cast("bigint").alias("declined_count"),
        F.coalesce(F.sum(F.when(F.col("status") == "approved", F.col("amount_usd"))), F.lit(0))
        .cast("decimal(18,2)").alias("volume_usd"),
    )
    return grouped.withColumn(
        "decline_rate", half_even_ratio("declined_count", "txn_count", 4, "DECIMAL(5,4)")
    ).select(*REALTIME_MINUTE.column_names)
