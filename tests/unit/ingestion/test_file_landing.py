from __future__ import annotations

import gzip
import logging
from datetime import UTC, datetime

import pytest

from dataforge.bronze import decode_lines
from dataforge.contract import Validator
from dataforge.reference import default_fx
from devkit.generator import GeneratorConfig, generate_events, summary
from lambdas.common.config import LandingConfig
from lambdas.common.file_landing import FileLanding
from tests.fixtures.failing_validator import FAILURE, FailingValidator
from tests.unit.ingestion.memory_store import MemoryStore

CONFIG = LandingConfig("bronze", "quarantine", "landing", False, None, "us-east-1")
END = datetime(2024, 5, 1, 11, tzinfo=UTC)
VALID = (b'{"event_id":"6f1c2d3e-0000-4000-8000-00000000abcd","event_type":"payment","schema_version":1,'
         b'"event_time":"2024-05-01T10:00:00Z","transaction_id":"t1","account_id":"a1","merchant_id":"m1",'
         b'"amount":"10.00","currency":"USD","status":"approved","decline_reason":null,"channel":"web",'
         b'"country":"US","payment_method":"card"}')


def _land(key: str, body: bytes, validator: Validator | None = None) -> tuple[MemoryStore, dict[str, object]]:
    store = MemoryStore()
    store.objects[("landing", key)] = body
    validator = validator or Validator(default_fx().currencies)
    result = FileLanding(CONFIG, store, validator).land("landing", key, "v1")
    return store, result.as_dict()


def _zone(store: MemoryStore, bucket: str) -> list[dict[str, object]]:
    return [line for (b, _), body in store.objects.items() if b == bucket for line in decode_lines(body)]


def test_gzip_jsonl_file_reconciles_exactly() -> None:
    events = list(generate_events(GeneratorConfig(count=2000, seed=3, invalid_fraction=0.2, duplicate_fraction=0.05,
                                                  end=END), clock=lambda: END))
    expected = summary(events)
    body = gzip.compress(b"".join(e.value + b"\n" for e in events) + b"\n\n")
    store, result = _land("files/a.jsonl.gz", body)
    assert result["records"] == expected.total
    assert result["malformed"] is None
    assert len(_zone(store, "bronze")) == expected.valid
    reasons: dict[str, int] = {}
    for line in _zone(store, "quarantine"):
        reasons[str(line["reason"])] = reasons.get(str(line["reason"]), 0) + 1
    assert reasons == dict(expected.by_reason)
    first = _zone(store, "bronze")[0]
    assert first["ingest"]["position"].startswith("s3://landing/files/a.jsonl.gz#v1:")  # type: ignore[index]
    assert first["ingest"]["ingested_at"] == "2024-05-01T12:00:00.000Z"  # type: ignore[index]


def test_csv_file_rows_become_events() -> None:
    header = ("event_id,event_type,schema_version,event_time,transaction_id,account_id,merchant_id,amount,"
              "currency,status,decline_reason,channel,country,payment_method,risk_score,extra\n")
    rows = ("6f1c2d3e-0000-4000-8000-00000000abcd,payment,1,2024-05-01T10:00:00Z,t1,a1,m1,10.00,USD,approved,,"
            "web,US,card,0.5,x\n"
            "6f1c2d3e-0000-4000-8000-00000000abce,payment,1,2024-05-01T10:00:00Z,t2,a1,m1,10.001,USD,approved,,"
            "web,US,card,,y\n")
    store, result = _land("files/b.csv", (header + rows).encode())
    assert (result["valid"], result["quarantined"]) == (1, 1)
    (event,) = _zone(store, "bronze")
    assert event["event"]["schema_version"] == 1
    assert event["event"]["risk_score"] == 0.5
    assert _zone(store, "quarantine")[0]["reason"] == "amount_precision"


@pytest.mark.parametrize(("key", "body", "needle"), [
    ("files/wrong.csv", b"id,amount\n1,2\n", "wrong CSV header"),
    ("files/latin1.jsonl", VALID + b"\n" + b'{"x":"caf\xe9"}\n', "not UTF-8"),
    ("files/cut.jsonl.gz", gzip.compress(VALID + b"\n" + VALID + b"\n")[:-12], "truncated gzip"),
])
def test_malformed_file_is_quarantined_whole(key: str, body: bytes, needle: str) -> None:
    store, result = _land(key, body)
    assert not _zone(store, "bronze")  # never half-loaded
    (line,) = _zone(store, "quarantine")
    assert line["reason"] == "malformed_file"
    assert needle in str(line["detail"])
    assert result["malformed"] is not None


def _generated_lines(count: int, seed: int) -> list[bytes]:
    config = GeneratorConfig(count=count, seed=seed, invalid_fraction=0.2, end=END)
    return [e.value for e in generate_events(config, clock=lambda: END)]


def test_a_record_nested_1000_deep_is_quarantined_and_the_file_lands() -> None:
    deep = VALID[:-1] + b',"extra":' + b"[" * 1000 + b"]" * 1000 + b"}"
    store, result = _land("files/deep.jsonl", VALID + b"\n" + deep + b"\n" + VALID + b"\n")
    assert (result["records"], result["valid"], result["quarantined"], result["malformed"]) == (3, 2, 1, None)
    (line,) = _zone(store, "quarantine")
    assert (line["reason"], line["position"]) == ("invalid_json", "s3://landing/files/deep.jsonl#v1:2")


def test_a_record_the_validator_fails_on_is_quarantined_and_the_file_lands(caplog: pytest.LogCaptureFixture) -> None:
    lines = _generated_lines(60, seed=9)
    poisoned = lines[20][:-1] + b', "poison": true}'
    body = b"\n".join([*lines[:20], poisoned, *lines[21:]]) + b"\n"
    with caplog.at_level(logging.ERROR, logger="lambdas.common.file_landing"):
        store, result = _land("files/p.jsonl", body, FailingValidator(default_fx().currencies, b'"poison"'))
    expected_store, expected = _land("files/p.jsonl", b"\n".join([*lines[:20], *lines[21:]]) + b"\n")
    assert result["records"] == 60 == result["valid"] + result["quarantined"]  # type: ignore[operator]
    assert result["malformed"] is None
    failed = [line for line in _zone(store, "quarantine") if line["reason"] == "validation_error"]
    assert len(failed) == 1
    assert (failed[0]["position"], failed[0]["raw"]) == ("s3://landing/files/p.jsonl#v1:21", poisoned.decode())
    assert f"RecursionError: {FAILURE}" in str(failed[0]["detail"])
    assert result["valid"] == expected["valid"]
    assert len(_zone(store, "bronze")) == len(_zone(expected_store, "bronze"))
    (logged,) = [r for r in caplog.records if r.name == "lambdas.common.file_landing"]
    assert logged.position == "s3://landing/files/p.jsonl#v1:21"  # type: ignore[attr-defined]
