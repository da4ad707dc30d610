"""The chaos harness: the embedded platform with each part it can break in a process of its own, a steady
producer whose every delivered record it knows, and an exact verdict after the fault.

An experiment is a function ``experiment_<name>(p: ChaosPlatform) -> Outcome`` in
``devkit.chaos.experiments_<area>``, registered in that module's ``EXPERIMENTS`` dict::

    def experiment_mapping_sigkill(p: ChaosPlatform) -> Outcome:
        p.start_producer(rate=100)
        p.wait_landed(300)                      # steady state: the mapping lands records
        p.worker("mapping").wait_kill_point()   # optional: hold it where a crash hurts most
        in_flight = p.in_flight()               # produced, not landed yet
        started = time.monotonic()
        p.component("mapping").kill()           # SIGKILL to its process group
        p.component("mapping").restart()
        ended = time.monotonic()
        return p.outcome("mapping_sigkill", "process crash", started, ended, in_flight=in_flight)

A module may also define ``NEEDS`` (experiment name -> the components it breaks: ``"moto"``, ``"broker"``,
or ``"streaming"`` to run Spark streaming as its own process; see :func:`run_experiment`) or, when its
experiments need another set-up (a proxy in front of a service), its own
``run_experiment(name, workdir, *, spark, endpoint_url, bootstrap_servers) -> Outcome``;
``bench/recovery.py`` and ``tests/chaos/conftest.py`` go through one or the other.

``outcome`` does the rest the same way for every experiment: it waits until the realtime API's freshness
is back under its goal (``recovered_at``), stops the producer, waits until the platform has caught up
(``settle``) and asks for the verdict (``verify``).

What runs (``platform()``):

- **moto** and **broker**: the session's services when ``endpoint_url`` / ``bootstrap_servers`` are given
  (experiments that do not break them), else instances of this platform on fixed ports (``component``
  "moto" / "broker": a restart keeps the port, and the broker its data directory);
- **mapping**: ``python -m devkit.chaos.worker mapping``, the local event source mapping running the real
  MSK landing function (the speed path included) in the environment's consumer group;
- **streaming** (``streaming=True``): ``python -m devkit.chaos.worker streaming``, Spark streaming
  enrichment with a processing-time trigger on its checkpoint, with a Spark JVM of its own. Without it,
  ``verify`` runs the streaming job once (``availableNow``) on the same checkpoint.

Every lake resource and the topic are named with a prefix of their own, so experiments sharing the
session's services never see each other's data.

``verify`` is exact: after ``settle`` (landing lag 0, streaming caught up) it stops the streaming worker,
runs on the caller's SparkSession what the scheduled jobs would (streaming ``availableNow`` on the same
checkpoint, batch enrichment, daily aggregation and export of every touched date), runs
``dataforge reconcile`` (``devkit.reconcile``) for every touched date, and compares silver and gold with
``tests/kpi_reference.py``'s independent computation over the records the broker acknowledged:
``lost`` counts expected events missing from silver, ``duplicated`` silver rows beyond one per
``event_id`` (and events in silver that were never produced).

Times (``Outcome.fault_started`` ...) are ``time.monotonic()`` seconds of the harness process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from dataforge import envvars
from dataforge.settings import Settings
from devkit.chaos.errors import ChaosError
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events
from devkit.local import FAKE_AWS_ENV, LOCALHOST, free_port, local_environment, pid_alive, spawn, tail
from devkit.local.process import ManagedProcess

logger = logging.getLogger(__name__)

FRESHNESS_GOAL_SECONDS: Final = 2.0
"""The realtime API's freshness goal (issue 18, ADR 0014: produce-to-API p95 <= 2 s): an experiment has
recovered once the API's freshness is back under it."""

