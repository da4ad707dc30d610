# mypy: disable-error-code="no-untyped-call"
"""Alerts: open alerts (acknowledge, runbook link) and recently acknowledged / resolved ones."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import panel as pn

from panel_dashboard.client import ApiClient
from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import Alert
from panel_dashboard.poller import AlertsData, Snapshot
from panel_dashboard.state import fingerprint, runbook_link
from panel_dashboard.style import html_pane

RECENT_COLUMNS = ["raised_at", "rule", "severity", "status", "message", "acknowledged_by", "acknowledged_at"]
_SEVERITY_COLOURS = {"critical": "#d1242f", "high": "#d1242f", "warning": "#bf8700", "medium": "#bf8700"}


def alert_html(alert: Alert, runbook_base: str) -> str:
    colour = _SEVERITY_COLOURS.get(alert["severity"].lower(), "#57606a")
    link = html.escape(runbook_link(alert, runbook_base))
    detail = ""
    if alert.get("value") is not None:
        detail = f" · value {html.escape(str(alert['value']))} (threshold {html.escape(str(alert.get('threshold')))})"
    return (f'<div class="df-alert" data-alert-id="{html.escape(alert["alert_id"])}">'
            f'<span class="df-sev" style="background:{colour}">{html.escape(alert["severity"])}</span> '
            f'<b>{html.escape(alert["rule"])}</b> — {html.escape(alert["message"])}'
            f'<div class="df-alert-meta">{html.escape(alert["alert_id"])} · raised {html.escape(alert["raised_at"])}'
            f'{detail} · '
            f'<a href="{link}" target="_blank" rel="noopener">runbook: {html.escape(alert["rule"])}</a></div></div>')


class AlertsPage:
    def __init__(self, client: ApiClient, runbook_base: str, refresh: Callable[[], None]) -> None:
        self.client = client
        self.runbook_base = runbook_base
        self._refresh = refresh
        self._signature: tuple[str, ...] = ()
        self._title = ""
        self._recent_print = ""
        self._version = 0
        self.who = pn.widgets.TextInput(name="Acknowledge as", value="on-call", width=220)
        self.message = html_pane("", sizing_mode="stretch_width")
        self.open_list = pn.Column(html_pane("<i>Loading alerts…</i>"), sizing_mode="stretch_width")
        self.open_title = html_pane("<h3>Open alerts</h3>")
        self.recent = pn.widgets.Tabulator(pd.DataFrame(columns=RECENT_COLUMNS), disabled=True, show_index=False,
                                           pagination="local", page_size=10, layout="fit_data_stretch",
                                           sizing_mode="stretch_width", height=330)
        self.view = pn.Column(pn.Row(self.who, self.message), self.open_title, self.open_list,
                              html_pane("<h3>Recent (acknowledged and resolved)</h3>"), self.recent,
                              sizing_mode="stretch_width")

    def show(self, snapshot: Snapshot) -> None:
        self.on_alerts(snapshot.alerts)

    def on_alerts(self, data: AlertsData | None) -> None:
        if data is None or data.version == self._version:
            return
        self._version = data.version
        title = f'<h3>Open alerts <span data-testid="open-count">({len(data.open)})</span></h3>'
        if title != self._title:
            self._title = title
            self.open_title.object = title
        signature = tuple(a["alert_id"] for a in data.open)
        if signature != self._signature or not self._signature:
            self._signature = signature
            rows: list[Any] = [self._row(alert) for alert in data.open]
            self.open_list.objects = rows or [html_pane('<div class="df-ok">No open alerts.</div>')]
        printed = fingerprint(data.recent)
        if printed != self._recent_print:  # unchanged alerts: no new frame sent to the table
            self._recent_print = printed
            self.recent.value = pd.DataFrame([{c: a.get(c) for c in RECENT_COLUMNS} for a in data.recent],
                                             columns=RECENT_COLUMNS)

    def _row(self, alert: Alert) -> pn.Row:
        button = pn.widgets.Button(name="Acknowledge", button_type="warning", width=130,
                                   css_classes=["df-ack"])
        alert_id = alert["alert_id"]

        async def acknowledge(_event: object) -> None:
            button.disabled = True
            who = (self.who.value or "").strip() or "on-call"
            try:
                await self.client.acknowledge(alert_id, who)
            except (ApiError, ApiUnavailableError) as exc:
                button.disabled = False
                self.message.object = f'<span class="df-error">Could not acknowledge {alert_id}: {exc}</span>'
                return
            self.message.object = (f'<span class="df-ok" data-testid="ack-done">Acknowledged {html.escape(alert_id)} '
                                   f'as {html.escape(who)}.</span>')
            self._refresh()

        button.on_click(acknowledge)
        return pn.Row(html_pane(alert_html(alert, self.runbook_base), sizing_mode="stretch_width"), button,
                      sizing_mode="stretch_width")
