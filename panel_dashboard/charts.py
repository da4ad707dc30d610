"""Bokeh plots over ColumnDataSources: a refresh streams/patches or replaces ``source.data``, never
rebuilds the plot.

The plots are assembled from Bokeh's models directly (``Plot`` + axes, grids, glyph renderers)
rather than with ``bokeh.plotting.figure``: every session builds them, and ``figure`` adds a
selection, hover and muted copy of each glyph plus a default toolbar, none of which these read-only
charts use. Charts that show the same dates (volume and approval) share one x range, ticker and
formatter: fewer models to create, serialise and send, and the two x axes stay aligned. For the
same reason a date ticker holds only the scales its chart can span (Bokeh's default holds 13
sub-tickers, milliseconds to years) and the axes of a chart share one label policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bokeh.models import (
    AdaptiveTicker,
    AllLabels,
    BasicTicker,
    ColumnDataSource,
    DataRange1d,
    DatetimeAxis,
    DatetimeTicker,
    DatetimeTickFormatter,
    DaysTicker,
    Grid,
    HoverTool,
    Line,
    LinearAxis,
    MonthsTicker,
    NumeralTickFormatter,
    Plot,
    Range1d,
    Scatter,
    VBar,
    YearsTicker,
)
from bokeh.models.annotations import Title

from panel_dashboard.state import SourceUpdate

BLUE = "#1f6feb"
RED = "#d1242f"
GREEN = "#1a7f37"


MINUTE = 60_000  # Bokeh's datetimes are milliseconds
HOUR = 60 * MINUTE


def minutes_ticker() -> DatetimeTicker:
    """Seconds to days (Bokeh's choices at those scales), for a chart of a few hours at most."""
    return DatetimeTicker(tickers=[
        AdaptiveTicker(mantissas=[1, 2, 5, 10, 15, 20, 30], base=60, min_interval=1000, max_interval=30 * MINUTE,
                       num_minor_ticks=0),
        AdaptiveTicker(mantissas=[1, 2, 4, 6, 8, 12], base=24, min_interval=HOUR, max_interval=12 * HOUR,
                       num_minor_ticks=0),
        DaysTicker(days=list(range(1, 32))),
    ])


def days_ticker() -> DatetimeTicker:
    """Hours to years (Bokeh's choices at those scales), for daily series of any length."""
    return DatetimeTicker(tickers=[
        AdaptiveTicker(mantissas=[1, 2, 4, 6, 8, 12], base=24, min_interval=HOUR, max_interval=12 * HOUR,
                       num_minor_ticks=0),
        DaysTicker(days=list(range(1, 32))), DaysTicker(days=list(range(1, 31, 3))),
        DaysTicker(days=[1, 8, 15, 22]), DaysTicker(days=[1, 15]),
        MonthsTicker(months=list(range(0, 12, 1))), MonthsTicker(months=list(range(0, 12, 2))),
        MonthsTicker(months=list(range(0, 12, 4))), MonthsTicker(months=list(range(0, 12, 6))),
        YearsTicker(),
    ])


@dataclass
class DateAxis:
    """An x range, ticker and formatter that several plots of the same dates share."""

    x_range: DataRange1d = field(default_factory=DataRange1d)
    ticker: DatetimeTicker = field(default_factory=days_ticker)
    formatter: DatetimeTickFormatter = field(default_factory=DatetimeTickFormatter)


def _plot(title: str, height: int, dates: DateAxis, y_range: Any = None, y_format: str | None = None) -> Any:
    plot = Plot(title=Title(text=title, text_font_size="13px"), height=height, sizing_mode="stretch_width",
                x_range=dates.x_range, y_range=y_range or DataRange1d(), toolbar_location=None,
                outline_line_color=None)
    labels = AllLabels()
    y_ticker = BasicTicker()
    y_axis = LinearAxis(ticker=y_ticker, major_label_policy=labels)
    if y_format is not None:  # Bokeh's stubs type the property narrower than it is (any TickFormatter)
        y_axis.formatter = NumeralTickFormatter(format=y_format)  # type: ignore[assignment]
    plot.add_layout(DatetimeAxis(ticker=dates.ticker, formatter=dates.formatter, major_label_policy=labels), "below")
    plot.add_layout(y_axis, "left")
    plot.add_layout(Grid(dimension=0, ticker=dates.ticker, grid_line_alpha=0.3))
    plot.add_layout(Grid(dimension=1, ticker=y_ticker, grid_line_alpha=0.3))
    return plot


def realtime_chart(source: ColumnDataSource) -> Any:
    plot = _plot("Realtime: transactions per minute (bars) and decline rate % (line)", 260,
                 DateAxis(ticker=minutes_ticker()))
    plot.left[0].axis_label = "transactions"
    plot.extra_y_ranges = {"rate": Range1d(start=0, end=100)}
    plot.add_layout(LinearAxis(y_range_name="rate", axis_label="decline %",
                               major_label_policy=plot.left[0].major_label_policy), "right")
    plot.add_glyph(source, VBar(x="minute", top="txn_count", width=50_000, fill_color=BLUE, line_color=BLUE,
                                fill_alpha=0.7, line_alpha=0.7))
    plot.add_glyph(source, Line(x="minute", y="decline_rate", line_color=RED, line_width=2), y_range_name="rate")
    plot.add_tools(HoverTool(tooltips=[("minute", "@minute{%H:%M}"), ("transactions", "@txn_count"),
                                       ("declined", "@declined_count"), ("decline %", "@decline_rate{0.00}")],
                             formatters={"@minute": "datetime"}))
    return plot


def volume_chart(source: ColumnDataSource, title: str = "Gross volume (USD) per day",
                 dates: DateAxis | None = None) -> Any:
    plot = _plot(title, 240, dates or DateAxis(), y_format="$0.0a")
    plot.add_glyph(source, VBar(x="date", top="gross", width=60_000_000, fill_color=GREEN, line_color=GREEN,
                                fill_alpha=0.8, line_alpha=0.8))
    plot.add_tools(HoverTool(tooltips=[("date", "@date{%F}"), ("gross", "@gross{$0,0.00}")],
                             formatters={"@date": "datetime"}))
    return plot


def approval_chart(source: ColumnDataSource, title: str = "Approval rate per day",
                   dates: DateAxis | None = None) -> Any:
    # A rate: 0..100 %, never an auto-padded 150 %.
    plot = _plot(title, 240, dates or DateAxis(), y_range=Range1d(start=0, end=1), y_format="0.0%")
    plot.add_glyph(source, Line(x="date", y="approval", line_color=BLUE, line_width=2))
    plot.add_glyph(source, Scatter(x="date", y="approval", fill_color=BLUE, line_color=BLUE, size=5))
    plot.add_tools(HoverTool(tooltips=[("date", "@date{%F}"), ("approval", "@approval{0.00%}")],
                             formatters={"@date": "datetime"}))
    return plot


def series_columns(rows: list[Any]) -> dict[str, list[Any]]:
    """Daily KPI rows -> columns for the volume / approval charts (floats only for drawing)."""
    from datetime import datetime

    return {  # naive midnight datetimes: Bokeh's datetime axis reads them as UTC
        "date": [datetime.fromisoformat(r["event_date"]) for r in rows],
        "gross": [float(r["gross_volume_usd"] or 0) for r in rows],
        "approval": [float(r["approval_rate"]) if r["approval_rate"] is not None else float("nan") for r in rows],
    }


def apply_update(source: ColumnDataSource, update: SourceUpdate) -> None:
    """Send ``update`` (see ``state.source_update``) to the browser: a few rows or cells, not the whole data.

    ``update`` may be shared by several sessions: its lists are copied, never handed to a source (a
    source's later ``stream`` extends its lists in place)."""
    if update.replace is not None:
        source.data = {name: list(values) for name, values in update.replace.items()}
        return
    if update.stream:
        source.stream(dict(update.stream.items()), rollover=update.rollover)  # a dict of the expected type
    if update.patch:
        source.patch(update.patch)
