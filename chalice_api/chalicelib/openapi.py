"""The OpenAPI 3 document of the API, served at ``/v1/openapi.json``.

Kept in step with the Chalice routes by ``tests/unit/api/test_openapi.py`` (every route documented,
every documented operation routed) and exercised by the schemathesis run against the served API.
"""

from __future__ import annotations

from typing import Any, Final

from chalicelib.config import API_KEY_HEADER, API_PREFIX, MAX_PAGE_SIZE, MAX_SQL_CHARS
from chalicelib.handlers import KPI_METRICS, MAX_REALTIME_MINUTES
from dataforge.schemas import GOLD_KPI_ROW, KPI_DATE, KpiKind
from dataforge.serving import ALERT_STATUSES, FINAL, PROVISIONAL

VERSION: Final = "1.0.0"
_DATE: Final = {"type": "string", "format": "date", "example": "2024-01-02"}
_MONEY: Final = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "123.45"}
_RATE: Final = {"type": "string", "pattern": r"^-?\d+\.\d{4}$", "nullable": True, "example": "0.9512"}
_PCT: Final = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "nullable": True, "example": "-3.25"}
_COUNT: Final = {"type": "integer", "minimum": 0}
_ID: Final = {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,64}$"}
_TOKEN: Final = {"type": "string", "nullable": True, "description": "opaque; pass back as next_token"}
_QUERY_STATES: Final = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props), **extra}


_KPI_SCHEMAS: Final[dict[KpiKind, dict[str, Any]]] = {
    KpiKind.KEY: {"type": "string"}, KpiKind.COUNT: _COUNT, KpiKind.RATE: _RATE, KpiKind.MONEY: _MONEY,
}


def _kpi_row() -> dict[str, Any]:
    props: dict[str, Any] = {KPI_DATE: _DATE}
    for column in GOLD_KPI_ROW:
        schema = dict(_KPI_SCHEMAS[column.kind])
        if column.nullable:
            schema["nullable"] = True
        props[column.name] = schema
    return _obj(props)


def _schemas() -> dict[str, Any]:
    change = _obj({n: _PCT for n in KPI_METRICS})
    return {
        "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}})}),
        "Health": _obj({
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "checks": _obj({n: {"type": "string"} for n in ("dynamodb", "catalog", "query_engine")}),
        }),
        "KpiRow": _kpi_row(),
        "KpiPage": _obj({"items": {"type": "array", "items": _ref("KpiRow")}, "next_token": _TOKEN}),
        "KpiSummary": _obj({
            "date": _DATE, "current": _ref("KpiRow"),
            "previous": {"allOf": [_ref("KpiRow")], "nullable": True}, "change": change,
        }),
        "RealtimeMinute": _obj({
            "minute": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$"},
            "status": {"type": "string", "enum": [PROVISIONAL, FINAL],
                       "description": "provisional: counted by the speed path (landing); final: Spark's "
                                      "deduplicated figures, which replace the provisional ones"},
            "txn_count": _COUNT, "approved_count": _COUNT, "declined_count": _COUNT, "volume_usd": _MONEY,
            "decline_rate": _RATE,
        }),
        "Realtime": _obj({
            "items": {"type": "array", "items": _ref("RealtimeMinute")},
            "newest_event_time": {"type": "string", "format": "date-time", "nullable": True,
                                  "description": "the newest event time counted in these minutes"},
            "freshness_seconds": {"type": "number", "minimum": 0, "nullable": True,
                                  "description": "now - newest_event_time (seconds, 0.1 s resolution)"},
            "pipeline_lag_seconds": {"type": "number", "minimum": 0, "nullable": True,
                                     "description": "now - the newest Kafka (ingest) timestamp counted"},
        }),
        "Alert": _obj({
            "alert_id": {"type": "string"}, "rule": {"type": "string"}, "severity": {"type": "string"},
            "status": {"type": "string", "enum": list(ALERT_STATUSES)}, "raised_at": {"type": "string"},
            "message": {"type": "string"}, "value": {"type": "string", "nullable": True},
            "threshold": {"type": "string", "nullable": True},
            "acknowledged_by": {"type": "string", "nullable": True},
            "acknowledged_at": {"type": "string", "nullable": True},
            "runbook_url": {"type": "string", "nullable": True},
        }),
        "AlertPage": _obj({"items": {"type": "array", "items": _ref("Alert")}, "next_token": _TOKEN}),
        "Acknowledge": _obj({"by": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"\S"}}),
        "QueryRequest": _obj(
            {"sql": {"type": "string", "minLength": 1, "maxLength": MAX_SQL_CHARS,
                     "example": "SELECT channel, count(*) AS n FROM transactions GROUP BY channel"},
             "database": {"type": "string", "minLength": 1, "maxLength": 255}},
            ["sql"],
        ),
        "QueryStarted": _obj({"query_id": {"type": "string"}, "status": {"type": "string", "enum": _QUERY_STATES}}),
        "QueryStatus": _obj({
            "query_id": {"type": "string"}, "status": {"type": "string", "enum": _QUERY_STATES},
            "error": {"allOf": [_obj({"code": {"type": "string"}, "message": {"type": "string"}})], "nullable": True},
            "submitted_at": {"type": "string", "nullable": True}, "completed_at": {"type": "string", "nullable": True},
            "rows": {"type": "integer", "minimum": 0, "nullable": True},
        }),
        "QueryResults": _obj({
            "columns": {"type": "array", "items": _obj({"name": {"type": "string"}, "type": {"type": "string"}})},
            "rows": {"type": "array", "items": {"type": "array", "items": {"type": "string", "nullable": True}}},
            "next_token": _TOKEN,
        }),
        "Catalog": _obj({"databases": {"type": "array", "items": _obj({
            "name": {"type": "string"},
            "tables": {"type": "array", "items": _obj({
                "name": {"type": "string"},
                "columns": {"type": "array", "items": _obj({"name": {"type": "string"}, "type": {"type": "string"}})},
                "partition_keys": {"type": "array", "items": {"type": "string"}},
            })},
        })}}),
    }


