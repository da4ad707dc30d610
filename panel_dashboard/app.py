"""Panel entry point: ``panel serve panel_dashboard/app.py``. Thin: everything lives in ``layout``."""

from __future__ import annotations

import panel as pn

from panel_dashboard.layout import serve

pn.extension("tabulator", notifications=False, sizing_mode="stretch_width")
serve()
