"""Panel entry point: ``panel serve panel_dashboard/app.py``. Thin: everything lives in ``layout``."""

from __future__ import annotations

import panel as pn

from panel_dashboard.layout import serve

# No "tabulator": its scripts are fetched after the first render (panel_dashboard/resources.py).
pn.extension(notifications=False, sizing_mode="stretch_width")
serve()
