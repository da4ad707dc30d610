"""Lake layout: bucket naming rules and deterministic, input-derived object keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dataforge.errors import LakeLayoutError
from dataforge.lake import (
    FilePosition,
    KafkaBatchPosition,
    SupportBucket,
    Zone,
    bronze_key,
    bucket_name,
    glue_database,
    gold_prefix,
    raw_archive_key,
    silver_prefix,
)

T0 = datetime(2026, 11, 26, 9, 59, 59, tzinfo=UTC)


def test_bucket_names_per_environment() -> None:
    assert bucket_name("acme-df", "prod", Zone.BRONZE) == "acme-df-prod-bronze"
    assert bucket_name("dataforge", "dev", SupportBucket.ATHENA_RESULTS) == "dataforge-dev-athena-results"
    assert len({bucket_name("dataforge", env, z) for env in ("dev", "prod") for z in Zone}) == 2 * len(Zone)


@pytest.mark.parametrize("prefix", ["Acme", "acme_df", "a" * 60, "-acme", "acme--x"])
def test_bucket_names_that_s3_refuses_are_refused(prefix: str) -> None:
    with pytest.raises(LakeLayoutError, match="not a valid S3 bucket name"):
        bucket_name(prefix, "dev", Zone.SILVER)


def test_glue_database_names_take_no_hyphens() -> None:
    assert glue_database("acme-df", "staging", Zone.GOLD) == "acme_df_staging_gold"


def test_kafka_batch_key_is_a_function_of_the_input_only() -> None:
    first = KafkaBatchPosition("transactions", 2, 1000, 1499, T0)
    again = KafkaBatchPosition("transactions", 2, 1000, 1499, T0)
    assert bronze_key(first) == bronze_key(again)
    assert bronze_key(first) == (
        "transactions/source=kafka/ingest_date=2026-11-26/ingest_hour=09/"
        "transactions-2-00000000000000001000-00000000000000001499.jsonl.gz"
    )
    assert bronze_key(first, Zone.QUARANTINE) == bronze_key(first)  # same key, other bucket
    assert bronze_key(KafkaBatchPosition("transactions", 2, 1500, 1999, T0)) != bronze_key(first)
    assert bronze_key(KafkaBatchPosition("transactions", 1, 1000, 1499, T0)) != bronze_key(first)
    assert raw_archive_key(first).startswith("stream/ingest_date=2026-11-26/ingest_hour=09/transactions-2-")


def test_offsets_sort_lexicographically() -> None:
    keys = [bronze_key(KafkaBatchPosition("t", 0, o, o + 9, T0)) for o in (5, 50, 500, 5000)]
    assert keys == sorted(keys)


def test_partition_uses_utc_whatever_the_offset() -> None:
    local = T0.astimezone(timezone(timedelta(hours=5)))
    assert bronze_key(KafkaBatchPosition("t", 0, 1, 1, local)) == bronze_key(KafkaBatchPosition("t", 0, 1, 1, T0))


def test_file_key_depends_on_object_version() -> None:
    v1 = FilePosition("landing", "drops/2026/11/26/batch 01.csv", "v1", T0)
    v2 = FilePosition("landing", "drops/2026/11/26/batch 01.csv", "v2", T0)
    assert bronze_key(v1) == bronze_key(FilePosition("landing", "drops/2026/11/26/batch 01.csv", "v1", T0))
    assert bronze_key(v1) != bronze_key(v2)
    assert "/source=file/" in bronze_key(v1)
    assert " " not in bronze_key(v1)


@pytest.mark.parametrize(
    ("partition", "first", "last"), [(-1, 0, 0), (0, -1, 0), (0, 10, 9)]
)
def test_bad_positions_are_refused(partition: int, first: int, last: int) -> None:
    with pytest.raises(LakeLayoutError):
        KafkaBatchPosition("t", partition, first, last, T0)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(LakeLayoutError, match="timezone-aware"):
        bronze_key(KafkaBatchPosition("t", 0, 0, 0, datetime(2026, 1, 1)))


def test_bronze_keys_only_for_bronze_and_quarantine() -> None:
    with pytest.raises(LakeLayoutError):
        bronze_key(KafkaBatchPosition("t", 0, 0, 0, T0), Zone.SILVER)


def test_table_prefixes() -> None:
    assert silver_prefix(date(2026, 11, 26)) == "transactions/event_date=2026-11-26/"
    assert gold_prefix() == "daily_kpis/"
