"""The live traffic's pure parts: chunk seeds, config checks, the pipeline window it continues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataforge.local.live import LiveConfig, chunk_seed
from dataforge.local.platform import END_LAG, PipelineConfig

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
