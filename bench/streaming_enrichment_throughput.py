"""Streaming enrichment throughput in events/s (issue 5): Kafka -> validate -> dedupe -> enrich ->
silver on S3 (moto) + realtime minute items in DynamoDB, with local Spark (``local[2]``).

    .venv/bin/python bench/streaming_enrichment_throughput.py [--events 200000] [--max-offsets 0]

Starts its own moto server and Kafka broker (temporary folder), produces ``events`` generated records
(2 % invalid, 1 % duplicates), then times one ``availableNow`` run of the streaming job from the
earliest offset. Prints events/s of the whole run and the per-batch metrics; the last lines are the
goal and the ratio (measured rate / goal rate).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The issue sets no number for streaming; this placeholder (one modest MSK partition's rate) is ours.
GOAL_EVENTS_PER_SECOND = 5_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--max-offsets", type=int, default=0, help="maxOffsetsPerTrigger (0: one batch)")
    args = parser.parse_args()

    from confluent_kafka import Producer

    from dataforge.settings import Settings
    from devkit.generator import GeneratorConfig, generate_events
    from devkit.local import local_environment
    from devkit.local.bootstrap import bootstrap
    from devkit.local.kafka import KafkaBroker, create_topics
    from devkit.local.moto_server import MotoServer
    from devkit.local.spark import build_session
    from spark import runtime
    from spark.jobs import streaming_enrichment

    base = Path(tempfile.mkdtemp(prefix="df-bench-stream-"))
    with MotoServer(logs_dir=base / "logs") as moto, KafkaBroker(base / "kafka", logs_dir=base / "logs") as broker:
        env = local_environment(endpoint_url=moto.endpoint_url, kafka_bootstrap_servers=broker.bootstrap_servers,
                                prefix="dfbench")
        os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "DATAFORGE_"))})
        settings = Settings.from_env(env)
        bootstrap(settings)
        create_topics(broker.bootstrap_servers, {settings.kafka_topic: 3})
        end = datetime(2025, 3, 11, tzinfo=UTC)
        config = GeneratorConfig(count=args.events, seed=3, start=end - timedelta(hours=6), end=end,
                                 invalid_fraction=0.02, duplicate_fraction=0.01)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 50})
        started = time.perf_counter()
        for n, e in enumerate(generate_events(config)):
            producer.produce(settings.kafka_topic, key=e.key, value=e.value)
            if n % 10_000 == 0:
                producer.poll(0)
        producer.flush(120)
        print(f"produced {args.events:,} events in {time.perf_counter() - started:.1f}s")

        spark = build_session("bench-streaming", endpoint_url=settings.endpoint_url or "")
        started = time.perf_counter()
        metrics = streaming_enrichment.run(
            spark, settings, trigger="availableNow",
            checkpoint_location=runtime.Lake(settings).state("bench/checkpoint"),
            max_offsets_per_trigger=str(args.max_offsets) if args.max_offsets else "")
        elapsed = time.perf_counter() - started
        rate = args.events / elapsed
        print(f"streaming_enrichment availableNow: {elapsed:.1f}s for {args.events:,} events  metrics={metrics}")
        print(f"throughput: {rate:,.0f} events/s")
        spark.stop()
    print(f"goal: >= {GOAL_EVENTS_PER_SECOND:,.0f} events/s")
    print(f"ratio measured/goal: {rate / GOAL_EVENTS_PER_SECOND:.2f}")


if __name__ == "__main__":
    main()
