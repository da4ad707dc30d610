# mypy: disable-error-code="no-untyped-call"
"""Merchants: one day's merchant × country × channel rows; sortable, filterable; drill-down per merchant."""

from __future__ import annotations

import asyncio
import html
from datetime import date, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.models.widgets.tables import NumberFormatter

from dataforge.schemas import GOLD_KPI_ROW, PLATFORM_TOTAL, KpiKind, kpi_columns
from panel_dashboard.charts import DateAxis, approval_chart, series_columns, volume_chart
from panel_dashboard.client import ApiClient
from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import DailyKpi
from panel_dashboard.poller import DailyData, Snapshot
from panel_dashboard.state import fingerprint, to_decimal
from panel_dashboard.style import html_pane

ALL = "(all)"
# The table's columns and formats derive from the gold KPI row (``schemas.GOLD_KPI_ROW``).
COLUMNS = [column.name for column in GOLD_KPI_ROW]
_MONEY = kpi_columns(KpiKind.MONEY)
_RATES = kpi_columns(KpiKind.RATE)


def merchants_frame(rows: list[DailyKpi]) -> pd.DataFrame:
    """Rows -> a frame for the table (money as floats for display/sorting only; the API keeps decimals)."""
    frame = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows if r.get("merchant_id") != PLATFORM_TOTAL],
                         columns=COLUMNS)
    for col in (*_MONEY, *_RATES):
        frame[col] = [float(v) if (v := to_decimal(x)) is not None else None for x in frame[col]]
    return frame.sort_values("gross_volume_usd", ascending=False, ignore_index=True)


def filter_frame(frame: pd.DataFrame, text: str, country: str, channel: str) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if text.strip():
        mask &= frame["merchant_id"].str.contains(text.strip(), case=False, regex=False)
    if country != ALL:
        mask &= frame["country"] == country
    if channel != ALL:
        mask &= frame["channel"] == channel
    return frame[mask].reset_index(drop=True)