DEFAULT_RATE: Final = 100.0
CHUNK_SECONDS: Final = 0.5  # event-time span of one generated chunk: event times stay within 0.5 s of now
SETTLE_TIMEOUT: Final = 180.0
RECOVERY_TIMEOUT: Final = 120.0
PRODUCER_DELIVERY_TIMEOUT_MS: Final = 300_000  # the producer outlasts a broker down for minutes
COMPONENTS: Final = ("mapping", "broker", "moto", "streaming")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The exact check after an experiment."""

    reconcile_ok: bool  # ``dataforge reconcile`` explained every count of every touched date
    kpis_equal: bool  # gold (every touched date) equals the independent KPI computation
    lost: int  # acknowledged valid events missing from silver
    duplicated: int  # silver rows beyond one per event_id, plus silver events never produced
    detail: str

    @property
    def ok(self) -> bool:
        return self.reconcile_ok and self.kpis_equal and self.lost == 0 and self.duplicated == 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One experiment's figures (times: ``time.monotonic()``) and its verdict."""

    experiment: str
    fault_kind: str
    fault_started: float
    fault_ended: float
    recovered_at: float | None  # first moment after fault_ended with freshness <= goal (None: never)
    in_flight: int  # records produced but not landed when the fault began, plus those produced during it
    verdict: Verdict
    settled_at: float | None = None  # landing lag 0 and streaming caught up, after the producer stopped
    timings: tuple[tuple[str, float], ...] = ()  # seconds per phase of the run (recovery, settle, verify steps)

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else max(0.0, self.recovered_at - self.fault_ended)

    @property
    def fault_seconds(self) -> float:
        return self.fault_ended - self.fault_started


# --- components ------------------------------------------------------------------------------------


class Component(ABC):
    """A part of the platform that runs as its own process group: killed, paused, restarted."""

    name: str

    @property
    @abstractmethod
    def pid(self) -> int | None: ...

    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def restart(self) -> None:
        """Start it again (same ports, data directory, checkpoint or consumer group) and wait until ready."""

    @abstractmethod
    def stop(self) -> None:
        """Stop it cleanly (SIGTERM, then SIGKILL); a no-op when it is not running."""

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to its whole process group (a SIGKILL is a crash: no shutdown hook runs); after
        SIGKILL or SIGTERM, wait until the process is gone."""
        pid = self.pid
        if pid is None or not pid_alive(pid):
            raise ChaosError(f"{self.name} is not running: nothing to signal")
        logger.info("chaos: %s to %s (pid %d)", sig.name, self.name, pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self._reap()

    def pause(self) -> None:
        """SIGSTOP: the process freezes; its sockets stay open (connections queue, requests time out)."""
        self.kill(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: it runs on from where it froze, with its in-memory state."""
        self.kill(signal.SIGCONT)

    @abstractmethod
    def _reap(self) -> None: ...


class ServiceComponent(Component):
    """A service of :mod:`devkit.local` (``KafkaBroker``, ``MotoServer``) owned by this platform."""

    def __init__(self, name: str, service: ManagedProcess) -> None:
        self.name = name
        self.service = service

    @property
    def pid(self) -> int | None:
        return self.service.pid

    def running(self) -> bool:
        return self.service.running

    def restart(self) -> None:
        if self.service.running:
            raise ChaosError(f"{self.name} is still running: kill or stop it before a restart")
        self.service.start()
        self.service.wait_ready()

    def stop(self) -> None:
        if self.service.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.service.pid, signal.SIGCONT)  # a paused service cannot handle SIGTERM
        self.service.stop()

    def _reap(self) -> None:
        process = self.service._process  # the harness owns the service it reaps
        if process is not None:
            process.wait(timeout=30)


