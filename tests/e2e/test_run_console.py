"""`dataforge run` as a user sees it in a terminal: a quiet console, the noise in log files.

The real command (``python -m devkit run``, the Makefile's `make run`) runs in a child process on a
pseudo-terminal (so rich renders as in a terminal), on the session's moto server and Kafka broker
(recorded in a fresh ``DATAFORGE_HOME`` the way ``dataforge services up`` records them, so `run` reuses
them), with a small sample and ``--for`` to stop serving after a few seconds. Checked: the console
shows the stages, the end-of-run table and the live status line within a screen or two; Spark's
``KafkaDataConsumer`` warnings and Powertools' EMF blobs are not on it; and the log files under
``DATAFORGE_HOME/logs`` hold that output instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from dataforge import envvars
from devkit.local import AWS_ENV_TO_CLEAR, free_port, local_environment
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.moto_server import MotoServer
from devkit.paths import project_root

pytestmark = pytest.mark.e2e

MAX_LINES_BEFORE_LIVE = 70
LIVE_MARKER = "events/s in"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _record_services(home: Path, moto: MotoServer, broker: KafkaBroker) -> None:
    """``services.json`` as ``dataforge services up`` writes it, for the session's services."""
    state = {
        "version": 1, "started_at": "2026-01-01T00:00:00+00:00", "complete": True,
        "moto": {"pid": moto.pid, "port": moto.port, "endpoint_url": moto.endpoint_url,
                 "log_file": str(moto.log_file)},
        "kafka": {"pid": broker.pid, "port": broker.port, "controller_port": broker.controller_port,
                  "bootstrap_servers": broker.bootstrap_servers, "config_file": str(broker.config_file),
                  "data_dir": str(broker.data_dir), "log_file": str(broker.log_file)},
    }
    home.mkdir(parents=True)
    (home / "services.json").write_text(json.dumps(state))


def _run_in_terminal(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``command`` on a 50x160 pseudo-terminal; its exit code and everything it wrote there."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, cwd=project_root(),
                               start_new_session=True)
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: every writer of the terminal closed it (the process exited)
                break
            if not data:
                break
            chunks.append(data)
        else:
            pytest.fail(f"`dataforge run` did not end within {timeout:.0f} s")
        return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_shows_stages_table_and_live_line_and_sends_the_noise_to_log_files(
        moto_server: MotoServer, kafka_broker: KafkaBroker, tmp_path: Path, unique_name: str) -> None:
    home = tmp_path / "home"
    _record_services(home, moto_server, kafka_broker)
    topic = f"{unique_name}-transactions"
    create_topics(kafka_broker.bootstrap_servers, {topic: 3})
    env = {name: value for name, value in os.environ.items() if name not in AWS_ENV_TO_CLEAR}
    env.update(local_environment(endpoint_url=moto_server.endpoint_url,
                                 kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name))
    env.update({envvars.HOME: str(home), envvars.KAFKA_TOPIC: topic, "TERM": "xterm-256color",
                "COLUMNS": "160", "LINES": "50"})
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "devkit", "run", "--stream-events", "400", "--file-events", "100",
               "--days", "1", "--api-port", str(free_port()), "--dashboard-port", str(free_port()),
               "--live-rate", "20", "--for", "6"]

    code, raw = _run_in_terminal(command, env, timeout=300)
    (tmp_path / "console.txt").write_text(raw)  # kept with the test's files, for a look after a failure
    text = _ANSI.sub("", raw).replace("\r\n", "\n")

    assert code == 0, text[-3000:]
    assert LIVE_MARKER in text, text[-3000:]
    before_live = text[: text.index(LIVE_MARKER)]
    assert before_live.count("\n") <= MAX_LINES_BEFORE_LIVE, before_live
    for stage in ("services ready", "producing 400 events", "MSK landing Lambda", "Spark streaming enrichment",
                  "Spark daily aggregation", "alert evaluator", "embedded platform run", "pipeline done"):
        assert stage in before_live, stage
    assert re.search(r"freshness \d", text), text[-1500:]  # the realtime API's freshness_seconds, shown
    assert "KafkaDataConsumer" not in text
    assert '"_aws"' not in text  # no EMF blob
    assert "Traceback" not in text

    logs = home / "logs"
    assert str(logs) in before_live  # said once where the logs are
    spark_log = (logs / "spark.log").read_text()
    assert "KafkaDataConsumer" in spark_log  # the warnings that flooded the console are in Spark's log
    lambda_log = (logs / "lambda.log").read_text()
    assert '"_aws"' in lambda_log  # the landing Lambda's EMF metrics...
    assert '"RecordsIn"' in lambda_log
    assert "devkit.local.esm" in (logs / "run.log").read_text()  # ...and this process's own logging
