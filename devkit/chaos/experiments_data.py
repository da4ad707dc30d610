"""Data faults (issue 19, experiments 6, 7, 8): bad input and bad clocks under a steady produce rate; each
experiment ends with the exact verdict of :meth:`devkit.chaos.harness.ChaosPlatform.verify`, to which it
adds its own checks of what the contract says must become of the bad input. A failed check of its own
sets the verdict's ``reconcile_ok`` to False and is named in its ``detail`` (these checks reconcile the
quarantine zone, record by record, and the late dates' gold); the figures (memory, counts) are in
``detail`` too.

- ``poison_records`` (6): mid-stream, one record of every poison class (``devkit.chaos.poison``: invalid
  JSON, deep nesting, amounts beyond every range, not UTF-8, lone surrogates, a repeated member, wrong
  types, a missing field, an unknown currency, not an object, far future, newer schema version) and two
  valid records that look like poison. Each poison record is in the landing quarantine exactly once with
  the reason and field the contract gives it, none reaches bronze, the landing quarantine holds by reason
  exactly the invalid records produced, and the look-alikes reach silver.
- ``batch_files`` (7): under the same steady stream, damaged batch files through the batch landing path,
  each landed in a process of its own by the real batch landing function (``devkit.chaos.land_file``, as
  S3 invokes it): a corrupt gzip, a truncated gzip, a ragged CSV and a file with a line over the limit are
  quarantined whole (one ``malformed_file`` line, no bronze); a JSON-lines file cut mid-record and one
  with garbage lines land record by record (bad lines quarantined with their reasons, the rest reach
  silver). An oversized file (``OVERSIZED_BYTES`` decompressed, ending in an over-long line) is landed
  while the process's peak resident memory is measured: its growth over a small file's must stay under
  ``MEMORY_BOUND_BYTES`` (a loose bound: the landing streams and spools; it never holds a file).
- ``clock_skew`` (8): the MSK landing function runs on a clock ``SKEW`` ahead while two producers run with
  clocks ``SKEW`` behind and ahead, then on a clock ``SKEW`` behind (the mapping worker's
  ``--landing-skew``: the function in a child under libfaketime, ``devkit.chaos.clock``, invoked by the
  mapping on the real clock, as AWS's poller invokes a Lambda host), and two batch files are landed on
  clocks ``SKEW`` ahead and behind. Events of a date ``LATE_DAYS`` back arrive in two waves: the date's
  gold is built after the first (the nightly run), the second arrives days late. The late events land in
  their event-date partition of silver, ``dataforge reconcile`` for that date names the stale gold,
  ``dataforge backfill --from D --to D`` (docs/spark.md, "Command line") recomputes it, after which
  reconcile is exact for that date. The contract judges "in the future" against each Kafka record's own
  timestamp (``lambdas/common/kafka_landing.py``), the producer's clock, so no skewed producer's event is
  quarantined and the landing's clock changes no landed byte; the experiment checks from the mapping's
  log that batches really were landed on both skewed clocks.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec

from dataforge import envvars
from devkit.chaos.errors import ChaosError
from devkit.chaos.harness import ChaosPlatform, Outcome, Verdict
from devkit.chaos.land_file import land_in_child
from devkit.chaos.poison import (
    BatchFile,
    Poison,
    batch_files,
    borderline_valid,
    decoded,
    poison_records,
    write_oversized,
)
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events

RATE: Final = 100.0  # records/s of the steady stream
WARMUP_RECORDS: Final = 200  # landed before the fault: the steady state
AFTER_FAULT_SECONDS: Final = 3.0
OVERSIZED_BYTES: Final = 256 * 1024 * 1024
MEMORY_BOUND_BYTES: Final = 96 * 1024 * 1024
SKEW: Final = timedelta(minutes=10)
SKEWED_PRODUCER_RATE: Final = 50.0
SKEWED_PRODUCER_SECONDS: Final = 8.0
LATE_DAYS: Final = 3
LATE_EVENTS: Final = 150  # per wave
# reconcile's check of the whole topic against the landing group's commits: while the steady producer runs,
# records are always awaiting landing, so the late date's checks mid-experiment leave it to ``verify``.
STREAM_CHECK: Final = "every consumed Kafka record landed once"

_decode_generated: Final = msgspec.json.Decoder(GeneratedEvent).decode
_encode: Final = msgspec.json.encode


# --- helpers shared by the experiments ------------------------------------------------------------------


def base_event(seed: int = 7) -> dict[str, Any]:
    """A valid, enrichable generated event with an event time of now (what the poison is built from)."""
    for event in generate_events(GeneratorConfig(count=50, seed=seed)):
        if event.is_valid and not event.is_duplicate and event.enrichment_reason is None:
            record = decoded(event)
            record["event_time"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="milliseconds")
            return record
    raise ChaosError("the generator gave no valid, enrichable event to build from")


def expect(p: ChaosPlatform, events: list[GeneratedEvent]) -> None:
    """Add records delivered by another route (a batch file, a producer process of its own) to what the
    harness's verdict expects (``ChaosPlatform.produced``)."""
    p.producer.delivered.extend(events)  # (one C-level call: atomic beside the producer's callbacks)


