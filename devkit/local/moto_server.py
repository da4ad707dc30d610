"""moto in server mode: every AWS API the platform uses (S3, DynamoDB, Glue, SNS, SQS, CloudWatch,
Athena, ...) on one HTTP port of 127.0.0.1, reached through ``AWS_ENDPOINT_URL``.

Runs ``python -m moto.server -H 127.0.0.1 -p <port>`` with this interpreter, in its own process group.
moto's default host is 0.0.0.0, hence the explicit ``-H``. State is in memory: it is lost on stop.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from dataforge.errors import ServiceError
from devkit.local import AWS_ENV_TO_CLEAR, FAKE_AWS_ENV, LOCALHOST, free_port, spawn, tail
from devkit.local.process import ManagedProcess
from devkit.paths import logs_dir as default_logs_dir

logger = logging.getLogger(__name__)

MODULE: Final = "moto.server"
READY_PATH: Final = "/moto-api/config"  # cheap, moto-specific JSON: proves it is moto answering
DEFAULT_READY_TIMEOUT: Final = 60.0
DEFAULT_STOP_TIMEOUT: Final = 10.0
__all__ = ["DEFAULT_READY_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "MotoServer", "probe"]

# No proxy, ever, for a probe of 127.0.0.1 (HTTP_PROXY in the environment must not capture it).
_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe(endpoint_url: str, timeout: float = 2.0) -> bool:
    """Whether a moto server answers at ``endpoint_url`` within ``timeout``."""
    try:
        with _DIRECT.open(endpoint_url.rstrip("/") + READY_PATH, timeout=timeout) as response:
            body = response.read()
    except (urllib.error.URLError, OSError):
        return False
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


class MotoServer(ManagedProcess):
    """A moto server on a free port of 127.0.0.1, as a child process in its own process group."""

    SERVICE = "moto server"
    READY_TIMEOUT_SECONDS = DEFAULT_READY_TIMEOUT
    STOP_TIMEOUT_SECONDS = DEFAULT_STOP_TIMEOUT

    def __init__(
        self,
        *,
        logs_dir: Path | None = None,
        port: int | None = None,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``env``: extra variables for the server process (e.g. ``MOTO_ACCOUNT_ID``, the account of
        the ARNs it returns)."""
        super().__init__()
        self._extra_env = dict(env or {})
        self.logs_dir = (logs_dir or default_logs_dir()).resolve()
        self.log_file = self.logs_dir / "moto.log"
        self._requested_port = port
        self._python = python or sys.executable
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServiceError("the moto server has not been started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: the value of ``AWS_ENDPOINT_URL`` for clients."""
        return f"http://{LOCALHOST}:{self.port}"

    def command(self) -> list[str]:
        return [self._python, "-m", MODULE, "-H", LOCALHOST, "-p", str(self.port)]

    def start(self) -> None:
        """Launch the server (returns at once; see :meth:`wait_ready`)."""
        self._ensure_not_running()
        self._port = self._requested_port or free_port()
        # moto never needs real credentials: make sure none leak into, or are looked up by, the server.
        env = {name: value for name, value in os.environ.items() if name not in AWS_ENV_TO_CLEAR}
        env.update(FAKE_AWS_ENV)
        env.update(self._extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        self._process = spawn(self.command(), log_file=self.log_file, cwd=self.logs_dir, env=env)
        logger.info("started moto server pid %d on %s, log %s", self._process.pid, self.endpoint_url, self.log_file)

    def _ready(self) -> bool:
        return probe(self.endpoint_url, timeout=1.0)

    def _diagnostics(self) -> str:
        return f"--- {self.log_file} (tail) ---\n{tail(self.log_file)}"
