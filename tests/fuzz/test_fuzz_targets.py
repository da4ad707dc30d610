"""Each coverage-guided fuzz target (``tests/fuzz/fuzz_*.py``) runs clean for a short bounded time.

``make fuzz`` runs the same targets for as long as asked (``FUZZ_SECONDS``, default 600) on a
corpus kept in ``.cache/fuzz/``; here each gets a fresh corpus and ``FUZZ_TEST_SECONDS`` (default
20) so a crash the fuzzer finds quickly fails the suite. libFuzzer exits non-zero on a crash (an
exception escaping the target) and prints the input that caused it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = sorted(Path(__file__).parent.glob("fuzz_*.py"))
SECONDS = int(os.environ.get("FUZZ_TEST_SECONDS", "20"))
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


def test_there_are_fuzz_targets() -> None:
    assert {path.stem for path in TARGETS} >= {"fuzz_validator", "fuzz_sqlguard"}


@pytest.mark.parametrize("target", TARGETS, ids=[path.stem for path in TARGETS])
def test_fuzz_target_runs_clean(target: Path, tmp_path: Path) -> None:
    corpus, crashes = tmp_path / "corpus", tmp_path / "crashes"
    corpus.mkdir()
    crashes.mkdir()
    completed = subprocess.run(
        [sys.executable, str(target), f"-max_total_time={SECONDS}", "-rss_limit_mb=4096",
         "-print_final_stats=1", f"-artifact_prefix={crashes}/", str(corpus)],
        cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 120, check=False,
    )
    output = completed.stdout + completed.stderr
    found = sorted(path.name for path in crashes.iterdir())
    assert completed.returncode == 0, f"{target.name} found a crash ({found}):\n{output[-6000:]}"
    executed = _EXECUTED.search(output)
    assert executed is not None, f"{target.name} printed no final stats:\n{output[-3000:]}"
    assert int(executed.group(1)) > 100, f"{target.name} barely ran:\n{output[-3000:]}"