def _param(name: str, schema: dict[str, Any], *, required: bool = False, where: str = "query",
            description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


_LIMIT: Final = _param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 100})
_NEXT: Final = _param("next_token", {"type": "string", "minLength": 1}, description="from the previous page")
_QUERY_ID: Final = _param("query_id", {"type": "string"}, where="path")


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "bad input", 401: "missing API key", 403: "invalid API key", 404: "not found", 409: "conflict",
            422: "a page of results larger than the API answers", 429: "too many queries (see Retry-After)",
            500: "unexpected error (logged)"}
    return {str(s): {"description": text[s], "content": {"application/json": {"schema": _ref("Error")}}}
            for s in statuses}


def _op(summary: str, schema: str, *, params: list[dict[str, Any]] | None = None, status: int = 200,
        errors: tuple[int, ...] = (400,), body: str | None = None, public: bool = False) -> dict[str, Any]:
    auth = () if public else (401, 403)
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            str(status): {"description": "OK", "content": {"application/json": {"schema": _ref(schema)}}},
            **_errors(*sorted({*errors, *auth, 500})),
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if public:
        op["security"] = []
    return op


def document() -> dict[str, Any]:
    p = API_PREFIX
    return {
        "openapi": "3.0.3",
        "info": {"title": "DataForge analytics API", "version": VERSION,
                 "description": "KPIs, realtime metrics, alerts and safe ad-hoc SQL over the lake. See docs/api.md."},
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}],
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}},
            "schemas": _schemas(),
        },
        "paths": {
            f"{p}/health": {"get": _op("Health of the API and its dependencies", "Health", errors=(), public=True)},
            f"{p}/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3", "content": {"application/json": {
                    "schema": {"type": "object"}}}}},
            }},
            f"{p}/kpis/daily": {"get": _op("Daily KPIs over a date range", "KpiPage", params=[
                _param("from", _DATE, required=True), _param("to", _DATE, required=True),
                _param("merchant_id", _ID), _param("country", _ID), _param("channel", _ID), _LIMIT, _NEXT,
            ])},
            f"{p}/kpis/summary": {"get": _op("Platform KPIs of a date with change against the previous day",
                                             "KpiSummary", params=[_param("date", _DATE, required=True)],
                                             errors=(400, 404))},
            f"{p}/kpis/merchants": {"get": _op("Per-merchant KPIs of a date", "KpiPage",
                                               params=[_param("date", _DATE, required=True), _LIMIT, _NEXT])},
            f"{p}/realtime": {"get": _op("Realtime minute metrics of the last N minutes", "Realtime", params=[
                _param("minutes", {"type": "integer", "minimum": 1, "maximum": MAX_REALTIME_MINUTES, "default": 60}),
            ])},
            f"{p}/alerts": {"get": _op("Alerts by status, newest first", "AlertPage", params=[
                _param("status", {"type": "string", "enum": list(ALERT_STATUSES), "default": "open"}), _LIMIT, _NEXT,
            ])},
            f"{p}/alerts/{{alert_id}}/ack": {"post": _op(
                "Acknowledge an open alert", "Alert", params=[_param("alert_id", {"type": "string"}, where="path")],
                errors=(400, 404, 409), body="Acknowledge")},
            f"{p}/queries": {"post": _op("Start a read-only SQL query (Athena/Trino SQL)", "QueryStarted",
                                         status=202, body="QueryRequest", errors=(400, 429))},
            f"{p}/queries/{{query_id}}": {
                "get": _op("Status of a query", "QueryStatus", params=[_QUERY_ID], errors=(404,)),
                "delete": _op("Cancel a query", "QueryStatus", params=[_QUERY_ID], errors=(404, 409)),
            },
            f"{p}/queries/{{query_id}}/results": {"get": _op("A page of a succeeded query's rows", "QueryResults",
                                                             params=[
                _QUERY_ID, _param("max_results", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                                                  "default": 100}), _NEXT,
            ], errors=(400, 404, 409, 422))},
            f"{p}/catalog": {"get": _op("Queryable databases, tables and columns", "Catalog", errors=())},
        },
    }
