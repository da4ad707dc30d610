"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download), one page per module.

The API comes from ``api_base_url`` (``tests/fixtures/dashboard.py``: the real Chalice API, served
locally over the embedded platform; the fixture modules are registered in ``tests/conftest.py``). Chromium is found at
``/usr/bin/chromium`` (``apt-get install chromium``) or ``$DATAFORGE_CHROMIUM``; without it the
browser tests are skipped with the install command, never silently passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.dashboard import ARTIFACTS, CHROMIUM_ARGS, CHROMIUM_MISSING, DashboardServer, chromium_path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip(CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


class PageSession:
    """A page on the dashboard, with every websocket frame it received (to prove what reached it)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.frames: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: Any) -> None:
        self.frames.append(payload if isinstance(payload, str) else bytes(payload).decode(errors="replace"))

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def dashboard_page(browser: Any, dashboard_server: DashboardServer, dashboard_alert: str) -> Iterator[PageSession]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)  # a shared CI machine can be slow; waits end as soon as ready
    session = PageSession(page)
    page.goto(dashboard_server.url)
    page.locator("[data-kpi=txn_count]").wait_for()
    try:
        yield session
    finally:
        context.close()
