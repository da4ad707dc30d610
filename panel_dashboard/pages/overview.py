# mypy: disable-error-code="no-untyped-call"
"""Overview: KPI cards (latest day, change vs the previous day), daily series, realtime minutes."""

from __future__ import annotations

import html
from typing import Any

import panel as pn
from bokeh.models import ColumnDataSource

from panel_dashboard.charts import apply_update, approval_chart, realtime_chart, series_columns, volume_chart
from panel_dashboard.models import Realtime
from panel_dashboard.poller import DailyData
from panel_dashboard.state import KPI_CARDS, MinuteBuffer, fingerprint, format_change, source_update
from panel_dashboard.style import html_pane


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
    def __init__(self, realtime_minutes: int) -> None:
        self.buffer = MinuteBuffer(realtime_minutes)
        self.cards = html_pane(cards_html(None), sizing_mode="stretch_width")
        self._realtime_columns = self.buffer.columns()
        self._realtime_print = ""
        self._cards_print = ""
        self._series_print = ""
        self.realtime_source = ColumnDataSource(self._realtime_columns)
        self.series_source = ColumnDataSource(series_columns([]))
        self.view = pn.Column(
            self.cards,
            pn.pane.Bokeh(realtime_chart(self.realtime_source), sizing_mode="stretch_width"),
            pn.Row(pn.pane.Bokeh(volume_chart(self.series_source), sizing_mode="stretch_width"),
                   pn.pane.Bokeh(approval_chart(self.series_source), sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def on_realtime(self, realtime: Realtime) -> None:
        """Merge the minutes; when they changed, stream the new minutes and patch the changed cells."""
        printed = fingerprint(realtime["items"])
        if printed == self._realtime_print:
            return  # same minutes as last tick: nothing to send
        self._realtime_print = printed
        self.buffer.merge(realtime["items"])
        columns = self.buffer.columns()
        update = source_update(self._realtime_columns, columns, "minute")
        self._realtime_columns = columns
        if not update.empty:
            apply_update(self.realtime_source, update)

    def on_daily(self, daily: DailyData) -> None:
        cards = cards_html(daily.summary)
        if cards != self._cards_print:
            self._cards_print = cards
            self.cards.object = cards
        totals = [r for r in daily.series if r["merchant_id"] == "*"]
        printed = fingerprint(totals)
        if printed != self._series_print:
            self._series_print = printed
            self.series_source.data = series_columns(totals)
