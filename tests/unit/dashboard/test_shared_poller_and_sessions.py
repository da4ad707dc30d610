"""The process-wide poller against a fake API (httpx ``MockTransport``) and sessions' dashboards fed by
it, without a server: one set of reads per cycle whatever the number of sessions; versions change only
with the data; the realtime delta; errors make every session stale and keep the last data; a new
session starts from the latest data; hidden pages are built when their tab is opened; the spare page
built ahead of the next session is handed out up to date; the served document passes Bokeh's
integrity checks (``app.py`` skips them per session)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from panel_dashboard.client import ApiClient, RetryPolicy
from panel_dashboard.layout import Dashboard, SparePage
from panel_dashboard.poller import CONNECTING, SharedPoller, Snapshot
from panel_dashboard.settings import DashboardSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _in_own_loop(coro: Any) -> Any:
    """In a thread of its own: the browser tier's Playwright may hold a running loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _kpi(day: str, merchant: str = "*", txn: int = 10) -> dict[str, Any]:
    return {"event_date": day, "merchant_id": merchant, "country": "*" if merchant == "*" else "US",
            "channel": "*" if merchant == "*" else "web", "txn_count": txn, "approved_count": txn - 1,
            "declined_count": 1, "approval_rate": "0.9000", "gross_volume_usd": "123.45", "refund_count": 0,
            "refund_volume_usd": "0.00", "net_volume_usd": "123.45", "avg_ticket_usd": "13.72",
            "unique_accounts": 7}


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False
        self.minutes = 3
        self.open_alerts: list[dict[str, Any]] = [
            {"alert_id": "a1", "rule": "decline_rate", "severity": "high", "status": "open",
             "raised_at": "2026-11-26T11:00:00Z", "message": "decline rate high", "value": "0.3", "threshold": "0.2",
             "acknowledged_by": None, "acknowledged_at": None, "runbook_url": None}]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if self.down:
            return httpx.Response(503, json={"error": {"code": "down", "message": "down"}})
        path, q = request.url.path, request.url.params
        if path == "/v1/realtime":
            items = [{"minute": (NOW - timedelta(minutes=10 - m)).strftime("%Y-%m-%dT%H:%MZ"),
                      "txn_count": 5 + m, "approved_count": 4, "declined_count": 1 + m, "volume_usd": "9.50",
                      "decline_rate": "0.2000"} for m in range(self.minutes)]
            return httpx.Response(200, json={"items": items, "freshness_seconds": 20})
        if path == "/v1/kpis/daily":
            return httpx.Response(200, json={"items": [_kpi("2026-11-25"), _kpi("2026-11-26")], "next_token": None})
        if path == "/v1/kpis/summary":
            return httpx.Response(200, json={"date": q["date"], "current": _kpi(q["date"]), "previous": None,
                                             "change": {"txn_count": "12.5"}})
        if path == "/v1/kpis/merchants":
            return httpx.Response(200, json={"items": [_kpi(q["date"], "m_001", 4), _kpi(q["date"], "m_002", 6)],
                                             "next_token": None})
        if path == "/v1/alerts":
            items = self.open_alerts if q["status"] == "open" else []
            return httpx.Response(200, json={"items": items, "next_token": None})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})


def _poller(api: FakeApi, clock: list[float]) -> SharedPoller:
    client = ApiClient("http://api.test", "key", transport=httpx.MockTransport(api.handler),
                       retry=RetryPolicy(attempts=1, base_delay=0.001, max_delay=0.002))
    settings = DashboardSettings(api_url="http://api.test", api_key="key", realtime_refresh_seconds=2.0,
                                 daily_refresh_seconds=60.0)
    return SharedPoller(client, settings, clock=lambda: NOW, monotonic=lambda: clock[0])


def test_one_set_of_reads_per_cycle_for_every_session_and_versions_follow_the_data() -> None:
    api, clock = FakeApi(), [0.0]
    poller = _poller(api, clock)
    assert poller.current().status.indicator == CONNECTING
    received: list[list[Snapshot]] = [[] for _ in range(10)]
    tokens = [poller.subscribe(box.append) for box in received]
    first = _in_own_loop(poller.cycle())
    poller.publish(first)
    assert sorted(api.calls) == sorted(["/v1/realtime", "/v1/kpis/daily", "/v1/kpis/summary", "/v1/kpis/merchants",
                                        "/v1/alerts", "/v1/alerts", "/v1/alerts"])
    assert all(box == [first] for box in received)  # the same snapshot object for all ten sessions
    assert first.realtime is not None
    assert first.daily is not None
    assert first.alerts is not None
    assert (first.realtime.version, first.daily.version, first.alerts.version) == (1, 1, 1)
    assert first.daily.latest_date == "2026-11-26"
    assert first.realtime.columns["txn_count"] == [5, 6, 7]
    assert "Last updated" in first.status.indicator
    assert not first.status.stale

    api.calls.clear()
    clock[0] = 2.0  # next realtime period: the daily and alert reads are not due
    second = _in_own_loop(poller.cycle())
    assert api.calls == ["/v1/realtime"]
    assert second.realtime is first.realtime  # same minutes: same version, nothing for sessions to send

    api.minutes = 4  # one new minute
    clock[0] = 4.0
    third = _in_own_loop(poller.cycle())
    assert third.realtime is not None
    assert third.realtime.version == 2
    assert third.realtime.delta.replace is None
    assert third.realtime.delta.stream["txn_count"] == [8]
    assert third.daily is first.daily

    for token in tokens[1:]:
        poller.unsubscribe(token)
    poller.publish(third)
    assert len(received[0]) == 2
    assert all(len(box) == 1 for box in received[1:])
    assert poller.sessions == 1


