"""Time to first complete render of the dashboard in headless Chromium, on the real stack.

    .venv/bin/python bench/dashboard_first_render.py [--runs 5]

"Complete" = the KPI cards carry the API's numbers, the freshness line says "Last updated" and the
realtime chart's canvas is drawn. The stack is the one the browser tests use
(``tests/fixtures/dashboard.py``: ``local_api``): a moto server, resources made by ``bootstrap``,
a silver lake, KPIs, realtime minutes and alerts written with the helpers of
``tests/fixtures/api.py``, the real Chalice app served by ``RestartableApi``; the dashboard runs as
``dataforge dashboard`` would (``start_dashboard``: ``panel serve`` subprocess, ``--warm``).
Debian's Chromium through Playwright (``executable_path``). One warm-up load, then ``--runs`` fresh
browser contexts; the median counts. Last lines: figure, goal, ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.fixtures.dashboard import (
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    chromium_path,
    local_api,
    start_dashboard,
)

GOAL_SECONDS = 2.0


def first_render(browser: object, url: str) -> float:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        started = time.perf_counter()
        page.goto(url)
        page.locator("[data-kpi=txn_count][data-raw]").wait_for()
        page.locator("[data-testid=freshness]", has_text="Last updated").wait_for()
        page.locator("canvas").first.wait_for()
        return time.perf_counter() - started
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit(CHROMIUM_MISSING)
    timings: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, local_api(Path(tmp)) as (api, _counter):
        server = start_dashboard(api.base_url, api.api_key, Path(tmp) / "panel.log", realtime_seconds=2.0,
                                 daily_seconds=60.0)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    print(f"warm-up load (not counted): {first_render(browser, server.url):.2f} s")
                    for run in range(1, args.runs + 1):
                        timings.append(first_render(browser, server.url))
                        print(f"run {run}: {timings[-1]:.2f} s")
                finally:
                    browser.close()
        finally:
            server.stop()
    median = statistics.median(timings)
    print(f"first complete render, median of {len(timings)}: {median:.2f} s "
          f"(min {min(timings):.2f}, max {max(timings):.2f})")
    print(f"goal: <= {GOAL_SECONDS:.2f} s")
    print(f"ratio (median / goal): {median / GOAL_SECONDS:.2f}")


if __name__ == "__main__":
    main()
