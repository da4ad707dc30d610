"""The embedded local platform: real services started by the project itself, bound to 127.0.0.1.

- :mod:`devkit.local.maven`: resolves a service's jars from Maven Central into ``.cache/jars``.
- :mod:`devkit.local.kafka`: an Apache Kafka broker in KRaft mode (``KafkaBroker``) and topic admin.
- :mod:`devkit.local.moto_server`: moto in server mode (``MotoServer``), every AWS API on one port.
- :mod:`devkit.local.services`: ``dataforge services up|down|status`` (detached services + state file).

This module holds the few constants and process primitives those share. It imports the standard library only, so
importing any submodule stays cheap; the submodules are not imported here on purpose (``kafka`` needs
``confluent_kafka``, which is not part of the lean core).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final

from dataforge import envvars
from dataforge.errors import ServiceError
from dataforge.lake import DEFAULT_PREFIX, TRANSACTIONS_TOPIC, SupportBucket, Zone, bucket_name
from dataforge.settings import LOCAL_ENV

logger = logging.getLogger(__name__)

LOCALHOST: Final = "127.0.0.1"
"""Every embedded service binds here, never on a public interface."""

LOCAL_AWS_REGION: Final = "us-east-1"
TRANSACTIONS_PARTITIONS: Final = 3
"""Partitions of the ``transactions`` topic on the embedded broker."""

# Standard AWS SDK variables that ``dataforge.envvars`` does not (yet) name.
AWS_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
AWS_DEFAULT_REGION: Final = "AWS_DEFAULT_REGION"
AWS_SESSION_TOKEN: Final = "AWS_SESSION_TOKEN"  # noqa: S105 - a variable name
AWS_PROFILE: Final = "AWS_PROFILE"

FAKE_ACCESS_KEY_ID: Final = "testing"
FAKE_SECRET_ACCESS_KEY: Final = "testing"  # noqa: S105 - the moto server accepts any credentials
FAKE_AWS_ENV: Final[Mapping[str, str]] = MappingProxyType(
    {
        AWS_ACCESS_KEY_ID: FAKE_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: FAKE_SECRET_ACCESS_KEY,
        envvars.AWS_REGION: LOCAL_AWS_REGION,
        AWS_DEFAULT_REGION: LOCAL_AWS_REGION,
    }
)
"""Fake credentials and region for clients of the embedded moto server (never real AWS)."""

AWS_ENV_TO_CLEAR: Final = frozenset({AWS_PROFILE, AWS_SESSION_TOKEN, envvars.AWS_ENDPOINT_URL})
"""Variables that would steer an SDK elsewhere (a real profile, a session token, another endpoint)."""

_KILL_WAIT_SECONDS: Final = 10.0

_ZONE_BUCKET_VARS: Final[Mapping[Zone, str]] = {
    Zone.LANDING: envvars.LANDING_BUCKET, Zone.BRONZE: envvars.BRONZE_BUCKET,
    Zone.QUARANTINE: envvars.QUARANTINE_BUCKET, Zone.SILVER: envvars.SILVER_BUCKET, Zone.GOLD: envvars.GOLD_BUCKET,
}


def local_environment(
    *,
    endpoint_url: str,
    kafka_bootstrap_servers: str,
    prefix: str = DEFAULT_PREFIX,
    api_key: str = "local-dev-key",
    api_url: str = "http://127.0.0.1:8000",
) -> dict[str, str]:
    """The embedded platform's runtime environment: what Pulumi outputs wire in on AWS, with the fake
    credentials of the moto server."""
    env = LOCAL_ENV
    values = {
        **FAKE_AWS_ENV,
        envvars.ENV: env,
        envvars.NAME_PREFIX: prefix,
        envvars.AWS_ENDPOINT_URL: endpoint_url,
        envvars.KAFKA_BOOTSTRAP_SERVERS: kafka_bootstrap_servers,
        envvars.KAFKA_TOPIC: TRANSACTIONS_TOPIC,
        envvars.GLUE_DATABASE_PREFIX: f"{prefix}_{env}".replace("-", "_"),
        envvars.QUERY_ENGINE: "duckdb",
        envvars.METRICS_TABLE: f"{prefix}-{env}-metrics",
        envvars.ALERTS_TABLE: f"{prefix}-{env}-alerts",
        envvars.API_KEY: api_key,
        envvars.API_URL: api_url,
        envvars.ARTIFACTS_BUCKET: bucket_name(prefix, env, SupportBucket.ARTIFACTS),
        envvars.ATHENA_RESULTS_BUCKET: bucket_name(prefix, env, SupportBucket.ATHENA_RESULTS),
    }
    for zone, variable in _ZONE_BUCKET_VARS.items():
        values[variable] = bucket_name(prefix, env, zone)
    return values


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it; a tiny race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def process_cmdline(pid: int) -> list[str] | None:
    """The command line of a live process (Linux ``/proc``), or None when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # zombies and kernel threads have an empty command line
        return None
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state follows the parenthesised command name, which may itself contain spaces
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process; reaps it when it is a dead child of ours (no zombies)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: someone else reaps it
        pass
    else:
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not _is_zombie(pid)


def cmdline_matches(pid: int, needles: Sequence[str]) -> bool:
    """Whether the live process ``pid`` has every one of ``needles`` in its command line.

    Guards against pid reuse before signalling a pid read back from a state file.
    """
    cmdline = process_cmdline(pid)
    if cmdline is None:
        return False
    joined = " ".join(cmdline)
    return all(needle in joined for needle in needles)


def _wait_dead(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if process is not None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is already gone
        os.killpg(pgid, sig)


def terminate_group(
    pid: int,
    *,
    timeout: float,
    name: str,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop a process started in its own session (pid == process group id) and reap the group.

    SIGTERM to the group, wait up to ``timeout`` for the leader, then SIGKILL to whatever is left of
    the group. Pass ``process`` when this interpreter started it, so that it is waited for (reaped).
    """
    if not pid_alive(pid):
        return  # long gone: its pid (and group id) may belong to someone else by now
    logger.info("stopping %s (pid %d)", name, pid)
    _signal_group(pid, signal.SIGTERM)
    if not _wait_dead(pid, process, timeout):
        logger.warning("%s (pid %d) ignored SIGTERM for %.0fs; sending SIGKILL", name, pid, timeout)
        _signal_group(pid, signal.SIGKILL)
        if not _wait_dead(pid, process, _KILL_WAIT_SECONDS):
            raise ServiceError(f"{name} (pid {pid}) is still alive after SIGKILL")
    _signal_group(pid, signal.SIGKILL)  # any straggler of the group the leader just left


def spawn(
    command: Sequence[str],
    *,
    log_file: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` detached from our terminal: own session and process group, stdin closed,
    stdout and stderr appended to ``log_file``. It survives the exit of this interpreter."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        try:
            return subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceError(f"could not start {command[0]!r}: {exc}") from exc


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(lock_file: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) held for the ``with`` block, across processes."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