def platform_env(p: ChaosPlatform) -> dict[str, str]:
    """The environment of a process of this platform (the workers' and the CLI's)."""
    from devkit.local import local_environment

    settings = p.settings
    env = local_environment(endpoint_url=p.endpoint_url, kafka_bootstrap_servers=p.bootstrap_servers,
                            prefix=settings.name_prefix)
    env[envvars.KAFKA_TOPIC] = settings.kafka_topic
    return {**{k: v for k, v in os.environ.items() if k not in env}, **env, "PYTHONUNBUFFERED": "1"}


def _raw_bytes(text: str) -> bytes:
    from dataforge.bronze import BASE64_PREFIX

    return base64.b64decode(text.removeprefix(BASE64_PREFIX)) if text.startswith(BASE64_PREFIX) else text.encode()


def _s3(p: ChaosPlatform) -> Any:
    import boto3

    return boto3.Session(region_name=p.settings.region).client("s3", endpoint_url=p.endpoint_url)


def quarantine_rows(p: ChaosPlatform) -> list[dict[str, Any]]:
    """Every landing quarantine row of this platform."""
    from devkit.reconcile import landing_quarantine

    return list(landing_quarantine(_s3(p), p.settings.require("quarantine_bucket")))


def bronze_ids(p: ChaosPlatform) -> Counter[str]:
    """How many bronze lines each ``event_id`` has."""
    from devkit.reconcile import bronze_records

    lines = bronze_records(_s3(p), p.settings.require("bronze_bucket"))
    return Counter(str(event.get("event_id")) for event, _ in lines)


def with_checks(verdict: Verdict, failures: list[str], figures: str) -> Verdict:
    """``verdict`` with this experiment's own checks: a failure makes it not exact (see the module docstring)."""
    detail = f"{verdict.detail}; {figures}"
    if failures:
        detail += "; FAILED: " + "; ".join(failures)
    return dataclasses.replace(verdict, reconcile_ok=verdict.reconcile_ok and not failures, detail=detail)


def check_records(rows: list[dict[str, Any]], expected: list[Poison], where: str) -> list[str]:
    """Each expected-invalid record is in ``rows`` exactly once with its reason and field."""
    by_raw: dict[bytes, list[dict[str, Any]]] = {}
    for row in rows:
        by_raw.setdefault(_raw_bytes(str(row["raw"])), []).append(row)
    failures = []
    for poison in expected:
        if poison.reason is None:
            continue
        found = by_raw.get(poison.value, [])
        got = [(r["reason"], r["field"]) for r in found]
        if got != [(poison.reason.value, poison.field)]:
            failures.append(f"{where}: {poison.name}: quarantined as {got}, expected "
                            f"[({poison.reason.value!r}, {poison.field!r})]")
    return failures


