"""`services env` (which lake, which API) and reconcile's pure rules, without I/O (injected readers)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from dataforge import envvars
from dataforge.errors import ServiceError
from devkit import reconcile
from devkit.local import services
from devkit.local.services import ServicesState

STATE: ServicesState = {
    "version": 1, "started_at": "2026-01-01T00:00:00+00:00", "complete": True,
    "moto": {"pid": 1, "port": 5000, "endpoint_url": "http://127.0.0.1:5000", "log_file": "m.log"},
    "kafka": {"pid": 2, "port": 9092, "controller_port": 9093, "bootstrap_servers": "127.0.0.1:9092",
              "config_file": "k.properties", "data_dir": "k", "log_file": "k.log"},
}
ZONES = ("landing", "bronze", "quarantine", "silver", "gold")


def _lake(prefix: str) -> list[str]:
    return [f"{prefix}-local-{zone}" for zone in ZONES]


def _env(buckets: list[str], *, answers: bool = False, **kwargs: Any) -> services.PlatformEnv:
    return services.platform_env(STATE, bucket_names=lambda _: buckets, api_probe=lambda _: answers, **kwargs)


def test_lake_prefixes_need_every_zone_bucket() -> None:
    assert services.lake_prefixes([*_lake("acme"), "half-local-bronze", "other-dev-bronze"]) == ["acme"]


def test_services_env_names_the_lake_found_on_the_moto_server() -> None:
    found = _env(_lake("acme"))
    assert found.prefix == "acme"
    assert found.env[envvars.GOLD_BUCKET] == "acme-local-gold"
    assert found.env[envvars.METRICS_TABLE] == "acme-local-metrics"
    assert found.env[envvars.GLUE_DATABASE_PREFIX] == "acme_local"
    assert found.env[envvars.AWS_ENDPOINT_URL] == "http://127.0.0.1:5000"
    assert found.env[envvars.KAFKA_BOOTSTRAP_SERVERS] == "127.0.0.1:9092"
    assert found.env[envvars.KAFKA_TOPIC] == "transactions"
    assert found.env[envvars.QUERY_ENGINE] == "duckdb"
    assert found.env["AWS_ACCESS_KEY_ID"] == "testing"
    assert envvars.HOME in found.env
    assert envvars.API_URL not in found.env  # no API answers
    assert envvars.API_KEY not in found.env
    assert any("no API answers" in note for note in found.notes)


def test_services_env_exports_the_api_only_when_it_answers() -> None:
    found = _env(_lake("dataforge"), answers=True, api_url="http://127.0.0.1:8123")
    assert found.env[envvars.API_URL] == "http://127.0.0.1:8123"
    assert found.env[envvars.API_KEY]
    assert found.notes == ()


def test_services_env_prefers_the_default_lake_and_refuses_to_guess_among_several() -> None:
    assert _env(_lake("dataforge") + _lake("acme")).prefix == "dataforge"
    with pytest.raises(ServiceError, match="--prefix"):
        _env(_lake("acme") + _lake("zeta"))
    assert _env(_lake("acme") + _lake("zeta"), prefix="zeta").prefix == "zeta"
    empty = _env([])
    assert empty.prefix == "dataforge"
    assert any("no lake" in note for note in empty.notes)


def _record(event_id: str, minute: str, *, kind: str = "payment", status: str = "approved", amount: str = "1.00",
            source: str = "kafka", at: int = 0) -> reconcile.Record:
    return reconcile.Record(event_id, kind, status, source, minute, Decimal(amount), f"acc-{event_id}",
                            (datetime(2025, 3, 10, 0, at, tzinfo=UTC), source, event_id))


def test_dedupe_keeps_the_earliest_ingested_and_totals_follow_the_kpi_definitions() -> None:
    records = [_record("a", "m1", at=5, amount="9.99"), _record("a", "m1", at=1, amount="2.00"),
               _record("b", "m1", status="declined"), _record("c", "m2", kind="refund", amount="3.00")]
    deduped = reconcile.earliest(records)
    assert {r.event_id: r.amount_usd for r in deduped}["a"] == Decimal("2.00")
    totals = reconcile.silver_totals(deduped)
    assert (totals["txn_count"], totals["approved_count"], totals["declined_count"]) == (2, 1, 1)
    assert (totals["gross_volume_usd"], totals["refund_count"], totals["refund_volume_usd"]) == (
        Decimal("2.00"), 1, Decimal("3.00"))
    assert reconcile.minute_totals(deduped) == {"m1": (2, 1, 1, Decimal("2.00"))}


class _Table:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": self.items}


def test_realtime_counts_only_final_minute_items() -> None:
    final = {"pk": "RT#2025-03-10", "sk": "2025-03-10T00:01Z", "txn_count": 2}
    partial = {"pk": "RT#2025-03-10", "sk": "2025-03-10T00:01Z#transactions-0-1-9", "txn_count": 1}
    flagged = {"pk": "RT#2025-03-10", "sk": "2025-03-10T00:02Z", "txn_count": 1, "provisional": True}
    assert reconcile.realtime_minutes(_Table([final, partial, flagged]), date(2025, 3, 10)) == {
        "2025-03-10T00:01Z": final}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


class _S3:
    """A bucket of objects: the two calls ``reconcile`` reads the lake with."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, _: str) -> Any:
        objects = self.objects

        class _Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": k} for k in objects if k.startswith(kwargs["Prefix"])]}]

        return _Pages()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": _Body(self.objects[Key])}


def test_bronze_lines_with_numbers_beyond_msgspec_are_read() -> None:
    """The contract admits numbers beyond the decoder in unknown members (a poison look-alike of the chaos
    suite); bronze keeps the record as sent, and reconcile still reads it."""
    import gzip

    from dataforge.bronze import BronzeLines
    from dataforge.lake import Source

    event_id = "3f6d2c8a-91b4-4e57-a0c3-5d7e2b9f1a64"
    lines = BronzeLines(Source.KAFKA, "transactions-0@")
    for n, extra in enumerate((b"1e400", b"9" * 5000, b"[-1e999]")):
        raw = b'{"event_id":"%s","event_time":"2025-03-10T00:00:01Z","big":%s}' % (event_id.encode(), extra)
        lines.add(raw, event_id.encode(), n, b"2025-03-10T00:00:02Z")
    s3 = _S3({"transactions/source=kafka/x.jsonl.gz": gzip.compress(lines.body())})
    read = list(reconcile.bronze_records(s3, "bronze"))
    assert [event["event_id"] for event, _ in read] == [event_id] * 3
    assert [event["big"] for event, _ in read] == [float("inf"), "9" * 5000, [float("-inf")]]


@pytest.mark.parametrize("raw", ['{"a":' * 100_000 + "1" + "}" * 100_000, '{"amount": 1e400}', "{'a': None}"])
def test_a_quarantined_record_that_no_decoder_reads_counts_under_its_ingest_date(raw: str) -> None:
    """Quarantine holds what the contract refused, e.g. JSON nested far deeper than a decoder recurses."""
    row = {"raw": raw, "ingested_at": "2025-03-10T23:59:59Z", "reason": "invalid_json"}
    assert reconcile.quarantine_date(row) == date(2025, 3, 10)
