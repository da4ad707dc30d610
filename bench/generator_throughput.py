"""Throughput of the synthetic event generator: 200k events to bytes on one core.

    .venv/bin/python bench/generator_throughput.py [--count 200000] [--repeat 3]

Generates ``count`` events (with 1 % invalid and 1 % duplicates, as a load test would) and touches
every value, best of ``repeat`` runs after a warm-up. Reported per CPU second of this process (the
figure a busy, shared machine distorts least) and per wall-clock second. A fixed pure-Python loop
is timed as well, so figures from machines of different speed can be compared.

The last three lines are the figure, the goal and their ratio.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime

from dataforge.reference import default_fx, default_merchants
from devkit.generator import GeneratorConfig, generate_events

GOAL = 150_000  # events/s on one core


def _calibration() -> float:
    """Seconds of CPU for a fixed pure-Python loop (~0.15 s on a 2023 laptop core)."""
    started = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i & 7
    return time.process_time() - started


def _run(config: GeneratorConfig) -> tuple[float, float, int]:
    size = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for event in generate_events(config):
        size += len(event.value)
    return time.process_time() - cpu, time.perf_counter() - wall, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    default_fx()
    default_merchants()
    config = GeneratorConfig(
        count=args.count, seed=1, start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC),
        invalid_fraction=0.01, duplicate_fraction=0.01,
    )
    _run(GeneratorConfig(count=1_000, seed=0, start=config.start, end=config.end))  # warm-up: tables
    runs = [_run(config) for _ in range(args.repeat)]
    cpu, _, size = min(runs)
    best_wall = min(r[1] for r in runs)
    print(f"python {platform.python_version()} on {platform.machine()}; calibration loop {_calibration():.3f} s CPU")
    print(f"{args.count:,} events, {size / args.count:.0f} bytes/event, best of {args.repeat}: "
          f"{cpu:.2f} s CPU, {best_wall:.2f} s wall ({args.count / best_wall:,.0f} events/s wall)")
    rate = args.count / cpu
    print(f"generator throughput: {rate:,.0f} events/s")
    print(f"goal: {GOAL:,} events/s")
    print(f"ratio: {rate / GOAL:.2f}")


if __name__ == "__main__":
    main()
