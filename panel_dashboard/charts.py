"""Bokeh figures over ColumnDataSources: a refresh streams/patches or replaces ``source.data``, never
rebuilds the figure."""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, HoverTool, LinearAxis, NumeralTickFormatter, Range1d
from bokeh.models.annotations import Title
from bokeh.plotting import figure

from panel_dashboard.state import SourceUpdate

BLUE = "#1f6feb"
RED = "#d1242f"
GREEN = "#1a7f37"


def _base(title: str, height: int) -> Any:
    fig = figure(title=title, height=height, sizing_mode="stretch_width", x_axis_type="datetime",
                 toolbar_location=None, tools="")
    if isinstance(fig.title, Title):
        fig.title.text_font_size = "13px"
    fig.grid.grid_line_alpha = 0.3
    fig.outline_line_color = None
    return fig


def realtime_chart(source: ColumnDataSource) -> Any:
    fig = _base("Realtime: transactions per minute (bars) and decline rate % (line)", 260)
    fig.vbar(x="minute", top="txn_count", width=50_000, source=source, color=BLUE, alpha=0.7)
    fig.yaxis[0].axis_label = "transactions"
    fig.extra_y_ranges = {"rate": Range1d(start=0, end=100)}
    fig.add_layout(LinearAxis(y_range_name="rate", axis_label="decline %"), "right")
    fig.line(x="minute", y="decline_rate", source=source, color=RED, line_width=2, y_range_name="rate")
    fig.add_tools(HoverTool(tooltips=[("minute", "@minute{%H:%M}"), ("transactions", "@txn_count"),
                                      ("declined", "@declined_count"), ("decline %", "@decline_rate{0.00}")],
                            formatters={"@minute": "datetime"}))
    return fig


def volume_chart(source: ColumnDataSource, title: str = "Gross volume (USD) per day") -> Any:
    fig = _base(title, 240)
    fig.vbar(x="date", top="gross", width=60_000_000, source=source, color=GREEN, alpha=0.8)
    fig.yaxis.formatter = NumeralTickFormatter(format="$0.0a")
    fig.add_tools(HoverTool(tooltips=[("date", "@date{%F}"), ("gross", "@gross{$0,0.00}")],
                            formatters={"@date": "datetime"}))
    return fig


def approval_chart(source: ColumnDataSource, title: str = "Approval rate per day") -> Any:
    fig = _base(title, 240)
    fig.y_range = Range1d(start=0, end=1)  # a rate: 0..100 %, never an auto-padded 150 %
    fig.line(x="date", y="approval", source=source, color=BLUE, line_width=2)
    fig.scatter(x="date", y="approval", source=source, color=BLUE, size=5)
    fig.yaxis.formatter = NumeralTickFormatter(format="0.0%")
    fig.add_tools(HoverTool(tooltips=[("date", "@date{%F}"), ("approval", "@approval{0.00%}")],
                            formatters={"@date": "datetime"}))
    return fig


def series_columns(rows: list[Any]) -> dict[str, list[Any]]:
    """Daily KPI rows -> columns for the volume / approval charts (floats only for drawing)."""
    from datetime import datetime

    return {  # naive midnight datetimes: Bokeh's datetime axis reads them as UTC
        "date": [datetime.fromisoformat(r["event_date"]) for r in rows],
        "gross": [float(r["gross_volume_usd"] or 0) for r in rows],
        "approval": [float(r["approval_rate"]) if r["approval_rate"] is not None else float("nan") for r in rows],
    }


def apply_update(source: ColumnDataSource, update: SourceUpdate) -> None:
    """Send ``update`` (see ``state.source_update``) to the browser: a few rows or cells, not the whole data."""
    if update.replace is not None:
        source.data = update.replace
        return
    if update.stream:
        source.stream(dict(update.stream.items()), rollover=update.rollover)  # a dict of the expected type
    if update.patch:
        source.patch(update.patch)