# --- 6: poison records mid-stream ---------------------------------------------------------------------


def experiment_poison_records(p: ChaosPlatform) -> Outcome:
    base = base_event()
    poison = poison_records(base)
    lookalikes = borderline_valid(base)
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    in_flight = p.in_flight()
    started = time.monotonic()
    p.produce([record.as_generated() for record in [*poison, *lookalikes]])
    ended = time.monotonic()
    time.sleep(AFTER_FAULT_SECONDS)
    outcome = p.outcome("poison_records", "poison records", started, ended, in_flight=in_flight)
    rows = [r for r in quarantine_rows(p) if r["source"] == "kafka"]
    failures = check_records(rows, poison, "landing quarantine")
    produced = Counter(e.expected_reason.value for e in p.produced if e.expected_reason is not None)
    quarantined = Counter(str(r["reason"]) for r in rows)
    if quarantined != produced:
        failures.append(f"landing quarantine by reason {dict(quarantined)} != invalid records produced "
                        f"{dict(produced)}")
    in_bronze = bronze_ids(p)
    leaked = [x.name for x in poison if x.reason is not None and in_bronze.get(str(_event_id(x.value)), 0)]
    if leaked:
        failures.append(f"poison in bronze: {leaked}")
    missing = [x.name for x in lookalikes if in_bronze.get(str(x.event_id), 0) != 1]
    if missing:
        failures.append(f"valid look-alikes not in bronze exactly once: {missing}")
    figures = (f"{len(poison)} poison records quarantined by class, {len(lookalikes)} look-alikes landed, "
               f"landing quarantine {sum(quarantined.values())} rows in {len(quarantined)} reasons")
    return dataclasses.replace(outcome, verdict=with_checks(outcome.verdict, failures, figures))


def _event_id(value: bytes) -> str | None:
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return str(obj.get("event_id")) if isinstance(obj, dict) else None


# --- 7: corrupt, truncated and oversized batch files --------------------------------------------------


def _land(p: ChaosPlatform, env: Mapping[str, str], key: str, body: bytes | Path) -> tuple[dict[str, Any], int]:
    """Put ``body`` at ``key`` in the landing bucket and land it in a child; (its file result, peak RSS)."""
    s3 = _s3(p)
    bucket = p.settings.require("landing_bucket")
    if isinstance(body, Path):
        s3.upload_file(str(body), bucket, key)
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    landed = land_in_child(bucket, key, env)
    files = landed.result["files"]
    if len(files) != 1:
        raise ChaosError(f"landing {key} gave {len(files)} file results: {landed.result}")
    return files[0], landed.peak_rss_bytes


