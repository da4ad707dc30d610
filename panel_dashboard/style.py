# mypy: disable-error-code="no-untyped-call"
"""The dashboard's CSS. Panel renders each pane in its own shadow root, so the sheet is attached to
every HTML pane (``html_pane``) rather than to the page.

``TextBox`` is the cheap alternative for text that changes every refresh or belongs to the first
page: a raw Bokeh ``Div`` (wrapped in a ``pn.pane.Bokeh``) whose ``text`` is set directly. Setting
a Panel HTML pane's ``object`` re-derives and re-sets every property of its model (stylesheets are
models, so the whole document's model graph is recomputed), about 25 times the cost of one
``Div.text`` change; and a Panel HTML model anywhere in the page makes Panel ship the 1.8 MB MathJax
bundle, which no pane of this dashboard uses (math is disabled in every HTML pane). ``TextBox``
changes must run under the session's document lock (the pollers' deliveries do)."""

from __future__ import annotations

from typing import Any, Final

import panel as pn
from bokeh.models.widgets.markups import Div

CSS: Final = """
.df-cards-title {font-size: 14px; color: #57606a; margin: 4px 0 8px;}
.df-cards {display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px;}
.df-card {background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 14px;}
.df-card-label {font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #57606a;}
.df-card-value {font-size: 26px; font-weight: 600; margin: 4px 0; color: #1f2328;}
.df-card-change {font-size: 12px;} .df-card-change.up {color: #1a7f37;} .df-card-change.down {color: #d1242f;}
.df-card-change.flat {color: #57606a;}
.df-alert {padding: 8px 10px; border-left: 4px solid #d1242f; background: #fff8f8; margin: 2px 0;}
.df-alert-meta {font-size: 12px; color: #57606a; margin-top: 4px;}
.df-sev {color: #fff; border-radius: 4px; padding: 1px 6px; font-size: 11px; text-transform: uppercase;}
.df-ok {color: #1a7f37;} .df-error {color: #d1242f;} .df-type {color: #8250df; font-size: 12px;}
.df-status {font-size: 13px; color: #fff; white-space: nowrap;}
.bk-clearfix {display: block !important;}  /* a TextBox's Div wraps its text in an inline-block: fill the width */
.df-stale {background: #f8d7da; color: #842029; border: 1px solid #f5c2c7; border-radius: 6px; padding: 10px 14px;
           font-size: 14px;}
ul.df-columns {padding-left: 16px; margin: 4px 0; font-size: 13px;}
"""


def html_pane(obj: str, **params: Any) -> pn.pane.HTML:
    return pn.pane.HTML(obj, stylesheets=[CSS], **params)


class TextBox:
    """A Bokeh ``Div`` shown through ``pane`` with the dashboard's CSS; ``set`` sends only its text."""

    def __init__(self, text: str, **params: Any) -> None:
        self.div = Div(text=text, disable_math=True, stylesheets=[CSS], **params)
        # A Panel design with modifiers replaces the wrapped model's stylesheets with its own plus the
        # pane's: the sheet is on both, so the text is styled with or without such a design.
        self.pane = pn.pane.Bokeh(self.div, sizing_mode=params.get("sizing_mode"), stylesheets=[CSS])

    @property
    def text(self) -> str:
        return str(self.div.text)

    def set(self, text: str) -> None:
        if self.div.text != text:
            self.div.text = text

    def show(self, visible: bool) -> None:
        if self.div.visible != visible:
            self.div.visible = visible
