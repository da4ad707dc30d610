"""One event per ``event_id``: the earliest ingested record wins (ARCHITECTURE.md, KPI definitions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

BRONZE_ORDER: tuple[str, ...] = ("ingested_at", "position")
SILVER_ORDER: tuple[str, ...] = ("ingested_at", "source", "transaction_id")


def dedupe_earliest(df: DataFrame, order: Sequence[str] = BRONZE_ORDER, key: str = "event_id") -> DataFrame:
    """Keep, per ``key``, the row that sorts first by ``order`` (ascending; ties broken by the order
    columns only, so the choice is deterministic when they differ)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(key).orderBy(*(F.col(c).asc_nulls_last() for c in order))
    return df.withColumn("_rank", F.row_number().over(window)).filter(F.col("_rank") == 1).drop("_rank")


def dedupe_within_watermark(df: DataFrame, delay: str, time_column: str = "ingested_at",
                            key: str = "event_id") -> DataFrame:
    """Streaming dedupe by ``key`` with state kept for ``delay`` of *ingest* time.

    The watermark is on ingest time, not event time: a retry arrives shortly after the original, while
    an event that is late by event time is still a new event and must reach silver (its date's gold is
    then rebuilt), never be dropped as "too late". Records without an id (invalid ones) are keyed by
    their position so that they are never merged.
    """
    from pyspark.sql import functions as F

    keyed = df.withColumn("_dedupe_key", F.coalesce(F.col(key), F.concat(F.lit("invalid:"), F.col("position"))))
    return keyed.withWatermark(time_column, delay).dropDuplicatesWithinWatermark(["_dedupe_key"]).drop("_dedupe_key")
