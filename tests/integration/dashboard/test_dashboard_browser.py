"""The dashboard in headless Chromium against the real API served locally (see ``api_base_url``), over
the data ``tests/fixtures/api.py`` wrote to the embedded platform (lake, gold KPIs, realtime, alerts).

One page for the module, used the way people use it: read the overview, filter merchants and drill
down, acknowledge an alert, run a query and a refused one, then stop the API and watch the stale
banner come and go. Screenshots land in ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest

from dataforge import lake, schemas
from tests.fixtures.api import DAYS, ApiPlatform
from tests.fixtures.dashboard import DashboardApi, DashboardServer
from tests.integration.dashboard.conftest import PageSession

pytestmark = pytest.mark.integration


def _api(api: DashboardApi, path: str, **params: Any) -> Any:
    response = httpx.get(f"{api.base_url}{path}", params=params, headers={"x-api-key": api.api_key}, timeout=10)
    response.raise_for_status()
    return response.json()


def _shown_number(text: str) -> Decimal:
    """``"$1,234.56"`` / ``"93.12%"`` / ``"4,087"`` -> Decimal (percent back to a 0..1 rate)."""
    clean = text.replace("$", "").replace(",", "").strip()
    if clean.endswith("%"):
        return Decimal(clean[:-1]) / 100
    return Decimal(clean)


def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def _tab(session: PageSession, name: str) -> None:
    session.page.locator(".bk-tab", has_text=name).first.click()


def test_overview_kpi_cards_equal_the_api(dashboard_page: PageSession, dashboard_api: DashboardApi) -> None:
    page = dashboard_page.page
    shown_date = page.locator("[data-testid=kpi-date]").inner_text()
    newest = max(DAYS)
    assert shown_date == newest.isoformat()  # the newest day with KPIs, however long ago it was
    later = _api(dashboard_api, "/v1/kpis/daily", **{"from": (newest + timedelta(days=1)).isoformat(),
                                                      "to": (newest + timedelta(days=366)).isoformat()})
    assert later["items"] == []
    summary = _api(dashboard_api, "/v1/kpis/summary", date=shown_date)
    assert summary["previous"] is not None
    checked = 0
    for key in ("txn_count", "gross_volume_usd", "approval_rate", "net_volume_usd", "avg_ticket_usd",
                "unique_accounts"):
        card = page.locator(f"[data-kpi={key}]")
        expected = Decimal(str(summary["current"][key]))
        assert card.get_attribute("data-raw") == str(summary["current"][key])
        assert _shown_number(card.locator(".df-card-value").inner_text()) == expected, key
        change = card.locator(".df-card-change").inner_text()
        relative = Decimal(summary["change"][key]).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
        assert f"{abs(relative)}% vs previous day" in change, (key, change, summary["change"][key])
        checked += 1
    assert checked == 6
    page.locator("[data-testid=freshness]", has_text="Last updated").wait_for()
    assert not page.locator("[data-testid=stale-banner]").is_visible()
    page.wait_for_timeout(1500)  # let the charts draw
    dashboard_page.screenshot("overview")


def test_a_later_session_gets_the_page_built_ahead_with_the_same_numbers(
        browser: Any, dashboard_page: PageSession, dashboard_server: DashboardServer) -> None:
    """The first page has rendered, so the server built the next session's page ahead (``SparePage``):
    it shows the same KPIs, and its Merchants tab works (Tabulator's scripts arrive after the render).
    Every asset, Panel's style sheets included, comes from the dashboard's own server: Panel's
    default for style sheets is its CDN (rewritten only when it renders a session's own page), and
    the dashboard must work without internet access."""
    first = dashboard_page.page.locator("[data-kpi=txn_count]").get_attribute("data-raw")
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    requested: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.set_default_timeout(60_000)
        page.goto(dashboard_server.url)
        page.locator("[data-testid=freshness]", has_text="Last updated").wait_for()
        assert page.locator("[data-kpi=txn_count]").get_attribute("data-raw") == first
        page.locator(".bk-tab", has_text="Merchants").first.click()
        page.locator(".tabulator-row").first.wait_for()
    finally:
        context.close()
    origin = dashboard_server.url.rsplit("/", 1)[0]
    assert any(url.endswith(".css") or ".css?" in url for url in requested)
    assert [url for url in requested if not url.startswith(origin)] == []


def test_the_page_carries_only_the_scripts_the_first_page_needs(dashboard_server: DashboardServer) -> None:
    """No MathJax, Bootstrap, ES-module shim or WebGL plugin; Tabulator comes after the first render."""
    page = httpx.get(dashboard_server.url, timeout=30).text
    scripts = re.findall(r'<script[^>]* src="([^"]+)"', page)
    assert any("/bokeh.min.js" in src for src in scripts)
    assert any("/panel.min.js" in src for src in scripts)
    unneeded = ("mathjax", "bootstrap", "es-module-shims", "bokeh-gl", "tabulator", "luxon")
    assert [src for src in scripts if any(name in src for name in unneeded)] == []


def test_merchants_table_filters_sorts_and_drills_down(dashboard_page: PageSession,
                                                       dashboard_api: DashboardApi) -> None:
    page = dashboard_page.page
    _tab(dashboard_page, "Merchants")
    rows = page.locator(".tabulator-row")
    rows.first.wait_for()
    merchant = rows.first.locator("[tabulator-field=merchant_id]").inner_text().strip()
    search = page.get_by_placeholder("search merchant id")
    search.fill(merchant)
    search.press("Enter")
    cells = page.locator(".tabulator-row [tabulator-field=merchant_id]")
    _until(lambda: (texts := [t.strip() for t in cells.all_inner_texts()]) != [] and set(texts) == {merchant})
    page.locator(".tabulator-col[tabulator-field=txn_count]").first.click()  # sortable header
    rows.first.locator("[tabulator-field=merchant_id]").click()
    page.locator("[data-testid=drilldown]", has_text=merchant).wait_for()
    page.wait_for_timeout(800)
    dashboard_page.screenshot("merchants")
    search.fill("")
    search.press("Enter")


def test_an_alert_can_be_acknowledged(dashboard_page: PageSession, dashboard_api: DashboardApi,
                                      dashboard_alert: str) -> None:
    page = dashboard_page.page
    _tab(dashboard_page, "Alerts")
    before = {a["alert_id"]: a for a in _api(dashboard_api, "/v1/alerts", status="open")["items"]}
    assert dashboard_alert in before, "the dashboard's own open alert must be served"
    first = page.locator("[data-alert-id]").first
    _until(lambda: first.get_attribute("data-alert-id") == dashboard_alert)  # the newest open alert
    expected = before[dashboard_alert]
    link = first.locator("a", has_text="runbook")
    assert link.get_attribute("href") == (expected["runbook_url"]
                                          or f"docs/runbooks/incident_response.md#{expected['rule']}")
    dashboard_page.screenshot("alerts")
    page.get_by_role("button", name="Acknowledge").first.click()
    page.locator("[data-testid=ack-done]", has_text=dashboard_alert).wait_for()
    acked = _api(dashboard_api, "/v1/alerts", status="acknowledged")["items"]
    assert any(a["alert_id"] == dashboard_alert and a["acknowledged_by"] == "on-call" for a in acked)
    page.locator(f'[data-alert-id="{dashboard_alert}"]').wait_for(state="detached")
    assert set(before) - {dashboard_alert} <= {a["alert_id"] for a in
                                               _api(dashboard_api, "/v1/alerts", status="open")["items"]}
    dashboard_page.screenshot("alerts-acknowledged")


def test_a_query_returns_rows_and_a_refused_query_shows_its_message(
        dashboard_page: PageSession, dashboard_api: DashboardApi, api_platform: ApiPlatform) -> None:
    page = dashboard_page.page
    catalog = _api(dashboard_api, "/v1/catalog")["databases"]
    databases = {db["name"]: {t["name"] for t in db["tables"]} for db in catalog}
    silver = next(name for name in databases if name.endswith(f"_{lake.Zone.SILVER.value}"))
    table = schemas.SILVER_TRANSACTIONS.name
    assert table in databases[silver]
    _tab(dashboard_page, "Query")
    page.locator("ul.df-columns").first.wait_for()  # schema browser from /v1/catalog
    editor = page.get_by_placeholder("SELECT ...")
    editor.fill(f"SELECT event_date, count(*) AS silver_rows FROM {silver}.{table} GROUP BY event_date "
                "ORDER BY event_date")
    editor.blur()
    page.get_by_role("button", name="Run query").click()
    page.locator("[data-testid=query-status]", has_text=f"SUCCEEDED: {len(DAYS)} row(s)").wait_for()
    cells = page.locator(".tabulator-cell[tabulator-field=silver_rows]")
    _until(lambda: len(cells.all_inner_texts()) == len(DAYS))
    assert [t.strip() for t in cells.all_inner_texts()] == [str(api_platform.silver_rows_per_day)] * len(DAYS)
    page.wait_for_timeout(500)
    dashboard_page.screenshot("query")

    refused = f"DROP TABLE {table}"
    response = httpx.post(f"{dashboard_api.base_url}/v1/queries", json={"sql": refused, "database": silver},
                          headers={"x-api-key": dashboard_api.api_key}, timeout=10)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    editor.fill(refused)
    editor.blur()
    page.get_by_role("button", name="Run query").click()
    page.locator("[data-testid=query-error]", has_text=message).wait_for()
    dashboard_page.screenshot("query-refused")


def test_the_api_key_never_reaches_the_browser(dashboard_page: PageSession, dashboard_api: DashboardApi) -> None:
    assert dashboard_page.frames, "the page should have received websocket messages"
    assert dashboard_api.api_key not in dashboard_page.page.content()
    assert not [f for f in dashboard_page.frames if dashboard_api.api_key in f]


def test_stale_banner_appears_when_the_api_stops_and_clears_when_it_returns(
        dashboard_page: PageSession, dashboard_api: DashboardApi) -> None:
    page = dashboard_page.page
    _tab(dashboard_page, "Overview")
    banner = page.locator("[data-testid=stale-banner]")
    assert not banner.is_visible()
    dashboard_api.stop()
    try:
        banner.wait_for(state="visible", timeout=30_000)
        assert "API is not answering" in banner.inner_text()
        dashboard_page.screenshot("stale-banner")
    finally:
        dashboard_api.start()
    banner.wait_for(state="hidden", timeout=30_000)
    page.locator("[data-testid=freshness]", has_text="Last updated").wait_for()
