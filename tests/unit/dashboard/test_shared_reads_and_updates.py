"""The process-wide read cache of the API client (one call per period for every session; bounded;
errors never cached; acknowledging invalidates alerts) and the minimal chart-source updates."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from panel_dashboard.client import ApiClient, ResponseCache, RetryPolicy
from panel_dashboard.errors import ApiUnavailableError
from panel_dashboard.state import fingerprint, source_update


def _in_own_loop(coro: Any) -> Any:
    """In a thread of its own: the browser tier's Playwright may hold a running loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failing = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if self.failing:
            return httpx.Response(503, json={"error": {"code": "down", "message": "down"}})
        if request.url.path == "/v1/realtime":
            return httpx.Response(200, json={"items": [], "freshness_seconds": len(self.calls)})
        if request.url.path.endswith("/ack"):
            return httpx.Response(200, json={"alert_id": "a1"})
        return httpx.Response(200, json={"items": [{"n": len(self.calls)}], "next_token": None})


def _client(api: FakeApi) -> ApiClient:
    return ApiClient("http://api.test", "key", transport=httpx.MockTransport(api.handler),
                     retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002))


def test_concurrent_sessions_share_one_request_per_period() -> None:
    api = FakeApi()
    client = _client(api)

    async def ten_sessions() -> list[Any]:
        return list(await asyncio.gather(*(client.realtime(60, ttl=5.0) for _ in range(10))))

    bodies = _in_own_loop(ten_sessions())
    assert api.calls == ["GET /v1/realtime"]
    assert all(body is bodies[0] for body in bodies)
    _in_own_loop(client.realtime(60, ttl=5.0))  # later in the same period: from the cache
    assert len(api.calls) == 1
    _in_own_loop(client.realtime(30, ttl=5.0))  # another request: its own entry
    _in_own_loop(client.realtime(60))  # no ttl: always sent
    assert len(api.calls) == 3


def test_errors_are_not_cached_and_acknowledging_invalidates_alerts() -> None:
    api = FakeApi()
    client = _client(api)
    api.failing = True
    with pytest.raises(ApiUnavailableError):
        _in_own_loop(client.alerts("open", ttl=5.0))
    api.failing = False
    first = _in_own_loop(client.alerts("open", ttl=5.0))
    calls = len(api.calls)
    assert _in_own_loop(client.alerts("open", ttl=5.0)) == first
    assert len(api.calls) == calls  # from the cache
    _in_own_loop(client.acknowledge("a1", "on-call"))
    calls = len(api.calls)
    assert _in_own_loop(client.alerts("open", ttl=5.0)) != first
    assert len(api.calls) == calls + 1


def test_cache_entries_expire_and_their_number_is_bounded() -> None:
    now = [0.0]
    cache = ResponseCache(max_entries=3, clock=lambda: now[0])
    for n in range(10):
        cache.put((f"/p{n}", ()), n)
    assert len(cache) == 3
    assert cache.get(("/p9", ()), ttl=2.0) == (True, 9)
    assert cache.get(("/p0", ()), ttl=2.0) == (False, None)
    now[0] = 2.0
    assert cache.get(("/p9", ()), ttl=2.0) == (False, None)
    assert len(cache) == 2


def test_a_shifted_window_streams_new_rows_and_patches_changed_cells() -> None:
    old = {"minute": [1, 2, 3], "txn": [10, 20, 30]}
    new = {"minute": [2, 3, 4], "txn": [20, 31, 40]}
    update = source_update(old, new, "minute")
    assert update.replace is None
    assert update.stream == {"minute": [4], "txn": [40]}
    assert update.rollover == 3
    assert update.patch == {"txn": [(1, 31)]}  # index after the stream dropped minute 1


def test_unchanged_data_is_an_empty_update_and_a_jump_replaces() -> None:
    same = {"minute": [1, 2], "txn": [1, 2]}
    assert source_update(same, dict(same), "minute").empty
    jump = source_update(same, {"minute": [7, 8], "txn": [0, 0]}, "minute")
    assert jump.replace == {"minute": [7, 8], "txn": [0, 0]}
    first = source_update({"minute": [], "txn": []}, same, "minute")
    assert first.replace == same
    shrunk = source_update(same, {"minute": [2], "txn": [2]}, "minute")
    assert shrunk.replace == {"minute": [2], "txn": [2]}
    assert fingerprint([{"a": 1, "b": "x"}]) == fingerprint([{"b": "x", "a": 1}])
