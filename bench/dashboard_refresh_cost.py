"""Server-side cost of one refresh cycle of the dashboard with 10 concurrent browser sessions.

    .venv/bin/python bench/dashboard_refresh_cost.py [--sessions 10] [--window 20]

The real stack of the browser tests (``tests/fixtures/dashboard.py``: ``local_api``: moto server,
``bootstrap``, data written with the helpers of ``tests/fixtures/api.py``, the Chalice app served by
``RestartableApi``) and the dashboard as ``dataforge dashboard`` runs it (``start_dashboard``: a
``panel serve`` subprocess). ``--sessions`` headless Chromium pages (Debian's, via Playwright) stay open
on the dashboard; over the measured window the CPU seconds of the ``panel serve`` process (from
``/proc/<pid>/stat``; the API, moto and Chromium run in other processes or threads and are not
counted) divided by the number of realtime refresh periods is the cost of one refresh cycle of all
sessions (fetch + decode + model updates + websocket patches; the slower daily and alert reads are
amortised over the cycles). The API requests per cycle are counted by a middleware of the app.
Last lines: figure, goal, ratio.
"""

from __future__ import annotations

import argparse
import os
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

PERIOD_SECONDS = 2.0
DAILY_SECONDS = 60.0
GOAL_MS = 200.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux ``/proc/<pid>/stat``, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds")
    args = parser.parse_args()
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit(CHROMIUM_MISSING)
    with tempfile.TemporaryDirectory() as tmp, local_api(Path(tmp)) as (api, counter):
        server = start_dashboard(api.base_url, api.api_key, Path(tmp) / "panel.log",
                                 realtime_seconds=PERIOD_SECONDS, daily_seconds=DAILY_SECONDS)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    pages = []
                    for _ in range(args.sessions):
                        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                        page.set_default_timeout(180_000)
                        page.goto(server.url)
                        pages.append(page)
                    for page in pages:
                        page.locator("[data-kpi=txn_count][data-raw]").wait_for()
                        page.locator("[data-testid=freshness]", has_text="Last updated").wait_for()
                    time.sleep(2 * PERIOD_SECONDS)  # settle: first reads done, steady realtime ticks
                    pid = server.process.pid
                    cpu0, wall0, requests0 = cpu_seconds(pid), time.perf_counter(), counter.requests
                    time.sleep(args.window)
                    cpu = cpu_seconds(pid) - cpu0
                    wall = time.perf_counter() - wall0
                    requests = counter.requests - requests0
                finally:
                    browser.close()
        finally:
            server.stop()
    cycles = wall / PERIOD_SECONDS
    per_cycle_ms = cpu / cycles * 1000
    print(f"sessions: {args.sessions}; realtime period {PERIOD_SECONDS:.0f} s, daily {DAILY_SECONDS:.0f} s; "
          f"window {wall:.1f} s = {cycles:.1f} cycles")
    print(f"API requests: {requests} ({requests / cycles:.1f} per cycle)")
    print(f"dashboard server CPU over the window: {cpu:.2f} s ({100 * cpu / wall:.0f}% of one core)")
    print(f"server-side cost of one refresh cycle, {args.sessions} sessions: {per_cycle_ms:.0f} ms CPU")
    print(f"goal: <= {GOAL_MS:.0f} ms")
    print(f"ratio (cost / goal): {per_cycle_ms / GOAL_MS:.2f}")


if __name__ == "__main__":
    main()