def _objects_lines(p: ChaosPlatform, objects: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(zone bucket, line) of each landed object (gzip JSON lines)."""
    import gzip

    s3 = _s3(p)
    for url in objects:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines():
            yield bucket, json.loads(line)


def check_file(p: ChaosPlatform, damaged: BatchFile, result: dict[str, Any]) -> list[str]:
    """The file's fate as the contract says: whole (one malformed_file line, no bronze) or record by record."""
    quarantine_bucket = p.settings.require("quarantine_bucket")
    lines = list(_objects_lines(p, list(result["objects"])))
    quarantined = [line for bucket, line in lines if bucket == quarantine_bucket]
    bronze = [line for bucket, line in lines if bucket != quarantine_bucket]
    name = damaged.name
    if damaged.malformed:
        reasons = [q["reason"] for q in quarantined]
        if result["malformed"] is None or reasons != ["malformed_file"] or bronze:
            return [f"{name}: expected quarantined whole, got malformed={result['malformed']!r}, "
                    f"quarantine reasons {reasons}, {len(bronze)} bronze lines"]
        return []
    failures = check_records(quarantined, list(damaged.records), name)
    wanted = sorted(str(r.event_id) for r in damaged.records if r.reason is None)
    got = sorted(str(line["event"]["event_id"]) for line in bronze)
    if got != wanted:
        failures.append(f"{name}: bronze holds {len(got)} events, expected the {len(wanted)} valid ones")
    if result["malformed"] is not None:
        failures.append(f"{name}: quarantined whole ({result['malformed']}), expected record by record")
    return failures


def experiment_batch_files(p: ChaosPlatform) -> Outcome:
    base = base_event()
    damaged = batch_files(base)
    env = platform_env(p)
    run = uuid.uuid4().hex[:8]
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    in_flight = p.in_flight()
    failures: list[str] = []
    started = time.monotonic()
    for n, file in enumerate(damaged):
        result, _ = _land(p, env, f"uploads/chaos-{run}/{n:02d}-{file.key_suffix}", file.body)
        failures += check_file(p, file, result)
        expect(p, [r.as_generated() for r in file.records if r.reason is None])
    small, small_rss = _land(p, env, f"uploads/chaos-{run}/small.jsonl", b"")
    with tempfile.TemporaryDirectory(dir=p.workdir) as scratch:
        path = Path(scratch) / "oversized.jsonl.gz"
        size = write_oversized(path, base, decompressed_bytes=OVERSIZED_BYTES)
        big, big_rss = _land(p, env, f"uploads/chaos-{run}/oversized.jsonl.gz", path)
        compressed = path.stat().st_size
    ended = time.monotonic()
    if big["malformed"] is None or big["records"] != 1 or big["quarantined"] != 1:
        failures.append(f"oversized file: expected quarantined whole (over-long last line), got {big}")
    growth = big_rss - small_rss
    if growth > MEMORY_BOUND_BYTES:
        failures.append(f"oversized file: landing peak RSS grew by {growth / 2**20:.0f} MiB over a small file's "
                        f"(bound {MEMORY_BOUND_BYTES / 2**20:.0f} MiB)")
    time.sleep(AFTER_FAULT_SECONDS)
    outcome = p.outcome("batch_files", "damaged batch files", started, ended, in_flight=in_flight)
    figures = (f"{len(damaged)} damaged files ({sum(f.malformed for f in damaged)} quarantined whole); oversized "
               f"file {size / 2**20:.0f} MiB decompressed ({compressed / 2**20:.1f} MiB gzip): landing peak RSS "
               f"{big_rss / 2**20:.0f} MiB vs {small_rss / 2**20:.0f} MiB for an empty file "
               f"(+{growth / 2**20:.0f} MiB, bound +{MEMORY_BOUND_BYTES / 2**20:.0f} MiB); the empty file "
               f"{small['records']} records")
    return dataclasses.replace(outcome, verdict=with_checks(outcome.verdict, failures, figures))


# --- 8: skewed clocks and events days late ------------------------------------------------------------


class Stamped(msgspec.Struct, frozen=True):
    """A record as a skewed producer made it: the event and the Kafka timestamp its client would set."""

    timestamp_ms: int
    event: GeneratedEvent


def skewed_producer(p: ChaosPlatform, offset: timedelta, *, seed: int) -> subprocess.Popen[bytes]:
    """``python -m devkit.chaos.experiments_data stamp`` under libfaketime, ``offset`` away: live traffic
    whose event times and record timestamps come from its own clock, one ``Stamped`` JSON line each on
    stdout (``forward`` sends them; see ``devkit.chaos.clock`` for why the client is outside)."""
    from devkit.chaos.clock import RUN_MODULE, check_skew

    env = check_skew(offset, base=platform_env(p))
    command = [sys.executable, *RUN_MODULE, "devkit.chaos.experiments_data", "stamp", "--rate",
               str(SKEWED_PRODUCER_RATE), "--seconds", str(SKEWED_PRODUCER_SECONDS), "--seed", str(seed)]
    log = (p.workdir / "logs" / f"producer{offset.total_seconds():+.0f}s.log").open("wb")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log)


