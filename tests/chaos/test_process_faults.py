"""Process faults under a steady produce rate (issue 19, experiments 1, 2, 5, 9;
``devkit.chaos.experiments_process``): each ends with zero lost and zero duplicated records in silver,
``dataforge reconcile`` exact for every touched date, gold equal to the independent KPI computation, and
the realtime API's freshness back under its goal."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from devkit.chaos import experiments_process
from devkit.chaos.harness import Outcome
from tests.chaos.conftest import assert_exact

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

Run = Callable[[ModuleType, str], Outcome]


@pytest.mark.chaos_ci
def test_mapping_killed_mid_batch_then_restarted(chaos_run: Run) -> None:
    assert_exact(chaos_run(experiments_process, "mapping_sigkill"))


@pytest.mark.chaos_ci
def test_broker_killed_under_load_then_restarted_on_its_data(chaos_run: Run) -> None:
    assert_exact(chaos_run(experiments_process, "broker_sigkill"))


def test_streaming_killed_mid_micro_batch_then_restarted_from_its_checkpoint(chaos_run: Run) -> None:
    assert_exact(chaos_run(experiments_process, "streaming_sigkill"))


@pytest.mark.chaos_ci
def test_aws_endpoint_unreachable_for_30_s(chaos_run: Run) -> None:
    assert_exact(chaos_run(experiments_process, "moto_outage"))
