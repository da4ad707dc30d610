"""Panel entry point: ``panel serve panel_dashboard/app.py``. Thin: everything lives in ``layout``."""

from __future__ import annotations

import panel as pn
from bokeh.settings import settings

from panel_dashboard.layout import serve

# No "tabulator": its scripts are fetched after the first render (panel_dashboard/resources.py).
pn.extension(notifications=False, sizing_mode="stretch_width")
# Bokeh's integrity checks of every new session's document (tens of ms per session, before the
# browser gets anything) are a development aid: the unit tests run them on the dashboard's document.
settings.perform_document_validation.set_value(False)
serve()
