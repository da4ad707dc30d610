"""Toxiproxy (Shopify's TCP fault proxy): built from the Go module proxy, run on 127.0.0.1, driven
through its HTTP API.

- ``build()`` (``python -m devkit.chaos.toxiproxy``, what ``make toxiproxy`` and so ``make setup`` run):
  ``go install github.com/Shopify/toxiproxy/v2/cmd/server@<TOXIPROXY_VERSION>`` with the machine's Go,
  its module cache, build cache and binary under ``<cache_dir>/go`` and ``<cache_dir>/toxiproxy``, so a
  rebuild needs no network and nothing lands outside the checkout. Go's toolchain switching is off
  (``GOTOOLCHAIN=local``): the build uses the installed Go, never a downloaded one.
- ``ToxiproxyServer``: ``server -host 127.0.0.1 -port <free port>`` as a managed child process (its
  default host is ``localhost``; the explicit ``-host`` keeps it on the loopback address).
- ``Toxiproxy``: the HTTP API (Toxiproxy README, "HTTP API"): ``POST /proxies`` creates a proxy
  (``listen`` ``127.0.0.1:0`` lets the OS pick its port; the answer carries the bound address),
  ``POST /proxies/{proxy}/toxics`` adds a toxic, ``DELETE /proxies/{proxy}/toxics/{toxic}`` removes it,
  ``POST /reset`` removes every toxic and re-enables every proxy. The toxics the chaos experiments use
  (README, "Toxics"): ``latency`` (``latency``, ``jitter`` ms), ``timeout`` (stops all data and closes
  the connection after ``timeout`` ms; 0 keeps it open forever), ``reset_peer`` (resets the connection
  with a TCP RST after ``timeout`` ms).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from dataforge.errors import DependencyResolutionError, ServiceError
from devkit.local import LOCALHOST, free_port, spawn, tail
from devkit.local.process import ManagedProcess
from devkit.paths import cache_dir
from devkit.paths import logs_dir as default_logs_dir

logger = logging.getLogger(__name__)

TOXIPROXY_MODULE: Final = "github.com/Shopify/toxiproxy/v2"
TOXIPROXY_PACKAGE: Final = f"{TOXIPROXY_MODULE}/cmd/server"
# The newest v2 release the Go module proxy serves (`go list -m -versions github.com/Shopify/toxiproxy/v2`).
TOXIPROXY_VERSION: Final = "v2.5.0"
_BUILD_TIMEOUT_SECONDS: Final = 15 * 60
_API_TIMEOUT_SECONDS: Final = 5.0

Stream = Literal["downstream", "upstream"]

# No proxy, ever, for a call to 127.0.0.1 (HTTP_PROXY in the environment must not capture it).
_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def binary_path(cache: Path | None = None, version: str = TOXIPROXY_VERSION) -> Path:
    """Where ``build`` puts the server binary: ``<cache_dir>/toxiproxy/<version>/server``."""
    return (cache or cache_dir()) / "toxiproxy" / version / "server"


def go_environment(cache: Path | None = None, version: str = TOXIPROXY_VERSION) -> dict[str, str]:
    """The environment of the ``go install``: every Go cache and the binary inside the project cache."""
    root = cache or cache_dir()
    return {
        **os.environ,
        "GOBIN": str(binary_path(root, version).parent),
        "GOPATH": str(root / "go"),
        "GOMODCACHE": str(root / "go" / "mod"),
        "GOCACHE": str(root / "go" / "build"),
        "GOFLAGS": "-modcacherw",  # a module cache that `make clean` or rm -rf can delete
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }


def build(cache: Path | None = None, *, version: str = TOXIPROXY_VERSION, go: str | None = None) -> Path:
    """The Toxiproxy server binary, built with the machine's Go when it is not in the cache yet.

    Raises:
        DependencyResolutionError: Go is not installed, or the build failed (the message has Go's output).
    """
    target = binary_path(cache, version)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go_binary = go or shutil.which("go")
    if go_binary is None:
        raise DependencyResolutionError(
            "the chaos experiments need Toxiproxy, built with Go, and `go` is not on PATH: install Go "
            "(https://go.dev/doc/install, or Debian's golang-go), then run `make toxiproxy`")
    command = [go_binary, "install", f"{TOXIPROXY_PACKAGE}@{version}"]
    logger.info("building Toxiproxy %s with %s into %s", version, go_binary, target.parent)
    try:
        done = subprocess.run(command, env=go_environment(cache, version), capture_output=True, text=True,
                              timeout=_BUILD_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyResolutionError(f"`{' '.join(command)}` failed: {exc}") from exc
    if done.returncode != 0 or not target.is_file():
        raise DependencyResolutionError(
            f"`{' '.join(command)}` exited with {done.returncode}; Go said:\n{done.stderr[-4000:]}\n"
            "Check that the Go module proxy is reachable (GOPROXY), then run `make toxiproxy` again.")
    return target


def _request(method: str, url: str, body: Mapping[str, Any] | None = None) -> bytes:
    if not url.startswith("http://"):
        raise ServiceError(f"the Toxiproxy API is plain HTTP on 127.0.0.1, not {url!r}")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with _DIRECT.open(request, timeout=_API_TIMEOUT_SECONDS) as response:
            payload: bytes = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ServiceError(f"Toxiproxy {method} {url} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceError(f"Toxiproxy {method} {url} failed: {exc}") from exc
    return payload


def _call(method: str, url: str, body: Mapping[str, Any] | None = None) -> Any:
    payload = _request(method, url, body)
    try:
        return json.loads(payload) if payload.strip() else None
    except ValueError as exc:
        raise ServiceError(f"Toxiproxy {method} {url} answered something that is not JSON: {payload[:200]!r}") from exc


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy of the server: clients connect to ``listen`` and reach ``upstream`` through the toxics."""

    name: str
    listen: str  # host:port
    upstream: str  # host:port

    @property
    def url(self) -> str:
        """``http://<listen>``: an endpoint URL that goes through the proxy."""
        return f"http://{self.listen}"


class Toxiproxy:
    """The HTTP API of a running Toxiproxy server at ``api_url``."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")

    def version(self) -> str:
        """The server's version text (``git`` for a build from the module proxy, which sets no version)."""
        return _request("GET", f"{self.api_url}/version").decode(errors="replace").strip()

    def create_proxy(self, name: str, upstream: str, *, listen: str = f"{LOCALHOST}:0") -> Proxy:
        """A new enabled proxy ``name`` from ``listen`` (default: a free port of 127.0.0.1) to ``upstream``."""
        made = _call("POST", f"{self.api_url}/proxies", {"name": name, "listen": listen, "upstream": upstream,
                                                          "enabled": True})
        return Proxy(name=made["name"], listen=made["listen"], upstream=made["upstream"])

    def delete_proxy(self, name: str) -> None:
        _call("DELETE", f"{self.api_url}/proxies/{name}")

    def add_toxic(self, proxy: str, name: str, kind: str, attributes: Mapping[str, int | float], *,
                  stream: Stream = "downstream", toxicity: float = 1.0) -> None:
        """Add toxic ``name`` of type ``kind`` (``latency``, ``timeout``, ``reset_peer``, ...) to ``proxy``;
        ``toxicity``: the probability that it applies to a connection."""
        _call("POST", f"{self.api_url}/proxies/{proxy}/toxics",
              {"name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": dict(attributes)})

    def remove_toxic(self, proxy: str, name: str) -> None:
        _call("DELETE", f"{self.api_url}/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = _call("GET", f"{self.api_url}/proxies/{proxy}/toxics")
        return found

    def reset(self) -> None:
        """Remove every toxic and enable every proxy."""
        _call("POST", f"{self.api_url}/reset")

    @contextlib.contextmanager
    def toxic(self, proxy: str, name: str, kind: str, attributes: Mapping[str, int | float], *,
              stream: Stream = "downstream", toxicity: float = 1.0) -> Iterator[None]:
        """The toxic applies for the ``with`` block, and is removed after it (even on an error)."""
        self.add_toxic(proxy, name, kind, attributes, stream=stream, toxicity=toxicity)
        try:
            yield
        finally:
            self.remove_toxic(proxy, name)


class ToxiproxyServer(ManagedProcess):
    """The Toxiproxy server on a free port of 127.0.0.1, as a child process in its own process group."""

    SERVICE = "Toxiproxy server"
    READY_TIMEOUT_SECONDS = 30.0

    def __init__(self, *, binary: Path | None = None, logs_dir: Path | None = None, port: int | None = None) -> None:
        """``binary``: the server (default: ``build()``, which builds it on first use)."""
        super().__init__()
        self._binary = binary
        self.logs_dir = (logs_dir or default_logs_dir()).resolve()
        self.log_file = self.logs_dir / "toxiproxy.log"
        self._requested_port = port
        self._port: int | None = None

    @property
    def api_url(self) -> str:
        if self._port is None:
            raise ServiceError("the Toxiproxy server has not been started")
        return f"http://{LOCALHOST}:{self._port}"

    @property
    def api(self) -> Toxiproxy:
        return Toxiproxy(self.api_url)

    def start(self) -> None:
        self._ensure_not_running()
        binary = self._binary or build()
        self._port = self._requested_port or free_port()
        self._process = spawn([str(binary), "-host", LOCALHOST, "-port", str(self._port)],
                              log_file=self.log_file, cwd=self.logs_dir)
        logger.info("started Toxiproxy pid %d, API %s, log %s", self._process.pid, self.api_url, self.log_file)

    def _ready(self) -> bool:
        try:
            self.api.version()
        except ServiceError:
            return False
        return True

    def _diagnostics(self) -> str:
        return f"--- {self.log_file} (tail) ---\n{tail(self.log_file)}"


def main() -> int:
    """``python -m devkit.chaos.toxiproxy``: build the server into the cache (a no-op when it is there)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        path = build()
    except DependencyResolutionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Toxiproxy {TOXIPROXY_VERSION}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
