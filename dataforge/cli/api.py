"""``dataforge api serve``: the Chalice analytics API served on this machine, in a threaded server.

The app is ``chalice_api/app.py`` of the checkout; its settings come from the environment (for the
embedded platform: ``dataforge services env`` / ``local_environment``). ``serve_in_thread`` is the
same server for tests and benchmarks (port 0 = a free port); ``RestartableApi`` is that server on one
port that can be stopped and started again (clients see the API go away and come back).

Like ``chalice local``, the app's ``current_request`` is made thread-local first: the server answers
requests in parallel threads, and Chalice keeps the current request on the app object.

One daemon thread per connection; HTTP/1.1 keep-alive. What ``chalice local`` redoes per connection
(the API Gateway emulation: route matcher, authorizer) is built once per server. Responses leave in
one write with Nagle off (headers and body in separate small writes would wait ~40 ms on the
client's delayed ACK), and the per-request access log goes to ``logging`` at DEBUG, not to stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Annotated, Any, Final

import typer

from dataforge.local import LOCALHOST
from dataforge.paths import project_root

CHALICE_PROJECT: Final = "chalice_api"
REQUEST_BACKLOG: Final = 256  # listen queue: many concurrent dashboard clients, no SYN retries
RESPONSE_BUFFER: Final = 64 * 1024  # a response is buffered and flushed once (http.server flushes per request)

logger = logging.getLogger(__name__)

app = typer.Typer(help="The analytics API (Chalice) on this machine.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The analytics API (Chalice) on this machine."""


def load_app() -> Any:
    """The ``Chalice`` app object of ``chalice_api/app.py`` (its folder goes on ``sys.path``)."""
    folder = str(project_root() / CHALICE_PROJECT)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("app").app


@dataclass
class ServedApi:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        """Stop listening and drop open (keep-alive) connections: clients see the API gone."""
        self.server.shutdown()
        self.server.server.server_close()
        self.server.server.close_connections()
        self.thread.join(timeout=10)


def _thread_local_requests(chalice_app: Any) -> None:
    """What ``chalice.local.create_local_server`` does, without mutating Chalice's own classes:
    ``app.current_request`` per thread, so parallel requests never read each other's parameters."""
    from chalice.local import LocalChalice

    if not isinstance(chalice_app, LocalChalice):
        chalice_app.__class__ = type(f"Local{type(chalice_app).__name__}", (LocalChalice, type(chalice_app)), {})


def _server(chalice_app: Any, host: str, port: int) -> Any:
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, LocalDevServer, LocalGateway, ThreadedHTTPServer

    _thread_local_requests(chalice_app)
    config = Config.create(chalice_stage="dev", app_name="dataforge-api", lambda_timeout=30,
                           lambda_memory_size=1024)
    gateway = LocalGateway(chalice_app, config)  # stateless per request: one for every connection

    class _Server(ThreadedHTTPServer):
        request_queue_size = REQUEST_BACKLOG
        allow_reuse_address = True  # a restart may bind the same port while old connections are in TIME_WAIT
        daemon_threads = True  # connection threads never keep the process alive
        block_on_close = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._open: set[socket.socket] = set()
            self._open_lock = threading.Lock()
            super().__init__(*args, **kwargs)

        def process_request(self, request: Any, client_address: Any) -> None:
            with self._open_lock:
                self._open.add(request)
            super().process_request(request, client_address)

        def shutdown_request(self, request: Any) -> None:
            with self._open_lock:
                self._open.discard(request)
            super().shutdown_request(request)

        def close_connections(self) -> None:
            """End keep-alive connections still served by handler threads (``server_close`` leaves them)."""
            with self._open_lock:
                connections = list(self._open)
            for connection in connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    class _Handler(ChaliceRequestHandler):
        """Methods no route has (TRACE, QUERY, ...) get a 405 in the API's error shape, not http.server's 501."""

        disable_nagle_algorithm = True
        wbufsize = RESPONSE_BUFFER

        def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
            self.local_gateway = gateway  # instead of ChaliceRequestHandler's new LocalGateway per connection
            super(ChaliceRequestHandler, self).__init__(request, client_address, server)

        def log_message(self, format: str, *args: Any) -> None:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s", self.address_string(), format % args)

        def _not_allowed(self) -> None:
            body = json.dumps({"error": {"code": "method_not_allowed",
                                         "message": f"{self.command} is not supported; see /v1/openapi.json"}}).encode()
            self.send_response(405)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):
                return self._not_allowed
            raise AttributeError(name)

    return LocalDevServer(chalice_app, config, host, port, handler_cls=_Handler, server_cls=_Server)


def serve_in_thread(chalice_app: Any, *, host: str = LOCALHOST, port: int = 0) -> ServedApi:
    """Serve ``chalice_app`` on ``host:port`` from a daemon thread; ``.stop()`` shuts it down."""
    server = _server(chalice_app, host, port)
    bound_host, bound_port = server.server.server_address[:2]
    thread = threading.Thread(target=server.server.serve_forever, name="dataforge-api", daemon=True)
    thread.start()
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
) -> None:
    """Serve the API until Ctrl-C (settings from the environment, e.g. `eval "$(dataforge services env)"`)."""
    server = _server(load_app(), host, port)
    bound_host, bound_port = server.server.server_address[:2]
    typer.echo(f"DataForge API on http://{bound_host}:{bound_port}/v1 (OpenAPI: /v1/openapi.json); Ctrl-C stops")
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server.server_close()


if __name__ == "__main__":
    app()