def forward(p: ChaosPlatform, children: list[subprocess.Popen[bytes]]) -> list[GeneratedEvent]:
    """Send every record the skewed producers print, as each prints it, with its own timestamp (an
    idempotent producer, acks=all); the records the broker acknowledged."""
    import threading

    from confluent_kafka import Producer as KafkaProducer

    from devkit.generator_sinks import LIBRDKAFKA_LOGGER, producer_config

    producer = KafkaProducer(producer_config(p.bootstrap_servers, {"linger.ms": 5}), logger=LIBRDKAFKA_LOGGER)
    delivered: list[GeneratedEvent] = []
    failed: list[str] = []

    def pump(child: subprocess.Popen[bytes]) -> None:
        decode = msgspec.json.Decoder(Stamped).decode
        assert child.stdout is not None
        for line in child.stdout:
            stamped = decode(line)
            event = stamped.event

            def done(err: Any, _msg: Any, event: GeneratedEvent = event) -> None:
                (failed.append(str(err)) if err is not None else delivered.append(event))

            producer.produce(p.settings.kafka_topic, key=event.key or None, value=event.value,
                             timestamp=stamped.timestamp_ms, on_delivery=done)
            producer.poll(0)

    threads = [threading.Thread(target=pump, args=(child,), daemon=True) for child in children]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SKEWED_PRODUCER_SECONDS + 120)
    if producer.flush(60):
        raise ChaosError("records of the skewed producers still unacknowledged after 60 s")
    if failed:
        raise ChaosError(f"{len(failed)} records of the skewed producers failed: {failed[:3]}")
    return delivered


def land_skewed(p: ChaosPlatform, offset: timedelta, events: list[GeneratedEvent], key: str) -> dict[str, Any]:
    """Put ``events`` as a JSON-lines batch file at ``key`` and land it in a child under libfaketime,
    ``offset`` away; the file result."""
    from devkit.chaos.clock import RUN_MODULE, check_skew

    bucket = p.settings.require("landing_bucket")
    _s3(p).put_object(Bucket=bucket, Key=key, Body=b"".join(e.value + b"\n" for e in events))
    landed = land_in_child(bucket, key, check_skew(offset, base=platform_env(p)), launcher=RUN_MODULE)
    files: list[dict[str, Any]] = landed.result["files"]
    return files[0]


def landing_skew_args(offset: timedelta) -> list[str]:
    """The mapping worker's arguments that put its landing function on a clock ``offset`` away."""
    return ["--landing-skew", str(int(offset.total_seconds()))]


#: How far a landing child's measured clock offset may be from the one asked for (the reading is taken
#: after the invocation returns, before the mapping reads its own clock).
OFFSET_TOLERANCE_SECONDS: Final = 30.0

_OFFSET_LINE: Final = re.compile(r"landing child clock ([+-]\d+(?:\.\d+)?) s from the mapping's")


def landing_offsets(log_file: Path) -> list[float]:
    """The clock offset of every Kafka batch a skewed landing child landed, as the mapping worker logged it
    (``devkit.chaos.worker.SkewedLanding``)."""
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    return [float(m.group(1)) for m in _OFFSET_LINE.finditer(text)]


def late_events(day: date, seed: int) -> list[GeneratedEvent]:
    """``LATE_EVENTS`` events of ``day`` (10:00-11:00 UTC), 2 % invalid, 2 % duplicates."""
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return list(generate_events(GeneratorConfig(count=LATE_EVENTS, seed=seed, start=start,
                                                end=start + timedelta(hours=1), invalid_fraction=0.02,
                                                duplicate_fraction=0.02)))


def wait_landed_all(p: ChaosPlatform, timeout: float = 120.0) -> None:
    """Wait until the landing group has committed every record on the topic when called (the steady
    producer goes on meanwhile)."""
    from devkit.local.platform import landing_group
    from devkit.reconcile import kafka_offsets

    def offsets() -> tuple[int, int] | None:
        found = kafka_offsets(p.bootstrap_servers, p.settings.kafka_topic, landing_group(p.settings), timeout=5.0)
        return None if found is None else (found.end, found.committed)

    now = offsets()
    deadline = time.monotonic() + timeout
    while now is None or (later := offsets()) is None or later[1] < now[0]:
        if time.monotonic() >= deadline:
            raise ChaosError(f"the records on the topic were not all landed within {timeout:.0f}s")
        time.sleep(0.25)
        now = now or offsets()


