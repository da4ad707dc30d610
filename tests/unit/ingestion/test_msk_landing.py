from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message

from dataforge.bronze import decode_lines
from dataforge.contract import Validator
from dataforge.lake import Zone
from dataforge.reference import default_fx
from devkit.fakes import LambdaContext
from devkit.generator import GeneratorConfig, generate_events, summary
from devkit.local.esm import msk_batch
from lambdas.common.config import LandingConfig
from lambdas.common.errors import StorageError
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.msk_landing.handler import make_handler
from tests.fixtures.failing_validator import FAILURE, FailingValidator
from tests.unit.ingestion.memory_store import FailingOnce, MemoryStore

EVENTS = Path(__file__).parents[2] / "events"
CONFIG = LandingConfig("bronze", "quarantine", "landing", False, None, "us-east-1")
CONTEXT = LambdaContext("msk-landing")


def _landing(store: Any) -> KafkaLanding:
    return KafkaLanding(CONFIG, store, Validator(default_fx().currencies))


def _event(values: list[bytes], partition: int = 0, ts: int = 1_714_564_800_000) -> dict[str, Any]:
    records = [{"topic": "transactions", "partition": partition, "offset": 100 + i, "timestamp": ts,
                "timestampType": "CREATE_TIME", "key": base64.b64encode(b"k").decode(),
                "value": base64.b64encode(v).decode(), "headers": []} for i, v in enumerate(values)]
    return {"eventSource": "aws:kafka", "eventSourceArn": "arn", "bootstrapServers": "b:9092",
            "records": {f"transactions-{partition}": records}}


def test_aws_documentation_msk_event_is_parsed() -> None:
    event = json.loads((EVENTS / "msk_event.json").read_text())
    store = MemoryStore()
    result = make_handler(lambda: _landing(store))(event, CONTEXT)
    assert result["records"] == 1
    assert result["valid"] == 0
    assert result["quarantined"] == 1
    ((bucket, key), body), = store.objects.items()
    assert bucket == "quarantine"
    assert key == ("transactions/source=kafka/ingest_date=2018-12-17/ingest_hour=22/"
                   "mytopic-0-00000000000000000015-00000000000000000015.jsonl.gz")
    (line,) = decode_lines(body)
    assert line["raw"] == "Hello, this is a test."
    assert line["reason"] == "invalid_json"
    assert line["position"] == "mytopic-0@15"
    assert line["ingested_at"] == "2018-12-17T22:10:50.987Z"


def test_generated_batch_reconciles_and_retry_rewrites_identical_objects() -> None:
    config = GeneratorConfig(count=3000, seed=7, invalid_fraction=0.2, duplicate_fraction=0.05,
                             end=datetime(2024, 5, 1, 11, tzinfo=UTC))
    events = list(generate_events(config, clock=lambda: datetime(2024, 5, 1, 12, tzinfo=UTC)))
    expected = summary(events)
    event = _event([e.value for e in events])
    inner = MemoryStore()
    failing = FailingOnce(inner, fail_at=2)  # quarantine written, bronze fails
    handler = make_handler(lambda: _landing(failing))
    with pytest.raises(StorageError):
        handler(event, CONTEXT)
    first = dict(inner.objects)
    handler(event, CONTEXT)  # the retry
    assert len(first) == 1
    assert len(inner.objects) == 2
    for k, body in first.items():
        assert inner.objects[k] == body  # byte-identical on retry
    bronze = decode_lines(inner.objects[next(k for k in inner.objects if k[0] == Zone.BRONZE.value)])
    quarantine = decode_lines(inner.objects[next(k for k in inner.objects if k[0] == Zone.QUARANTINE.value)])
    assert len(bronze) == expected.valid
    assert len(quarantine) == expected.invalid
    by_reason: dict[str, int] = {}
    for q in quarantine:
        by_reason[str(q["reason"])] = by_reason.get(str(q["reason"]), 0) + 1
    assert by_reason == dict(expected.by_reason)
    valid_ids = [e.event_id for e in events if e.is_valid]
    assert [b["ingest"]["event_id"] for b in bronze] == valid_ids  # type: ignore[index]


