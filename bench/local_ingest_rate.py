"""End-to-end local ingest rate: Kafka -> local event source mapping -> MSK landing handler -> embedded S3.

Starts its own moto server and Kafka broker (in a temporary folder), bootstraps the lake, produces
``--count`` generated events (idempotent producer, acks=all; timed separately), then runs
``--consumers`` event source mappings, each in its own process with the real handler (as the managed
MSK mapping runs up to one concurrent invocation per partition), until they have committed
everything, and reconciles bronze + quarantine with what was produced. The rate is records / (first
batch handed to a handler -> last handler return, over all consumers). Each consumer also prints
where its time went (consume, building MSK events, handler with its S3 puts, commits; its consume
time includes the group join and the final idle wait, both outside the window) and its CPU seconds;
the moto server's and the broker's CPU seconds while the consumers ran are printed too, beside the
machine's (other processes compete for the same cores).

``--assignment static`` (default): the mappings split the partitions round robin and commit to one
group without joining it (``EsmConfig.partitions``). ``--assignment group``: they subscribe to the
group; with ``--consumers 2`` the second joins a group the first already consumes from, and the
cooperative rebalance that moves partitions to it is part of the measured window.
``--profile DIR`` writes each consumer's cProfile to DIR.

Usage: .venv/bin/python bench/local_ingest_rate.py [--count 1000000] [--batch-size 10000]
                                                    [--partitions 4] [--consumers 1]
                                                    [--assignment static|group] [--profile DIR]
Goal: >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from confluent_kafka import Producer

from dataforge.bronze import read_lines
from dataforge.lake import TRANSACTIONS_TOPIC
from dataforge.settings import Settings
from devkit.generator import GenerationSummary, GeneratorConfig, SummaryCounter, generate_events
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.esm import EsmConfig, LocalEventSourceMapping, committed_lag, static_partitions
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.moto_server import MotoServer

GOAL = 50_000


def count_lines(s3: Any, bucket: str) -> tuple[int, int]:
    objects = lines = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects += 1
            lines += len(read_lines(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
    return objects, lines


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process group led by ``pid`` (Linux ``/proc``), 0.0 elsewhere."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pid:  # fields[2]: the process group id (fields after the command name)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat`` (zeros elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def consume(bootstrap_servers: str, batch_size: int, partitions: tuple[int, ...] | None, env: dict[str, str],
            results: Any, profile: str | None = None) -> None:
    """One consumer process: the real handler behind a local ESM, run until the group is idle."""
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            consume(bootstrap_servers, batch_size, partitions, env, results)
        finally:
            profiler.disable()
            profiler.dump_stats(f"{profile}/consumer-{os.getpid()}.prof")
        return
    os.environ.update(env)
    from lambdas.msk_landing.handler import handler, logger

    logger.setLevel("WARNING")
    window = {"first": 0.0, "last": 0.0, "handler": 0.0}

    def timed(event: dict[str, Any], context: Any) -> Any:
        started = time.monotonic()  # (system-wide clock: comparable across processes)
        window["first"] = window["first"] or started
        result = handler(event, context)
        window["last"] = time.monotonic()
        window["handler"] += window["last"] - started
        return result

    config = EsmConfig(bootstrap_servers, (TRANSACTIONS_TOPIC,), group_id="bench", batch_size=batch_size,
                       batching_window=0.5, partitions=partitions)
    stats = LocalEventSourceMapping(config, timed).run(until_idle=5.0)
    cpu = os.times()
    results.put((stats.records, stats.invocations, stats.failures, window["first"], window["last"],
                 stats.consume_seconds, stats.event_seconds, window["handler"], stats.commit_seconds,
                 cpu.user + cpu.system))


def setup_lake(moto: MotoServer, broker: KafkaBroker, partitions: int) -> tuple[Settings, Any]:
    """The topic, this process's environment (the handler reads it at cold start) and the bootstrapped lake."""
    create_topics(broker.bootstrap_servers, {TRANSACTIONS_TOPIC: partitions})
    env = local_environment(endpoint_url=moto.endpoint_url, kafka_bootstrap_servers=broker.bootstrap_servers)
    os.environ.update(env)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    settings = Settings.from_env()
    session = boto3.Session(region_name=settings.region)
    bootstrap(settings, session)
    return settings, session


