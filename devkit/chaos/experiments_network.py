"""Network and AWS service faults (issue 19, experiments 3 and 4) under a steady produce rate; each ends
with the exact verdict of :meth:`devkit.chaos.harness.ChaosPlatform.verify`.

- ``s3_network`` (3): Toxiproxy between the landing step and S3. The mapping worker runs with
  ``AWS_ENDPOINT_URL_S3`` set to a proxy in front of the moto server (``dataforge.aws`` gives a
  service-specific endpoint precedence, as the AWS SDKs do), so the landing function's S3 traffic goes
  through the proxy and everything else (its DynamoDB writes, Spark, the checks) reaches moto directly.
  Three phases of ``PHASE_SECONDS``: ``latency`` (every answer delayed), ``reset_peer`` (every connection
  reset: botocore retries, then the landing fails the batch and the mapping retries it), ``timeout`` (no
  data, the connection closed after ``TIMEOUT_MS``: a middlebox dropping an idle connection).
- ``s3_errors`` (3): S3 answers ``503 SlowDown`` to ``SLOW_DOWNS`` PutObject attempts (fewer than the
  retry configuration's attempts: absorbed by the adaptive retries, which also slow the client down), then
  ``500 InternalError`` to ``INTERNAL_ERRORS`` of them (more: one call fails, the landing fails the batch,
  the mapping retries it and overwrites the same objects). Injected at the botocore level
  (:mod:`devkit.chaos.botocore_faults`) into the landing function of an in-process mapping that takes the
  worker's place for the fault (same consumer group, commits after success), then hands back to it.
- ``dynamodb_throttling`` (4): DynamoDB throttles the realtime writes of the landing function's speed path
  (``ProvisionedThroughputExceededException``, then ``ThrottlingException`` long enough to fail a call and
  the batch) in the same in-process way, then, after the producer stopped, the gold export: its
  ``BatchWriteItem`` calls are throttled until the export job fails, and the job is run again (as the
  scheduled workflow retries a failed Glue job). The exported items must equal gold item for item before
  the verdict runs the jobs once more.

Every fault must show: an experiment whose fault did not reach the component (no failed invocation, no
injected answer) raises ``ChaosError`` instead of passing. ``run_experiment`` makes the platform of one
experiment (the harness's ``platform()``; for ``s3_network`` also a Toxiproxy server and its proxy).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Final, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dataforge import aws, envvars
from dataforge.reference import default_fx
from devkit.chaos.botocore_faults import (
    DYNAMODB_THROTTLING,
    DYNAMODB_THROUGHPUT_EXCEEDED,
    S3_INTERNAL_ERROR,
    S3_SLOW_DOWN,
    FaultInjector,
)
from devkit.chaos.errors import ChaosError
from devkit.chaos.harness import ChaosPlatform, Outcome, platform
from devkit.chaos.toxiproxy import Proxy, Toxiproxy, ToxiproxyServer

RATE: Final = 150.0  # records/s
WARMUP_RECORDS: Final = 300  # landed before the fault: the steady state
PHASE_SECONDS: Final = 4.0  # each Toxiproxy phase
LATENCY_MS: Final = 400
JITTER_MS: Final = 100
TIMEOUT_MS: Final = 1500
AFTER_FAULT_SECONDS: Final = 5.0  # production goes on after the fault ended
FAULT_TIMEOUT: Final = 90.0  # the injected answers must all have been served by then
SLOW_DOWNS: Final = 3  # < MAX_ATTEMPTS: absorbed by the client's retries
INTERNAL_ERRORS: Final = 7  # >= MAX_ATTEMPTS: one call fails, the batch is retried
THROUGHPUT_EXCEEDED: Final = 2
THROTTLED: Final = 6
EXPORT_THROTTLED: Final = aws.MAX_ATTEMPTS + 2  # one BatchWriteItem call fails, then 2 more answers are absorbed
EXPORT_RUNS: Final = 3
_HANDLER_FAILED: Final = "handler failed"  # what the local event source mapping logs per failed invocation

#: Experiments sharing the session's services (none breaks moto or the broker).
NEEDS: Final[dict[str, frozenset[str]]] = {}


@dataclass(frozen=True, slots=True)
class Network:
    """What the network experiments drive besides the platform: Toxiproxy and its proxy in front of S3."""

    toxiproxy: Toxiproxy | None = None
    s3_proxy: Proxy | None = None


Experiment = Callable[[ChaosPlatform, Network], Outcome]


# --- helpers -----------------------------------------------------------------------------------------


def _failed_invocations(p: ChaosPlatform) -> int:
    """Failed landing invocations the mapping worker logged so far (each retried with the same batch)."""
    log = p.worker("mapping").log_file
    return log.read_text(errors="replace").count(_HANDLER_FAILED) if log.exists() else 0


def _session(p: ChaosPlatform) -> boto3.Session:
    """A session of the platform's region for fault injectors to attach to (credentials: the environment's)."""
    return boto3.Session(region_name=p.settings.region)


@contextlib.contextmanager
def _in_process_mapping(p: ChaosPlatform, *, s3_session: boto3.Session | None = None,
                        dynamodb: Any = None) -> Iterator[Any]:
    """The worker's mapping stopped (cleanly: its batches committed), an in-process mapping of the same
    consumer group running the real landing function with injected S3 session / DynamoDB client for the
    ``with`` block, then the worker started again. Yields the mapping (its ``stats`` count failures). The
    function's JSON logs and EMF lines go to the worker's log file meanwhile, as the worker's would."""
    from devkit.local.esm import EsmConfig, LocalEventSourceMapping
    from devkit.local.platform import landing_group
    from lambdas.common.config import LandingConfig
    from lambdas.common.counters import IngestCounters
    from lambdas.common.kafka_landing import KafkaLanding
    from lambdas.common.speed_path import SpeedPath
    from lambdas.common.storage import S3ObjectStore
    from lambdas.common.wiring import landing_parts
    from lambdas.msk_landing.handler import make_handler

    settings = p.settings
    config = LandingConfig.from_settings(settings)
    table = settings.require("metrics_table")
    store = S3ObjectStore(s3_session, endpoint_url=config.endpoint_url, region=config.region)
    parts = landing_parts(settings, store)._replace(
        counters=IngestCounters(table, endpoint_url=config.endpoint_url, region=config.region, client=dynamodb))
    landing = KafkaLanding(*parts, speed=SpeedPath(table, default_fx(), endpoint_url=config.endpoint_url,
                                                   region=config.region, client=dynamodb))
    esm = EsmConfig(p.bootstrap_servers, (settings.kafka_topic,), group_id=landing_group(settings))
    mapping = LocalEventSourceMapping(esm, make_handler(lambda: landing))
    worker = p.worker("mapping")
    worker.stop()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            mapping.run(stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported to the experiment's thread below
            errors.append(exc)

    thread = threading.Thread(target=run, name="chaos-mapping", daemon=True)
    log = worker.log_file.open("a")
    try:
        with _function_output_to(log):
            thread.start()
            try:
                yield mapping
            finally:
                stop.set()
                thread.join(120)
    finally:
        log.close()
        worker.restart()
    if thread.is_alive():
        raise ChaosError("the in-process mapping did not stop within 120 s")
    if errors:
        raise ChaosError(f"the in-process mapping failed: {errors[0]}") from errors[0]


@contextlib.contextmanager
def _function_output_to(log: TextIO) -> Iterator[None]:
    """The MSK landing function's output (its Powertools logger, bound to stdout when it was made, and its
    EMF metrics, printed) written to ``log`` for the ``with`` block."""
    from lambdas.msk_landing.handler import logger as function_logger

    handler = function_logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        raise ChaosError(f"the landing function's log handler is a {type(handler).__name__}, not a stream")
    previous = handler.setStream(log)
    try:
        with contextlib.redirect_stdout(log):
            yield
    finally:
        handler.setStream(previous)


def _wait_injected(injector: FaultInjector, count: int, what: str) -> None:
    deadline = time.monotonic() + FAULT_TIMEOUT
    while injector.injected < count:
        if time.monotonic() >= deadline:
            raise ChaosError(f"{what}: {injector.injected} of {count} faults injected in {FAULT_TIMEOUT:.0f} s "
                             f"({injector.seen} matching requests): the fault did not reach the component")
        time.sleep(0.1)


def _with_detail(outcome: Outcome, detail: str) -> Outcome:
    return replace(outcome, verdict=replace(outcome.verdict, detail=f"{outcome.verdict.detail}; {detail}"))


# --- experiments -------------------------------------------------------------------------------------


def experiment_s3_network(p: ChaosPlatform, net: Network) -> Outcome:
    if net.toxiproxy is None or net.s3_proxy is None:
        raise ChaosError("s3_network needs Toxiproxy and its S3 proxy: run it through run_experiment")
    api, proxy = net.toxiproxy, net.s3_proxy.name
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    failed_before = _failed_invocations(p)
    before = p.producer.sent
    in_flight = p.in_flight()
    started = time.monotonic()
    with api.toxic(proxy, "slow", "latency", {"latency": LATENCY_MS, "jitter": JITTER_MS}):
        time.sleep(PHASE_SECONDS)
    with api.toxic(proxy, "reset", "reset_peer", {"timeout": 0}):
        time.sleep(PHASE_SECONDS)
    with api.toxic(proxy, "silence", "timeout", {"timeout": TIMEOUT_MS}):
        time.sleep(PHASE_SECONDS)
    ended = time.monotonic()
    in_flight += p.producer.sent - before
    failed = _failed_invocations(p) - failed_before
    if failed == 0:
        raise ChaosError("no landing invocation failed while S3 connections were reset: the S3 traffic of the "
                         "mapping did not go through the proxy")
    time.sleep(AFTER_FAULT_SECONDS)
    outcome = p.outcome("s3_network", "network faults to S3 (Toxiproxy)", started, ended, in_flight=in_flight)
    return _with_detail(outcome, f"{failed} landing invocations failed and were retried")


Phase = tuple[FaultInjector, int, str]
"""An armed-later injector, how many requests it answers, and what it answers (for messages)."""


def _absorbed_then_failing(p: ChaosPlatform, absorbed: Phase, failing: Phase, *,
                           s3_session: boto3.Session | None = None, dynamodb: Any = None
                           ) -> tuple[float, float, int, int]:
    """Land through an in-process mapping while ``absorbed``'s injector answers a few requests (fewer than
    the client's retries allow), then ``failing``'s answers more in a row than they allow (one injector
    answers at a time). Returns (fault started, fault ended, failed landing invocations, records in flight);
    raises ChaosError when the failing phase failed no invocation (the retries allow more attempts than
    ``dataforge.aws`` says)."""
    first, first_count, first_what = absorbed
    second, second_count, second_what = failing
    before = p.producer.sent
    in_flight = p.in_flight()
    started = time.monotonic()
    with _in_process_mapping(p, s3_session=s3_session, dynamodb=dynamodb) as mapping:
        _wait_injected(first, first_count, first_what)
        second.arm(second_count)
        _wait_injected(second, second_count, second_what)
        ended = time.monotonic()
        time.sleep(1.0)  # the retried batch lands
    failures = mapping.stats.failures
    if failures == 0:
        raise ChaosError(f"{second_count} {second_what} answers in a row failed no landing invocation: the retries "
                         "are configured for more attempts than dataforge.aws says")
    in_flight += p.producer.sent - before
    time.sleep(AFTER_FAULT_SECONDS)
    return started, ended, failures, in_flight


def experiment_s3_errors(p: ChaosPlatform, net: Network) -> Outcome:
    del net
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    session = _session(p)
    puts = frozenset({"PutObject"})
    slow_down = FaultInjector(S3_SLOW_DOWN, count=SLOW_DOWNS, operations=puts)
    internal = FaultInjector(S3_INTERNAL_ERROR, count=0, operations=puts)
    slow_down.attach(session)
    internal.attach(session)
    started, ended, failures, in_flight = _absorbed_then_failing(
        p, (slow_down, SLOW_DOWNS, "503 SlowDown"), (internal, INTERNAL_ERRORS, "500 InternalError"),
        s3_session=session)
    outcome = p.outcome("s3_errors", "S3 500 InternalError / 503 SlowDown (botocore)", started, ended,
                        in_flight=in_flight)
    return _with_detail(outcome, f"{slow_down.injected} SlowDown + {internal.injected} InternalError answers, "
                                 f"{failures} landing invocations failed and were retried")


def experiment_dynamodb_throttling(p: ChaosPlatform, net: Network) -> Outcome:
    del net
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    session = _session(p)
    writes = frozenset({"PutItem"})
    exceeded = FaultInjector(DYNAMODB_THROUGHPUT_EXCEEDED, count=THROUGHPUT_EXCEEDED, operations=writes)
    throttled = FaultInjector(DYNAMODB_THROTTLING, count=0, operations=writes)
    for injector in (exceeded, throttled):
        injector.attach(session)
    dynamodb = aws.client("dynamodb", session=session, endpoint_url=p.settings.endpoint_url, region=p.settings.region)
    started, ended, speed_failures, in_flight = _absorbed_then_failing(
        p, (exceeded, THROUGHPUT_EXCEEDED, "ProvisionedThroughputExceededException"),
        (throttled, THROTTLED, "ThrottlingException"), dynamodb=dynamodb)
    outcome = p.outcome("dynamodb_throttling", "DynamoDB throttling (speed path, gold export)", started, ended,
                        in_flight=in_flight)
    exported, export_failures, injected = _export_under_throttling(p)
    verdict = outcome.verdict
    return replace(outcome, verdict=replace(
        verdict, reconcile_ok=verdict.reconcile_ok and exported,
        detail=f"{verdict.detail}; speed path: {exceeded.injected} throughput-exceeded + {throttled.injected} "
               f"throttled answers, {speed_failures} landing invocations retried; gold export: {injected} throttled "
               f"BatchWriteItem answers, {export_failures} run(s) failed and were run again, "
               f"{'reconciled' if exported else 'NOT reconciled'} after"))


def _export_under_throttling(p: ChaosPlatform) -> tuple[bool, int, int]:
    """The gold export of every touched date again, from an empty table for that date, with its
    ``BatchWriteItem`` calls throttled until a run fails; each failed run is run again (the workflow's job
    retry). Returns whether the table then reconciles with gold, the failed runs and the injected answers."""
    from devkit.cli.reconcile import sources_for
    from devkit.reconcile import reconcile
    from spark.jobs import export_gold

    session = _session(p)
    faults = FaultInjector(DYNAMODB_THROTTLING, count=EXPORT_THROTTLED, operations=frozenset({"BatchWriteItem"}))
    faults.attach(session)
    failures = 0
    days = p.touched_dates()
    for day in days:
        _delete_kpi_items(p, day)
        for _run in range(EXPORT_RUNS):
            try:
                export_gold.run(p.spark, p.settings, day, session=session)
                break
            except (BotoCoreError, ClientError):
                failures += 1
        else:
            raise ChaosError(f"the gold export of {day} failed {EXPORT_RUNS} times under {EXPORT_THROTTLED} "
                             "throttled calls")
    if failures == 0:
        raise ChaosError(f"{faults.injected} throttled BatchWriteItem answers failed no export run: the retries "
                         "outlast the fault")
    exact = all(not reconcile(p.settings, day, sources_for(p.settings)).unexplained for day in days)
    return exact and all(_exported_exactly(p, day) for day in days), failures, faults.injected


def _gold_items(p: ChaosPlatform, day: date) -> dict[tuple[str, str], dict[str, Any]]:
    """What the export of ``day`` must write: gold's KPI items (``serving.kpi_items``) by key."""
    from dataforge import schemas, serving
    from spark import runtime

    rows = [r.asDict() for r in runtime.read_table(p.spark, runtime.Lake(p.settings).gold(day),
                                                   schemas.GOLD_DAILY_KPIS, day).collect()]
    return {(str(i[serving.PK]), str(i[serving.SK])): i for row in rows for i in serving.kpi_items(row, day)}


def _kpi_table_items(p: ChaosPlatform, day: date, pks: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The table's KPI items of ``day`` under the partition keys ``pks``."""
    from boto3.dynamodb.conditions import Key

    from dataforge import schemas, serving
    from spark import runtime

    table = runtime.dynamodb_table(p.settings)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for pk in sorted(pks | {serving.kpi_date_pk(day), serving.KPI_TOTAL_PK}):
        query: dict[str, Any] = {"KeyConditionExpression": Key(serving.PK).eq(pk)}
        while True:
            page = table.query(**query)
            for item in page["Items"]:
                if item.get(schemas.KPI_DATE) == day.isoformat():
                    found[(str(item[serving.PK]), str(item[serving.SK]))] = item
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found


def _delete_kpi_items(p: ChaosPlatform, day: date) -> None:
    from dataforge import serving
    from spark import runtime

    pks = {pk for pk, _ in _gold_items(p, day)}
    with runtime.dynamodb_table(p.settings).batch_writer() as batch:
        for pk, sk in _kpi_table_items(p, day, pks):
            batch.delete_item(Key={serving.PK: pk, serving.SK: sk})


def _exported_exactly(p: ChaosPlatform, day: date) -> bool:
    """The table holds exactly gold's KPI items of ``day``, attribute for attribute."""
    wanted = _gold_items(p, day)
    return bool(wanted) and _kpi_table_items(p, day, {pk for pk, _ in wanted}) == wanted


EXPERIMENTS: Final[dict[str, Experiment]] = {
    "s3_network": experiment_s3_network,
    "s3_errors": experiment_s3_errors,
    "dynamodb_throttling": experiment_dynamodb_throttling,
}


def run_experiment(name: str, workdir: Path, *, spark: Any, endpoint_url: str, bootstrap_servers: str) -> Outcome:
    """Run experiment ``name`` on a platform made for it (the session's moto server and broker); for
    ``s3_network`` with a Toxiproxy server whose proxy is the mapping worker's S3 endpoint."""
    experiment = EXPERIMENTS[name]
    with contextlib.ExitStack() as stack:
        net = Network()
        worker_env: dict[str, str] = {}
        if name == "s3_network":
            server = stack.enter_context(ToxiproxyServer(logs_dir=workdir / "logs"))
            upstream = endpoint_url.split("://", 1)[-1].rstrip("/")
            proxy = server.api.create_proxy(f"s3-{workdir.name}", upstream)
            net = Network(server.api, proxy)
            worker_env[f"{envvars.AWS_ENDPOINT_URL_SERVICE_PREFIX}S3"] = proxy.url
        chaos = stack.enter_context(platform(workdir, spark=spark, endpoint_url=endpoint_url,
                                             bootstrap_servers=bootstrap_servers, worker_env=worker_env))
        return experiment(chaos, net)
