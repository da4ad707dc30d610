"""Fixtures of the chaos tier (``tests/chaos``, issue 19), and which of its tests a plain run selects.

Every chaos test is marked ``chaos``; one bounded experiment per fault kind is also marked ``chaos_ci``.
``make test`` (plain ``pytest``) runs the ``chaos_ci`` ones only: the hook below deselects a ``chaos`` test
that is not ``chaos_ci`` unless the ``-m`` expression names a chaos marker (``make chaos`` runs
``pytest -m chaos tests/chaos``: all of them). Naming a test by its node id runs it too.

``chaos_run(module, name)`` runs the experiment ``name`` of ``module.EXPERIMENTS`` on a platform made for it
(:func:`devkit.chaos.harness.run_experiment`): the session's moto server and Kafka broker (each experiment
with lake resources and a topic of its own), except the services the experiment breaks (``module.NEEDS``),
which it gets instances of; Spark is the session's one (``tests/fixtures/spark.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devkit.chaos.harness import Outcome
    from devkit.local.kafka import KafkaBroker
    from devkit.local.moto_server import MotoServer

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = str(config.getoption("markexpr") or "")
    if "chaos" in markexpr:
        return
    named = [str(arg) for arg in config.args if "::" in str(arg)]
    keep, drop = [], []
    for item in items:
        in_tier = _HERE in Path(str(item.path)).parents
        selected = (not in_tier or item.get_closest_marker("chaos") is None
                    or item.get_closest_marker("chaos_ci") is not None
                    or any(item.nodeid.split("[", 1)[0].endswith(arg.split("tests/", 1)[-1].split("[", 1)[0])
                           for arg in named))
        (keep if selected else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def assert_exact(outcome: Outcome) -> None:
    """Zero lost, zero duplicated, reconcile exact, silver and gold equal to the independent computation."""
    verdict = outcome.verdict
    assert verdict.lost == 0, verdict.detail
    assert verdict.duplicated == 0, verdict.detail
    assert verdict.reconcile_ok, verdict.detail
    assert verdict.kpis_equal, verdict.detail
    assert outcome.recovered_at is not None, f"freshness never came back under its goal: {outcome}"


@pytest.fixture
def chaos_run(moto_server: MotoServer, kafka_broker: KafkaBroker, aws_env: dict[str, str], spark: Any,
              tmp_path: Path) -> Callable[[ModuleType, str], Outcome]:
    from devkit.chaos.harness import run_experiment

    def run(module: ModuleType, name: str) -> Outcome:
        needs: frozenset[str] = getattr(module, "NEEDS", {}).get(name, frozenset())
        outcome: Outcome = run_experiment(module.EXPERIMENTS[name], needs, tmp_path / name, spark=spark,
                                          endpoint_url=moto_server.endpoint_url,
                                          bootstrap_servers=kafka_broker.bootstrap_servers)
        # figures for the report (pytest -s shows them), never assertions on time
        print(f"{name}: fault {outcome.fault_seconds:.1f} s, recovery {outcome.recovery_seconds} s, "
              f"in flight {outcome.in_flight}, {outcome.verdict.detail}; phases {dict(outcome.timings)}")
        return outcome

    return run
