"""Contract validator throughput vs. plain ``orjson.loads`` of the same bytes (issue 2).

    .venv/bin/python bench/validation_throughput.py [--count 100000] [--rounds 5]

Generates ``count`` events with the seeded generator (2 % invalid, 1 % duplicates: what a landing
processor sees), then times, in the same run and interleaved round by round, the contract validator
(typed decode + every contract rule + a ``Rejection`` naming the rule for each invalid record) and
``orjson.loads`` (untyped parsing, no rule at all) over the same list of bytes, each in a loop of
the same shape. Reports the best round of each (the least disturbed by other load on the machine)
and the process's CPU time in that round. Goal: validation at least as fast as untyped parsing (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import orjson

from dataforge.contract import Rejection, Validator
from dataforge.generator import GeneratorConfig, generate_events
from dataforge.reference import default_fx

GOAL_RATIO = 1.0


def _best_rate(label: str, run: Callable[[], int], count: int, rounds: int) -> float:
    best = best_cpu = float("inf")
    for _ in range(rounds):
        gc.collect()
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        elapsed = time.perf_counter() - started
        if elapsed < best:
            best, best_cpu = elapsed, time.process_time() - started_cpu
    rate = count / best
    print(f"{label:<28} {rate:>12,.0f} records/s   ({best * 1e3:,.1f} ms best of {rounds}, "
          f"{best_cpu * 1e3:,.1f} ms CPU)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    events = list(generate_events(GeneratorConfig(count=args.count, seed=7, invalid_fraction=0.02,
                                                  duplicate_fraction=0.01)))
    values = [e.value for e in events]
    validator = Validator(default_fx().currencies)
    print(f"{len(values):,} events, {sum(map(len, values)) / len(values):.0f} bytes on average")

    def validate_all() -> int:
        horizon = validator.horizon()
        validate, rejected = validator.validate, 0
        for raw in values:
            if validate(raw, horizon).__class__ is Rejection:
                rejected += 1
        return rejected

    def parse_all() -> int:
        loads, failed = orjson.loads, 0
        for raw in values:
            try:
                loads(raw)
            except orjson.JSONDecodeError:
                failed += 1
        return failed

    rejected = validate_all()
    expected = sum(1 for e in events if not e.is_valid)
    assert rejected == expected, f"validator rejected {rejected}, generator made {expected} invalid"
    print(f"rejected {rejected:,} records, as the generator intended")

    validator_rate = orjson_rate = 0.0
    for _ in range(2):  # interleave so that both see the same machine load
        validator_rate = max(validator_rate, _best_rate("contract validator", validate_all, len(values), args.rounds))
        orjson_rate = max(orjson_rate, _best_rate("orjson.loads (reference)", parse_all, len(values), args.rounds))

    print(f"validator: {validator_rate:,.0f} records/s; orjson.loads: {orjson_rate:,.0f} records/s")
    print(f"goal: ratio >= {GOAL_RATIO:.1f} (validation at least as fast as untyped JSON parsing)")
    print(f"ratio: {validator_rate / orjson_rate:.2f}")


if __name__ == "__main__":
    main()