class WorkerComponent(Component):
    """``python -m devkit.chaos.worker <role>`` with the platform's environment (see :mod:`devkit.chaos.worker`)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_file: Path, cwd: Path) -> None:
        self.name = name
        self._args = args
        self._env = env
        self.log_file = log_file
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self.kill_point = cwd / f"{name}.kill-point"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running():
            raise ChaosError(f"{self.name} is already running")
        command = [sys.executable, "-m", "devkit.chaos.worker", self.name, "--kill-point", str(self.kill_point),
                   *self._args]
        self._process = spawn(command, log_file=self.log_file, cwd=self._cwd, env=self._env)
        logger.info("chaos: started %s worker pid %d, log %s", self.name, self._process.pid, self.log_file)

    def restart(self) -> None:
        self.start()

    def restart_with(self, args: list[str]) -> None:
        """Stop the worker cleanly (SIGTERM) and start it again with ``args`` instead of the ones it was
        created with (a configuration change, e.g. the mapping's ``--landing-skew``)."""
        self.stop()
        self._args = list(args)
        self.start()

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        from devkit.local import terminate_group

        terminate_group(process.pid, timeout=60, name=f"{self.name} worker", process=process)

    def arm_kill_point(self) -> Path:
        """Arm the worker's kill point; returns the file the worker writes when it holds there."""
        reached = self.kill_point.with_name(self.kill_point.name + ".reached")
        reached.unlink(missing_ok=True)
        self.kill_point.write_text("armed")
        return reached

    def wait_kill_point(self, timeout: float = 60.0) -> None:
        """Arm the kill point and wait until the worker holds there (raises ``ChaosError`` on timeout)."""
        reached = self.arm_kill_point()
        deadline = time.monotonic() + timeout
        while not reached.exists():
            if not self.running():
                raise ChaosError(f"the {self.name} worker exited before its kill point:\n{tail(self.log_file)}")
            if time.monotonic() >= deadline:
                self.kill_point.unlink(missing_ok=True)
                raise ChaosError(f"the {self.name} worker did not reach its kill point in {timeout:.0f}s")
            time.sleep(0.05)

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait(timeout=30)


# --- the producer ------------------------------------------------------------------------------------


def live_events(rate: float, seed: int, stop: threading.Event, *, invalid_fraction: float = 0.02,
                duplicate_fraction: float = 0.02) -> Iterator[GeneratedEvent]:
    """Generated events with event times of now: chunks of ``CHUNK_SECONDS`` of event time, each chunk's
    window ending when it is generated (ids distinct across chunks: a seed per chunk)."""
    start = datetime.now(UTC)
    chunk = 0
    while not stop.is_set():
        end = datetime.now(UTC)
        if (end - start).total_seconds() < CHUNK_SECONDS:
            stop.wait(CHUNK_SECONDS - (end - start).total_seconds())
            continue
        count = round(rate * (end - start).total_seconds())
        chunk += 1
        if count:
            yield from generate_events(GeneratorConfig(
                count=count, seed=seed * 1_000_003 + chunk, start=start, end=end,
                invalid_fraction=invalid_fraction, duplicate_fraction=duplicate_fraction))
        start = end


class Producer:
    """An idempotent Kafka producer (acks=all) at a steady rate in a thread; keeps every event the broker
    acknowledged (``delivered``), in delivery order, and counts failed deliveries."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        from confluent_kafka import Producer as KafkaProducer

        from devkit.generator_sinks import LIBRDKAFKA_LOGGER, producer_config

        self.topic = topic
        self._producer = KafkaProducer(producer_config(bootstrap_servers, {
            "message.timeout.ms": PRODUCER_DELIVERY_TIMEOUT_MS, "linger.ms": 5}), logger=LIBRDKAFKA_LOGGER)
        self._lock = threading.Lock()
        self.delivered: list[GeneratedEvent] = []
        self.failed: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, event: GeneratedEvent) -> None:
        def on_delivery(err: Any, _msg: Any) -> None:
            with self._lock:
                if err is None:
                    self.delivered.append(event)
                else:
                    self.failed.append(str(err))

        while True:
            try:
                self._producer.produce(self.topic, key=event.key or None, value=event.value, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full (broker away): wait for deliveries
                self._producer.poll(0.1)
        self.sent += 1
        self._producer.poll(0)

    def start(self, rate: float, events: Iterable[GeneratedEvent]) -> None:
        if self._thread is not None:
            raise ChaosError("the producer is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(rate, events), name="chaos-producer", daemon=True)
        self._thread.start()

    def _run(self, rate: float, events: Iterable[GeneratedEvent]) -> None:
        started = time.monotonic()
        for n, event in enumerate(events):
            if self._stop.is_set():
                break
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                self._stop.wait(ahead)
            self.send(event)

    def stop(self, flush_timeout: float = PRODUCER_DELIVERY_TIMEOUT_MS / 1000) -> int:
        """Stop producing, wait for the outstanding deliveries; the number of acknowledged records."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        remaining = self._producer.flush(flush_timeout)
        if remaining:
            raise ChaosError(f"{remaining} records still unacknowledged after {flush_timeout:.0f}s")
        return len(self.delivered)

    @property
    def stopping(self) -> threading.Event:
        return self._stop


# --- the platform ------------------------------------------------------------------------------------


class ChaosPlatform:
    """The running platform of one experiment (made by :func:`platform`)."""

    def __init__(self, settings: Settings, workdir: Path, spark: Any, components: dict[str, Component],
                 *, seed: int = 19) -> None:
        self.settings = settings
        self.workdir = workdir
        self.spark = spark
        self._components = components
        self._seed = seed
        self.producer = Producer(settings.require("kafka_bootstrap_servers"), settings.kafka_topic)
        self.timings: dict[str, float] = {}  # seconds per phase, for reports

    @property
    def endpoint_url(self) -> str:
        return self.settings.endpoint_url or ""

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.require("kafka_bootstrap_servers")

    def component(self, name: str) -> Component:
        """``"mapping"``, ``"streaming"`` (when started with ``streaming=True``), ``"broker"``, ``"moto"``
        (when this platform owns them: ``platform()`` without ``bootstrap_servers`` / ``endpoint_url``)."""
        try:
            return self._components[name]
        except KeyError:
            raise ChaosError(f"component {name!r} is not part of this platform (it has "
                             f"{', '.join(sorted(self._components))}); see devkit.chaos.harness.platform") from None

    def worker(self, name: str) -> WorkerComponent:
        component = self.component(name)
        if not isinstance(component, WorkerComponent):
            raise ChaosError(f"{name} is a service, not a worker")
        return component

    # --- traffic -------------------------------------------------------------------------------------
    def start_producer(self, rate: float = DEFAULT_RATE, *, events: Iterable[GeneratedEvent] | None = None) -> None:
        """Produce at ``rate`` records/s in a thread: ``events``, or by default live generated traffic (event
        times of now, 2 % invalid records, 2 % duplicates) until ``stop_producer``."""
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        stream = events if events is not None else live_events(rate, self._seed, self.producer.stopping)
        self.producer.start(rate, stream)

    def produce(self, events: Iterable[GeneratedEvent]) -> int:
        """Send ``events`` now (next to a running producer), recorded like the producer's; the number sent."""
        n = 0
        for event in events:
            self.producer.send(event)
            n += 1
        return n

    def stop_producer(self) -> int:
        """Stop the producer and wait for every acknowledgement; the records the broker acknowledged so far."""
        return self.producer.stop()

    @property
    def produced(self) -> list[GeneratedEvent]:
        """The records the broker acknowledged so far."""
        return list(self.producer.delivered)

    # --- observing -----------------------------------------------------------------------------------
    def landed(self) -> int | None:
        """Records the landing group has committed (None while the broker does not answer)."""
        from devkit.reconcile import kafka_offsets

        try:
            offsets = kafka_offsets(self.bootstrap_servers, self.settings.kafka_topic, self._group, timeout=5.0)
        except Exception:  # noqa: BLE001 - an observer of a platform under fault: no answer is an answer
            return None
        return None if offsets is None else offsets.committed - offsets.start

    def landing_lag(self) -> int | None:
        """Records on the topic the landing group has not committed (None while the broker does not answer)."""
        from devkit.reconcile import kafka_offsets

        try:
            offsets = kafka_offsets(self.bootstrap_servers, self.settings.kafka_topic, self._group, timeout=5.0)
        except Exception:  # noqa: BLE001 - an observer of a platform under fault
            return None
        return None if offsets is None else offsets.end - offsets.committed

    def wait_landed(self, records: int, timeout: float = 120.0) -> None:
        """Wait until the landing group has committed at least ``records`` records."""
        deadline = time.monotonic() + timeout
        while (self.landed() or 0) < records:
            if time.monotonic() >= deadline:
                raise ChaosError(f"fewer than {records} records landed within {timeout:.0f}s "
                                 f"(mapping log: {self._log('mapping')})")
            time.sleep(0.25)

    def in_flight(self) -> int:
        """Records produced but not landed yet (0 when the broker does not answer)."""
        return self.landing_lag() or 0

    def freshness_seconds(self) -> float | None:
        """The realtime API's freshness: seconds since the newest event time it has counted (either path),
        read through the API's own repository and merge (``chalicelib``), None when nothing is counted or
        the metrics table does not answer."""
        from botocore.exceptions import BotoCoreError, ClientError
        from chalicelib.handlers import realtime_rows
        from chalicelib.repositories import RealtimeRepository

        now = datetime.now(UTC)
        try:
            page = RealtimeRepository(self._dynamodb, self.settings.require("metrics_table")).window(
                now - timedelta(minutes=2), now)
            _rows, view = realtime_rows(page)
        except (BotoCoreError, ClientError):
            return None
        newest: datetime | None = view.newest_event_time
        if newest is None:
            return None
        return max(0.0, (now - newest).total_seconds())

    def wait_fresh(self, goal: float = FRESHNESS_GOAL_SECONDS, timeout: float = RECOVERY_TIMEOUT) -> float | None:
        """The first moment (monotonic) the freshness is at or under ``goal``; None if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = self.freshness_seconds()
            if fresh is not None and fresh <= goal:
                return time.monotonic()
            time.sleep(0.1)
        return None

    def streaming_caught_up(self) -> bool:
        """Whether the streaming job's last committed micro-batch ends at the topic's end offsets."""
        from devkit.reconcile import kafka_offsets

        offsets = kafka_offsets(self.bootstrap_servers, self.settings.kafka_topic, self._group, timeout=5.0)
        done = self._checkpoint_offsets()
        return offsets is not None and done is not None and done == offsets.end - offsets.start

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> float:
        """Wait until the landing lag is 0 and, when the streaming worker runs, it has caught up; the
        moment (monotonic) it did. Call it after ``stop_producer``."""
        deadline = time.monotonic() + timeout
        streaming = self._components.get("streaming")
        while True:
            lag = self.landing_lag()
            if lag == 0 and (streaming is None or not streaming.running() or self.streaming_caught_up()):
                return time.monotonic()
            if time.monotonic() >= deadline:
                raise ChaosError(f"the platform did not settle within {timeout:.0f}s (landing lag {lag}); logs: "
                                 f"{self.workdir / 'logs'}")
            time.sleep(0.5)

    # --- the verdict ---------------------------------------------------------------------------------
    def touched_dates(self) -> list[date]:
        """The event dates of the valid records produced (every date a KPI or a silver row may hold)."""
        days = set()
        for event in self.produced:
            if event.is_valid:
                days.add(datetime.fromisoformat(json.loads(event.value)["event_time"]).astimezone(UTC).date())
        return sorted(days)

    def verify(self) -> Verdict:
        """Run the jobs that complete the picture, reconcile every touched date, compare with the independent
        computation (see the module docstring)."""
        from devkit.cli.reconcile import sources_for
        from devkit.reconcile import reconcile
        from spark.jobs import batch_enrichment, daily_aggregation, export_gold, streaming_enrichment
        from spark.runtime import Lake
        from tests.kpi_reference import expected_gold

        if self.producer.stopping.is_set() is False:
            self.stop_producer()
        self.settle()
        clock = time.monotonic()
        streaming = self._components.get("streaming")
        if streaming is not None:
            streaming.stop()
        spark, settings = self.spark, self.settings
        streaming_enrichment.run(spark, settings, trigger="availableNow")
        self.timings["verify: streaming (availableNow)"] = time.monotonic() - clock
        batch_enrichment.run(spark, settings)
        self.timings["verify: batch enrichment"] = time.monotonic() - clock
        days = self.touched_dates()
        for day in days:
            daily_aggregation.run(spark, settings, day)
            export_gold.run(spark, settings, day)
        self.timings["verify: aggregation + export"] = time.monotonic() - clock
        notes: list[str] = []
        if self.producer.failed:
            notes.append(f"{len(self.producer.failed)} deliveries failed: {self.producer.failed[:3]}")
        reconciles = [reconcile(settings, day, sources_for(settings)) for day in days]
        self.timings["verify: reconcile"] = time.monotonic() - clock
        unexplained = [f"{r.day}: {c.name}: {c.detail}" for r in reconciles for c in r.unexplained]
        notes += unexplained
        events = self.produced
        expected = expected_gold(events)
        where = Lake(settings)
        gold = {
            (r["event_date"], r["merchant_id"], r["country"], r["channel"]): (
                r["txn_count"], r["approved_count"], r["declined_count"], r["approval_rate"], r["gross_volume_usd"],
                r["refund_count"], r["refund_volume_usd"], r["net_volume_usd"], r["avg_ticket_usd"],
                r["unique_accounts"])
            for r in spark.read.parquet(where.gold()).collect()}
        kpis_equal = gold == expected
        if not kpis_equal:
            differ = sorted(k for k in expected.keys() | gold.keys() if expected.get(k) != gold.get(k))
            notes.append(f"gold differs on {len(differ)} keys, e.g. "
                         + "; ".join(f"{k}: gold {gold.get(k)} expected {expected.get(k)}" for k in differ[:2]))
        wanted = {e.event_id for e in events if e.is_valid and e.enrichment_reason is None and e.event_id}
        silver = [r["event_id"] for r in spark.read.parquet(where.silver()).select("event_id").collect()]
        ids = set(silver)
        lost = len(wanted - ids)
        duplicated = len(silver) - len(ids) + len(ids - wanted)
        self.timings["verify: compare"] = time.monotonic() - clock
        notes.insert(0, f"{len(events)} records acknowledged, {len(wanted)} distinct valid events expected, "
                        f"{len(silver)} silver rows, {len(days)} date(s) reconciled")
        return Verdict(not unexplained and not self.producer.failed, kpis_equal, lost, duplicated, "; ".join(notes))

    def outcome(self, experiment: str, fault_kind: str, fault_started: float, fault_ended: float, *,
                in_flight: int, recover: bool = True) -> Outcome:
        """Wait for freshness to recover (while the producer runs on), then stop the producer, settle and
        verify: the experiment's ``Outcome``."""
        recovered = self.wait_fresh() if recover else None
        if recovered is not None:
            self.timings["recovery"] = recovered - fault_ended
        stopped = time.monotonic()
        self.stop_producer()
        settled = self.settle()
        self.timings["settle after the producer stopped"] = settled - stopped
        verdict = self.verify()
        outcome = Outcome(experiment, fault_kind, fault_started, fault_ended, recovered, in_flight, verdict, settled,
                          tuple((name, round(seconds, 2)) for name, seconds in self.timings.items()))
        logger.info("chaos %s: fault %.1fs, recovery %s, in flight %d, verdict %s", experiment,
                    outcome.fault_seconds, outcome.recovery_seconds, in_flight, verdict)
        return outcome

    # --- internals -----------------------------------------------------------------------------------
    @property
    def _group(self) -> str:
        from devkit.local.platform import landing_group

        return landing_group(self.settings)

    @property
    def _dynamodb(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.Session(region_name=self.settings.region).client(
            "dynamodb", endpoint_url=self.settings.endpoint_url,
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))

    def _checkpoint_offsets(self) -> int | None:
        """Records up to the end offsets of the streaming checkpoint's last committed micro-batch (Spark's
        ``commits/<n>`` marks batch ``n`` done; ``offsets/<n>`` holds its end offsets, third line)."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = self.settings.require("artifacts_bucket")
        prefix = "jobs/streaming_enrichment/checkpoint/"
        s3 = boto3.Session(region_name=self.settings.region).client("s3", endpoint_url=self.settings.endpoint_url)
        try:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "commits/").get("Contents", [])
            batches = [int(o["Key"].rsplit("/", 1)[1]) for o in listed if o["Key"].rsplit("/", 1)[1].isdigit()]
            if not batches:
                return None
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}offsets/{max(batches)}")["Body"].read().decode()
        except (BotoCoreError, ClientError):
            return None
        ends = json.loads(body.splitlines()[2])[self.settings.kafka_topic]
        return sum(int(v) for v in ends.values())

    def _log(self, name: str) -> str:
        component = self._components.get(name)
        return str(component.log_file) if isinstance(component, WorkerComponent) else "-"


# --- the context manager ------------------------------------------------------------------------------


@contextlib.contextmanager
def platform(workdir: Path, *, spark: Any, endpoint_url: str | None = None, bootstrap_servers: str | None = None,
             streaming: bool = False, trigger: str = "processingTime=2 seconds", seed: int = 19,
             worker_env: dict[str, str] | None = None) -> Iterator[ChaosPlatform]:
    """The embedded platform of one experiment (see the module docstring); everything it started is
    stopped on exit, whatever happened.

    Args:
        workdir: logs, the broker's data, kill points.
        spark: the SparkSession ``verify`` runs the jobs on (S3A pointed at this platform's endpoint while
            the block runs, restored after).
        endpoint_url, bootstrap_servers: the session's services to use; None: start instances of this
            platform's own (components "moto" / "broker").
        streaming: run Spark streaming as its own process during the experiment (component "streaming").
        worker_env: extra environment of the worker processes (e.g. a fault tool's preload or proxy).
    """
    from devkit.local.bootstrap import bootstrap
    from devkit.local.kafka import KafkaBroker, create_topics
    from devkit.local.moto_server import MotoServer
    from devkit.local.spark import configure_s3a

    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    components: dict[str, Component] = {}
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    previous_endpoint = hadoop.get("fs.s3a.endpoint")
    with contextlib.ExitStack() as stack:
        if endpoint_url is None:
            port = free_port()
            components["moto"] = _own(stack, "moto", MotoServer(logs_dir=logs, port=port))
            endpoint_url = f"http://{LOCALHOST}:{port}"
        if bootstrap_servers is None:
            port, controller = free_port(), free_port()
            while controller == port:
                controller = free_port()
            components["broker"] = _own(stack, "broker", KafkaBroker(
                workdir / "kafka", logs_dir=logs, port=port, controller_port=controller))
            bootstrap_servers = f"{LOCALHOST}:{port}"
        name = f"chaos{uuid.uuid4().hex[:8]}"
        env = local_environment(endpoint_url=endpoint_url, kafka_bootstrap_servers=bootstrap_servers, prefix=name)
        env[envvars.KAFKA_TOPIC] = f"{name}-transactions"
        settings = Settings.from_env(env)
        stack.enter_context(_environment({**FAKE_AWS_ENV, envvars.AWS_ENDPOINT_URL: endpoint_url}))
        bootstrap(settings)
        from devkit.local import TRANSACTIONS_PARTITIONS

        create_topics(bootstrap_servers, {settings.kafka_topic: TRANSACTIONS_PARTITIONS})
        configure_s3a(spark, endpoint_url)
        if previous_endpoint:
            stack.callback(configure_s3a, spark, previous_endpoint)
        process_env = {**{k: v for k, v in os.environ.items() if k not in env}, **env, **(worker_env or {}),
                       "PYTHONUNBUFFERED": "1"}
        mapping = WorkerComponent("mapping", [], process_env, logs / "mapping.log", workdir)
        stack.callback(mapping.stop)
        mapping.start()
        components["mapping"] = mapping
        if streaming:
            worker = WorkerComponent("streaming", ["--trigger", trigger, "--spark-log", str(logs / "spark.log")],
                                     process_env, logs / "streaming.log", workdir)
            stack.callback(worker.stop)
            worker.start()
            components["streaming"] = worker
        chaos = ChaosPlatform(settings, workdir, spark, components, seed=seed)
        stack.callback(_stop_quietly, chaos.producer)
        yield chaos


def _own(stack: contextlib.ExitStack, name: str, service: ManagedProcess) -> ServiceComponent:
    """Start ``service`` as the platform's own component ``name``, stopped when ``stack`` closes."""
    component = ServiceComponent(name, service)
    stack.callback(component.stop)
    component.restart()
    return component


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block (restored after): a client created without an explicit
    endpoint in this process (a job's DynamoDB or Glue client) reaches this platform's moto server."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop_quietly(producer: Producer) -> None:
    try:
        producer.stop(flush_timeout=10)
    except ChaosError as exc:
        logger.warning("chaos producer: %s", exc)


def run_experiment(experiment: Callable[[ChaosPlatform], Outcome], needs: frozenset[str], workdir: Path, *,
                   spark: Any, endpoint_url: str, bootstrap_servers: str) -> Outcome:
    """Run one experiment on a platform made for it: the given (shared) services, except those in ``needs``
    (``"moto"``, ``"broker"``: the experiment breaks them, so it gets instances of its own), and Spark
    streaming as its own process when ``needs`` has ``"streaming"``. An experiments module whose experiments
    need another set-up (a proxy in front of a service, ...) defines its own ``run_experiment`` with this
    signature minus ``experiment`` and ``needs``, taking the experiment's name instead."""
    with platform(workdir, spark=spark, endpoint_url=None if "moto" in needs else endpoint_url,
                  bootstrap_servers=None if "broker" in needs else bootstrap_servers,
                  streaming="streaming" in needs) as chaos:
        return experiment(chaos)