def test_an_unreachable_api_makes_the_status_stale_and_keeps_the_last_data() -> None:
    api, clock = FakeApi(), [0.0]
    poller = _poller(api, clock)
    good = _in_own_loop(poller.cycle())
    api.down = True
    clock[0] = 2.0
    bad = _in_own_loop(poller.cycle())
    assert bad.status.stale
    assert "not answering" in bad.status.banner
    assert bad.realtime is good.realtime
    assert bad.daily is good.daily
    api.down = False
    clock[0] = 4.0
    assert not _in_own_loop(poller.cycle()).status.stale


def test_a_requested_alert_read_happens_on_the_next_cycle() -> None:
    api, clock = FakeApi(), [0.0]
    poller = _poller(api, clock)
    _in_own_loop(poller.cycle())
    api.open_alerts = []
    api.calls.clear()
    clock[0] = 2.0
    poller.request_alerts()
    snapshot = _in_own_loop(poller.cycle())
    assert api.calls.count("/v1/alerts") == 3
    assert snapshot.alerts is not None
    assert snapshot.alerts.open == []
    assert snapshot.alerts.version == 2


def test_a_new_session_starts_with_the_latest_data_and_builds_hidden_pages_on_demand() -> None:
    api, clock = FakeApi(), [0.0]
    poller = _poller(api, clock)
    snapshot = _in_own_loop(poller.cycle())
    dashboard = Dashboard(poller.settings, poller.client, poller)
    assert 'data-kpi="txn_count" data-raw="10"' in dashboard.overview.cards.text
    assert "▲ +12.5% vs previous day" in dashboard.overview.cards.text
    assert list(dashboard.overview.realtime_source.data["txn_count"]) == [5, 6, 7]
    assert "Last updated" in dashboard.indicator.text
    assert not dashboard.banner.div.visible
    assert (dashboard.merchants, dashboard.alerts, dashboard.query) == (None, None, None)

    dashboard.open_tab(1)
    assert dashboard.merchants is not None
    assert list(dashboard.merchants.table.value["merchant_id"]) == ["m_001", "m_002"]
    dashboard.open_tab(2)
    assert dashboard.alerts is not None
    assert [row.objects[0].object.count("data-alert-id") for row in dashboard.alerts.open_list.objects] == [1]

    api.minutes = 4
    clock[0] = 2.0
    dashboard.show(_in_own_loop(poller.cycle()))  # the next version: streamed into the source
    assert list(dashboard.overview.realtime_source.data["txn_count"]) == [5, 6, 7, 8]
    api.down = True
    clock[0] = 4.0
    dashboard.show(_in_own_loop(poller.cycle()))
    assert dashboard.banner.div.visible
    assert "not answering" in dashboard.banner.text
    assert snapshot.daily is not None
    assert dashboard.merchants.frame.shape[0] == 2


def test_the_spare_page_is_handed_out_with_the_latest_data_and_refilled_once() -> None:
    api, clock = FakeApi(), [0.0]
    poller = _poller(api, clock)
    built: list[Dashboard] = []

    def make() -> Dashboard:
        built.append(Dashboard(poller.settings, poller.client, poller))
        return built[-1]

    pages = SparePage(make)
    first = pages.take()  # none ready: built on the spot, before any data
    assert built == [first]
    assert CONNECTING in first.indicator.text

    async def refill_twice() -> None:
        pages.refill_soon()
        pages.refill_soon()  # already scheduled: one build
        await asyncio.sleep(0)

    _in_own_loop(refill_twice())
    assert len(built) == 2
    _in_own_loop(poller.cycle())  # data arrives after the spare was built
    second = pages.take()
    assert second is built[1]
    assert "Last updated" in second.indicator.text
    assert list(second.overview.realtime_source.data["txn_count"]) == [5, 6, 7]
    assert 'data-kpi="txn_count" data-raw="10"' in second.overview.cards.text
    third = pages.take()  # spent: the next one is built on the spot
    assert third is built[2]
    assert third is not second


def test_the_served_document_passes_bokehs_integrity_checks() -> None:
    """``app.py`` turns Bokeh's per-session document validation off; the checks run here instead."""
    from bokeh.core.validation.check import check_integrity
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    api, clock = FakeApi(), [0.0]
    poller = _poller(api, clock)
    _in_own_loop(poller.cycle())
    doc = Document()
    with set_curdoc(doc):
        Dashboard(poller.settings, poller.client, poller).page.server_doc(doc)
    issues = check_integrity([model for root in doc.roots for model in root.references()])
    assert (issues.error, issues.warning) == ([], [])
    assert len(doc.roots) == 2
