"""Data faults (issue 19, experiments 6, 7, 8; ``devkit.chaos.experiments_data``): poison records mid-stream,
damaged batch files, skewed clocks and events days late, each under a steady produce rate and each ending
with zero lost and zero duplicated records in silver, ``dataforge reconcile`` exact for every touched date,
gold equal to the independent KPI computation, and the experiment's own checks of the bad input's fate.

The tools are checked first, without services: every poison record gets, from the validator (compiled
fast path on and off), exactly the reason the contract gives it; libfaketime shifts a Python child's
``time.time()`` and ``datetime.now()`` and leaves its monotonic clock alone, and the landing function runs
in a child on a skewed clock as the mapping worker's ``--landing-skew`` runs it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType

import pytest

from dataforge import envvars
from dataforge.contract import Validator
from dataforge.reference import default_fx
from devkit.chaos import experiments_data
from devkit.chaos.clock import FaketimeUnavailableError, check_skew, faketime_offset, find_library, measure_offset
from devkit.chaos.harness import Outcome
from devkit.chaos.poison import batch_files, borderline_valid, poison_records
from devkit.chaos.worker import LandingChildError, SkewedLanding
from devkit.fakes import LambdaContext
from tests.chaos.conftest import assert_exact

Run = Callable[[ModuleType, str], Outcome]

needs_faketime = pytest.mark.skipif(find_library() is None,
                                    reason="libfaketime is not installed: run `make faketime`")


@pytest.fixture(scope="module")
def base() -> dict[str, object]:
    return experiments_data.base_event()


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure"])
def test_every_poison_record_gets_the_reason_the_contract_gives_it(base: dict[str, object], native: bool) -> None:
    validator = Validator(default_fx().currencies, native=native)
    poison = poison_records(base)
    assert len({p.name for p in poison}) == len(poison) >= 20
    for record in poison:
        rejection = validator.validate(record.value)
        got = (getattr(rejection, "reason", None), getattr(rejection, "field", None))
        assert got == (record.reason, record.field), record.name
    for record in borderline_valid(base):
        assert validator.diagnose(record.value) is None, record.name


def test_damaged_files_say_their_fate(base: dict[str, object]) -> None:
    files = {f.name: f for f in batch_files(base)}
    assert {name for name, f in files.items() if f.malformed} == {
        "corrupt_gzip", "truncated_gzip", "ragged_csv", "over_long_line"}
    cut = files["truncated_jsonl"]
    assert not cut.body.endswith(b"\n")
    assert cut.records[-1].reason is not None
    assert all(r.reason is None for r in cut.records[:-1])


def test_faketime_offsets_are_whole_signed_seconds() -> None:
    assert faketime_offset(timedelta(minutes=10)) == "+600"
    assert faketime_offset(-timedelta(minutes=10)) == "-600"
    with pytest.raises(ValueError, match="whole seconds"):
        faketime_offset(timedelta(milliseconds=1500))


@needs_faketime
@pytest.mark.parametrize("minutes", [10, -10])
def test_libfaketime_shifts_python_wall_clock_only(minutes: int) -> None:
    try:
        env = check_skew(timedelta(minutes=minutes))
    except FaketimeUnavailableError as exc:  # pragma: no cover - a machine where the preload does not work
        pytest.skip(str(exc))
    seen = measure_offset(env)
    assert abs(seen.time_time - minutes * 60) < 5
    assert abs(seen.datetime_now - minutes * 60) < 5
    assert abs(seen.monotonic) < 5


@needs_faketime
def test_a_skewed_landing_child_answers_on_its_own_clock_and_reports_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The mapping worker's ``--landing-skew``: the landing function runs in a child 10 minutes ahead; a
    failure inside it (here its wiring: no buckets set) comes back as ``LandingChildError``, which the
    mapping retries, and a child that died is replaced at the next invocation."""
    for name in (envvars.LANDING_BUCKET, envvars.BRONZE_BUCKET):
        monkeypatch.delenv(name, raising=False)
    event = {"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:us-east-1:000000000000:cluster/c/1",
             "bootstrapServers": "127.0.0.1:9092", "records": {}}
    landing = SkewedLanding(timedelta(minutes=10))
    no_wiring = r"SettingsError: setting .* is required"  # what both failures say
    try:
        with pytest.raises(LandingChildError, match=no_wiring):
            landing(event, LambdaContext("msk-landing"))
        assert landing.last_offset is not None
        assert abs(landing.last_offset - 600) < 30
        first = landing.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while landing.pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert landing.pid is None
        with pytest.raises(LandingChildError, match=no_wiring):
            landing(event, LambdaContext("msk-landing"))
        assert landing.pid not in (None, first)
    finally:
        landing.close()
    assert landing.pid is None


@pytest.mark.chaos
@pytest.mark.chaos_ci
@pytest.mark.integration
def test_poison_record_of_every_class_mid_stream(chaos_run: Run) -> None:
    outcome = chaos_run(experiments_data, "poison_records")
    assert_exact(outcome)
    assert "FAILED" not in outcome.verdict.detail


@pytest.mark.chaos
@pytest.mark.integration
def test_corrupt_truncated_and_oversized_batch_files(chaos_run: Run) -> None:
    outcome = chaos_run(experiments_data, "batch_files")
    assert_exact(outcome)
    assert "landing peak RSS" in outcome.verdict.detail


@needs_faketime
@pytest.mark.chaos
@pytest.mark.chaos_ci
@pytest.mark.integration
def test_skewed_clocks_and_events_days_late(chaos_run: Run) -> None:
    outcome = chaos_run(experiments_data, "clock_skew")
    assert_exact(outcome)
    assert "gold total = silver aggregated" in outcome.verdict.detail  # reconcile named the stale gold first
