"""Async client of the DataForge API over httpx: timeouts, retries with exponential backoff.

One ``ApiClient`` is shared by every session of a server process (one connection pool); it is
safe to share because httpx's ``AsyncClient`` is, and it holds no per-session state. The API key
is sent as the ``x-api-key`` header from here, on the server, only.

Reads the pollers make pass a ``ttl``: the decoded body is kept in a small process-wide cache
(``ResponseCache``, keyed by path and parameters, bounded, entries expire after ``ttl``) and
concurrent identical reads share one in-flight request, so N sessions polling every period cost
one API call per period, not N. Errors are never cached. Writes (acknowledge) invalidate what they
change. Cached bodies are shared between sessions: callers must not mutate them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

import httpx

from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import Alert, CatalogDatabase, DailyKpi, QueryResults, Realtime, Summary

log = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
MAX_PAGES: Final = 50  # bounds every paginated read
CACHE_ENTRIES: Final = 256  # bounds the shared read cache

CacheKey = tuple[str, tuple[tuple[str, str], ...]]


class ResponseCache:
    """Decoded GET bodies by (path, params) for ``ttl`` seconds; at most ``max_entries`` (LRU)."""

    def __init__(self, max_entries: int = CACHE_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[CacheKey, tuple[float, Any]] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()  # sessions may run on several threads (--num-threads)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, ttl: float) -> tuple[bool, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if self._clock() - entry[0] >= ttl:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, entry[1]

    def put(self, key: CacheKey, value: Any) -> None:
        with self._lock:
            self._entries[key] = (self._clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def invalidate(self, path_prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0].startswith(path_prefix)]:
                del self._entries[key]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (1-based): exponential with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto


def _error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        error = body["error"]
        return ApiError(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "http_error", response.text[:200] or response.reason_phrase)


class ApiClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 retry: RetryPolicy | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(2.0, timeout))
        self._retry = retry or RetryPolicy()
        self._transport = transport
        self._clients: dict[int, httpx.AsyncClient] = {}
        self.cache = ResponseCache()
        # One in-flight read per (event loop, key): a future belongs to the loop that made it.
        self._inflight: dict[tuple[int, CacheKey], asyncio.Future[Any]] = {}
        self.requests_sent = 0  # HTTP requests actually made (tests, benches)

    def _client(self) -> httpx.AsyncClient:
        # An AsyncClient is bound to the event loop it first ran on; Panel may run several loops
        # (one per --num-threads worker), so keep one client per loop.
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            client = httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout, transport=self._transport,
                                       headers={"x-api-key": self._api_key, "accept": "application/json"},
                                       limits=httpx.Limits(max_connections=50, max_keepalive_connections=20))
            self._clients[loop_id] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, attempts: int | None = None, ttl: float | None = None) -> Any:
        """The decoded JSON body; ``ApiError`` for 4xx/error documents, ``ApiUnavailableError`` when
        the API stays unreachable or failing (5xx, timeouts) after ``attempts`` tries. A GET with a
        ``ttl`` is served from the shared cache when a body younger than ``ttl`` is there, and joins
        an identical read already in flight."""
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        if method != "GET" or not ttl:
            return await self._send(method, path, clean, json, attempts)
        key: CacheKey = (path, tuple(sorted((k, str(v)) for k, v in clean.items())))
        hit, value = self.cache.get(key, ttl)
        if hit:
            return value
        flight_key = (id(asyncio.get_running_loop()), key)
        pending = self._inflight.get(flight_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[flight_key] = future
        try:
            value = await self._send(method, path, clean, json, attempts)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody joined
            raise
        else:
            self.cache.put(key, value)
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(flight_key, None)

    async def _send(self, method: str, path: str, clean: Mapping[str, Any], json: Any,
                    attempts: int | None) -> Any:
        tries = attempts or self._retry.attempts
        last: Exception | None = None
        for attempt in range(1, tries + 1):
            try:
                self.requests_sent += 1
                response = await self._client().request(method, path, params=clean, json=json)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ApiError(response.status_code, "bad_json", "the API returned invalid JSON") from exc
                error = _error_of(response)
                if response.status_code not in RETRY_STATUSES and response.status_code < 500:
                    raise error
                last = error
            if attempt < tries:
                await asyncio.sleep(self._retry.delay(attempt))
        log.warning("API %s %s failed after %d attempts: %s", method, path, tries, last)
        raise ApiUnavailableError(f"API unavailable ({method} {path}): {last}") from last

    async def _paged(self, path: str, params: Mapping[str, Any], *, attempts: int | None = None,
                     ttl: float | None = None) -> list[Any]:
        items: list[Any] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            body = await self.request("GET", path, params={**params, "next_token": token}, attempts=attempts,
                                      ttl=ttl)
            items.extend(body.get("items", []))
            token = body.get("next_token")
            if not token:
                break
        return items

    # --- contract -------------------------------------------------------------------------------
    async def health(self, *, attempts: int | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], await self.request("GET", "/v1/health", attempts=attempts))

    async def daily_kpis(self, date_from: str, date_to: str, *, merchant_id: str | None = None,
                         country: str | None = None, channel: str | None = None,
                         attempts: int | None = None, ttl: float | None = None) -> list[DailyKpi]:
        params = {"from": date_from, "to": date_to, "merchant_id": merchant_id, "country": country,
                  "channel": channel}
        return cast(list[DailyKpi], await self._paged("/v1/kpis/daily", params, attempts=attempts, ttl=ttl))

    async def summary(self, day: str | None = None, *, attempts: int | None = None,
                      ttl: float | None = None) -> Summary:
        return cast(Summary, await self.request("GET", "/v1/kpis/summary", params={"date": day}, attempts=attempts,
                                                ttl=ttl))

    async def merchants(self, day: str, *, attempts: int | None = None, ttl: float | None = None) -> list[DailyKpi]:
        return cast(list[DailyKpi], await self._paged("/v1/kpis/merchants", {"date": day}, attempts=attempts,
                                                      ttl=ttl))

    async def realtime(self, minutes: int, *, attempts: int | None = None, ttl: float | None = None) -> Realtime:
        return cast(Realtime, await self.request("GET", "/v1/realtime", params={"minutes": minutes},
                                                 attempts=attempts, ttl=ttl))

    async def alerts(self, status: str, *, attempts: int | None = None, ttl: float | None = None) -> list[Alert]:
        return cast(list[Alert], await self._paged("/v1/alerts", {"status": status}, attempts=attempts, ttl=ttl))

    async def acknowledge(self, alert_id: str, by: str) -> Alert:
        # Not retried on 5xx blindly: acknowledging is idempotent on the API side, so one retry is safe.
        try:
            return cast(Alert, await self.request("POST", f"/v1/alerts/{alert_id}/ack", json={"by": by},
                                                  attempts=2))
        finally:
            self.cache.invalidate("/v1/alerts")  # every session sees the change on its next read

    async def submit_query(self, sql: str, database: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"sql": sql}
        if database:
            body["database"] = database
        return cast(dict[str, Any], await self.request("POST", "/v1/queries", json=body, attempts=1))

    async def query_status(self, query_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self.request("GET", f"/v1/queries/{query_id}"))

    async def query_results(self, query_id: str, max_results: int = 1000) -> QueryResults:
        return cast(QueryResults, await self.request("GET", f"/v1/queries/{query_id}/results",
                                                     params={"max_results": max_results}))

    async def catalog(self) -> list[CatalogDatabase]:
        body = await self.request("GET", "/v1/catalog")
        return cast(list[CatalogDatabase], body.get("databases", []))
