# mypy: disable-error-code="no-untyped-call"
"""The dashboard's CSS. Panel renders each pane in its own shadow root, so the sheet is attached to
every HTML pane (``html_pane``) rather than to the page."""

from __future__ import annotations

from typing import Any, Final

import panel as pn

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
ul.df-columns {padding-left: 16px; margin: 4px 0; font-size: 13px;}
"""


def html_pane(obj: str, **params: Any) -> pn.pane.HTML:
    return pn.pane.HTML(obj, stylesheets=[CSS], **params)
