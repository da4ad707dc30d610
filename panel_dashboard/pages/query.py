# mypy: disable-error-code="no-untyped-call"
"""Query: SQL editor, run and status, schema browser from ``/v1/catalog``, results, CSV download."""

from __future__ import annotations

import asyncio
import html
import io
import time
from typing import Any, Final

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import panel as pn

from panel_dashboard.client import ApiClient
from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import CatalogDatabase
from panel_dashboard.state import rows_to_csv
from panel_dashboard.style import html_pane

MAX_RESULTS: Final = 1000
POLL_SECONDS: Final = 0.3
QUERY_TIMEOUT_SECONDS: Final = 120.0
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def columns_html(database: CatalogDatabase | None, table_name: str | None) -> str:
    if database is None or table_name is None:
        return "<i>No table selected.</i>"
    table = next((t for t in database["tables"] if t["name"] == table_name), None)
    if table is None:
        return "<i>No table selected.</i>"
    keys = {str(k["name"] if isinstance(k, dict) else k) for k in table.get("partition_keys", [])}
    items = "".join(f"<li><code>{html.escape(c['name'])}</code> <span class='df-type'>{html.escape(c['type'])}</span>"
                    f"{' <i>(partition)</i>' if c['name'] in keys else ''}</li>" for c in table["columns"])
    extra = "".join(f"<li><code>{html.escape(k)}</code> <i>(partition)</i></li>"
                    for k in sorted(keys - {c["name"] for c in table["columns"]}))
    return f"<ul class='df-columns'>{items}{extra}</ul>"


class QueryPage:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.catalog: list[CatalogDatabase] = []
        self.database = pn.widgets.Select(name="Database", options=[], width=220)
        self.table_select = pn.widgets.Select(name="Table", options=[], width=220)
        self.columns = html_pane("<i>Loading catalog…</i>", width=240)
        self.use_table = pn.widgets.Button(name="Query this table", width=220)
        self.sql = pn.widgets.TextAreaInput(name="SQL", placeholder="SELECT ...", height=160,
                                            sizing_mode="stretch_width", stylesheets=[
                                                ":host textarea {font-family: monospace; font-size: 13px;}"])
        self.run = pn.widgets.Button(name="Run query", button_type="primary", width=130)
        self.status = html_pane('<span data-testid="query-status">idle</span>')
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.results = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination="local",
                                            page_size=20, layout="fit_data_stretch", sizing_mode="stretch_width",
                                            height=420)
        self._columns: list[str] = []
        self._rows: list[list[Any]] = []
        self.download = pn.widgets.FileDownload(callback=self._csv, filename="query_results.csv",
                                                label="Download CSV", button_type="success", width=160,
                                                disabled=True)
        self.database.param.watch(lambda _e: self._database_changed(), "value")
        self.table_select.param.watch(lambda _e: self._table_changed(), "value")
        self.use_table.on_click(lambda _e: self._prefill())
        self.run.on_click(self._run)
        browser = pn.Column(html_pane("<h3>Schema</h3>"), self.database, self.table_select, self.use_table,
                            self.columns, width=260)
        editor = pn.Column(self.sql, pn.Row(self.run, self.download, self.status), self.error, self.results,
                           sizing_mode="stretch_width")
        self.view = pn.Row(browser, editor, sizing_mode="stretch_width")

    async def load_catalog(self) -> None:
        try:
            self.catalog = await self.client.catalog()
        except (ApiError, ApiUnavailableError) as exc:
            self.columns.object = f"<span class='df-error'>Catalog unavailable: {html.escape(str(exc))}</span>"
            return
        self.database.options = [db["name"] for db in self.catalog]
        if self.catalog and not self.database.value:
            self.database.value = self.catalog[0]["name"]
        self._database_changed()

    def _current_db(self) -> CatalogDatabase | None:
        return next((db for db in self.catalog if db["name"] == self.database.value), None)

    def _database_changed(self) -> None:
        db = self._current_db()
        self.table_select.options = [t["name"] for t in db["tables"]] if db else []
        self._table_changed()

    def _table_changed(self) -> None:
        self.columns.object = columns_html(self._current_db(), self.table_select.value)

    def _prefill(self) -> None:
        if self.table_select.value:
            self.sql.value = f"SELECT * FROM {self.database.value}.{self.table_select.value} LIMIT 100"

    def _set_status(self, text: str) -> None:
        self.status.object = f'<span data-testid="query-status">{html.escape(text)}</span>'

    def _fail(self, message: str) -> None:
        self._columns, self._rows = [], []
        self.results.value = pd.DataFrame()
        self.download.disabled = True
        self.error.object = f'<span data-testid="query-error">{html.escape(message)}</span>'
        self.error.visible = True

    async def _run(self, _event: object) -> None:
        sql = (self.sql.value or "").strip()
        self.error.visible = False
        if not sql:
            self._fail("Write a SQL statement first.")
            return
        self.run.disabled = True
        started = time.monotonic()
        try:
            await self._execute(sql, started)
        finally:
            self.run.disabled = False

    async def _execute(self, sql: str, started: float) -> None:
        self._set_status("submitting…")
        try:
            submitted = await self.client.submit_query(sql, self.database.value or None)
            query_id = str(submitted["query_id"])
            state = str(submitted.get("status", "QUEUED"))
            status: dict[str, Any] = submitted
            while state not in TERMINAL:
                if time.monotonic() - started > QUERY_TIMEOUT_SECONDS:
                    self._set_status(f"{query_id}: still {state} after {QUERY_TIMEOUT_SECONDS:.0f} s; gave up")
                    return
                self._set_status(f"{state} ({time.monotonic() - started:.1f} s)")
                await asyncio.sleep(POLL_SECONDS)
                status = await self.client.query_status(query_id)
                state = str(status["status"])
            if state != "SUCCEEDED":
                error = status.get("error") or {}
                self._set_status(state)
                self._fail(f"Query {state.lower()}: {error.get('message', 'no reason given')}")
                return
            results = await self.client.query_results(query_id, MAX_RESULTS)
        except ApiError as exc:
            self._set_status("refused" if exc.status == 400 else "error")
            self._fail(exc.message)
            return
        except ApiUnavailableError as exc:
            self._set_status("error")
            self._fail(str(exc))
            return
        self._columns = [c["name"] for c in results["columns"]]
        self._rows = results["rows"]
        self.results.value = pd.DataFrame(self._rows, columns=self._columns)
        more = " (first page)" if results.get("next_token") else ""
        self._set_status(f"SUCCEEDED: {len(self._rows)} row(s){more} in {time.monotonic() - started:.1f} s")
        self.download.disabled = False

    def _csv(self) -> io.StringIO:
        return io.StringIO(rows_to_csv(self._columns, self._rows))
