# mypy: disable-error-code="no-untyped-call"
"""Browser assets the first page does not need, loaded once it has rendered.

Only the merchants, alerts and query pages use Tabulator, and they are built when their tab is
first opened (``Dashboard.open_tab``). Its scripts (about 0.5 MB: Tabulator and Luxon) are
therefore left out of the page (``app.py`` does not load Panel's ``tabulator`` extension) and added
by the browser when the document reports ready: after the first render, long before a tab can be
clicked and its page sent over the websocket.
"""

from __future__ import annotations

from typing import Any, Final

from bokeh.models import CustomJS
from panel.io.resources import Resources, set_resource_mode
from panel.models.tabulator import DataTabulator

LOAD_JS: Final = """
if (window.Tabulator !== undefined) { return }
for (const href of css) {
  const link = document.createElement("link")
  link.rel = "stylesheet"
  link.href = href
  document.head.appendChild(link)
}
for (const src of js) {
  const script = document.createElement("script")
  script.src = src
  script.async = false  // run in order, like the page's own script tags
  document.head.appendChild(script)
}
"""


def tabulator_urls() -> tuple[list[str], list[str]]:
    """The scripts and style sheets Panel's ``tabulator`` extension would put in the page (served
    by ``panel serve`` itself, relative to the current session's path)."""
    with set_resource_mode("server"):
        js, css = list(DataTabulator.__javascript__), list(DataTabulator.__css__)
    resources = Resources(mode="server")
    return resources.adjust_paths(js), resources.adjust_paths(css)


def load_tabulator_when_ready(doc: Any) -> None:
    """Make the browser fetch Tabulator's assets once ``doc`` has rendered."""
    js, css = tabulator_urls()
    doc.js_on_event("document_ready", CustomJS(args={"js": js, "css": css}, code=LOAD_JS))
