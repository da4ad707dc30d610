"""A Chalice app as an ASGI application, for a production HTTP server (uvicorn) on this machine.

Every request goes through Chalice's own API Gateway emulation (``chalice.local.LocalGateway``, the one
``chalice local`` uses): the same route matching, Lambda event, CORS preflight answers and "Missing
Authentication Token" 403 for unknown paths; the app's own views check the API key and shape errors. What
``chalice local``'s request handler does around it is reproduced here: ``Content-Length``, a default
``Content-Type: application/json``, multi-value headers, base64 bodies decoded, and a 405 in the API's
error shape for methods Chalice has no handler for (TRACE, CONNECT, ...).

The app runs on a small thread pool, never on the event loop: a cache miss waits for DynamoDB in its
thread while the loop keeps answering the other connections. ``app.current_request`` is made
thread-local first (what ``chalice local`` does), so parallel requests never read each other's.

Reused responses (``reuse=``, the app's ``ReusableResponses``): after the app answered a GET without a
body with 200, ``reuse.take()`` (in the app's thread) may hand back a check that stays true while the
app would answer the same bytes again. The response is then kept, keyed by everything of the request
the answer depends on: the target as sent (path and query string, byte for byte) and the values of the
headers the app reads (``reuse_headers``, e.g. its API key header) and Chalice reads (``Content-Type``,
``Accept``). The same request again is answered on the event loop, without the thread pool, while the
check holds; anything else (another key, a missing key, another header value or target, a request with
a body) goes to the app as before. Only 200s are kept, so a request whose key the app refused never
matches a kept response: an API key is always checked by the app once per distinct value, and a kept
answer is only ever sent for the very value the app accepted.

Limited requests (``limit=``, e.g. ``devkit.local.ratelimit.SubmissionLimit``: query submissions per API
key, what the usage plan does on AWS): a request over its limit is answered 429 on the event loop, with
``Retry-After`` and a body in the API's error shape, and never reaches the app.

Imports only the standard library at module level (Chalice is imported when an adapter is made).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Protocol

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

GATEWAY_METHODS: Final = frozenset({"GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS"})
"""The methods ``chalice local`` hands to the gateway; any other gets ``405``."""

DEFAULT_THREADS: Final = 32
"""App threads: a request waiting for DynamoDB (a cache miss, or a caller waiting for that miss's single
flight) holds one, so there must be more than the requests that can wait at once for the others to go on."""
MAX_MEMO_URLS: Final = 4096
"""Request targets whose route match is remembered (dashboards ask the same few URLs again and again)."""

MAX_REUSED: Final = 4096
"""Kept responses (distinct requests); the oldest is dropped first."""
CHALICE_REQUEST_HEADERS: Final = (b"content-type", b"accept")
"""Request headers Chalice's REST handler reads on a known route (415 for a JSON route, binary answers)."""

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
Check = Callable[[], bool]


class RequestLimit(Protocol):
    """Whether a request is over a rate limit (``devkit.local.ratelimit.SubmissionLimit``)."""

    def retry_after(self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
        """None: the request may go on; else the seconds to wait before sending it again."""


class ReusableResponses(Protocol):
    """What the app says about the response its current thread just computed (``devkit.local.reuse``)."""

    def take(self) -> Check | None:
        """A check true while the same request would get the same response (None: not reusable); clears it."""


def thread_local_requests(chalice_app: Any) -> None:
    """What ``chalice.local.create_local_server`` does, without mutating Chalice's own classes:
    ``app.current_request`` per thread, so parallel requests never read each other's parameters."""
    from chalice.local import LocalChalice

    if not isinstance(chalice_app, LocalChalice):
        chalice_app.__class__ = type(f"Local{type(chalice_app).__name__}", (LocalChalice, type(chalice_app)), {})


def _not_allowed(method: str) -> Response:
    body = json.dumps({"error": {"code": "method_not_allowed",
                                 "message": f"{method} is not supported; see /v1/openapi.json"}}).encode()
    return 405, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


def _too_many(retry_after: int) -> Response:
    body = json.dumps({"error": {"code": "too_many_requests", "message":
                                 f"too many query submissions for this API key; retry in {retry_after} s"}}).encode()
    return 429, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                 (b"cache-control", b"no-store"), (b"retry-after", str(retry_after).encode())], body


