"""A real Apache Kafka broker for the embedded platform: KRaft mode, one combined broker+controller.

The jars come from Maven Central (``build/maven/kafka-broker/pom.xml``, see
:mod:`devkit.local.maven`); the broker runs as ``java -cp '<jars>/*' kafka.Kafka server.properties``
in its own process group, with both listeners (PLAINTEXT for clients, CONTROLLER for the KRaft quorum)
on free ports of 127.0.0.1. The storage is formatted on first start only, so topics and data survive
restarts of the same ``base_dir`` (even on new ports: the quorum is static, from the config).

Layout of ``base_dir`` (default ``state_dir()/kafka``)::

    server.properties   generated at every start (ports change)
    log4j2.xml          the broker's logging: to ``<logs_dir>/kafka.log`` only
    data/               log.dirs + the KRaft metadata log (formatted once)
"""

from __future__ import annotations

import base64
import concurrent.futures
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final
from xml.sax.saxutils import quoteattr

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # where it is defined (the admin module does not re-export it)

from dataforge.errors import ServiceError
from devkit.local import LOCALHOST, free_port, port_open, spawn, tail
from devkit.local.maven import resolve_jars
from devkit.local.process import ManagedProcess
from devkit.paths import logs_dir as default_logs_dir
from devkit.paths import state_dir

logger = logging.getLogger(__name__)
_librdkafka_logger = logging.getLogger(f"{__name__}.librdkafka")

JAR_BUNDLE: Final = "kafka-broker"
MAIN_CLASS: Final = "kafka.Kafka"
STORAGE_TOOL_CLASS: Final = "kafka.tools.StorageTool"
NODE_ID: Final = 1

DEFAULT_HEAP: Final = "512m"
DEFAULT_JVM_OPTIONS: Final = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    # C1 only: starts ~40% faster and uses less CPU on a small machine; ample for local volumes.
    # Pass jvm_options without it to benchmark peak broker throughput.
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
DEFAULT_READY_TIMEOUT: Final = 120.0
DEFAULT_STOP_TIMEOUT: Final = 30.0
_FORMAT_TIMEOUT_SECONDS: Final = 120.0

# Single node: every internal topic with replication 1; no rebalance delay; topics only on purpose.
SINGLE_NODE_PROPERTIES: Final[Mapping[str, str]] = {
    "num.partitions": "3",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "10",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "log.retention.hours": "168",
    "log.segment.bytes": str(64 * 1024 * 1024),
}


def _admin(bootstrap_servers: str) -> AdminClient:
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": bootstrap_servers,
        "socket.connection.setup.timeout.ms": 5000,
    }
    # never librdkafka's default log sink: it writes to our stderr
    return AdminClient(config, logger=_librdkafka_logger)


def probe(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """Whether a broker answers metadata requests at ``bootstrap_servers`` within ``timeout``."""
    try:
        metadata = _admin(bootstrap_servers).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def create_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    replication: int = 1,
    *,
    timeout: float = 30.0,
) -> list[str]:
    """Create ``topics`` (name -> partitions) unless they exist; wait until every partition has a leader.

    Idempotent: a topic that already exists is fine (its partition count is left as it is, with a
    warning when it differs). Returns the names actually created by this call.

    Raises:
        ServiceError: the broker refused a topic or did not answer within ``timeout``.
    """
    if not topics:
        return []
    admin = _admin(bootstrap_servers)
    new_topics = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication) for name, partitions in topics.items()
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout, request_timeout=timeout)
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceError(f"could not create Kafka topic {name!r}: {error.str()}") from exc
            logger.debug("topic %s already exists", name)
        except concurrent.futures.TimeoutError as exc:
            raise ServiceError(f"creating Kafka topic {name!r} timed out after {timeout}s") from exc
        else:
            logger.info("created topic %s (%d partitions)", name, topics[name])
            created.append(name)
    _wait_for_leaders(admin, topics, timeout)
    return created


