"""End-to-end local ingest rate: Kafka -> local event source mapping -> MSK landing handler -> embedded S3.

Starts its own moto server and Kafka broker (in a temporary folder), bootstraps the lake, produces
``--count`` generated events (idempotent producer, acks=all; timed separately), then runs
``--consumers`` event source mappings in one consumer group, each in its own process with the real
handler (as the managed MSK mapping runs up to one concurrent invocation per partition), until the
group has committed everything, and reconciles bronze + quarantine with what was produced. The rate
is records / (first batch handed to a handler -> last handler return, over all consumers). Each
consumer also prints where its time went (consume, MSK event + handler + S3 puts, commits; its consume
time includes the final idle wait). With ``--consumers 2`` the second process joins a group the
first already consumes from: the cooperative rebalance that moves partitions to it is part of the
measured window.

Usage: .venv/bin/python bench/local_ingest_rate.py [--count 1000000] [--batch-size 10000]
                                                    [--partitions 4] [--consumers 1]
Goal: >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from confluent_kafka import Producer

from dataforge.bronze import read_lines
from dataforge.generator import GeneratorConfig, SummaryCounter, generate_events
from dataforge.lake import TRANSACTIONS_TOPIC
from dataforge.local.bootstrap import bootstrap
from dataforge.local.esm import EsmConfig, LocalEventSourceMapping, committed_lag
from dataforge.local.kafka import KafkaBroker, create_topics
from dataforge.local.moto_server import MotoServer
from dataforge.settings import Settings, local_environment

GOAL = 50_000


def count_lines(s3: Any, bucket: str) -> tuple[int, int]:
    objects = lines = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects += 1
            lines += len(read_lines(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
    return objects, lines


def consume(bootstrap_servers: str, batch_size: int, env: dict[str, str], results: Any) -> None:
    """One consumer process: the real handler behind a local ESM, run until the group is idle."""
    os.environ.update(env)
    from lambdas.msk_landing.handler import handler, logger

    logger.setLevel("WARNING")
    window = {"first": 0.0, "last": 0.0}

    def timed(event: dict[str, Any], context: Any) -> Any:
        window["first"] = window["first"] or time.monotonic()  # (system-wide clock: comparable across processes)
        result = handler(event, context)
        window["last"] = time.monotonic()
        return result

    config = EsmConfig(bootstrap_servers, (TRANSACTIONS_TOPIC,), group_id="bench", batch_size=batch_size,
                       batching_window=0.5)
    stats = LocalEventSourceMapping(config, timed).run(until_idle=5.0)
    results.put((stats.records, stats.invocations, stats.failures, window["first"], window["last"],
                 stats.consume_seconds, stats.invoke_seconds, stats.commit_seconds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=1, help="ESM processes in the group")
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
            create_topics(broker.bootstrap_servers, {TRANSACTIONS_TOPIC: args.partitions})
            env = local_environment(endpoint_url=moto.endpoint_url, kafka_bootstrap_servers=broker.bootstrap_servers)
            os.environ.update(env)  # the handler reads its settings from the environment at cold start
            os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
            settings = Settings.from_env()
            session = boto3.Session(region_name=settings.region)
            bootstrap(settings, session)

            counter = SummaryCounter()
            producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True,
                                 "acks": "all", "linger.ms": 50, "batch.size": 1_000_000,
                                 "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
            started = time.perf_counter()
            for event in generate_events(GeneratorConfig(count=args.count, seed=1, invalid_fraction=0.05,
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
            expected = counter.result()

            spawn = multiprocessing.get_context("spawn")  # (no fork: librdkafka and boto3 hold threads)
            results = spawn.Queue()
            workers = [spawn.Process(target=consume, args=(broker.bootstrap_servers, args.batch_size, dict(os.environ),
                                                           results)) for _ in range(args.consumers)]
            for worker in workers:
                worker.start()
            outcomes = [results.get(timeout=1800) for _ in workers]
            for worker in workers:
                worker.join()
            records = sum(o[0] for o in outcomes)
            invocations = sum(o[1] for o in outcomes)
            failures = sum(o[2] for o in outcomes)
            busy = [o for o in outcomes if o[0]]
            seconds = max(o[4] for o in busy) - min(o[3] for o in busy) if busy else 0.0
            lag = committed_lag(broker.bootstrap_servers, "bench", TRANSACTIONS_TOPIC)

            s3 = session.client("s3", endpoint_url=moto.endpoint_url)
            lake = settings.lake()
            bronze_objects, bronze_lines = count_lines(s3, lake.bronze)
            quarantine_objects, quarantine_lines = count_lines(s3, lake.quarantine)
        finally:
            broker.stop()
            moto.stop()

    rate = records / seconds if seconds else 0.0
    print(f"produced                {expected.total:,} events in {produce_seconds:.1f}s "
          f"({expected.total / produce_seconds:,.0f}/s; {expected.invalid:,} invalid, {expected.duplicates:,} dup)")
    print(f"ingested                {records:,} records in {invocations} invocations by {args.consumers} "
          f"consumers ({', '.join(f'{o[0]:,}' for o in outcomes)}), {seconds:.1f}s, {failures} failed attempts, "
          f"committed lag {lag}")
    for number, outcome in enumerate(outcomes, 1):
        print(f"consumer {number}              {outcome[0]:,} records; seconds in consume {outcome[5]:.1f}, "
              f"MSK event + handler {outcome[6]:.1f}, commit {outcome[7]:.1f}")
    print(f"bronze                  {bronze_lines:,} lines in {bronze_objects} objects (expected {expected.valid:,})")
    print(f"quarantine              {quarantine_lines:,} lines in {quarantine_objects} objects "
          f"(expected {expected.invalid:,})")
    ok = bronze_lines == expected.valid and quarantine_lines == expected.invalid and lag == 0
    print(f"reconciliation          {'exact' if ok else 'MISMATCH'}: received {expected.total:,} = "
          f"valid {bronze_lines:,} + quarantined {quarantine_lines:,}")
    print(f"goal: >= {GOAL:,} events/s end to end")
    print(f"ratio: {rate:,.0f} events/s = {rate / GOAL:.2f} x goal")


if __name__ == "__main__":
    main()