def run_backfill(p: ChaosPlatform, day: date) -> tuple[int, str]:
    """``dataforge backfill --from D --to D`` (the documented command) with this platform's environment, in
    this process (it takes the active Spark session); (exit code, output)."""
    from typer.testing import CliRunner

    from devkit.cli import app

    env = platform_env(p)
    result = CliRunner().invoke(app, ["backfill", "--from", day.isoformat(), "--to", day.isoformat()], env=env)
    failure = "" if result.exception is None else f" ({type(result.exception).__name__}: {result.exception})"
    return result.exit_code, result.output + failure


def skewed_sources(p: ChaosPlatform, failures: list[str]) -> tuple[list[GeneratedEvent], list[dict[str, Any]]]:
    """Two producers on clocks ``SKEW`` behind and ahead, and two batch files landed by processes on such
    clocks (the file's own time, S3's, is what the contract judges it by): the records the producers
    delivered and the files' results, each added to what the verdict expects."""
    children = [skewed_producer(p, -SKEW, seed=91), skewed_producer(p, SKEW, seed=92)]
    try:
        skewed = forward(p, children)
    finally:
        for child in children:
            _stop_child(child)
    failures += [f"a skewed producer exited with {c.returncode} (log in {p.workdir / 'logs'})"
                 for c in children if c.returncode != 0]
    expect(p, skewed)
    files = []
    for n, offset in enumerate((SKEW, -SKEW)):
        now = datetime.now(UTC)
        events = list(generate_events(GeneratorConfig(count=50, seed=93 + n, start=now - timedelta(minutes=1),
                                                      end=now, invalid_fraction=0.0, duplicate_fraction=0.0)))
        result = land_skewed(p, offset, events, f"uploads/chaos-skew/{p.settings.name_prefix}-{n}.jsonl")
        files.append(result)
        if result["valid"] != len(events):
            failures.append(f"file landed on a clock {offset} off: {result['valid']} of {len(events)} valid")
        expect(p, events)
    return skewed, files


