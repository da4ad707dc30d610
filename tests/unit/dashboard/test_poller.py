"""The poller's daily read against a fake API (httpx ``MockTransport``): the newest day with KPIs is
found even when it lies far behind today, and the series ends there."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import httpx

from panel_dashboard.client import ApiClient
from panel_dashboard.poller import KPI_LOOKBACK_WINDOWS, DailyData, SharedPoller
from panel_dashboard.settings import DashboardSettings

TODAY = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _read_daily_in_own_loop(poller: SharedPoller) -> DailyData:
    """In a thread of its own: the browser tier's Playwright may hold a running loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, poller._read_daily()).result()


def _total(day: date) -> dict[str, object]:
    return {"event_date": day.isoformat(), "merchant_id": "*", "country": "*", "channel": "*", "txn_count": 1,
            "approved_count": 1, "declined_count": 0, "approval_rate": "1.0000", "gross_volume_usd": "1.00",
            "refund_count": 0, "refund_volume_usd": "0.00", "net_volume_usd": "1.00", "avg_ticket_usd": "1.00",
            "unique_accounts": 1}


def _poller(days: list[date]) -> tuple[SharedPoller, list[tuple[str, str]]]:
    ranges: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if request.url.path == "/v1/kpis/daily":
            ranges.append((q["from"], q["to"]))
            items = [_total(d) for d in days if q["from"] <= d.isoformat() <= q["to"]]
            return httpx.Response(200, json={"items": items, "next_token": None})
        if request.url.path == "/v1/kpis/summary":
            return httpx.Response(200, json={"date": q["date"], "current": _total(date.fromisoformat(q["date"])),
                                             "previous": None, "change": {}})
        return httpx.Response(200, json={"items": [], "next_token": None})

    client = ApiClient("http://api.test", "key", transport=httpx.MockTransport(handler))
    settings = DashboardSettings(api_url="http://api.test", api_key="key", series_days=30)
    return SharedPoller(client, settings, clock=lambda: TODAY), ranges


def test_recent_kpis_take_one_request() -> None:
    days = [TODAY.date() - timedelta(days=n) for n in range(40)]
    poller, ranges = _poller(days)
    data = _read_daily_in_own_loop(poller)
    assert ranges == [("2026-10-28", "2026-11-26")]
    assert data.latest_date == "2026-11-26"
    assert len(data.series) == 30
    assert data.summary is not None
    assert data.summary["date"] == "2026-11-26"


def test_the_newest_day_is_found_years_back_and_the_series_ends_there() -> None:
    days = [date(2023, 12, 1) + timedelta(days=n) for n in range(34)]  # 2023-12-01 .. 2024-01-03
    poller, _ranges = _poller(days)
    data = _read_daily_in_own_loop(poller)
    assert data.latest_date == "2024-01-03"
    assert [r["event_date"] for r in data.series] == [d.isoformat() for d in days[-30:]]


def test_no_kpis_at_all_is_a_bounded_search() -> None:
    poller, ranges = _poller([])
    data = _read_daily_in_own_loop(poller)
    assert data.latest_date is None
    assert data.series == []
    assert data.summary is None
    assert len(ranges) == 1 + KPI_LOOKBACK_WINDOWS
    assert all((date.fromisoformat(b) - date.fromisoformat(a)).days < 366 for a, b in ranges)
