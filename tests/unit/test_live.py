"""The live traffic's pure parts: chunk seeds, config checks, the supervisor, the pipeline window it continues."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from devkit.local.live import LiveConfig, LiveCounters, chunk_seed, supervise
from devkit.local.platform import END_LAG, PipelineConfig

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def test_each_chunk_and_each_run_seed_gets_its_own_generator_seed() -> None:
    ends = [NOW + timedelta(seconds=5 * i) for i in range(100)]
    seeds = {chunk_seed(seed, end) for seed in (42, 43, 2026) for end in ends}
    assert len(seeds) == 300
    assert chunk_seed(42, NOW) == chunk_seed(42, NOW)  # reproducible


@pytest.mark.parametrize("bad", [{"rate": 0}, {"rate": -1}, {"chunk_seconds": 0}, {"alert_every": 0}])
def test_live_config_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        LiveConfig(**bad)


def test_the_pipeline_window_ends_a_minute_before_now_by_default() -> None:
    start, end = PipelineConfig(days=2).window(NOW)
    assert (start, end) == (NOW - END_LAG - timedelta(days=2), NOW - timedelta(minutes=1))
    explicit = NOW - timedelta(minutes=15)
    assert PipelineConfig(days=1, end=explicit).window(NOW) == (explicit - timedelta(days=1), explicit)


def test_a_part_that_fails_while_serving_is_counted_kept_and_restarted() -> None:
    stop, counters, calls = threading.Event(), LiveCounters(), []

    def body() -> None:
        calls.append(len(calls))
        if len(calls) < 3:
            raise OSError(f"broker gone ({len(calls)})")

    supervise("ingest", body, stop, counters, restart_pause=0)
    assert calls == [0, 1, 2]  # ran again after each failure, then returned normally
    assert (counters.errors, counters.interrupted) == (2, 0)
    assert list(counters.failures) == ["ingest: OSError: broker gone (1)", "ingest: OSError: broker gone (2)"]


def test_a_part_cut_short_by_stop_is_an_interruption_not_an_error() -> None:
    stop, counters, calls = threading.Event(), LiveCounters(), []

    def body() -> None:  # like the streaming query failing because stop() ended its micro-batch
        calls.append(1)
        stop.set()
        raise RuntimeError("micro-batch interrupted")

    supervise("enrich", body, stop, counters, restart_pause=0)
    assert calls == [1]  # not restarted
    assert (counters.errors, counters.interrupted, list(counters.failures)) == (0, 1, [])


def test_only_the_latest_failures_are_kept() -> None:
    stop, counters = threading.Event(), LiveCounters()
    failures = iter(range(25))

    def body() -> None:
        n = next(failures)
        if n < 24:
            raise ValueError(n)

    supervise("alerts", body, stop, counters, restart_pause=0)
    assert counters.errors == 24
    assert list(counters.failures) == [f"alerts: ValueError: {n}" for n in range(14, 24)]
