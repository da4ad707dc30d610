"""Server-side cost of one refresh cycle of the dashboard with 10 concurrent browser sessions.

The Panel server runs in THIS process (``pn.serve``, threaded) so its CPU time can be read; the API
(the STAND-IN of ``tests/fixtures/dashboard.py`` over generated data) runs in a child process and
Chromium in its own processes, so neither is counted. 10 headless Chromium pages stay open on the
dashboard; over a measured window, the server's CPU seconds divided by the number of refresh periods
is the cost of one refresh cycle of all 10 sessions (fetch + decode + model updates + websocket
patches). The per-session tick wall times recorded by the poller are printed too.
Last lines: figure, goal, ratio.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from dataforge import envvars  # noqa: E402
from dataforge.local import free_port  # noqa: E402
from tests.integration.dashboard.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

SESSIONS = 10
PERIOD_SECONDS = 2.0
WINDOW_SECONDS = 20.0
GOAL_MS = 200.0
API_CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.fixtures.dashboard import API_KEY, StandInApi, write_standin_data
api = StandInApi(write_standin_data(Path({data!r}), datetime.now(UTC)), port={port})
api.start()
print("ready", flush=True)
time.sleep(3600)
"""


def main() -> None:
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("Chromium not found: apt-get install -y chromium")
    from tests.fixtures.dashboard import API_KEY

    with tempfile.TemporaryDirectory() as tmp:
        api_port = free_port()
        child = subprocess.Popen([sys.executable, "-c", API_CHILD.format(root=str(ROOT), data=f"{tmp}/data",
                                                                         port=api_port)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            os.environ.update({envvars.API_URL: f"http://127.0.0.1:{api_port}", envvars.API_KEY: API_KEY,
                               envvars.REALTIME_REFRESH_SECONDS: str(PERIOD_SECONDS),
                               envvars.DAILY_REFRESH_SECONDS: "60"})
            run(chromium)
        finally:
            child.terminate()
            child.wait(timeout=10)


def run(chromium: str) -> None:
    import panel as pn
    from playwright.sync_api import sync_playwright

    from panel_dashboard import poller
    from panel_dashboard.layout import build

    pn.extension("tabulator", notifications=False, sizing_mode="stretch_width")
    port = free_port()
    server = pn.serve({"app": build}, port=port, address="127.0.0.1", show=False, threaded=True, start=True,
                      websocket_origin=[f"127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}/app"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=5)
            break
        except httpx.HTTPError:
            time.sleep(0.3)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pages = []
        for _ in range(SESSIONS):
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(180_000)
            page.goto(url)
            pages.append(page)
        for page in pages:
            page.locator("[data-kpi=txn_count][data-raw]").wait_for()
        time.sleep(2 * PERIOD_SECONDS)  # settle: first daily reads done, steady realtime ticks
        poller.CYCLE_STATS.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        pages[0].wait_for_timeout(WINDOW_SECONDS * 1000)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stats = [s for s in poller.CYCLE_STATS if s.sessions_alive >= SESSIONS]
        browser.close()
    server.stop()
    cycles = wall / PERIOD_SECONDS
    per_cycle_ms = cpu / cycles * 1000
    ticks = len(stats)
    walls = sorted(s.total_seconds * 1000 for s in stats)
    applies = sorted(s.apply_seconds * 1000 for s in stats)
    print(f"sessions: {SESSIONS}; realtime period {PERIOD_SECONDS} s; window {wall:.1f} s = {cycles:.1f} cycles; "
          f"ticks recorded: {ticks} (expected ~{SESSIONS * cycles:.0f})")
    if walls:
        print(f"per-session tick wall (API awaited) p50 {statistics.median(walls):.1f} ms, "
              f"p95 {walls[int(0.95 * (len(walls) - 1))]:.1f} ms; model update p50 {statistics.median(applies):.2f} ms")
    print(f"server CPU over the window: {cpu:.2f} s")
    print(f"server-side cost of one refresh cycle, {SESSIONS} sessions: {per_cycle_ms:.0f} ms CPU")
    print(f"goal: <= {GOAL_MS:.0f} ms")
    print(f"ratio (cost / goal): {per_cycle_ms / GOAL_MS:.2f}")


if __name__ == "__main__":
    main()
