"""``dataforge services up|down|status``: the embedded platform's long-running services.

``up()`` starts a moto server and a Kafka broker detached from the caller (own sessions: they outlive
the CLI), creates the ``transactions`` topic, and records pids, ports and endpoints in
``state_dir()/services.json``. ``status()`` trusts that file only after checking each pid is still the
process it recorded (pid reuse) *and* that the service answers. ``down()`` stops them and removes the
file. Kafka's data (``state_dir()/kafka``) survives ``down``; moto's in-memory state does not.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, TypedDict, cast

from botocore.exceptions import BotoCoreError, ClientError

from dataforge import envvars
from dataforge.errors import ServiceError
from dataforge.lake import DEFAULT_PREFIX, TRANSACTIONS_TOPIC, Zone
from dataforge.settings import LOCAL_ENV
from devkit.local import (
    FAKE_ACCESS_KEY_ID,
    FAKE_AWS_ENV,
    FAKE_SECRET_ACCESS_KEY,
    LOCAL_AWS_REGION,
    TRANSACTIONS_PARTITIONS,
    cmdline_matches,
    file_lock,
    local_environment,
    terminate_group,
)
from devkit.local import kafka as kafka_module
from devkit.local import moto_server as moto_module
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.maven import resolve_jars
from devkit.local.moto_server import MotoServer
from devkit.paths import logs_dir, state_dir

logger = logging.getLogger(__name__)

#: Loopback requests go direct, never through a proxy the developer's shell may configure.
_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))

STATE_FILE_NAME: Final = "services.json"
STATE_VERSION: Final = 1
DEFAULT_READY_TIMEOUT: Final = 180.0

ServiceName = Literal["moto", "kafka"]
Progress = Callable[[str], None]
"""Called with a short description of each step ``up()`` enters (e.g. to drive a spinner)."""


class MotoState(TypedDict):
    pid: int
    port: int
    endpoint_url: str
    log_file: str


class KafkaState(TypedDict):
    pid: int
    port: int
    controller_port: int
    bootstrap_servers: str
    config_file: str
    data_dir: str
    log_file: str


class ServicesState(TypedDict):
    """The JSON shape of ``services.json``."""

    version: int
    started_at: str
    complete: bool
    """False while ``up()`` is still waiting for the services (then True): a file left incomplete
    means the process that ran ``up()`` died, and its services are leftovers to stop."""
    moto: MotoState
    kafka: KafkaState


@dataclass(frozen=True)
class ServiceStatus:
    name: ServiceName
    running: bool
    """The recorded pid is alive and still runs this service."""
    ready: bool
    """The service answers (HTTP for moto, a metadata request for Kafka)."""
    endpoint: str | None
    pid: int | None
    log_file: str | None

    @property
    def state(self) -> Literal["running", "unresponsive", "stopped"]:
        if not self.running:
            return "stopped"
        return "running" if self.ready else "unresponsive"


@dataclass(frozen=True)
class UpResult:
    state: ServicesState
    already_running: bool
    created_topics: tuple[str, ...] = ()


def state_file() -> Path:
    return state_dir() / STATE_FILE_NAME


def _lock_file() -> Path:
    return state_dir() / ".services.lock"


def read_state(path: Path | None = None) -> ServicesState | None:
    """The recorded services, or None when nothing was started (no state file).

    Raises:
        ServiceError: the file exists but is not a state file this version understands.
    """
    path = path or state_file()
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ServiceError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ServiceError(
            f"{path} is not valid JSON ({exc}); check that no service is running, then delete it"
        ) from exc
    if not (
        isinstance(data, dict)
        and data.get("version") == STATE_VERSION
        and isinstance(data.get("moto"), dict)
        and isinstance(data.get("kafka"), dict)
    ):
        raise ServiceError(
            f"{path} is not a version-{STATE_VERSION} services state file; "
            "check that no service is running, then delete it"
        )
    return cast(ServicesState, data)  # top-level shape checked above; written only by _write_state


def _write_state(state: ServicesState, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(temporary, path)


def _moto_alive(state: MotoState) -> bool:
    return cmdline_matches(state["pid"], [moto_module.MODULE, f"-p {state['port']}"])


def _kafka_alive(state: KafkaState) -> bool:
    return cmdline_matches(state["pid"], [kafka_module.MAIN_CLASS, state["config_file"]])


def _moto_status(state: MotoState | None) -> ServiceStatus:
    if state is None:
        return ServiceStatus("moto", False, False, None, None, str(logs_dir() / "moto.log"))
    running = _moto_alive(state)
    ready = running and moto_module.probe(state["endpoint_url"])
    return ServiceStatus("moto", running, ready, state["endpoint_url"], state["pid"], state["log_file"])


def _kafka_status(state: KafkaState | None) -> ServiceStatus:
    if state is None:
        return ServiceStatus("kafka", False, False, None, None, str(logs_dir() / "kafka.log"))
    running = _kafka_alive(state)
    ready = running and kafka_module.probe(state["bootstrap_servers"])
    return ServiceStatus("kafka", running, ready, state["bootstrap_servers"], state["pid"], state["log_file"])


def status() -> list[ServiceStatus]:
    """Each service: running (its recorded pid is alive and still that service) and ready (answers)."""
    state = read_state()
    return [
        _moto_status(None if state is None else state["moto"]),
        _kafka_status(None if state is None else state["kafka"]),
    ]


def _statuses(state: ServicesState) -> list[ServiceStatus]:
    return [_moto_status(state["moto"]), _kafka_status(state["kafka"])]


def _stop_recorded(state: ServicesState, timeout: float) -> list[ServiceName]:
    """Stop whatever of ``state`` still runs (Kafka first: clients may be mid-flight on moto)."""
    stopped: list[ServiceName] = []
    kafka_state, moto_state = state["kafka"], state["moto"]
    if _kafka_alive(kafka_state):
        terminate_group(kafka_state["pid"], timeout=timeout, name="Kafka broker")
        stopped.append("kafka")
    if _moto_alive(moto_state):
        moto_timeout = min(timeout, moto_module.DEFAULT_STOP_TIMEOUT)
        terminate_group(moto_state["pid"], timeout=moto_timeout, name="moto server")
        stopped.append("moto")
    return stopped


def _noop(_: str) -> None:
    return None


def up(progress: Progress = _noop, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> UpResult:
    """Start moto and Kafka detached, create the ``transactions`` topic, record them; idempotent.

    When everything recorded is already running and answering, nothing is started
    (``already_running``). Leftovers of a partial or crashed start are stopped first. When a step
    fails (or is interrupted), whatever this call started is stopped again before the error propagates.

    Raises:
        DependencyResolutionError: the Kafka jars cannot be resolved.
        ServiceError: a service did not start or answer in time.
    """
    with file_lock(_lock_file()):
        path = state_file()
        previous = read_state(path)
        if previous is not None:
            statuses = _statuses(previous)
            complete = previous.get("complete") is True
            if complete and all(item.state == "running" for item in statuses):
                return UpResult(previous, already_running=True)
            if complete and all(item.running for item in statuses):
                # alive but not answering: maybe busy, maybe wedged; never kill it behind the user's back
                logs = ", ".join(f"{item.name}: {item.log_file}" for item in statuses if not item.ready)
                raise ServiceError(
                    f"the services are running but not answering (logs: {logs}); "
                    "retry shortly, or run `dataforge services down` and then `up` again"
                )
            progress("Stopping leftovers of a previous start")
            _stop_recorded(previous, kafka_module.DEFAULT_STOP_TIMEOUT)
            path.unlink(missing_ok=True)

        progress("Resolving Kafka jars (the first run downloads them from Maven Central)")
        jars = resolve_jars(kafka_module.JAR_BUNDLE)

        moto = MotoServer(logs_dir=logs_dir())
        broker = KafkaBroker(state_dir() / "kafka", logs_dir=logs_dir(), jars=jars)
        started = time.monotonic()
        try:
            progress("Starting Kafka broker and moto server")
            broker.start()  # the slow part (a first start formats the storage) before moto is spawned
            moto.start()
            # recorded at once: should this process die while waiting, `down` or the next `up` finds them
            _write_state(_state_of(moto, broker, complete=False), path)
            progress("Waiting for the moto server to answer")
            moto.wait_ready(timeout=ready_timeout)
            progress("Waiting for the Kafka broker to answer")
            broker.wait_ready(timeout=max(1.0, ready_timeout - (time.monotonic() - started)))
            progress(f"Creating topic {TRANSACTIONS_TOPIC}")
            created = create_topics(broker.bootstrap_servers, {TRANSACTIONS_TOPIC: TRANSACTIONS_PARTITIONS})
            state = _state_of(moto, broker, complete=True)
            _write_state(state, path)
        except BaseException:
            # not swallowed: whatever we started must not outlive a failed (or interrupted) start
            broker.stop()
            moto.stop()
            path.unlink(missing_ok=True)
            raise
        logger.info("services up in %.1fs: %s", time.monotonic() - started, state)
        return UpResult(state, already_running=False, created_topics=tuple(created))


def _state_of(moto: MotoServer, broker: KafkaBroker, *, complete: bool) -> ServicesState:
    moto_pid, broker_pid = moto.pid, broker.pid
    if moto_pid is None or broker_pid is None:
        raise ServiceError("a service stopped while its state was being recorded")
    return {
        "version": STATE_VERSION,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": complete,
        "moto": {
            "pid": moto_pid,
            "port": moto.port,
            "endpoint_url": moto.endpoint_url,
            "log_file": str(moto.log_file),
        },
        "kafka": {
            "pid": broker_pid,
            "port": broker.port,
            "controller_port": broker.controller_port,
            "bootstrap_servers": broker.bootstrap_servers,
            "config_file": str(broker.config_file),
            "data_dir": str(broker.data_dir),
            "log_file": str(broker.log_file),
        },
    }


def down(timeout: float = kafka_module.DEFAULT_STOP_TIMEOUT) -> list[ServiceName]:
    """Stop the recorded services (SIGTERM, SIGKILL after ``timeout``) and remove the state file.

    Returns the services that were actually running (empty when nothing was up).
    """
    with file_lock(_lock_file()):
        path = state_file()
        state = read_state(path)
        if state is None:
            return []
        stopped = _stop_recorded(state, timeout)
        path.unlink(missing_ok=True)
        return stopped


def client_env(
    *,
    aws_endpoint_url: str | None = None,
    kafka_bootstrap_servers: str | None = None,
) -> dict[str, str]:
    """Environment variables pointing AWS SDKs and DataForge at the embedded services."""
    env: dict[str, str] = {}
    if aws_endpoint_url is not None:
        env[envvars.AWS_ENDPOINT_URL] = aws_endpoint_url
        env.update(FAKE_AWS_ENV)
    if kafka_bootstrap_servers is not None:
        env[envvars.KAFKA_BOOTSTRAP_SERVERS] = kafka_bootstrap_servers
    return env


def service_env(state: ServicesState) -> dict[str, str]:
    """What a client of the running services needs: ``AWS_ENDPOINT_URL``, fake credentials and region,
    and ``DATAFORGE_KAFKA_BOOTSTRAP_SERVERS``."""
    return client_env(
        aws_endpoint_url=state["moto"]["endpoint_url"],
        kafka_bootstrap_servers=state["kafka"]["bootstrap_servers"],
    )


# --- `dataforge services env`: the whole platform's environment, read from what runs -------------


@dataclass(frozen=True)
class PlatformEnv:
    """What ``dataforge services env`` prints: the variables, and notes for the user (stderr)."""

    env: dict[str, str]
    notes: tuple[str, ...]
    prefix: str


def lake_prefixes(bucket_names: list[str]) -> list[str]:
    """Name prefixes of the embedded platform's lakes on the moto server: those with every zone bucket
    ``{prefix}-local-{zone}`` (``dataforge.lake.bucket_name``)."""
    names = set(bucket_names)
    suffix = f"-{LOCAL_ENV}-{Zone.BRONZE.value}"
    candidates = {name[: -len(suffix)] for name in names if name.endswith(suffix)}
    return sorted(p for p in candidates if all(f"{p}-{LOCAL_ENV}-{zone.value}" in names for zone in Zone))


def api_answers(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a DataForge API answers ``GET <api_url>/v1/health`` (no API key needed) on loopback."""
    try:
        with _DIRECT.open(api_url.rstrip("/") + "/v1/health", timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _choose_prefix(found: list[str], wanted: str | None) -> tuple[str, list[str]]:
    if wanted:
        notes = [] if wanted in found else [
            f"no lake named {wanted!r} on the moto server yet (`dataforge run` creates it)"]
        return wanted, notes
    if not found:
        return DEFAULT_PREFIX, ["no lake on the moto server yet: `dataforge run` creates it (the names below "
                                f"are the default prefix {DEFAULT_PREFIX!r}'s)"]
    if DEFAULT_PREFIX in found:
        return DEFAULT_PREFIX, []
    if len(found) == 1:
        return found[0], []
    raise ServiceError(f"the moto server holds several lakes ({', '.join(found)}): choose one with --prefix")


def platform_env(
    state: ServicesState,
    *,
    prefix: str | None = None,
    api_url: str | None = None,
    bucket_names: Callable[[str], list[str]] | None = None,
    api_probe: Callable[[str], bool] = api_answers,
) -> PlatformEnv:
    """Every variable a tool needs to use the running embedded platform (``local_environment``), read from
    what runs: the endpoint and broker from ``state``, the lake's name prefix from the buckets on the moto
    server (``prefix`` chooses one when several exist), the API's URL and key only when an API answers at
    ``api_url`` (default: the local default URL), and ``DATAFORGE_HOME`` so that ``services`` commands find
    the same state.

    Raises:
        ServiceError: the moto server does not answer, or holds several lakes and ``prefix`` is not given.
    """
    endpoint, kafka = state["moto"]["endpoint_url"], state["kafka"]["bootstrap_servers"]
    try:
        found = lake_prefixes((bucket_names or _bucket_names)(endpoint))
    except (BotoCoreError, ClientError) as exc:
        raise ServiceError(f"the moto server at {endpoint} does not answer ({exc}); "
                           "check `dataforge services status`") from exc
    chosen, notes = _choose_prefix(found, prefix)
    env = local_environment(endpoint_url=endpoint, kafka_bootstrap_servers=kafka, prefix=chosen)
    url = api_url or env[envvars.API_URL]
    key = env.pop(envvars.API_KEY)
    env.pop(envvars.API_URL)
    if api_probe(url):
        env[envvars.API_URL], env[envvars.API_KEY] = url, key
    else:
        notes.append(f"no API answers at {url}: DATAFORGE_API_URL and DATAFORGE_API_KEY are not set "
                     "(`dataforge run` or `dataforge api serve` serves it)")
    env[envvars.HOME] = str(state_dir())
    return PlatformEnv(env, tuple(notes), chosen)


def _bucket_names(endpoint_url: str) -> list[str]:
    import boto3

    s3 = boto3.Session(aws_access_key_id=FAKE_ACCESS_KEY_ID, aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
                       region_name=LOCAL_AWS_REGION).client("s3", endpoint_url=endpoint_url)
    return [str(bucket["Name"]) for bucket in s3.list_buckets().get("Buckets", [])]
