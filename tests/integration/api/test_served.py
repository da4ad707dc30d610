"""The API as ``dataforge api serve`` serves it (uvicorn + ``ChaliceAsgi``) answers like Chalice's own test
client (the same API Gateway emulation): statuses, bodies and headers of auth, errors, CORS preflight and
reads; methods Chalice has no handler for get a 405 in the API's error shape; a restart on the same port works."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from tests.fixtures.api import API_KEY

KEY = {"x-api-key": API_KEY}

CASES = [
    ("GET", "/v1/health", {}),
    ("GET", "/v1/kpis/daily?from=2024-01-01&to=2024-01-03", KEY),
    ("GET", "/v1/kpis/daily?from=2024-01-01&to=2024-01-03", {}),  # 401: no key
    ("GET", "/v1/kpis/daily?from=2024-01-01&to=2024-01-03", {"x-api-key": "wrong"}),  # 403
    ("GET", "/v1/kpis/daily?from=2024-01-03&to=2024-01-01", KEY),  # 400: reversed range
    ("GET", "/v1/kpis/daily?from=2024-01-01&to=2024-01-03&merchant_id=m_001&limit=2", KEY),
    ("GET", "/v1/kpis/summary?date=2024-01-03", KEY),
    ("GET", "/v1/kpis/summary?date=1999-01-01", KEY),  # 404
    ("GET", "/v1/kpis/merchants?date=2024-01-03&limit=2", KEY),
    ("GET", "/v1/alerts?status=bogus", KEY),  # 400
    ("GET", "/v1/nowhere", KEY),  # API Gateway's 403 "Missing Authentication Token"
    ("POST", "/v1/queries", {**KEY, "Content-Type": "application/json"}),  # 400: no body
]


def _served(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else None, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "path", "headers"), CASES, ids=[f"{m} {p}" for m, p, _ in CASES])
def test_served_api_answers_like_chalice(method: str, path: str, headers: dict[str, str], served_api: str,
                                         api_client: Any) -> None:
    expected = api_client.http.request(method, path, headers=headers)
    status, body, got_headers = _served(served_api, method, path, headers)
    assert status == expected.status_code
    assert body == (json.loads(expected.body) if expected.body else None)
    for name, value in expected.headers.items():
        if name.lower() == "x-amzn-requestid":  # one per request
            assert got_headers.get(name.lower()), name
        elif name.lower() != "content-length":
            assert got_headers.get(name.lower()) == value, name
    if body is not None:
        assert got_headers["content-type"].startswith("application/json")
        assert "Traceback" not in json.dumps(body)


def test_preflight_is_answered_by_the_gateway(served_api: str) -> None:
    # Chalice's test client cannot read a body-less response; the gateway's answer without a CORS origin:
    status, body, headers = _served(served_api, "OPTIONS", "/v1/kpis/daily", {})
    assert (status, body) == (200, None)
    assert (headers["access-control-allow-methods"], headers["content-length"]) == ("OPTIONS", "0")


def test_methods_without_a_handler_get_405_in_the_error_shape(served_api: str) -> None:
    status, body, _ = _served(served_api, "TRACE", "/v1/health", {})
    assert status == 405
    assert body["error"]["code"] == "method_not_allowed"


def test_restart_on_the_same_port(api_app: Any) -> None:
    from dataforge.cli.api import RestartableApi

    server = RestartableApi(api_app, host="127.0.0.1")
    server.start()
    try:
        url = server.url
        assert _served(url, "GET", "/v1/health", {})[0] == 200
        server.stop()
        with pytest.raises(ConnectionRefusedError):
            _served(url, "GET", "/v1/health", {})
        server.start()
        assert server.url == url
        assert _served(url, "GET", "/v1/health", {})[0] == 200
    finally:
        server.stop()
