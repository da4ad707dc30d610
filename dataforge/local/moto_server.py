"""moto in server mode: every AWS API the platform uses (S3, DynamoDB, Glue, SNS, SQS, CloudWatch,
Athena, ...) on one HTTP port of 127.0.0.1, reached through ``AWS_ENDPOINT_URL``.

Runs ``python -m moto.server -H 127.0.0.1 -p <port>`` with this interpreter, in its own process group.
moto's default host is 0.0.0.0, hence the explicit ``-H``. State is in memory: it is lost on stop.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from dataforge.errors import ServiceError
from dataforge.local import (
    AWS_ENV_TO_CLEAR,
    FAKE_AWS_ENV,
    LOCALHOST,
    free_port,
    pid_alive,
    spawn,
    tail,
    terminate_group,
)
from dataforge.paths import logs_dir as default_logs_dir

logger = logging.getLogger(__name__)

MODULE: Final = "moto.server"
READY_PATH: Final = "/moto-api/config"  # cheap, moto-specific JSON: proves it is moto answering
DEFAULT_READY_TIMEOUT: Final = 60.0
DEFAULT_STOP_TIMEOUT: Final = 10.0

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


class MotoServer:
    """A moto server on a free port of 127.0.0.1, as a child process in its own process group."""

    def __init__(
        self,
        *,
        logs_dir: Path | None = None,
        port: int | None = None,
        python: str | None = None,
    ) -> None:
        self.logs_dir = (logs_dir or default_logs_dir()).resolve()
        self.log_file = self.logs_dir / "moto.log"
        self._requested_port = port
        self._python = python or sys.executable
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServiceError("the moto server has not been started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: the value of ``AWS_ENDPOINT_URL`` for clients."""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [self._python, "-m", MODULE, "-H", LOCALHOST, "-p", str(self.port)]

    def start(self) -> None:
        """Launch the server (returns at once; see :meth:`wait_ready`)."""
        if self.running:
            raise ServiceError(f"the moto server is already running (pid {self.pid})")
        self._port = self._requested_port or free_port()
        # moto never needs real credentials: make sure none leak into, or are looked up by, the server.
        env = {name: value for name, value in os.environ.items() if name not in AWS_ENV_TO_CLEAR}
        env.update(FAKE_AWS_ENV)
        env["PYTHONUNBUFFERED"] = "1"
        self._process = spawn(self.command(), log_file=self.log_file, cwd=self.logs_dir, env=env)
        logger.info("started moto server pid %d on %s, log %s", self._process.pid, self.endpoint_url, self.log_file)

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Block until the server answers HTTP.

        Raises:
            ServiceError: the server exited, or did not answer within ``timeout`` seconds.
        """
        process = self._process
        if process is None:
            raise ServiceError("the moto server has not been started")
        started = time.monotonic()
        deadline = started + timeout
        while True:
            code = process.poll()
            if code is not None:
                raise ServiceError(
                    f"the moto server exited with code {code} while starting; {self.log_file}:\n{tail(self.log_file)}"
                )
            if probe(self.endpoint_url, timeout=1.0):
                logger.info("moto server ready in %.1fs", time.monotonic() - started)
                return
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"the moto server did not answer within {timeout:.0f}s; {self.log_file}:\n{tail(self.log_file)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; reaps the process group."""
        process = self._process
        if process is None:
            return
        terminate_group(process.pid, timeout=timeout, name="moto server", process=process)
        if pid_alive(process.pid):  # pragma: no cover - terminate_group raises first
            raise ServiceError(f"the moto server (pid {process.pid}) survived stop()")
        self._process = None

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
