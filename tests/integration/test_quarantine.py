"""`dataforge quarantine list|replay` on a lake landed by the real landing code (moto server, Kafka broker).

The cause to fix: the landing functions ran with an FX reference table that lacked one currency, so every
record in it was quarantined ``unknown_currency`` (the Kafka records through the local event source
mapping and the MSK landing core, a batch file through the file landing core). The replay runs with the
validator the landing functions build now (the full reference table); the last test runs the streaming
job before the replay and the backfill the replay prints after it, as the runbook does.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import boto3
import msgspec
import pytest
from typer.testing import CliRunner

from dataforge.contract import Reason, Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.cli import app
from devkit.cli.reconcile import sources_for
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.esm import EsmConfig, LocalEventSourceMapping
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.platform import landing_group
from devkit.local.spark import configure_s3a
from devkit.quarantine import replay
from devkit.reconcile import Reconciliation, realtime_minutes, reconcile
from lambdas.common.config import LandingConfig
from lambdas.common.file_landing import FileLanding
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.storage import S3ObjectStore
from spark import runtime
from spark.jobs import streaming_enrichment
from tests.integration.ingestion.conftest import produce_all
from tests.kpi_reference import expected_realtime_counts

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 2)
FILE_KEY = "files/2026-03-02/batch-0001.jsonl"


@dataclass(frozen=True)
class Landed:
    settings: Settings
    events: list[GeneratedEvent]  # produced to Kafka
    file_events: list[GeneratedEvent]  # in the batch file
    missing: str  # the currency the landing ran without

    def validator(self) -> Validator:
        return Validator(default_fx().currencies)


def _currency(event: GeneratedEvent) -> str | None:
    value = msgspec.json.decode(event.value)
    return str(value.get("currency")) if isinstance(value, dict) else None


@pytest.fixture
def platform(aws_env: dict[str, str], kafka_broker: KafkaBroker, boto3_session: boto3.Session, unique_name: str,
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The embedded platform's resources under a fresh prefix and topic; the CLI's environment names them."""
    env = {**local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                               kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name),
           "DATAFORGE_KAFKA_TOPIC": unique_name}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    bootstrap(settings, boto3_session)
    create_topics(kafka_broker.bootstrap_servers, {unique_name: 3})
    return settings


@pytest.fixture
def landed(platform: Settings, aws_env: dict[str, str], kafka_broker: KafkaBroker,
           boto3_session: boto3.Session) -> Landed:
    settings, topic = platform, platform.kafka_topic
    config = GeneratorConfig(count=400, seed=11, invalid_fraction=0.06, duplicate_fraction=0.02,
                             start=datetime(2026, 3, 2, 9, tzinfo=UTC), end=datetime(2026, 3, 2, 12, tzinfo=UTC))
    events = list(generate_events(config))
    kafka_events, file_events = events[:300], events[300:]

    def valid_currencies(part: list[GeneratedEvent]) -> Counter[str]:
        return Counter(c for e in part if e.expected_reason is None and (c := _currency(e)) not in (None, "USD"))

    in_both = valid_currencies(kafka_events) & valid_currencies(file_events)
    missing = max(sorted(in_both), key=lambda c: valid_currencies(events)[c])  # the most frequent one
    before_fix = Validator(default_fx().currencies - {missing})
    landing_config = LandingConfig.from_settings(settings)
    store = S3ObjectStore(boto3_session, endpoint_url=aws_env["AWS_ENDPOINT_URL"], region=settings.region)

    produce_all(kafka_broker.bootstrap_servers, topic, kafka_events)
    landing = KafkaLanding(landing_config, store, before_fix)
    mapping = LocalEventSourceMapping(
        EsmConfig(kafka_broker.bootstrap_servers, (topic,), group_id=landing_group(settings), batch_size=64),
        lambda event, _context: landing.land(event["records"]).as_dict())
    stats = mapping.run(until_idle=2.0)
    assert stats.records == len(kafka_events)

    s3 = boto3_session.client("s3")
    body = b"".join(e.value + b"\n" for e in file_events)
    s3.put_object(Bucket=settings.require("landing_bucket"), Key=FILE_KEY, Body=body)
    FileLanding(landing_config, store, before_fix).land(settings.require("landing_bucket"), FILE_KEY)
    return Landed(settings, kafka_events, file_events, missing)