@pytest.mark.parametrize("native", [True, False], ids=["compiled_fast_path", "pure_python"])
def test_a_record_with_bad_utf8_in_a_value_is_quarantined_and_the_batch_lands(native: bool) -> None:
    good = {"event_id": "6F1C2A9E-8D4B-4C3A-9E2F-1B7D5A0C4E21", "event_type": "payment", "schema_version": 1,
            "event_time": "2024-05-01T11:58:30.250+01:00", "transaction_id": "t1", "account_id": "a1",
            "merchant_id": "m1", "amount": 12.5, "currency": "EUR", "status": "approved", "decline_reason": None,
            "channel": "web", "country": "DE", "payment_method": "card"}
    later = {**good, "event_id": "6f1c2a9e-8d4b-4c3a-9e2f-1b7d5a0c4e22", "event_time": "2024-05-01T11:59:00Z"}
    bad_utf8 = json.dumps(good).encode().replace(b'"web"', b'"w\xffb"')
    store = MemoryStore()
    landing = KafkaLanding(CONFIG, store, Validator(default_fx().currencies, native=native))
    result = landing.land(_event([json.dumps(good).encode(), bad_utf8, json.dumps(later).encode()])["records"])
    assert (result.records, result.valid, result.quarantined) == (3, 2, 1)
    assert result.newest_event_time == datetime(2024, 5, 1, 11, 59, tzinfo=UTC)
    by_zone = {bucket: decode_lines(body) for (bucket, _), body in store.objects.items()}
    assert [line["ingest"]["event_id"] for line in by_zone["bronze"]] == [  # type: ignore[index]
        "6f1c2a9e-8d4b-4c3a-9e2f-1b7d5a0c4e21", "6f1c2a9e-8d4b-4c3a-9e2f-1b7d5a0c4e22"]
    (quarantined,) = by_zone["quarantine"]
    assert (quarantined["reason"], quarantined["position"]) == ("invalid_json", "transactions-0@101")


def test_local_mapping_builds_an_msk_event_and_the_offsets_to_commit_in_one_go() -> None:
    messages = [Message(topic="t", partition=partition, offset=offset, key=b"acct", value=b"{}",
                        timestamp=(1, 1_700_000_000_000))
                for partition, offset in ((1, 7), (1, 8), (0, 3), (1, 9), (0, 4))]
    event, offsets = msk_batch(messages, event_source_arn="arn", bootstrap_servers="b:9092")
    assert event["eventSource"] == "aws:kafka"
    assert {key: [r["offset"] for r in records] for key, records in event["records"].items()} == {
        "t-1": [7, 8, 9], "t-0": [3, 4]}
    record = event["records"]["t-0"][0]
    assert base64.b64decode(record["value"]) == b"{}"
    assert base64.b64decode(record["key"]) == b"acct"
    assert record["timestampType"] == "CREATE_TIME"
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [("t", 0, 5), ("t", 1, 10)]


def _generated(count: int, seed: int) -> list[bytes]:
    end = datetime(2024, 5, 1, 11, tzinfo=UTC)
    config = GeneratorConfig(count=count, seed=seed, invalid_fraction=0.2, end=end)
    return [e.value for e in generate_events(config, clock=lambda: datetime(2024, 5, 1, 12, tzinfo=UTC))]


def _land_with(validator: Validator, values: list[bytes]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    store = MemoryStore()
    result = make_handler(lambda: KafkaLanding(CONFIG, store, validator))(_event(values), CONTEXT)
    return result, {bucket: decode_lines(body) for (bucket, _), body in store.objects.items()}


@pytest.mark.parametrize("native", [True, False], ids=["compiled_fast_path", "pure_python"])
def test_a_record_nested_1000_deep_is_quarantined_and_the_batch_lands(native: bool) -> None:
    values = _generated(30, seed=4)
    deep = values[3][:-1] + b', "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    result, zones = _land_with(Validator(default_fx().currencies, native=native), [*values, deep])
    expected, _ = _land_with(Validator(default_fx().currencies, native=native), values)
    assert (result["records"], result["valid"], result["quarantined"]) == (31, expected["valid"],
                                                                           expected["quarantined"] + 1)
    last = zones["quarantine"][-1]
    assert (last["reason"], last["field"], last["position"]) == ("invalid_json", None, "transactions-0@130")


def test_a_record_the_validator_fails_on_is_quarantined_and_the_batch_lands(caplog: pytest.LogCaptureFixture) -> None:
    values = _generated(40, seed=5)
    poisoned = values[7][:-1] + b', "poison": true}'
    batch = [*values[:7], poisoned, *values[8:]]
    with caplog.at_level(logging.ERROR, logger="lambdas.common.kafka_landing"):
        result, zones = _land_with(FailingValidator(default_fx().currencies, b'"poison"'), batch)
    expected, expected_zones = _land_with(Validator(default_fx().currencies), [*values[:7], *values[8:]])
    assert result["records"] == 40 == result["valid"] + result["quarantined"]
    failed = [line for line in zones["quarantine"] if line["reason"] == "validation_error"]
    assert len(failed) == 1
    assert (failed[0]["field"], failed[0]["position"], failed[0]["raw"]) == (None, "transactions-0@107",
                                                                             poisoned.decode())
    assert f"RecursionError: {FAILURE}" in str(failed[0]["detail"])
    # Every other record gets the verdict it gets from a working validator.
    assert result["valid"] == expected["valid"]
    assert [line["ingest"]["event_id"] for line in zones["bronze"]] == [  # type: ignore[index]
        line["ingest"]["event_id"] for line in expected_zones["bronze"]]  # type: ignore[index]
    assert [line["reason"] for line in zones["quarantine"] if line is not failed[0]] == [
        line["reason"] for line in expected_zones["quarantine"]]
    (logged,) = [r for r in caplog.records if r.name == "lambdas.common.kafka_landing"]
    assert logged.position == "transactions-0@107"  # type: ignore[attr-defined]
    assert logged.exc_info is not None