def experiment_clock_skew(p: ChaosPlatform) -> Outcome:
    from devkit.cli.reconcile import sources_for
    from devkit.reconcile import reconcile
    from spark.jobs import daily_aggregation, export_gold, streaming_enrichment
    from spark.runtime import Lake

    day = datetime.now(UTC).date() - timedelta(days=LATE_DAYS)
    first, second = late_events(day, 81), late_events(day, 82)
    failures: list[str] = []
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    in_flight = p.in_flight()
    started = time.monotonic()
    mapping = p.worker("mapping")
    mapping.restart_with(landing_skew_args(SKEW))  # the landing ahead while the skewed producers run
    skewed, files = skewed_sources(p, failures)
    mapping.restart_with(landing_skew_args(-SKEW))  # the landing behind for the first wave
    # The nightly run of `day` happens after the first wave ...
    p.produce(first)
    wait_landed_all(p)
    mapping.restart_with([])  # back on the real clock
    spark, settings = p.spark, p.settings
    streaming_enrichment.run(spark, settings, trigger="availableNow")
    daily_aggregation.run(spark, settings, day)
    export_gold.run(spark, settings, day)
    # ... then the second wave arrives days late.
    p.produce(second)
    ended = time.monotonic()
    wait_landed_all(p)
    streaming_enrichment.run(spark, settings, trigger="availableNow")
    wanted = {e.event_id for e in [*first, *second] if e.is_valid and e.enrichment_reason is None}
    in_partition = {r["event_id"] for r in spark.read.parquet(Lake(settings).silver())
                    .where(f"event_date = DATE'{day.isoformat()}'").select("event_id").collect()}
    if not wanted <= in_partition:
        failures.append(f"{len(wanted - in_partition)} late events missing from silver event_date={day}")
    stale = [c.name for c in reconcile(settings, day, sources_for(settings)).unexplained if c.name != STREAM_CHECK]
    if "gold total = silver aggregated" not in stale:
        failures.append(f"reconcile did not name the stale gold of {day} after the late wave: {stale}")
    code, output = run_backfill(p, day)
    if code != 0:
        failures.append(f"dataforge backfill --from {day} --to {day} exited {code}: {output[-500:]}")
    after = [c for c in reconcile(settings, day, sources_for(settings)).unexplained if c.name != STREAM_CHECK]
    if after:
        failures.append(f"reconcile {day} after the backfill: " + "; ".join(f"{c.name}: {c.detail}" for c in after))
    outcome = p.outcome("clock_skew", "clock skew and late data", started, ended, in_flight=in_flight)
    quarantined_future = sum(1 for r in quarantine_rows(p) if r["reason"] == "event_time_in_future")
    expected_future = sum(1 for e in p.produced if e.expected_reason is not None
                          and e.expected_reason.value == "event_time_in_future")
    if quarantined_future != expected_future:
        failures.append(f"{quarantined_future} records quarantined as event_time_in_future, "
                        f"{expected_future} produced with a time in the future")
    offsets = landing_offsets(mapping.log_file)
    for wanted_offset in (SKEW, -SKEW):
        if not any(abs(o - wanted_offset.total_seconds()) < OFFSET_TOLERANCE_SECONDS for o in offsets):
            failures.append(f"no Kafka batch was landed on a clock {wanted_offset} off "
                            f"(offsets seen: {sorted(set(offsets))})")
    on_skew = Counter(f"{round(o / 60):+d} min" for o in offsets)
    figures = (f"Kafka batches landed per landing clock: {dict(on_skew)}; "
               f"skewed producers (-{SKEW}, +{SKEW}) delivered {len(skewed)} records; batch files landed on "
               f"clocks +/-{SKEW}: {[f['valid'] for f in files]} valid; {len(first)} + {len(second)} events of "
               f"{day} ({LATE_DAYS} days late); reconcile before the backfill named {stale}")
    return dataclasses.replace(outcome, verdict=with_checks(outcome.verdict, failures, figures))


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


#: name -> experiment (``bench/recovery.py`` runs them all; ``tests/chaos/test_data_faults.py`` asserts them)
EXPERIMENTS: Final[dict[str, Callable[[ChaosPlatform], Outcome]]] = {
    "poison_records": experiment_poison_records,
    "batch_files": experiment_batch_files,
    "clock_skew": experiment_clock_skew,
}

#: What each experiment needs of :func:`devkit.chaos.harness.platform`: the session's services and no
#: streaming process (``verify`` runs streaming ``availableNow``).
NEEDS: Final[dict[str, frozenset[str]]] = {name: frozenset() for name in EXPERIMENTS}


# --- the skewed producer's process ---------------------------------------------------------------------


def stamp_main(argv: list[str]) -> int:
    """``stamp --rate R --seconds S --seed N``: live traffic from this process's clock, one ``Stamped`` JSON
    line per record on stdout, paced at ``rate``, for ``seconds``."""
    import argparse
    import threading

    from devkit.chaos.harness import live_events

    parser = argparse.ArgumentParser(prog="python -m devkit.chaos.experiments_data stamp")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    out = sys.stdout.buffer
    deadline = time.monotonic() + args.seconds
    for event in live_events(args.rate, args.seed, stop):
        if time.monotonic() >= deadline:
            break
        out.write(_encode(Stamped(int(time.time() * 1000), event)) + b"\n")
        out.flush()
    stop.set()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["stamp"]:
        raise SystemExit("usage: python -m devkit.chaos.experiments_data stamp --rate R --seconds S --seed N")
    raise SystemExit(stamp_main(sys.argv[2:]))