def _encode_headers(headers: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    encoded: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        for one in value if isinstance(value, list) else [value]:
            encoded.append((name.encode("latin-1"), str(one).encode("latin-1")))
    return encoded


def _memo_routes(matcher: Any) -> Any:
    """``matcher`` (a ``chalice.local.RouteMatcher``) behind ``_MemoRoutes``, typed as what it stands for."""
    return _MemoRoutes(matcher)


class _MemoRoutes:
    """A ``chalice.local.RouteMatcher`` that remembers its matches by request target (path and query).

    Each call returns fresh copies of the captured path parameters and query lists (the event owns them);
    an unknown path (``ValueError``) is not remembered. At ``MAX_MEMO_URLS`` targets the memo starts over."""

    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher
        self._memo: dict[str, Any] = {}

    def match_route(self, url: str) -> Any:
        match = self._memo.get(url)
        if match is None:
            match = self._matcher.match_route(url)
            if len(self._memo) >= MAX_MEMO_URLS:
                self._memo = {}
            self._memo[url] = match
        return type(match)(match.route, dict(match.captured), {k: list(v) for k, v in match.query_params.items()})


def _gateway(chalice_app: Any) -> Any:
    """``chalice.local.LocalGateway`` over ``chalice_app``, with what it recomputes per request made once:
    the route matcher's parse of a known target and the Lambda context's settings (a fresh context, with its
    own request id and clock, is still made for every request)."""
    from chalice.config import Config
    from chalice.local import LambdaContext, LambdaEventConverter, LocalGateway, RouteMatcher

    class Gateway(LocalGateway):
        def __init__(self) -> None:
            config = Config.create(chalice_stage="dev", app_name=getattr(chalice_app, "app_name", "app"),
                                   lambda_timeout=30, lambda_memory_size=1024)
            super().__init__(chalice_app, config)
            self.event_converter = LambdaEventConverter(_memo_routes(RouteMatcher(list(chalice_app.routes))),
                                                        chalice_app.api.binary_types)
            timeout = config.lambda_timeout
            runtime_ms = (self.MAX_LAMBDA_EXECUTION_TIME if timeout is None else timeout) * 1000  # as LocalGateway
            self._context_args = (config.function_name, config.lambda_memory_size, runtime_ms)

        def _generate_lambda_context(self) -> Any:
            name, memory, runtime_ms = self._context_args
            return LambdaContext(function_name=name, memory_size=memory, max_runtime_ms=runtime_ms)

    return Gateway()


class ChaliceAsgi:
    """``ChaliceAsgi(app)``: an ASGI app (HTTP and lifespan) answering as ``chalice local`` would."""

    def __init__(self, chalice_app: Any, *, threads: int = DEFAULT_THREADS, reuse: ReusableResponses | None = None,
                 reuse_headers: tuple[str, ...] = (), limit: RequestLimit | None = None) -> None:
        from chalice.local import LocalGatewayException

        thread_local_requests(chalice_app)
        self._gateway = _gateway(chalice_app)  # stateless per request: one for every request
        self._gateway_error = LocalGatewayException
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._reuse = reuse
        self._limit = limit
        self._key_headers = tuple(dict.fromkeys([h.lower().encode("latin-1") for h in reuse_headers]
                                                + list(CHALICE_REQUEST_HEADERS)))
        self._reused: dict[tuple[bytes | None, ...], tuple[Response, Check]] = {}  # only touched on the loop
        self.served_from_memory = 0
        """Responses sent from what was kept, without the app (a count, for tests and diagnostics)."""

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="chalice-app")
        return self._executor

    def close(self) -> None:
        """Stop the app threads (after the requests they run)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: the API has none
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if self._limit is not None:
            retry_after = self._limit.retry_after(scope["method"], scope["path"], scope["headers"])
            if retry_after is not None:
                await self._send(send, _too_many(retry_after))
                return
        key = self._reuse_key(scope) if self._reuse is not None and scope["method"] == "GET" and not body else None
        if key is not None:
            kept = self._reused.get(key)
            if kept is not None:
                if kept[1]():
                    self.served_from_memory += 1
                    await self._send(send, kept[0])
                    return
                del self._reused[key]
        response, check = await asyncio.get_running_loop().run_in_executor(self._pool(), self._respond, scope, body)
        if key is not None and check is not None and response[0] == 200:
            if len(self._reused) >= MAX_REUSED:
                del self._reused[next(iter(self._reused))]
            self._reused[key] = (response, check)
        await self._send(send, response)

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        status, headers, payload = response
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _reuse_key(self, scope: Scope) -> tuple[bytes | None, ...]:
        """The request target as sent and the first value of each header a response depends on."""
        values: dict[bytes, bytes | None] = dict.fromkeys(self._key_headers)
        for name, value in scope["headers"]:
            if name in values and values[name] is None:
                values[name] = value
        return (scope.get("raw_path") or scope["path"].encode(), scope.get("query_string", b""), *values.values())

    def _respond(self, scope: Scope, body: bytes) -> tuple[Response, Check | None]:
        """``respond``, and the app's word on reusing that response (taken in the thread that computed it)."""
        try:
            response = self.respond(scope, body)
        finally:  # always taken, so a thread never carries one response's check into the next
            check = None if self._reuse is None else self._reuse.take()
        return response, check

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def respond(self, scope: Scope, body: bytes) -> Response:
        """The response to one HTTP request (``scope`` as ASGI gives it), computed in the calling thread."""
        method: str = scope["method"]
        if method not in GATEWAY_METHODS:
            return _not_allowed(method)
        target = scope.get("raw_path") or scope["path"].encode()  # as sent: percent-encoding kept, like http.server
        query: bytes = scope.get("query_string", b"")
        path = (target + b"?" + query if query else target).decode("latin-1")
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))  # the first of repeated headers
        try:
            response = self._gateway.handle_request(method=method, path=path, headers=headers, body=body or None)
        except self._gateway_error as error:
            return self._encode(error.CODE, dict(error.headers), error.body)
        out = dict(response["headers"])
        out.update(response["multiValueHeaders"])
        payload = response["body"]
        if response.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        return self._encode(response["statusCode"], out, payload)

    @staticmethod
    def _encode(status: int, headers: dict[str, Any], body: str | bytes | None) -> Response:
        if body is None:
            headers["Content-Length"] = "0"
            return status, _encode_headers(headers), b""
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        content_type = headers.pop("Content-Type", "application/json")
        return status, [(b"content-length", str(len(data)).encode()), (b"content-type", content_type.encode("latin-1")),
                        *_encode_headers(headers)], data
