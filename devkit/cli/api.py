"""``dataforge api serve``: the Chalice analytics API served on this machine by uvicorn.

The app is the Chalice project's ``app`` module (``chalice_api/app.py``); its settings come from the
environment (for the embedded platform: ``dataforge services env`` / ``local_environment``). The toolkit
builds the app's services (``local_services``) with what only this server has: the local query engine
(DuckDB, ``devkit.local.duckdb_engine``) and the recorder of what each response was computed from.
``serve_in_thread`` is the
same server for tests and benchmarks (port 0 = a free port); ``RestartableApi`` is that server on one
port that can be stopped and started again (clients see the API go away and come back).

The server is uvicorn (event loop: uvloop, HTTP parser: httptools) in one process, so every request
shares one read-through cache and one single-flight per key. The app is adapted to ASGI by
``devkit.local.chalice_asgi.ChaliceAsgi``: Chalice's own API Gateway emulation (the one of ``chalice
local``) on a small thread pool, so a request that waits for DynamoDB never holds up the others. A
repeated KPI / realtime GET whose answer the app says is still the same (``devkit.local.reuse``: its cached
pages are still the ones it read, the clock is in the same second for realtime) is answered from memory
on the event loop, for the same target, API key value and Chalice-read headers only. Query submissions
(``POST /v1/queries``) are limited per API key (``--query-rate`` / ``--query-burst``), as API Gateway's
usage plan limits them on AWS: over the limit the client gets 429 with ``Retry-After``. The Lambda
deployment is unchanged: this is only how the app is served locally.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import boto3
import typer
from chalicelib.config import API_KEY_HEADER, API_PREFIX, ApiConfig
from chalicelib.runner import LocalEngine
from chalicelib.services import Services

from devkit.local import LOCALHOST
from devkit.local.ratelimit import KeyRateLimiter, RateLimit, SubmissionLimit
from devkit.local.reuse import ThreadRecorder

REQUEST_BACKLOG: Final = 1024  # listen queue: many concurrent dashboard clients, no SYN retries
KEEP_ALIVE_SECONDS: Final = 75  # longer than clients keep idle connections (httpx: 5 s), so they close first
START_TIMEOUT_SECONDS: Final = 30.0
STOP_TIMEOUT_SECONDS: Final = 10.0
SWITCH_INTERVAL_SECONDS: Final = 0.0005  # the event loop thread gets the GIL back sooner from the app threads
QUERY_RATE: Final = 1.0  # query submissions per second and API key, once the burst is spent
QUERY_BURST: Final = 10  # query submissions at once per API key

logger = logging.getLogger(__name__)

app = typer.Typer(help="The analytics API (Chalice) on this machine.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The analytics API (Chalice) on this machine."""


RECORDER: Final = ThreadRecorder()
"""What each response of the app was computed from, per request thread (one server per process)."""


def _local_engine(services: Services) -> LocalEngine:
    from devkit.local.duckdb_engine import engine_for  # DuckDB loads only when a query needs it

    return engine_for(services)


def local_services(config: ApiConfig, *, session: boto3.Session | None = None,
                   clock: Callable[[], datetime] | None = None) -> Services:
    """The API's services as this machine serves them: the local query engine and ``RECORDER`` injected."""
    if clock is None:
        return Services(config, session=session, recorder=RECORDER, local_engine=_local_engine)
    return Services(config, session=session, clock=clock, recorder=RECORDER, local_engine=_local_engine)


def load_app() -> Any:
    """The ``Chalice`` app object of ``chalice_api/app.py``, its services built by ``local_services``."""
    module = importlib.import_module("app")
    module.runtime.build_with(local_services)
    return module.app


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port), reusable while old connections linger."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(REQUEST_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def submission_limit(limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> SubmissionLimit:
    """``POST /v1/queries`` limited per API key (the header the app reads), as the usage plan does on AWS."""
    return SubmissionLimit(KeyRateLimiter(limit, clock=clock), path=f"{API_PREFIX}/queries",
                           key_header=API_KEY_HEADER)


def _server(chalice_app: Any, limit: SubmissionLimit | None = None) -> Any:
    import uvicorn

    from devkit.local.chalice_asgi import ChaliceAsgi

    limit = limit or submission_limit(RateLimit(QUERY_RATE, QUERY_BURST))
    # responses are kept by the request header the app's views read (the API key) besides the target
    asgi = ChaliceAsgi(chalice_app, reuse=RECORDER, reuse_headers=(API_KEY_HEADER,), limit=limit)
    config = uvicorn.Config(
        asgi, lifespan="on", log_config=None, access_log=False, server_header=False,
        backlog=REQUEST_BACKLOG, timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=int(STOP_TIMEOUT_SECONDS),
    )
    return uvicorn.Server(config)


@dataclass
class ServedApi:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        """Stop listening and close open (keep-alive) connections: clients see the API gone."""
        self.server.should_exit = True
        self.thread.join(timeout=STOP_TIMEOUT_SECONDS + 5)


def serve_in_thread(chalice_app: Any, *, host: str = LOCALHOST, port: int = 0,
                    limit: SubmissionLimit | None = None) -> ServedApi:
    """Serve ``chalice_app`` on ``host:port`` from a daemon thread; ``.stop()`` shuts it down. ``limit``:
    the query submissions per API key (default ``QUERY_RATE`` / ``QUERY_BURST``)."""
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    server = _server(chalice_app, limit)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dataforge-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the API server did not start on {bound_host}:{bound_port}")
        time.sleep(0.01)
    return ServedApi(f"http://{bound_host}:{bound_port}", server, thread)


class RestartableApi:
    """``chalice_app`` served on one port (chosen on the first start when ``port`` is 0) that can be
    stopped (connections refused) and started again on the same port."""

    def __init__(self, chalice_app: Any, *, host: str = LOCALHOST, port: int = 0) -> None:
        self._app = chalice_app
        self._host = host
        self._port = port
        self._served: ServedApi | None = None

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("not started yet: the port is chosen on the first start")
        return f"http://{self._host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._served is not None

    def start(self) -> None:
        if self._served is None:
            self._served = serve_in_thread(self._app, host=self._host, port=self._port)
            self._port = int(self._served.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self._served is not None:
            served, self._served = self._served, None
            served.stop()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (keep 127.0.0.1 unless you mean it).")] = LOCALHOST,
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    query_rate: Annotated[float, typer.Option(help="Query submissions a second per API key.", min=0.001)] = QUERY_RATE,
    query_burst: Annotated[int, typer.Option(help="Query submissions at once per API key.", min=1)] = QUERY_BURST,
) -> None:
    """Serve the API until Ctrl-C (settings from the environment, e.g. `eval "$(dataforge services env)"`)."""
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    server = _server(load_app(), submission_limit(RateLimit(query_rate, query_burst)))
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    typer.echo(f"DataForge API on http://{bound_host}:{bound_port}/v1 (OpenAPI: /v1/openapi.json); Ctrl-C stops")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn finishes the requests in flight, then re-raises Ctrl-C
        server.run(sockets=[sock])
    typer.echo("stopped")


if __name__ == "__main__":
    app()
