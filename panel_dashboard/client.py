"""Async client of the DataForge API over httpx: timeouts, retries with exponential backoff.

One ``ApiClient`` is shared by every session of a server process (one connection pool); it is
safe to share because httpx's ``AsyncClient`` is, and it holds no per-session state. The API key
is sent as the ``x-api-key`` header from here, on the server, only.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

import httpx

from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import Alert, CatalogDatabase, DailyKpi, QueryResults, Realtime, Summary

log = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
MAX_PAGES: Final = 50  # bounds every paginated read


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
                      json: Any = None, attempts: int | None = None) -> Any:
        """The decoded JSON body; ``ApiError`` for 4xx/error documents, ``ApiUnavailableError`` when
        the API stays unreachable or failing (5xx, timeouts) after ``attempts`` tries."""
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        tries = attempts or self._retry.attempts
        last: Exception | None = None
        for attempt in range(1, tries + 1):
            try:
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

    async def _paged(self, path: str, params: Mapping[str, Any], *, attempts: int | None = None) -> list[Any]:
        items: list[Any] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            body = await self.request("GET", path, params={**params, "next_token": token}, attempts=attempts)
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
                         attempts: int | None = None) -> list[DailyKpi]:
        params = {"from": date_from, "to": date_to, "merchant_id": merchant_id, "country": country,
                  "channel": channel}
        return cast(list[DailyKpi], await self._paged("/v1/kpis/daily", params, attempts=attempts))

    async def summary(self, day: str | None = None, *, attempts: int | None = None) -> Summary:
        return cast(Summary, await self.request("GET", "/v1/kpis/summary", params={"date": day}, attempts=attempts))

    async def merchants(self, day: str, *, attempts: int | None = None) -> list[DailyKpi]:
        return cast(list[DailyKpi], await self._paged("/v1/kpis/merchants", {"date": day}, attempts=attempts))

    async def realtime(self, minutes: int, *, attempts: int | None = None) -> Realtime:
        return cast(Realtime, await self.request("GET", "/v1/realtime", params={"minutes": minutes},
                                                 attempts=attempts))

    async def alerts(self, status: str, *, attempts: int | None = None) -> list[Alert]:
        return cast(list[Alert], await self._paged("/v1/alerts", {"status": status}, attempts=attempts))

    async def acknowledge(self, alert_id: str, by: str) -> Alert:
        # Not retried on 5xx blindly: acknowledging is idempotent on the API side, so one retry is safe.
        return cast(Alert, await self.request("POST", f"/v1/alerts/{alert_id}/ack", json={"by": by}, attempts=2))

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
