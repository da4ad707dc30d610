"""Contract validator throughput vs. plain ``orjson.loads`` of the same bytes (issue 2).

    .venv/bin/python bench/validation_throughput.py [--count 100000] [--rounds 5]

Generates ``count`` events with the seeded generator (2 % invalid, 1 % duplicates: what a landing
processor sees), then times, in the same run and interleaved round by round, over the same list of
bytes and each in a loop of the same shape:

- the contract validator as the landing processors run it, ``Validator.admit``: every contract rule,
  the canonical event id and event time of each valid record, a ``Rejection`` naming the rule for
  each invalid one (the compiled fast path, ``dataforge_native``, then the Python validator for what
  it passes on). This is the figure of the goal;
- the same without the compiled fast path (pure Python: what a platform without the extension runs);
- ``Validator.validate``, which builds the whole typed event (what Spark's batch validation uses);
- ``orjson.loads`` (untyped parsing, no rule at all): the reference.

Reports the best round of each (the least disturbed by other load on the machine) and the process's
CPU time in that round. Goal: validation at least as fast as untyped parsing (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import orjson

from dataforge.contract import Rejection, Validator, epoch_us
from dataforge.reference import default_fx
from devkit.generator import GeneratorConfig, generate_events

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


def _admit_loop(validator: Validator, values: list[bytes]) -> Callable[[], int]:
    """``Validator.admit`` over every value, as the landing processors run it: the number rejected."""

    def admit_all() -> int:
        horizon_us = epoch_us(validator.horizon())
        admit, rejected = validator.admit, 0
        for raw in values:
            if admit(raw, horizon_us).__class__ is Rejection:
                rejected += 1
        return rejected

    return admit_all


def _validate_loop(validator: Validator, values: list[bytes]) -> Callable[[], int]:
    """``Validator.validate`` (the whole typed event) over every value: the number rejected."""

    def validate_all() -> int:
        horizon = validator.horizon()
        validate, rejected = validator.validate, 0
        for raw in values:
            if validate(raw, horizon).__class__ is Rejection:
                rejected += 1
        return rejected

    return validate_all


def _parse_loop(values: list[bytes]) -> Callable[[], int]:
    """``orjson.loads`` over every value (the reference): the number that are not JSON."""

    def parse_all() -> int:
        loads, failed = orjson.loads, 0
        for raw in values:
            try:
                loads(raw)
            except orjson.JSONDecodeError:
                failed += 1
        return failed

    return parse_all


def _measure(runs: dict[str, tuple[str, Callable[[], int]]], count: int, rounds: int) -> dict[str, float]:
    """The best rate of each run, interleaved so that all see the same machine load."""
    rates = dict.fromkeys(runs, 0.0)
    for _ in range(2):
        for key, (label, run) in runs.items():
            rates[key] = max(rates[key], _best_rate(label, run, count, rounds))
    return rates


def _report(rates: dict[str, float]) -> None:
    validator_rate, orjson_rate = rates["admit"], rates["orjson"]
    print(f"without the compiled fast path: {rates['pure'] / orjson_rate:.2f} of orjson.loads; "
          f"the typed event (validate): {rates['validate'] / orjson_rate:.2f}")
    print(f"validator: {validator_rate:,.0f} records/s; orjson.loads: {orjson_rate:,.0f} records/s")
    print(f"goal: ratio >= {GOAL_RATIO:.1f} (validation at least as fast as untyped JSON parsing)")
    print(f"ratio: {validator_rate / orjson_rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    events = list(generate_events(GeneratorConfig(count=args.count, seed=7, invalid_fraction=0.02,
                                                  duplicate_fraction=0.01)))
    values = [e.value for e in events]
    validator = Validator(default_fx().currencies)
    pure = Validator(default_fx().currencies, native=False)
    print(f"{len(values):,} events, {sum(map(len, values)) / len(values):.0f} bytes on average")
    if not validator.native:
        print("WARNING: dataforge_native is not installed (run `make setup`): admit runs the pure-Python path")

    admit_all, admit_pure = _admit_loop(validator, values), _admit_loop(pure, values)
    validate_all = _validate_loop(validator, values)
    expected = sum(1 for e in events if not e.is_valid)
    for run in (admit_all, admit_pure, validate_all):
        rejected = run()
        assert rejected == expected, f"validator rejected {rejected}, generator made {expected} invalid"
    print(f"rejected {rejected:,} records on every path, as the generator intended")

    runs = {"admit": ("validator: admit", admit_all), "pure": ("admit, pure Python", admit_pure),
            "validate": ("validate (typed event)", validate_all),
            "orjson": ("orjson.loads (reference)", _parse_loop(values))}
    _report(_measure(runs, len(values), args.rounds))


if __name__ == "__main__":
    main()
