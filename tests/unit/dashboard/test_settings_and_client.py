"""Dashboard settings from env vars, and the API client's retries, backoff and error mapping
(httpx ``MockTransport``: no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from dataforge import envvars
from panel_dashboard.client import ApiClient, RetryPolicy
from panel_dashboard.errors import ApiError, ApiUnavailableError, DashboardSettingsError
from panel_dashboard.settings import DashboardSettings

T = TypeVar("T")
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)


def test_settings_read_once_from_the_env_var_names() -> None:
    settings = DashboardSettings.from_env({envvars.API_URL: "http://api:9000/", envvars.API_KEY: "sekrit-42",
                                           envvars.REALTIME_REFRESH_SECONDS: "1.5",
                                           envvars.DAILY_REFRESH_SECONDS: "30"})
    assert (settings.api_url, settings.realtime_refresh_seconds, settings.daily_refresh_seconds) == (
        "http://api:9000", 1.5, 30.0)
    assert "sekrit-42" not in repr(settings)  # the key is never logged
    defaults = DashboardSettings.from_env({envvars.API_KEY: "k"})
    assert (defaults.realtime_refresh_seconds, defaults.daily_refresh_seconds) == (1.0, 60.0)  # ADR 0014


@pytest.mark.parametrize("env", [{}, {envvars.API_KEY: "k", envvars.REALTIME_REFRESH_SECONDS: "fast"},
                                 {envvars.API_KEY: "k", envvars.API_URL: "ftp://x"},
                                 {envvars.API_KEY: "k", envvars.DAILY_REFRESH_SECONDS: "0"}])
def test_settings_fail_fast(env: dict[str, str]) -> None:
    with pytest.raises(DashboardSettingsError):
        DashboardSettings.from_env(env)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh loop in a worker thread: works even when the test session (e.g. Playwright's sync
    API in the browser tests) already runs a loop in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _client(handler: Any) -> ApiClient:
    return ApiClient("http://api", "secret", retry=FAST, transport=httpx.MockTransport(handler))


def test_client_sends_the_key_and_retries_5xx_then_succeeds() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy"}})
        return httpx.Response(200, json={"items": [], "freshness_seconds": 3})

    body = _run(_client(handler).realtime(60))
    assert body["freshness_seconds"] == 3
    assert len(calls) == 3
    assert all(c.headers["x-api-key"] == "secret" and c.url.params["minutes"] == "60" for c in calls)


def test_client_gives_up_after_its_attempts_when_the_api_is_down() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ApiUnavailableError):
        _run(_client(handler).health())
    assert calls == 3


def test_client_does_not_retry_a_refused_query_and_keeps_its_message() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"error": {"code": "query_refused", "message": "DROP is refused."}})

    with pytest.raises(ApiError) as caught:
        _run(_client(handler).submit_query("DROP TABLE x", "db"))
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, "query_refused", "DROP is refused.")
    assert calls == 1


def test_client_follows_next_tokens() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("next_token")
        if token is None:
            return httpx.Response(200, json={"items": [{"n": 1}], "next_token": "p2"})
        return httpx.Response(200, json={"items": [{"n": 2}], "next_token": None})

    assert [a["n"] for a in _run(_client(handler).alerts("open"))] == [1, 2]  # type: ignore[typeddict-item]


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.2, max_delay=1.0)
    assert 0.1 <= policy.delay(1) <= 0.2
    assert 0.2 <= policy.delay(2) <= 0.4
    assert 0.5 <= policy.delay(5) <= 1.0