def _zone(settings: Settings, zone: str) -> dict[str, bytes]:
    """Every object of a zone bucket, decompressed."""
    s3 = boto3.client("s3")
    bucket = settings.require(f"{zone}_bucket")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    return found


def _ids(objects: dict[str, bytes]) -> list[str]:
    return [str(msgspec.json.decode(line)["ingest"]["event_id"])
            for body in objects.values() for line in body.splitlines() if line]


STREAM_CHECK = "every consumed Kafka record landed once"


def _landing_checks(result: Reconciliation) -> dict[str, bool]:
    """The checks of the landing stage (silver and later need the Spark jobs, which this test does not run)."""
    return {c.name: c.ok for c in result.checks if c.name == STREAM_CHECK}


def _realtime_counts(settings: Settings) -> dict[str, int]:
    table = boto3.resource("dynamodb").Table(settings.require("metrics_table"))
    return {minute: int(item["txn_count"]) for minute, item in realtime_minutes(table, DAY).items()}


def _cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["quarantine", *args, "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_replay_lands_the_records_whose_cause_is_fixed_once_and_reconcile_stays_exact(landed: Landed) -> None:
    settings, day = landed.settings, DAY.isoformat()
    everything = [*landed.events, *landed.file_events]
    fixed = [e for e in everything if e.expected_reason is None and _currency(e) == landed.missing]
    genuine = [e for e in everything if e.expected_reason is Reason.UNKNOWN_CURRENCY]
    assert fixed, "the sample holds records of the missing currency"

    before = reconcile(settings, DAY, sources_for(settings))
    assert _landing_checks(before) == {STREAM_CHECK: True}
    listed = _cli("list", "--date", day)
    landing_counts: dict[str, int] = {}
    for row in listed["counts"]:
        assert row["stage"] == "landing"
        landing_counts[row["reason"]] = landing_counts.get(row["reason"], 0) + row["records"]
    assert landing_counts == before.counts["landing quarantine"]  # the same rows reconcile counts
    by_source = {r["source"]: r["records"] for r in listed["counts"] if r["reason"] == "unknown_currency"}
    assert sum(by_source.values()) >= len(fixed)
    assert set(by_source) == {"kafka", "file"}
    sample = next(s for s in listed["samples"] if s["reason"] == "unknown_currency")
    assert sample["field"] == "currency"
    assert sample["detail"]
    assert sample["position"]
    only = _cli("list", "--date", day, "--reason", "unknown_currency")
    assert {r["reason"] for r in only["counts"]} == {"unknown_currency"}

    lake_before = (_zone(settings, "bronze"), _zone(settings, "quarantine"))
    dry = _cli("replay", "--reason", "unknown_currency", "--date", day, "--dry-run")
    assert dry["landed"] == len(fixed)
    assert dry["objects"]
    assert (_zone(settings, "bronze"), _zone(settings, "quarantine")) == lake_before  # nothing written

    done = _cli("replay", "--reason", "unknown_currency", "--date", day)
    assert done["landed"] == len(fixed)
    assert done["still_quarantined"].get("unknown_currency", 0) == len(genuine)
    assert done["landed"] + sum(done["still_quarantined"].values()) == done["selected"]
    assert done["objects"] == dry["objects"]
    bronze_ids = _ids(_zone(settings, "bronze"))
    valid = [e for e in everything if e.expected_reason is None]
    assert sorted(bronze_ids) == sorted(str(e.event_id) for e in valid)  # each valid record once, none lost
    after = reconcile(settings, DAY, sources_for(settings))
    assert _landing_checks(after) == {STREAM_CHECK: True}
    moved = after.counts["landing quarantine"]
    # the replayed rows left quarantine; a row still invalid keeps the reason it has now (a record with the
    # missing currency and another fault was unknown_currency before the fix, its other fault after it)
    assert sum(moved.values()) == sum(before.counts["landing quarantine"].values()) - len(fixed)
    assert moved.get("unknown_currency", 0) == len(genuine)
    assert after.counts["bronze records"] == before.counts["bronze records"] + len(fixed)

    # the file's objects are what landing the file again, with the fix, writes (a retry of its batch)
    replayed = (_zone(settings, "bronze"), _zone(settings, "quarantine"))
    store = S3ObjectStore(endpoint_url=settings.endpoint_url, region=settings.region)
    FileLanding(LandingConfig.from_settings(settings), store, landed.validator()).land(
        settings.require("landing_bucket"), FILE_KEY)
    assert (_zone(settings, "bronze"), _zone(settings, "quarantine")) == replayed

    again = _cli("replay", "--reason", "unknown_currency", "--date", day)
    assert again["landed"] == 0
    assert again["objects"] == []
    assert (_zone(settings, "bronze"), _zone(settings, "quarantine")) == replayed


def test_replay_refuses_what_it_cannot_replay_and_says_what_to_do(platform: Settings) -> None:
    refused = CliRunner().invoke(app, ["quarantine", "replay", "--reason", "no_fx_rate", "--date", DAY.isoformat()])
    assert refused.exit_code == 2
    assert "dataforge backfill --from D --to D" in refused.stderr
    unknown = CliRunner().invoke(app, ["quarantine", "replay", "--reason", "nonsense", "--date", DAY.isoformat()])
    assert unknown.exit_code == 2
    assert "unknown reason 'nonsense'" in unknown.stderr


class _CrashOnSecondWrite:
    """An S3 client whose second write fails: a replay interrupted between the two objects of a batch
    (whichever it writes first must leave every record findable by the next replay)."""

    def __init__(self, s3: Any) -> None:
        self._s3, self.writes = s3, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def _write(self, method: str, **kwargs: Any) -> Any:
        self.writes += 1
        if self.writes == 2:
            raise ConnectionError("interrupted")
        return getattr(self._s3, method)(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        return self._write("put_object", **kwargs)

    def delete_object(self, **kwargs: Any) -> Any:
        return self._write("delete_object", **kwargs)


def test_a_replay_interrupted_after_its_bronze_writes_is_finished_by_running_it_again(landed: Landed) -> None:
    settings = landed.settings
    bronze, quarantine = settings.require("bronze_bucket"), settings.require("quarantine_bucket")
    s3 = boto3.client("s3")
    with pytest.raises(ConnectionError):
        replay(_CrashOnSecondWrite(s3), bronze, quarantine, DAY, "unknown_currency",
               landed.validator())
    finished = replay(s3, bronze, quarantine, DAY, "unknown_currency", landed.validator())
    assert finished.landed > 0
    everything = [*landed.events, *landed.file_events]
    assert sorted(_ids(_zone(settings, "bronze"))) == sorted(str(e.event_id) for e in everything
                                                              if e.expected_reason is None)
    after = reconcile(settings, DAY, sources_for(settings))
    assert _landing_checks(after) == {STREAM_CHECK: True}


def test_replay_then_the_printed_backfill_leaves_the_date_exact_down_to_its_realtime_minutes(
        spark: Any, landed: Landed, aws_env: dict[str, str]) -> None:
    """The runbook's repair end to end: the streaming job ran over the stream while the landing functions
    quarantined the missing currency's records; `quarantine replay`, then the `dataforge backfill` it prints,
    then `dataforge reconcile` is exact, and the date's realtime minutes count every record the fix let in
    (the batch file's too, which the stream never carried)."""
    settings, day = landed.settings, DAY.isoformat()
    configure_s3a(spark, aws_env["AWS_ENDPOINT_URL"])
    streaming_enrichment.run(spark, settings, trigger="availableNow",
                             checkpoint_location=runtime.Lake(settings).state("test/replay-checkpoint"))
    everything = [*landed.events, *landed.file_events]
    expected = expected_realtime_counts(everything)
    assert _realtime_counts(settings) != expected  # the file's records of the missing currency are not counted

    replayed = CliRunner().invoke(app, ["quarantine", "replay", "--reason", "unknown_currency", "--date", day])
    assert replayed.exit_code == 0, replayed.output
    assert f"dataforge backfill --from {day} --to {day}" in replayed.stdout
    late_days = (datetime.now(UTC).date() - DAY).days  # the sample landed today with event times of DAY
    rebuilt = CliRunner().invoke(app, ["backfill", "--from", day, "--to", day, "--late-days", str(late_days)])
    assert rebuilt.exit_code == 0, rebuilt.output

    exact = CliRunner().invoke(app, ["reconcile", "--date", day, "--json"])
    assert exact.exit_code == 0, exact.output
    result = json.loads(exact.stdout)
    assert result["exact"] is True
    assert result["counts"]["realtime minutes before batch files (explained)"] == 0
    assert _realtime_counts(settings) == expected
    assert result["counts"]["realtime transactions"] == sum(expected.values())
