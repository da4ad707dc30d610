"""``dataforge api serve``: the Chalice analytics API served on this machine, in a threaded server.

The app is ``chalice_api/app.py`` of the checkout; its settings come from the environment (for the
embedded platform: ``dataforge services env`` / ``local_environment``). ``serve_in_thread`` is the
same server for tests and benchmarks (port 0 = a free port).
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
from dataclasses import dataclass
from typing import Annotated, Any, Final

import typer

from dataforge.local import LOCALHOST
from dataforge.paths import project_root

CHALICE_PROJECT: Final = "chalice_api"
REQUEST_BACKLOG: Final = 256  # listen queue: many concurrent dashboard clients, no SYN retries

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
        self.server.shutdown()
        self.server.server.server_close()
        self.thread.join(timeout=10)


def _server(chalice_app: Any, host: str, port: int) -> Any:
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

    class _Server(ThreadedHTTPServer):
        request_queue_size = REQUEST_BACKLOG

    class _Handler(ChaliceRequestHandler):
        """Methods no route has (TRACE, QUERY, ...) get a 405 in the API's error shape, not http.server's 501."""

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

    config = Config.create(chalice_stage="dev", app_name="dataforge-api", lambda_timeout=30,
                           lambda_memory_size=1024)
    return LocalDevServer(chalice_app, config, host, port, handler_cls=_Handler, server_cls=_Server)


def serve_in_thread(chalice_app: Any, *, host: str = LOCALHOST, port: int = 0) -> ServedApi:
    """Serve ``chalice_app`` on ``host:port`` from a daemon thread; ``.stop()`` shuts it down."""
    server = _server(chalice_app, host, port)
    bound_host, bound_port = server.server.server_address[:2]
    thread = threading.Thread(target=server.server.serve_forever, name="dataforge-api", daemon=True)
    thread.start()
    return ServedApi(f"http://{bound_host}:{bound_port}", server, thread)


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
