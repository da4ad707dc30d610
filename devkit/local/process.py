"""The lifecycle every embedded service shares: a child process in its own process group, started,
waited for until it answers, stopped (and its whole group reaped), usable as a context manager.

A service (``MotoServer``, ``KafkaBroker``) names itself, launches its process in ``start`` (through
``_launch``), and says how to tell it is ready (``_ready``) and what to show when it is not
(``_diagnostics``); this class does the rest the same way for all of them.
"""

from __future__ import annotations

import logging
import subprocess
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self

from dataforge.errors import ServiceError
from devkit.local import pid_alive, terminate_group

logger = logging.getLogger(__name__)


class ManagedProcess(ABC):
    """One local service process. Subclasses set ``SERVICE`` (``"moto server"``), the ready timeout
    and poll interval, and implement ``start``, ``_ready`` and ``_diagnostics``."""

    SERVICE: ClassVar[str]
    READY_TIMEOUT_SECONDS: ClassVar[float]
    READY_POLL_SECONDS: ClassVar[float] = 0.1
    STOP_TIMEOUT_SECONDS: ClassVar[float] = 10.0

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @abstractmethod
    def start(self) -> None:
        """Launch the process (returns at once; see :meth:`wait_ready`)."""

    @abstractmethod
    def _ready(self) -> bool:
        """Whether the started service answers (one quick probe)."""

    @abstractmethod
    def _diagnostics(self) -> str:
        """What to show when the service failed to start: the tails of its logs."""

    def _ensure_not_running(self) -> None:
        if self.running:
            raise ServiceError(f"the {self.SERVICE} is already running (pid {self.pid})")

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServiceError(f"the {self.SERVICE} has not been started")
        return self._process

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the service answers (``timeout`` defaults to the service's ``READY_TIMEOUT_SECONDS``).

        Raises:
            ServiceError: the process exited, or the service did not answer within ``timeout`` seconds.
        """
        timeout = self.READY_TIMEOUT_SECONDS if timeout is None else timeout
        process = self._started()
        started = time.monotonic()
        deadline = started + timeout
        while True:
            code = process.poll()
            if code is not None:
                raise ServiceError(f"the {self.SERVICE} exited with code {code} while starting.\n{self._diagnostics()}")
            if self._ready():
                logger.info("%s ready in %.1fs", self.SERVICE, time.monotonic() - started)
                return
            if time.monotonic() >= deadline:
                raise ServiceError(f"the {self.SERVICE} was not ready within {timeout:.0f}s.\n{self._diagnostics()}")
            time.sleep(self.READY_POLL_SECONDS)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (default: the service's ``STOP_TIMEOUT_SECONDS``);
        reaps the process group. A no-op when not started."""
        process = self._process
        if process is None:
            return
        terminate_group(process.pid, timeout=self.STOP_TIMEOUT_SECONDS if timeout is None else timeout,
                        name=self.SERVICE, process=process)
        if pid_alive(process.pid):  # pragma: no cover - terminate_group raises first
            raise ServiceError(f"the {self.SERVICE} (pid {process.pid}) survived stop()")
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
