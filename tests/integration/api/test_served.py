"""The API as ``dataforge api serve`` serves it (uvicorn + ``ChaliceAsgi``) answers like Chalice's own test
client (the same API Gateway emulation): statuses, bodies and headers of auth, errors, CORS preflight and
reads; methods Chalice has no handler for get a 405 in the API's error shape; a restart on the same port works."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
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
    from devkit.cli.api import RestartableApi

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


# --- responses kept by the server (devkit.local.reuse + ChaliceAsgi) ------------------------------------------

REUSABLE = [
    "/v1/kpis/daily?from=2024-01-01&to=2024-01-03",
    "/v1/kpis/daily?from=2024-01-01&to=2024-01-03&merchant_id=m_001&limit=2",
    "/v1/kpis/daily?from=2024-01-01&to=2024-01-03&country=DE",
    "/v1/kpis/summary?date=2024-01-03",
    "/v1/kpis/merchants?date=2024-01-03&limit=2",
    "/v1/realtime?minutes=15",
]
OTHER_REQUESTS = [
    {},  # 401: no key
    {"x-api-key": "wrong"},  # 403
    {"x-api-key": ""},  # 401: empty key
    {"x-api-key": API_KEY.upper()},  # 403
    {**KEY, "Content-Type": "text/plain"},  # Chalice's 415 for a JSON route
    {**KEY, "Accept": "application/octet-stream"},  # a header Chalice reads: computed by the app again
]


@pytest.fixture
def kept_api(api_app: Any) -> Iterator[tuple[str, Any]]:
    """The API on its own server, with the ``ChaliceAsgi`` behind it (to count answers sent from memory)."""
    from devkit.cli.api import serve_in_thread

    served = serve_in_thread(api_app, host="127.0.0.1", port=0)
    try:
        yield served.url, served.server.config.app
    finally:
        served.stop()


def _assert_like_chalice(url: str, api_client: Any, path: str, headers: dict[str, str]) -> None:
    expected = api_client.http.request("GET", path, headers=headers)
    status, body, got_headers = _served(url, "GET", path, headers)
    assert (status, body) == (expected.status_code, json.loads(expected.body) if expected.body else None)
    for name, value in expected.headers.items():
        if name.lower() not in {"x-amzn-requestid", "content-length"}:
            assert got_headers.get(name.lower()) == value, name


def test_repeated_reads_are_sent_from_memory_and_equal_fresh_answers(kept_api: tuple[str, Any],
                                                                      api_client: Any) -> None:
    url, asgi = kept_api
    for path in REUSABLE:
        for _ in range(3):  # the first is computed by the app, the next two are sent as kept
            _assert_like_chalice(url, api_client, path, KEY)
    assert asgi.served_from_memory == 2 * len(REUSABLE)


@pytest.mark.parametrize("headers", OTHER_REQUESTS, ids=[str(sorted(h)) + str(len(h.get("x-api-key", "")))
                                                          for h in OTHER_REQUESTS])
def test_a_kept_answer_is_never_sent_for_another_key_or_request(kept_api: tuple[str, Any], api_client: Any,
                                                                 headers: dict[str, str]) -> None:
    url, asgi = kept_api
    for path in REUSABLE:
        _served(url, "GET", path, KEY)
        _served(url, "GET", path, KEY)
    kept = asgi.served_from_memory
    assert kept == len(REUSABLE)
    for path in REUSABLE:
        _assert_like_chalice(url, api_client, path, headers)  # 401 / 403 / 415 / the same 200, by the app
    assert asgi.served_from_memory == kept
    status, _, _ = _served(url, "GET", REUSABLE[0] + "&limit=100", KEY)  # another target: computed again
    assert (status, asgi.served_from_memory) == (200, kept)


def test_the_origin_header_does_not_change_an_answer(kept_api: tuple[str, Any], api_client: Any) -> None:
    # Chalice's CORS headers are the route's configuration, whatever the request's Origin: a kept answer
    # sent for any Origin is the one Chalice computes for it
    url, asgi = kept_api
    for path in REUSABLE:
        _served(url, "GET", path, KEY)
        for origin in ("https://elsewhere.example", "null"):
            _assert_like_chalice(url, api_client, path, {**KEY, "Origin": origin})
    assert asgi.served_from_memory == 2 * len(REUSABLE)


def test_a_kept_answer_ends_with_the_services_that_checked_its_key(kept_api: tuple[str, Any], api_app: Any,
                                                                   api_platform: Any, api_services: Any) -> None:
    import dataclasses

    import app as chalice_app

    from devkit.cli.api import local_services

    url, asgi = kept_api
    path = REUSABLE[0]
    assert [_served(url, "GET", path, KEY)[0] for _ in range(2)] == [200, 200]
    assert asgi.served_from_memory == 1
    rotated = local_services(dataclasses.replace(api_services.config, api_key="rotated-key"),
                             session=api_platform.session, clock=api_services.clock)
    chalice_app.runtime.use(rotated)
    try:
        status, body, _ = _served(url, "GET", path, KEY)  # the key the kept answer was checked against
        assert (status, body["error"]["code"]) == (403, "invalid_api_key")
        assert _served(url, "GET", path, {"x-api-key": "rotated-key"})[0] == 200
        assert asgi.served_from_memory == 1
    finally:
        chalice_app.runtime.use(api_services)
        rotated.close()


def test_a_kept_answer_ends_with_its_cached_page(kept_api: tuple[str, Any], api_services: Any) -> None:
    url, asgi = kept_api
    path = "/v1/kpis/merchants?date=2024-01-02&limit=3"
    first = _served(url, "GET", path, KEY)
    assert _served(url, "GET", path, KEY) == first
    assert asgi.served_from_memory == 1
    api_services.kpis()._cache.clear()  # what the page's expiry does: a get would load again
    assert _served(url, "GET", path, KEY) == first  # computed again by the app (same data)
    assert asgi.served_from_memory == 1
    assert _served(url, "GET", path, KEY) == first
    assert asgi.served_from_memory == 2


# --- query submissions limited per API key (the usage plan's job on AWS) --------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_query_submissions_over_the_limit_get_429_with_retry_after(api_app: Any, api_client: Any) -> None:
    from devkit.cli.api import serve_in_thread, submission_limit
    from devkit.local.ratelimit import RateLimit

    clock = _Clock()
    served = serve_in_thread(api_app, host="127.0.0.1", port=0,
                             limit=submission_limit(RateLimit(rate=0.1, burst=2), clock=clock))
    post = {**KEY, "Content-Type": "application/json"}
    try:
        # an empty body is a 400 from the app: it still counts as a submission, and runs nothing
        assert [_served(served.url, "POST", "/v1/queries", post)[0] for _ in range(2)] == [400, 400]
        status, body, headers = _served(served.url, "POST", "/v1/queries", post)
        assert status == 429
        assert headers["retry-after"] == "10"
        assert set(body) == {"error"}
        assert body["error"]["code"] == "too_many_requests"
        assert body["error"]["message"]
        assert headers["content-type"] == "application/json"
        # another key has its own bucket (the app refuses it), reads are not limited
        assert _served(served.url, "POST", "/v1/queries", {"x-api-key": "wrong"})[0] == 403
        assert _served(served.url, "GET", "/v1/queries/not-a-uuid", KEY)[0] == 404
        clock.now += 10
        assert _served(served.url, "POST", "/v1/queries", post)[0] == 400
        assert _served(served.url, "POST", "/v1/queries", post)[0] == 429
    finally:
        served.stop()
