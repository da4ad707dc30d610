# mypy: disable-error-code="no-untyped-call"
"""Overview: KPI cards (latest day, change vs the previous day), daily series, realtime minutes."""

from __future__ import annotations

import html
from typing import Any

import panel as pn
from bokeh.models import ColumnDataSource

from panel_dashboard.charts import DateAxis, apply_update, approval_chart, realtime_chart, series_columns, volume_chart
from panel_dashboard.poller import DailyData, RealtimeView, Snapshot
from panel_dashboard.state import KPI_CARDS, MinuteBuffer, format_change
from panel_dashboard.style import TextBox


def cards_html(summary: Any) -> str:
    """The KPI cards; each card carries ``data-kpi`` and its value ``data-raw`` for tests and tools."""
    if not summary:
        return '<div class="df-cards"><div class="df-empty">No daily KPIs yet.</div></div>'
    current = summary.get("current") or {}
    change = summary.get("change") or {}
    cards = []
    for key, label, fmt in KPI_CARDS:
        text, css = format_change(change.get(key))
        raw = current.get(key)
        cards.append(
            f'<div class="df-card" data-kpi="{key}" data-raw="{html.escape(str(raw))}">'
            f'<div class="df-card-label">{label}</div>'
            f'<div class="df-card-value">{html.escape(fmt(raw))}</div>'
            f'<div class="df-card-change {css}">{html.escape(text)}</div></div>')
    return (f'<div class="df-cards-title">Platform KPIs for <b data-testid="kpi-date">'
            f'{html.escape(str(summary.get("date")))}</b></div><div class="df-cards">{"".join(cards)}</div>')


class OverviewPage:
    """The first page a session shows. Built with the poller's latest data, so the first render
    already carries the KPI numbers and the realtime minutes; afterwards only new versions of the
    shared data reach it (``show``)."""

    def __init__(self) -> None:
        self.cards = TextBox(cards_html(None), sizing_mode="stretch_width")
        self._realtime_version = 0
        self._daily_version = 0
        self.realtime_source = ColumnDataSource(MinuteBuffer(1).columns())
        self.series_source = ColumnDataSource(series_columns([]))
        days = DateAxis()
        self.view = pn.Column(
            self.cards.pane,
            pn.pane.Bokeh(realtime_chart(self.realtime_source), sizing_mode="stretch_width"),
            pn.Row(pn.pane.Bokeh(volume_chart(self.series_source, dates=days), sizing_mode="stretch_width"),
                   pn.pane.Bokeh(approval_chart(self.series_source, dates=days), sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def show(self, snapshot: Snapshot) -> None:
        self.on_realtime(snapshot.realtime)
        self.on_daily(snapshot.daily)

    def on_realtime(self, realtime: RealtimeView | None) -> None:
        """The next version: its delta (new minutes streamed, changed cells patched); further: all of it."""
        if realtime is None or realtime.version == self._realtime_version:
            return
        if realtime.version == self._realtime_version + 1 and self._realtime_version:
            apply_update(self.realtime_source, realtime.delta)
        else:
            self.realtime_source.data = {name: list(values) for name, values in realtime.columns.items()}
        self._realtime_version = realtime.version

    def on_daily(self, daily: DailyData | None) -> None:
        if daily is None or daily.version == self._daily_version:
            return
        self._daily_version = daily.version
        self.cards.set(cards_html(daily.summary))
        self.series_source.data = series_columns([r for r in daily.series if r["merchant_id"] == "*"])