class MerchantsPage:
    """Built when its tab is first opened. The latest day's rows come with the shared daily data; an
    earlier day chosen in the date list is read for this session alone (through the client's cache)."""

    def __init__(self, client: ApiClient, series_days: int, daily_ttl: float) -> None:
        self.client = client
        self.series_days = series_days
        self.daily_ttl = daily_ttl
        self._latest: DailyData | None = None
        self.frame = merchants_frame([])
        self.day = pn.widgets.Select(name="Date", options=[], width=140)
        self.search = pn.widgets.TextInput(name="Merchant", placeholder="search merchant id", width=200)
        self.country = pn.widgets.Select(name="Country", options=[ALL], value=ALL, width=110)
        self.channel = pn.widgets.Select(name="Channel", options=[ALL], value=ALL, width=110)
        formatters: dict[str, Any] = {c: {"type": "money", "symbol": "$", "precision": 2} for c in _MONEY}
        formatters.update({c: NumberFormatter(format="0.00%") for c in _RATES})
        self.table = pn.widgets.Tabulator(self.frame, pagination="local", page_size=15, disabled=True,
                                          selectable=1, show_index=False, layout="fit_data_stretch",
                                          formatters=formatters, sizing_mode="stretch_width", height=480,
                                          header_filters=False, name="merchants-table")
        self.detail_title = html_pane("<i>Select a row to drill down into a merchant.</i>",
                                         sizing_mode="stretch_width")
        self.detail_source = ColumnDataSource(series_columns([]))
        days = DateAxis()
        self.detail = pn.Column(self.detail_title,
                                pn.Row(pn.pane.Bokeh(volume_chart(self.detail_source, "Merchant gross volume (USD)",
                                                                  days), sizing_mode="stretch_width"),
                                       pn.pane.Bokeh(approval_chart(self.detail_source, "Merchant approval rate", days),
                                                     sizing_mode="stretch_width"),
                                       sizing_mode="stretch_width"),
                                sizing_mode="stretch_width")
        for widget in (self.search, self.country, self.channel):
            widget.param.watch(lambda _e: self._apply_filters(), "value")
        self.day.param.watch(self._date_changed, "value")
        self.table.on_click(self._clicked)  # type: ignore[arg-type] # async callbacks are supported
        self.view = pn.Column(pn.Row(self.day, self.search, self.country, self.channel), self.table, self.detail,
                              sizing_mode="stretch_width")
        self._pending: asyncio.Task[None] | None = None
        self._print = ""

    def show(self, snapshot: Snapshot) -> None:
        self.on_daily(snapshot.daily)

    def on_daily(self, daily: DailyData | None) -> None:
        if daily is None or (self._latest is not None and daily.version == self._latest.version):
            return
        self._latest = daily
        dates = sorted({r["event_date"] for r in daily.series if r["merchant_id"] == "*"}, reverse=True)
        if dates and list(self.day.options) != dates:
            current = self.day.value
            self.day.options = dates
            self.day.value = current if current in dates else dates[0]  # may show the rows (_date_changed)
        if self.day.value in (None, daily.latest_date):
            self._show_rows(daily.merchants)
        else:
            self._load(str(self.day.value))  # an earlier day stays chosen: refresh its rows too

    def _show_rows(self, rows: list[DailyKpi]) -> None:
        printed = fingerprint(rows)
        if printed == self._print:
            return  # same rows: keep the table (and the user's filters) as they are
        self._print = printed
        self.frame = merchants_frame(rows)
        countries = [ALL, *sorted(set(self.frame["country"]))]
        channels = [ALL, *sorted(set(self.frame["channel"]))]
        if list(self.country.options) != countries:
            self.country.options = countries
        if list(self.channel.options) != channels:
            self.channel.options = channels
        self._apply_filters()

    def _apply_filters(self) -> None:
        self.table.value = filter_frame(self.frame, self.search.value or "", self.country.value or ALL,
                                        self.channel.value or ALL)

    def _date_changed(self, event: Any) -> None:
        day = event.new
        if self._latest is not None and day == self._latest.latest_date:
            self._show_rows(self._latest.merchants)
        elif day:
            self._load(str(day))

    def _load(self, day: str) -> None:
        async def load() -> None:
            try:
                rows = await self.client.merchants(day, attempts=2, ttl=self.daily_ttl)
            except (ApiError, ApiUnavailableError) as exc:
                self.detail_title.object = (f"<span class='df-error'>Merchants of {html.escape(day)}: could not load "
                                            f"({html.escape(str(exc))})</span>")
                return
            if self.day.value == day:  # still the chosen day
                self._show_rows(rows)

        pn.state.execute(load)

    async def _clicked(self, event: Any) -> None:
        frame = self.table.value
        if event.row is None or event.row >= len(frame):
            return
        await self.drill_down(str(frame.iloc[event.row]["merchant_id"]))

    async def drill_down(self, merchant_id: str) -> None:
        end = date.fromisoformat(self.day.value) if self.day.value else date.today()
        start = end - timedelta(days=self.series_days - 1)
        self.detail_title.object = f"<b>{merchant_id}</b>: loading…"
        try:
            rows = await self.client.daily_kpis(start.isoformat(), end.isoformat(), merchant_id=merchant_id)
        except (ApiError, ApiUnavailableError) as exc:
            self.detail_title.object = f"<b>{merchant_id}</b>: could not load ({exc})"
            return
        by_day: dict[str, dict[str, Any]] = {}
        for row in rows:  # one merchant, several country × channel rows per day -> one point per day
            acc = by_day.setdefault(row["event_date"], {"event_date": row["event_date"], "gross": 0.0,
                                                        "approved": 0, "txn": 0})
            acc["gross"] += float(row["gross_volume_usd"] or 0)
            acc["approved"] += int(row["approved_count"])
            acc["txn"] += int(row["txn_count"])
        points = [{"event_date": d, "gross_volume_usd": v["gross"],
                   "approval_rate": (v["approved"] / v["txn"]) if v["txn"] else None}
                  for d, v in sorted(by_day.items())]
        columns = series_columns(points)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:  # raw Bokeh models need the doc lock
            doc.add_next_tick_callback(lambda: setattr(self.detail_source, "data", columns))
        else:
            self.detail_source.data = columns
        self.detail_title.object = (f'<div data-testid="drilldown"><b>{merchant_id}</b>: {len(points)} day(s), '
                                    f'{start.isoformat()} to {end.isoformat()}</div>')
