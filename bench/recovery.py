"""Recovery figures of the chaos experiments (issue 19): every experiment registered in the experiments
modules that exist (``devkit.chaos.experiments_process``, ``_network``, ``_data``), one after the other.

    .venv/bin/python bench/recovery.py [--only NAME ...] [--list]

The embedded platform as the chaos tests run it: one moto server and one Kafka broker shared by the
experiments that do not break them (each experiment with lake resources and a topic of its own), one
Glue-like local SparkSession for the verdicts. An experiments module that needs another set-up (a proxy
in front of a service) provides ``run_experiment(name, workdir, *, spark, endpoint_url, bootstrap_servers)``;
the others run through :func:`devkit.chaos.harness.run_experiment` with the module's ``NEEDS``.

Per experiment: the fault's duration, the time from the end of the fault until the realtime API's freshness
is back under its goal (``FRESHNESS_GOAL_SECONDS``), the records in flight during the fault (produced but
not landed when it began, plus those produced during it), lost and duplicated records (silver), and
whether ``dataforge reconcile`` and the KPI comparison were exact. Last lines: the worst recovery against
the recovery goal, and lost + duplicated against zero.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from dataforge.lake import TRANSACTIONS_TOPIC
from devkit.chaos.harness import FRESHNESS_GOAL_SECONDS, Outcome, run_experiment
from devkit.local import TRANSACTIONS_PARTITIONS
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.moto_server import MotoServer
from devkit.local.spark import build_session

MODULES: Final = ("devkit.chaos.experiments_process", "devkit.chaos.experiments_network",
                  "devkit.chaos.experiments_data")
#: Freshness back under its goal within a minute of a fault's end: well inside one period of the
#: data-freshness alarm and of the ``stale-data`` alert rule (minutes), so a fault the platform recovers
#: from by itself pages nobody.
RECOVERY_GOAL_SECONDS: Final = 60.0


def modules() -> list[ModuleType]:
    found = []
    for name in MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            print(f"({name} does not exist: skipped)")
    return found


def run_one(module: ModuleType, name: str, workdir: Path, spark: Any, moto: MotoServer,
            broker: KafkaBroker) -> Outcome:
    where = {"spark": spark, "endpoint_url": moto.endpoint_url, "bootstrap_servers": broker.bootstrap_servers}
    custom = getattr(module, "run_experiment", None)
    if custom is not None:
        outcome: Outcome = custom(name, workdir, **where)
        return outcome
    needs = getattr(module, "NEEDS", {}).get(name, frozenset())
    return run_experiment(module.EXPERIMENTS[name], needs, workdir, **where)


def row(outcome: Outcome, seconds: float) -> str:
    recovery = "never" if outcome.recovery_seconds is None else f"{outcome.recovery_seconds:.1f}"
    verdict = outcome.verdict
    exact = "exact" if verdict.reconcile_ok and verdict.kpis_equal else "NOT EXACT"
    return (f"{outcome.experiment:<22} {outcome.fault_kind[:38]:<38} {outcome.fault_seconds:>7.1f} {recovery:>10} "
            f"{outcome.in_flight:>9,} {verdict.lost:>5} {verdict.duplicated:>5}  {exact:<9} {seconds:>6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", action="extend", nargs="+", default=None, metavar="NAME",
                        help="experiment names to run (repeatable; default: all; --list shows them)")
    parser.add_argument("--list", action="store_true", help="list the registered experiments and exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    registered = [(module, name) for module in modules() for name in module.EXPERIMENTS]
    if args.list:
        for module, name in registered:
            print(f"{name}  ({module.__name__})")
        return
    unknown = sorted(set(args.only or ()) - {name for _, name in registered})
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}: --list shows the registered ones")
    chosen = [(m, n) for m, n in registered if args.only is None or n in args.only]
    outcomes: list[Outcome] = []
    failures: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="dataforge-recovery-"))
    completed = False
    try:
        spark = build_session("dataforge-recovery", endpoint_url="", shuffle_partitions=4, driver_memory="1g",
                              log_file=base / "logs" / "spark.log")
        with MotoServer(logs_dir=base / "logs") as moto, KafkaBroker(base / "kafka", logs_dir=base / "logs") as broker:
            create_topics(broker.bootstrap_servers, {TRANSACTIONS_TOPIC: TRANSACTIONS_PARTITIONS})
            print(f"{len(chosen)} experiment(s); freshness goal {FRESHNESS_GOAL_SECONDS:g} s; logs under {base}")
            print(f"{'experiment':<22} {'fault':<38} {'fault s':>7} {'recovery s':>10} {'in flight':>9} "
                  f"{'lost':>5} {'dup':>5}  {'verdict':<9} {'run s':>6}")
            for module, name in chosen:
                started = time.monotonic()
                try:
                    outcome = run_one(module, name, base / name, spark, moto, broker)
                except Exception as exc:  # a bench's outermost boundary: report, go on
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
                    print(f"{name:<22} FAILED: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                outcomes.append(outcome)
                print(row(outcome, time.monotonic() - started), flush=True)
        spark.stop()
        completed = True
    finally:  # the logs are kept for a run that failed, was not exact or was interrupted
        if completed and not failures and all(o.verdict.ok for o in outcomes):
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"logs kept under {base}")
    report(outcomes, failures)


def report(outcomes: list[Outcome], failures: list[str]) -> None:
    print()
    for outcome in outcomes:
        if not outcome.verdict.ok:
            print(f"{outcome.experiment}: {outcome.verdict.detail}")
    for failure in failures:
        print(f"failed to run: {failure}")
    recoveries = [o.recovery_seconds for o in outcomes]
    worst = max((r for r in recoveries if r is not None), default=float("nan"))
    never = sum(r is None for r in recoveries)
    lost = sum(o.verdict.lost for o in outcomes)
    duplicated = sum(o.verdict.duplicated for o in outcomes)
    exact = sum(o.verdict.ok for o in outcomes)
    print(f"goal: freshness back under {FRESHNESS_GOAL_SECONDS:g} s within {RECOVERY_GOAL_SECONDS:g} s of a "
          f"fault's end; 0 lost, 0 duplicated; every verdict exact")
    print(f"worst recovery {worst:.1f} s / goal {RECOVERY_GOAL_SECONDS:g} s = {worst / RECOVERY_GOAL_SECONDS:.2f}"
          + (f" ({never} never recovered)" if never else ""))
    print(f"lost {lost} + duplicated {duplicated} / goal 0; exact verdicts {exact} / {len(outcomes) + len(failures)}")


if __name__ == "__main__":
    main()
