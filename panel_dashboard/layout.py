# mypy: disable-error-code="no-untyped-call"
"""Assembles one session's dashboard: header status, stale banner, four pages, one shared poller."""

from __future__ import annotations

import html
import threading
from typing import Any, Final

import panel as pn

from panel_dashboard.client import ApiClient
from panel_dashboard.pages.alerts import AlertsPage
from panel_dashboard.pages.merchants import MerchantsPage
from panel_dashboard.pages.overview import OverviewPage
from panel_dashboard.pages.query import QueryPage
from panel_dashboard.poller import SessionPoller
from panel_dashboard.settings import DashboardSettings
from panel_dashboard.state import Status
from panel_dashboard.style import html_pane

TITLE: Final = "DataForge — payments"

_shared_lock = threading.Lock()
_shared_client: ApiClient | None = None
_shared_settings: DashboardSettings | None = None


def shared() -> tuple[DashboardSettings, ApiClient]:
    """Settings (read once per process) and the process-wide API client (one connection pool)."""
    global _shared_client, _shared_settings
    with _shared_lock:
        if _shared_settings is None or _shared_client is None:
            _shared_settings = DashboardSettings.from_env()
            _shared_client = ApiClient(_shared_settings.api_url, _shared_settings.api_key)
        return _shared_settings, _shared_client


class Dashboard:
    """One browser session's dashboard. ``poller`` is the only thing that polls the API."""

    def __init__(self, settings: DashboardSettings, client: ApiClient) -> None:
        self.settings = settings
        self.poller = SessionPoller(client, settings)
        self.overview = OverviewPage(settings.realtime_minutes)
        self.merchants = MerchantsPage(client, settings.series_days, self._merchants_date)
        self.alerts = AlertsPage(client, settings.runbook_url, self._refresh_alerts)
        self.query = QueryPage(client)
        self.banner = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
                                    css_classes=["df-stale-banner"])
        self.indicator = html_pane('<span class="df-status" data-testid="freshness">Connecting…</span>')
        listeners = self.poller.listeners
        listeners.realtime.append(self.overview.on_realtime)
        listeners.daily.extend([self.overview.on_daily, self.merchants.on_daily])
        listeners.alerts.append(self.alerts.on_alerts)
        listeners.status.append(self.on_status)
        self.tabs = pn.Tabs(("Overview", self.overview.view), ("Merchants", self.merchants.view),
                            ("Alerts", self.alerts.view), ("Query", self.query.view),
                            dynamic=True, sizing_mode="stretch_width")  # only the visible tab is rendered

    def on_status(self, status: Status) -> None:
        text = html.escape(status.indicator)
        self.indicator.object = f'<span class="df-status" data-testid="freshness">{text}</span>'
        if status.stale:
            self.banner.object = f'<span data-testid="stale-banner">⚠ {html.escape(status.banner)}</span>'
        if self.banner.visible != status.stale:
            self.banner.visible = status.stale

    def _merchants_date(self, day: str | None) -> None:
        if day != self.poller.merchants_date:
            self.poller.merchants_date = day
            self.poller.request_daily()
            pn.state.execute(self.poller.tick)

    def _refresh_alerts(self) -> None:
        self.poller.request_alerts()
        pn.state.execute(self.poller.tick)

    def template(self) -> Any:
        # Bootstrap, not Fast: the Fast design always loads a Google font, which stalls the first
        # render for the full network timeout where the browser has no internet access.
        template = pn.template.BootstrapTemplate(
            title=TITLE, header=[self.indicator], main=[self.banner, self.tabs],
            header_background="#0b3d91", collapsed_sidebar=True,
        )
        return template

    def start(self) -> None:
        self.poller.start()
        pn.state.execute(self.query.load_catalog)


def build() -> Any:
    """A new session's page (called once per browser session by ``app.py``)."""
    settings, client = shared()
    dashboard = Dashboard(settings, client)
    pn.state.onload(dashboard.start)
    return dashboard.template()
