"""DataForge analytics API (Chalice). Thin: parse -> ``chalicelib.handlers`` -> JSON (``chalicelib.http``)."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice
from chalicelib import handlers
from chalicelib.config import API_PREFIX as P
from chalicelib.http import Runtime, cors_config, endpoint
from chalicelib.openapi import document

app = Chalice(app_name="dataforge-api")
runtime = Runtime()
_cors = cors_config()
_protected: dict[str, Any] = {"cors": _cors, "api_key_required": True}


def _request() -> Any:
    request = app.current_request
    if request is None:  # only outside a request, never in a route
        raise RuntimeError("no current request")
    return request


def _query() -> dict[str, str] | None:
    params: dict[str, str] | None = _request().query_params
    return params


@app.route(f"{P}/health", methods=["GET"], cors=_cors)
@endpoint(app, runtime, auth=False)
def health() -> dict[str, Any]:
    return handlers.health(runtime.services())


@app.route(f"{P}/openapi.json", methods=["GET"], cors=_cors)
@endpoint(app, runtime, auth=False)
def openapi() -> dict[str, Any]:
    return document()


@app.route(f"{P}/kpis/daily", methods=["GET"], **_protected)
@endpoint(app, runtime, reusable=True)
def kpis_daily() -> dict[str, Any]:
    return handlers.daily_kpis(runtime.services(), _query())


@app.route(f"{P}/kpis/summary", methods=["GET"], **_protected)
@endpoint(app, runtime, reusable=True)
def kpis_summary() -> dict[str, Any]:
    return handlers.summary(runtime.services(), _query())


@app.route(f"{P}/kpis/merchants", methods=["GET"], **_protected)
@endpoint(app, runtime, reusable=True)
def kpis_merchants() -> dict[str, Any]:
    return handlers.merchants(runtime.services(), _query())


@app.route(f"{P}/realtime", methods=["GET"], **_protected)
@endpoint(app, runtime, reusable=True)
def realtime() -> dict[str, Any]:
    return handlers.realtime(runtime.services(), _query())


@app.route(f"{P}/alerts", methods=["GET"], **_protected)
@endpoint(app, runtime)
def alerts() -> dict[str, Any]:
    return handlers.alerts(runtime.services(), _query())


@app.route(f"{P}/alerts/{{alert_id}}/ack", methods=["POST"], **_protected)
@endpoint(app, runtime)
def acknowledge_alert(alert_id: str) -> dict[str, Any]:
    return handlers.acknowledge(runtime.services(), alert_id, _request().json_body)


@app.route(f"{P}/queries", methods=["POST"], **_protected)
@endpoint(app, runtime, status=202)
def start_query() -> dict[str, Any]:
    return handlers.start_query(runtime.services(), _request().json_body)


@app.route(f"{P}/queries/{{query_id}}", methods=["GET"], **_protected)
@endpoint(app, runtime)
def query_status(query_id: str) -> dict[str, Any]:
    return handlers.query_status(runtime.services(), query_id)


@app.route(f"{P}/queries/{{query_id}}", methods=["DELETE"], **_protected)
@endpoint(app, runtime)
def cancel_query(query_id: str) -> dict[str, Any]:
    return handlers.cancel_query(runtime.services(), query_id)


@app.route(f"{P}/queries/{{query_id}}/results", methods=["GET"], **_protected)
@endpoint(app, runtime)
def query_results(query_id: str) -> dict[str, Any]:
    return handlers.query_results(runtime.services(), query_id, _query())


@app.route(f"{P}/catalog", methods=["GET"], **_protected)
@endpoint(app, runtime)
def catalog() -> dict[str, Any]:
    return handlers.catalog(runtime.services())
