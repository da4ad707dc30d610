"""Time to first complete render of the dashboard in headless Chromium.

"Complete" = the KPI cards carry the API's numbers, the freshness line says "Last updated" and the
realtime chart's canvas is drawn. The dashboard runs as ``dataforge dashboard`` would (panel serve
subprocess, --warm) against the API of ``tests/fixtures/dashboard.py`` (today the STAND-IN API serving
data written by the project's generator). One warm-up load, then ``RUNS`` fresh browser contexts.
Last lines: figure, goal, ratio.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.fixtures.dashboard import StandInApi, start_dashboard, write_standin_data  # noqa: E402
from tests.integration.dashboard.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

GOAL_SECONDS = 2.0
RUNS = 5


def main() -> None:
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("Chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as tmp:
        api = StandInApi(write_standin_data(Path(tmp) / "data", datetime.now(UTC)))
        api.start()
        server = start_dashboard(api.base_url, api.api_key, Path(tmp) / "panel.log", realtime_seconds=2.0)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                timings = []
                for run in range(RUNS + 1):
                    context = browser.new_context(viewport={"width": 1440, "height": 1000})
                    page = context.new_page()
                    page.set_default_timeout(120_000)
                    started = time.perf_counter()
                    page.goto(server.url)
                    page.locator("[data-kpi=txn_count][data-raw]").wait_for()
                    page.locator("[data-testid=freshness]", has_text="Last updated").wait_for()
                    page.locator("canvas").first.wait_for()
                    elapsed = time.perf_counter() - started
                    context.close()
                    if run == 0:
                        print(f"warm-up load (not counted): {elapsed:.2f} s")
                        continue
                    timings.append(elapsed)
                    print(f"run {run}: {elapsed:.2f} s")
                browser.close()
        finally:
            server.stop()
            api.stop()
    median = statistics.median(timings)
    print(f"first complete render, median of {RUNS}: {median:.2f} s (min {min(timings):.2f}, max {max(timings):.2f})")
    print(f"goal: <= {GOAL_SECONDS:.2f} s")
    print(f"ratio (median / goal): {median / GOAL_SECONDS:.2f}")


if __name__ == "__main__":
    main()