def _wait_for_leaders(admin: AdminClient, topics: Mapping[str, int], timeout: float) -> None:
    """Block until the metadata shows every topic with all partitions led (producers won't stall)."""
    deadline = time.monotonic() + timeout
    pending = dict(topics)
    while True:
        try:
            metadata = admin.list_topics(timeout=max(0.5, deadline - time.monotonic()))
        except KafkaException as exc:
            raise ServiceError(f"could not read Kafka metadata: {exc}") from exc
        for name in list(pending):
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None or not topic.partitions:
                continue
            if all(partition.leader >= 0 for partition in topic.partitions.values()):
                if len(topic.partitions) != pending[name]:
                    logger.warning(
                        "topic %s exists with %d partitions (asked for %d); left unchanged",
                        name,
                        len(topic.partitions),
                        pending[name],
                    )
                del pending[name]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise ServiceError(f"Kafka topics without leaders after {timeout}s: {sorted(pending)}")
        time.sleep(0.1)


def _java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ServiceError(
            "Java is not installed (no JAVA_HOME, no `java` on PATH); the Kafka broker needs Java 17+ "
            "(e.g. `apt-get install openjdk-17-jre-headless`)."
        )
    return found


def _cluster_id() -> str:
    """A fresh KRaft cluster id, in Kafka's own format (URL-safe base64 of a UUID, no padding)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def log4j2_config(log_file: Path) -> str:
    """A log4j2 configuration sending every broker log line to ``log_file`` (rolled at 20 MB, 3 kept)."""
    name = quoteattr(str(log_file))
    pattern = quoteattr(f"{log_file}.%i")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by devkit.local.kafka: the broker logs to a file, never to the console. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <RollingFile name="file" fileName={name} filePattern={pattern}>
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


class KafkaBroker(ManagedProcess):
    """One Apache Kafka broker+controller (KRaft) on 127.0.0.1, as a child process.

    ``start()`` returns once the JVM is launched; ``wait_ready()`` blocks until it serves metadata.
    Used as a context manager it does both, and ``stop()`` on exit.

    Args:
        base_dir: config and data (default ``state_dir()/kafka``); reused storage keeps its topics.
        logs_dir: where ``kafka.log`` (log4j2) and ``kafka.console.log`` (JVM output) go
            (default ``logs_dir()``).
        jars: the broker classpath (default: ``resolve_jars("kafka-broker")``, cached).
        heap: JVM ``-Xmx``.
        jvm_options: other JVM flags (G1, C1-only compilation for a fast start).
        properties: ``server.properties`` overrides, applied last.
        port, controller_port: fixed listener ports (default: free ports chosen at every start); fixed
            ports let a restarted broker keep the address its clients know.
    """

    SERVICE = "Kafka broker"
    READY_TIMEOUT_SECONDS = DEFAULT_READY_TIMEOUT
    READY_POLL_SECONDS = 0.25
    STOP_TIMEOUT_SECONDS = DEFAULT_STOP_TIMEOUT  # (SIGTERM: a controlled shutdown)

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        logs_dir: Path | None = None,
        jars: Sequence[Path] | None = None,
        heap: str = DEFAULT_HEAP,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
        properties: Mapping[str, str] | None = None,
        port: int | None = None,
        controller_port: int | None = None,
    ) -> None:
        super().__init__()
        self._requested_ports = (port, controller_port)
        self.base_dir = (base_dir or state_dir() / "kafka").resolve()
        self.logs_dir = (logs_dir or default_logs_dir()).resolve()
        self.data_dir = self.base_dir / "data"
        self.config_file = self.base_dir / "server.properties"
        self.log4j_file = self.base_dir / "log4j2.xml"
        self.log_file = self.logs_dir / "kafka.log"
        """The broker's own log (log4j2)."""
        self.console_log = self.logs_dir / "kafka.console.log"
        """The JVM's stdout/stderr (crashes, GC warnings) and the storage tool's output."""
        self._jars = list(jars) if jars is not None else None
        self._heap = heap
        self._jvm_options = list(jvm_options)
        self._properties = dict(properties or {})
        self._port: int | None = None
        self._controller_port: int | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServiceError("the Kafka broker has not been started")
        return self._port

    @property
    def controller_port(self) -> int:
        if self._controller_port is None:
            raise ServiceError("the Kafka broker has not been started")
        return self._controller_port

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>`` of the PLAINTEXT listener."""
        return f"{LOCALHOST}:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Resolve the jars (cached), write the config, format the storage if new, launch the JVM."""
        self._ensure_not_running()
        jars = self._jars if self._jars is not None else resolve_jars(JAR_BUNDLE)
        if not jars:
            raise ServiceError("no jar to put on the Kafka broker's classpath")
        java = _java_executable()
        requested, requested_controller = self._requested_ports
        self._port = requested or free_port()
        self._controller_port = requested_controller or free_port()
        while self._controller_port == self._port and requested_controller is None:
            self._controller_port = free_port()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._server_properties())
        self.log4j_file.write_text(log4j2_config(self.log_file))
        classpath = os.pathsep.join(sorted({str(jar.parent / "*") for jar in jars}))
        if not (self.data_dir / "meta.properties").is_file():
            self._format_storage(java, classpath)
        command = [
            java,
            f"-Xms{min(256, _megabytes(self._heap))}m",
            f"-Xmx{self._heap}",
            *self._jvm_options,
            *self._logging_flags(),
            "-cp",
            classpath,
            MAIN_CLASS,
            str(self.config_file),
        ]
        self._process = spawn(command, log_file=self.console_log, cwd=self.base_dir)
        logger.info(
            "started Kafka broker pid %d on %s (controller :%d), log %s",
            self._process.pid,
            self.bootstrap_servers,
            self.controller_port,
            self.log_file,
        )

    def _ready(self) -> bool:
        """The broker answers a metadata request (AdminClient ``list_topics``)."""
        return port_open(LOCALHOST, self.port) and probe(self.bootstrap_servers, timeout=3.0)

    # -- internals ----------------------------------------------------------------------------

    def _logging_flags(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.logs_dir}",
        ]

    def _server_properties(self) -> str:
        listeners = f"PLAINTEXT://{LOCALHOST}:{self.port},CONTROLLER://{LOCALHOST}:{self.controller_port}"
        settings: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            # A static quorum of this one node: the voter set lives in this file, not in the metadata
            # log, so a restart on new ports just works.
            "controller.quorum.voters": f"{NODE_ID}@{LOCALHOST}:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            **SINGLE_NODE_PROPERTIES,
            **self._properties,
        }
        lines = ["# Generated by devkit.local.kafka at every start; edits are overwritten."]
        lines += [f"{key}={_escape_property(value)}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def _format_storage(self, java: str, classpath: str) -> None:
        """``kafka-storage format`` for a new data dir (static quorum: no ``--standalone``)."""
        command = [
            java,
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            *self._logging_flags(),
            "-cp",
            classpath,
            STORAGE_TOOL_CLASS,
            "format",
            # one token: a URL-safe base64 id may start with "-", which argparse would take for an option
            f"--cluster-id={_cluster_id()}",
            "--config",
            str(self.config_file),
            "--ignore-formatted",
        ]
        logger.info("formatting Kafka storage in %s", self.data_dir)
        try:
            completed = subprocess.run(
                command,
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_FORMAT_TIMEOUT_SECONDS,
                check=False,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"formatting the Kafka storage timed out ({self.data_dir})") from exc
        with self.console_log.open("a") as console:
            console.write(completed.stdout + completed.stderr)
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()
            raise ServiceError(
                f"formatting the Kafka storage in {self.data_dir} failed (exit {completed.returncode}):\n"
                f"{output[-4000:]}"
            )

    def _diagnostics(self) -> str:
        parts = [f"--- {self.console_log} (tail) ---", tail(self.console_log, 20)]
        parts += [f"--- {self.log_file} (tail) ---", tail(self.log_file, 30)]
        return "\n".join(parts)


def _megabytes(size: str) -> int:
    """``"512m"`` -> 512, ``"1g"`` -> 1024 (JVM heap notation)."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    suffix = size[-1].lower()
    if suffix in units:
        return max(1, int(float(size[:-1]) * units[suffix]))
    return max(1, int(size) // (1024 * 1024))


def _escape_property(value: str) -> str:
    """Escape a value for a Java ``.properties`` file (backslashes matter for Windows-style paths)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")
