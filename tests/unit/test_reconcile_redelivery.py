"""`dataforge reconcile` after a redelivered Kafka batch: a landing process that crashed after writing a batch
and before committing its offsets gets the batch again, cut at other offsets, so bronze holds some Kafka
positions twice under two offset-range keys (tests/chaos, experiment ``mapping_sigkill``). Every consumed
record landed, at least once: exact, with the repeated lines counted and explained. A position missing
from bronze and quarantine is still an unexplained difference."""

from __future__ import annotations

import gzip
from datetime import date
from typing import Any

import pytest

from dataforge.bronze import BronzeLines
from dataforge.lake import Source
from dataforge.settings import Settings
from devkit import reconcile
from devkit.local import local_environment

DAY = date(2025, 3, 10)
CHECK = "every consumed Kafka record landed once"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


class _S3:
    """Buckets of objects, read the way ``reconcile`` reads the lake (paginated listings, get_object)."""

    def __init__(self, buckets: dict[str, dict[str, bytes]]) -> None:
        self.buckets = buckets

    def get_paginator(self, _: str) -> Any:
        buckets = self.buckets

        class _Pages:
            def paginate(self, *, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                keys = [k for k in buckets.get(Bucket, {}) if k.startswith(Prefix)]
                return [{"Contents": [{"Key": k} for k in keys]}]

        return _Pages()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": _Body(self.buckets[Bucket][Key])}


class _Table:
    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}


def _batch(first: int, last: int) -> bytes:
    lines = BronzeLines(Source.KAFKA, "t-0@")
    for offset in range(first, last + 1):
        event_id = f"00000000-0000-4000-8000-{offset:012d}"
        raw = b'{"event_id":"%s","event_time":"2025-03-10T00:00:01Z"}' % event_id.encode()
        lines.add(raw, event_id.encode(), offset, b"2025-03-10T00:00:02Z")
    return gzip.compress(lines.body())


def _stream_check(batches: list[tuple[int, int]], consumed: int) -> tuple[reconcile.Check, dict[str, Any]]:
    settings = Settings.from_env(local_environment(endpoint_url="http://127.0.0.1:1", kafka_bootstrap_servers="x:1",
                                                   prefix="unit"))
    lake = settings.lake()
    bronze = {f"transactions/source=kafka/t-0-{a}-{b}.jsonl.gz": _batch(a, b) for a, b in batches}
    s3 = _S3({lake.bronze: bronze})
    sources = reconcile.Sources(s3, _Table(), lambda: reconcile.KafkaOffsets(0, consumed, consumed))
    result = reconcile.reconcile(settings, DAY, sources)
    return next(c for c in result.checks if c.name == CHECK), result.counts


def test_a_batch_redelivered_at_other_offsets_lands_every_record_and_counts_the_repeats() -> None:
    check, counts = _stream_check([(0, 4), (3, 6)], consumed=7)  # offsets 3 and 4 landed twice
    assert check.ok, check.detail
    assert counts["landed from Kafka (all dates)"] == 7
    assert counts["Kafka records landed again after a redelivery (explained)"] == 2


@pytest.mark.parametrize("batches", [[(0, 4)], [(0, 4), (0, 4), (6, 6)]], ids=["tail missing", "offset 5 missing"])
def test_a_consumed_record_missing_from_bronze_is_unexplained(batches: list[tuple[int, int]]) -> None:
    check, _ = _stream_check(batches, consumed=7)
    assert not check.ok
