"""Enrichment to silver: USD amount by event date (FX "latest on or before") and merchant attributes.

Valid records whose currency has no rate on or before their ``event_date`` cannot be converted: they
leave as quarantine rows (reason ``no_fx_rate``) instead of silver rows. Money stays decimal:
``amount_usd = bround(amount * usd_rate, 2)`` (half-even, per record), on exact DECIMAL arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Final

from dataforge.contract import Reason
from dataforge.reference import UNKNOWN_MERCHANT, FxTable, Merchant
from dataforge.schemas import QUARANTINE, SILVER_TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OPEN_END: Final = date(9999, 12, 31)


def fx_frame(spark: SparkSession, fx: FxTable) -> DataFrame:
    """``currency, valid_from, valid_to, usd_rate``: each rate holds from its date until the next one."""
    from pyspark.sql import types as t

    rows = []
    by_currency: dict[str, list[tuple[date, object]]] = {}
    for rate in fx.rates:
        by_currency.setdefault(rate.currency, []).append((rate.rate_date, rate.usd_per_unit))
    for currency, dated in by_currency.items():
        dated.sort(key=lambda item: item[0])
        for index, (start, value) in enumerate(dated):
            end = dated[index + 1][0] if index + 1 < len(dated) else OPEN_END
            rows.append((currency, start, end, value))
    schema = t.StructType([
        t.StructField("fx_currency", t.StringType(), False),
        t.StructField("valid_from", t.DateType(), False),
        t.StructField("valid_to", t.DateType(), False),
        t.StructField("usd_rate", t.DecimalType(18, 8), False),
    ])
    return spark.createDataFrame(rows, schema)


def merchants_frame(spark: SparkSession, merchants: Mapping[str, Merchant]) -> DataFrame:
    from pyspark.sql import types as t

    schema = t.StructType([t.StructField(n, t.StringType(), False)
                           for n in ("ref_merchant_id", "merchant_name", "merchant_category", "merchant_tier")])
    rows = [(m.merchant_id, m.name, m.category, m.tier) for m in merchants.values()]
    return spark.createDataFrame(rows, schema)


def enrich(valid: DataFrame, fx: DataFrame, merchants: DataFrame) -> DataFrame:
    """Valid events (``validate.valid``, with ``source``, ``position``, ``ingested_at``, ``raw``) ->
    the same rows with ``event_date``, ``usd_rate`` (null: no rate), ``amount_usd`` and merchant columns.
    Split the result with :func:`silver_rows` and :func:`no_rate_rows`."""
    from pyspark.sql import functions as F

    dated = valid.withColumn("event_date", F.to_date(F.col("event_time")))
    joined = dated.join(
        F.broadcast(fx),
        (dated["currency"] == fx["fx_currency"]) & (dated["event_date"] >= fx["valid_from"])
        & (dated["event_date"] < fx["valid_to"]),
        "left",
    ).drop("fx_currency", "valid_from", "valid_to")
    enriched = joined.join(F.broadcast(merchants), joined["merchant_id"] == merchants["ref_merchant_id"], "left")
    return (
        enriched.drop("ref_merchant_id")
        .withColumn("amount_usd", F.bround(F.col("amount") * F.col("usd_rate"), 2).cast("decimal(18,2)"))
        .withColumn("merchant_name", F.coalesce(F.col("merchant_name"), F.lit(UNKNOWN_MERCHANT)))
        .withColumn("merchant_category", F.coalesce(F.col("merchant_category"), F.lit(UNKNOWN_MERCHANT)))
        .withColumn("merchant_tier", F.coalesce(F.col("merchant_tier"), F.lit(UNKNOWN_MERCHANT)))
    )


def silver_rows(enriched: DataFrame) -> DataFrame:
    """Rows that have a rate, in the silver table's column order and types."""
    from pyspark.sql import functions as F

    from spark.schemas import spark_type

    return enriched.filter(F.col("usd_rate").isNotNull()).select(
        *(F.col(c.name).cast(spark_type(c.type)).alias(c.name) for c in SILVER_TRANSACTIONS.all_columns)
    )


def no_rate_rows(enriched: DataFrame) -> DataFrame:
    """Rows without a rate on or before their event date, as QUARANTINE rows (+ ``event_date``)."""
    from pyspark.sql import functions as F

    return enriched.filter(F.col("usd_rate").isNull()).select(
        F.lit(Reason.NO_FX_RATE.value).alias("reason"),
        F.lit("currency").alias("field"),
        F.concat(F.lit("no FX rate for "), F.col("currency"), F.lit(" on or before "),
                 F.col("event_date").cast("string")).alias("detail"),
        F.col("raw"), F.col("source"), F.col("position"), F.col("ingested_at"),
        F.col("event_date"),
    )


def rejected_rows(validated: DataFrame) -> DataFrame:
    """Records that failed validation, as QUARANTINE rows (used for bronze re-validation only: Kafka
    rejects are quarantined by the landing Lambda, the system of record for raw data)."""
    from pyspark.sql import functions as F

    return validated.filter(F.col("reason").isNotNull()).select(
        F.col("reason"), F.col("reject_field").alias("field"), F.col("detail"), F.col("raw"),
        F.col("source"), F.col("position"), F.col("ingested_at"),
        F.to_date(F.col("ingested_at")).alias("event_date"),
    )


QUARANTINE_COLUMNS: Final = QUARANTINE.column_names
