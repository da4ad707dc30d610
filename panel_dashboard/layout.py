# mypy: disable-error-code="no-untyped-call"
"""Assembles one session's dashboard: header status, stale banner, four pages fed by the process's poller.

Only what the first page needs is built when a session starts: the header, the banner and the
overview, already holding the poller's latest data. The merchants, alerts and query pages are built
the first time their tab is opened (``Dashboard.open_tab``).
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

import panel as pn

from panel_dashboard.client import ApiClient
from panel_dashboard.pages.alerts import AlertsPage
from panel_dashboard.pages.merchants import MerchantsPage
from panel_dashboard.pages.overview import OverviewPage
from panel_dashboard.pages.query import QueryPage
from panel_dashboard.poller import SHARE, SharedPoller, Snapshot
from panel_dashboard.resources import load_tabulator_when_ready
from panel_dashboard.settings import DashboardSettings
from panel_dashboard.state import Status
from panel_dashboard.style import TextBox

log = logging.getLogger(__name__)

TITLE: Final = "DataForge — payments"
TABS: Final = ("Overview", "Merchants", "Alerts", "Query")
PAGE: Final = """{% extends base %}
{% block postamble %}
<style>
  body {font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; background: #f6f8fa;}
  .df-header {display: flex; align-items: center; justify-content: space-between; gap: 16px;
              background: #0b3d91; color: #fff; padding: 10px 20px; min-height: 40px;}
  .df-title {font-size: 20px; font-weight: 600; white-space: nowrap;}
  .df-main {padding: 10px 20px;}
</style>
{% endblock %}
{% block js_resources %}
{#- No ES-module component (Panel's ReactiveESM) and no WebGL plot here: their scripts (the
    es-module-shims polyfill, BokehJS's GL plugin) are left out, as Bokeh itself leaves out unused plugins. -#}
{%- for tag in bokeh_js.split("\n") if "/es-module-shims@" not in tag and "/bokeh-gl." not in tag %}
{{ tag }}
{%- endfor %}
{% endblock %}
{% block contents %}
<header class="df-header"><span class="df-title">{{ app_title | e }}</span>{{ embed(roots.status) }}</header>
<main class="df-main">{{ embed(roots.main) }}</main>
{% endblock %}
"""

_shared_lock = threading.Lock()
_shared: tuple[DashboardSettings, ApiClient, SharedPoller] | None = None


def shared() -> tuple[DashboardSettings, ApiClient, SharedPoller]:
    """Settings (read once per process), the process-wide API client (one connection pool) and the
    process-wide poller (one set of API reads per period, whatever the number of sessions)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            settings = DashboardSettings.from_env()
            client = ApiClient(settings.api_url, settings.api_key)
            _shared = (settings, client, SharedPoller(client, settings))
        return _shared


def indicator_html(status: Status) -> str:
    return f'<span class="df-status" data-testid="freshness">{html.escape(status.indicator)}</span>'


def banner_html(status: Status) -> str:
    return f'<div class="df-stale" data-testid="stale-banner">⚠ {html.escape(status.banner)}</div>'


class Dashboard:
    """One browser session's dashboard; ``show`` applies a snapshot of the shared poller."""

    def __init__(self, settings: DashboardSettings, client: ApiClient, poller: SharedPoller) -> None:
        self.settings = settings
        self.client = client
        self.poller = poller
        snapshot = poller.current()
        self.indicator = TextBox(indicator_html(snapshot.status))
        self.banner = TextBox(banner_html(snapshot.status), visible=snapshot.status.stale,
                              sizing_mode="stretch_width")
        self.overview = OverviewPage()
        self.merchants: MerchantsPage | None = None
        self.alerts: AlertsPage | None = None
        self.query: QueryPage | None = None
        self._pages: list[Callable[[Snapshot], None]] = [self.overview.show]
        self._status = snapshot.status
        self._token: int | None = None
        self.overview.show(snapshot)
        # Hidden tabs start as empty placeholders; their page is built when the tab is first opened.
        self._slots = [pn.Column(self.overview.view, sizing_mode="stretch_width"),
                       *(pn.Column(sizing_mode="stretch_width") for _ in TABS[1:])]
        self.tabs = pn.Tabs(*zip(TABS, self._slots, strict=True), dynamic=True, sizing_mode="stretch_width")
        self.tabs.param.watch(lambda event: self.open_tab(event.new), "active")
        self.page = self._template()

    # --- data -----------------------------------------------------------------------------------
    def show(self, snapshot: Snapshot) -> None:
        status = snapshot.status
        if status != self._status:
            self._status = status
            self.indicator.set(indicator_html(status))
            if status.stale:
                self.banner.set(banner_html(status))
            self.banner.show(status.stale)
        for show in self._pages:
            show(snapshot)

    # --- pages ----------------------------------------------------------------------------------
    def open_tab(self, index: int) -> None:
        """Build the page of tab ``index`` the first time it is opened."""
        view: Any = None
        if index == 1 and self.merchants is None:
            self.merchants = MerchantsPage(self.client, self.settings.series_days,
                                           SHARE * self.settings.daily_refresh_seconds)
            self._pages.append(self.merchants.show)
            self.merchants.show(self.poller.current())
            view = self.merchants.view
        elif index == 2 and self.alerts is None:
            self.alerts = AlertsPage(self.client, self.settings.runbook_url, self.poller.request_alerts)
            self._pages.append(self.alerts.show)
            self.alerts.show(self.poller.current())
            view = self.alerts.view
        elif index == 3 and self.query is None:
            self.query = QueryPage(self.client)
            pn.state.execute(self.query.load_catalog)
            view = self.query.view
        if view is not None:
            self._slots[index].objects = [view]

    # --- session lifecycle ----------------------------------------------------------------------
    def _template(self) -> Any:
        """The page: a lean Panel template (``PAGE``) around the status, the stale banner and the tabs.

        Not one of Panel's ready-made templates: those ship Bootstrap or Fast (the Fast design always
        loads a Google font, which stalls the first render for the full network timeout where the
        browser has no internet access) and an empty Panel HTML model for their scripts, which alone
        makes Panel send the 1.8 MB MathJax bundle. Nor a busy indicator: Panel's is process-wide
        (every session's spinner flips whenever any session runs a callback), which made it the
        largest server cost of a refresh with many sessions."""
        page = pn.Template(PAGE, items={"status": self.indicator.pane,
                                        "main": pn.Column(self.banner.pane, self.tabs, sizing_mode="stretch_width")})
        page.add_variable("app_title", TITLE)
        return page

    def attach(self) -> None:
        """Receive the poller's snapshots while the session lives (updates run under its document lock)."""
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None or doc.session_context.server_context is None:
            return  # no served session (a test, or the document ``panel serve --warm`` renders once)

        def deliver(snapshot: Snapshot) -> None:
            doc.add_next_tick_callback(lambda: self.show(snapshot))

        self._token = self.poller.subscribe(deliver)
        pn.state.on_session_destroyed(lambda _ctx: self.detach())
        self.poller.ensure_running()

    def detach(self) -> None:
        if self._token is not None:
            self.poller.unsubscribe(self._token)
            self._token = None


class SparePage:
    """One dashboard built ahead of the next session, so that a session's start does not wait for it.

    Building the first page's Bokeh and Panel objects is most of what a new session costs the
    server, and the browser waits for it before it can even fetch the
    page's scripts. None of it needs the session's document, so once a session's page has rendered
    in its browser (its ``document_ready`` event: the server's and the browser's busy time is over)
    the next dashboard is built on the event loop; ``take`` hands it out brought up to date with the
    poller's latest data, or builds one on the spot when none is ready (a burst of new sessions, the
    process's first one). Everything the first page holds is given its sizing explicitly, so being
    built outside a session (outside its ``pn.extension`` settings) changes nothing."""

    def __init__(self, make: Callable[[], Dashboard]) -> None:
        self._make = make
        self._spare: Dashboard | None = None
        self._scheduled = False

    def take(self) -> Dashboard:
        dashboard, self._spare = self._spare, None
        if dashboard is None:
            return self._make()
        dashboard.show(dashboard.poller.current())
        return dashboard

    def fill(self) -> None:
        self._scheduled = False
        if self._spare is None:
            self._spare = self._make()

    def refill_soon(self) -> None:
        """Build the spare on the running event loop once the current callback is over."""
        if self._spare is None and not self._scheduled:
            self._scheduled = True
            # In an empty context: not under the calling session's document (Panel's ``curdoc`` variable).
            asyncio.get_running_loop().call_soon(self.fill, context=contextvars.Context())


_spare_lock = threading.Lock()
_spare: SparePage | None = None


def spare() -> SparePage:
    """The process's spare page (built from the process-wide settings, client and poller)."""
    global _spare
    with _spare_lock:
        if _spare is None:
            _spare = SparePage(lambda: Dashboard(*shared()))
        return _spare


def build() -> Any:
    """A new session's page; once it has rendered in the browser, the next session's is built."""
    pages = spare()
    dashboard = pages.take()
    dashboard.attach()
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:  # served (not ``panel serve --warm``'s render)
        doc.on_event("document_ready", lambda _event: pages.refill_soon())
    return dashboard.page


def serve() -> None:
    """Make this session's page servable (called once per browser session by ``app.py``).

    Under one freeze of the document's model graph: Bokeh recomputes the graph (visiting every
    property of every model) whenever a freeze ends, and the template adds its roots one by one, so
    the outer freeze makes that one recomputation per page instead of one per root (ADR 0007).
    Tabulator's scripts follow the first render (``resources``).
    """
    doc = pn.state.curdoc
    if doc is None:
        build().servable(title=TITLE)
        return
    with doc.models.freeze():
        build().servable(title=TITLE)
        load_tabulator_when_ready(doc)