def produce(bootstrap_servers: str, count: int) -> tuple[GenerationSummary, float]:
    """``count`` generated events to the topic, every one delivered: what was sent, and the seconds it took."""
    counter = SummaryCounter()
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 50, "batch.size": 1_000_000,
                         "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
    started = time.perf_counter()
    for event in generate_events(GeneratorConfig(count=count, seed=1, invalid_fraction=0.05,
                                                 duplicate_fraction=0.02)):
        counter.add(event)
        while True:
            try:
                producer.produce(TRANSACTIONS_TOPIC, key=event.key or None, value=event.value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("producer could not deliver every record")
    produce_seconds = time.perf_counter() - started
    del producer  # stop its threads before the broker goes away
    return counter.result(), produce_seconds


@dataclass(frozen=True)
class ConsumerRun:
    """What the consumers did: one ``consume`` outcome each, and the CPU seconds spent while they ran."""

    outcomes: list[tuple[Any, ...]]
    servers_cpu: dict[str, float]
    machine: tuple[float, ...]  # (busy, total) of the whole machine


def run_consumers(args: argparse.Namespace, bootstrap_servers: str, servers: dict[str, int]) -> ConsumerRun:
    """``args.consumers`` consumer processes, until each has committed everything it was given."""
    spawn = multiprocessing.get_context("spawn")  # (no fork: librdkafka and boto3 hold threads)
    results = spawn.Queue()
    assignments = [static_partitions(i, args.consumers, args.partitions) if args.assignment == "static"
                   else None for i in range(args.consumers)]
    workers = [spawn.Process(target=consume, args=(bootstrap_servers, args.batch_size, partitions,
                                                   dict(os.environ), results, args.profile))
               for partitions in assignments]
    servers_cpu = {name: cpu_seconds(pid) for name, pid in servers.items()}
    machine_before = machine_cpu()
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    servers_cpu = {name: cpu_seconds(pid) - servers_cpu[name] for name, pid in servers.items()}
    machine = tuple(after - before for after, before in zip(machine_cpu(), machine_before, strict=True))
    return ConsumerRun(outcomes, servers_cpu, machine)


def report(args: argparse.Namespace, expected: GenerationSummary, produce_seconds: float, run: ConsumerRun,
           lag: int, bronze: tuple[int, int], quarantine: tuple[int, int]) -> None:
    """Print the rate, where the time and CPU went, and the reconciliation (``bronze``/``quarantine``: objects,
    lines)."""
    outcomes, servers_cpu, machine = run.outcomes, run.servers_cpu, run.machine
    (bronze_objects, bronze_lines), (quarantine_objects, quarantine_lines) = bronze, quarantine
    records = sum(o[0] for o in outcomes)
    invocations = sum(o[1] for o in outcomes)
    failures = sum(o[2] for o in outcomes)
    busy = [o for o in outcomes if o[0]]
    seconds = max(o[4] for o in busy) - min(o[3] for o in busy) if busy else 0.0
    rate = records / seconds if seconds else 0.0
    print(f"produced                {expected.total:,} events in {produce_seconds:.1f}s "
          f"({expected.total / produce_seconds:,.0f}/s; {expected.invalid:,} invalid, {expected.duplicates:,} dup)")
    print(f"ingested                {records:,} records in {invocations} invocations by {args.consumers} "
          f"consumers ({args.assignment} assignment; {', '.join(f'{o[0]:,}' for o in outcomes)}), {seconds:.1f}s, "
          f"{failures} failed attempts, committed lag {lag}")
    for number, outcome in enumerate(outcomes, 1):
        print(f"consumer {number}              {outcome[0]:,} records; seconds in consume {outcome[5]:.1f}, "
              f"MSK events {outcome[6]:.1f}, handler {outcome[7]:.1f}, commit {outcome[8]:.1f}; CPU {outcome[9]:.1f}")
    print(f"server CPU seconds      {', '.join(f'{name} {cpu:.1f}' for name, cpu in servers_cpu.items())} "
          "(while the consumers ran, idle wait included)")
    print(f"machine CPU             {machine[0]:.1f} of {machine[1]:.1f} CPU seconds busy while the consumers ran "
          f"(consumers + servers {sum(o[9] for o in outcomes) + sum(servers_cpu.values()):.1f}; the rest is other "
          "processes on the machine)")
    print(f"bronze                  {bronze_lines:,} lines in {bronze_objects} objects (expected {expected.valid:,})")
    print(f"quarantine              {quarantine_lines:,} lines in {quarantine_objects} objects "
          f"(expected {expected.invalid:,})")
    ok = bronze_lines == expected.valid and quarantine_lines == expected.invalid and lag == 0
    print(f"reconciliation          {'exact' if ok else 'MISMATCH'}: received {expected.total:,} = "
          f"valid {bronze_lines:,} + quarantined {quarantine_lines:,}")
    print(f"goal: >= {GOAL:,} events/s end to end")
    print(f"ratio: {rate:,.0f} events/s = {rate / GOAL:.2f} x goal")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=1, help="ESM processes in the group")
    parser.add_argument("--assignment", choices=("static", "group"), default="static",
                        help="split the partitions between the consumers, or let the group assign them")
    parser.add_argument("--profile", metavar="DIR", help="cProfile each consumer into DIR/consumer-<pid>.prof")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dataforge-bench-") as tmp:
        base = Path(tmp)
        moto = MotoServer(logs_dir=base / "logs")
        broker = KafkaBroker(base / "kafka", logs_dir=base / "logs")
        try:
            moto.start()
            broker.start()
            moto.wait_ready()
            broker.wait_ready()
            settings, session = setup_lake(moto, broker, args.partitions)
            expected, produce_seconds = produce(broker.bootstrap_servers, args.count)
            servers = {name: pid for name, pid in (("moto", moto.pid), ("kafka", broker.pid)) if pid}
            run = run_consumers(args, broker.bootstrap_servers, servers)
            lag = committed_lag(broker.bootstrap_servers, "bench", TRANSACTIONS_TOPIC)

            s3 = session.client("s3", endpoint_url=moto.endpoint_url)
            lake = settings.lake()
            bronze, quarantine = count_lines(s3, lake.bronze), count_lines(s3, lake.quarantine)
        finally:
            broker.stop()
            moto.stop()
    report(args, expected, produce_seconds, run, lag, bronze, quarantine)


if __name__ == "__main__":
    main()
