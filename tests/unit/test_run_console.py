"""`dataforge run`'s console, without I/O beyond tmp files: condensed warnings, the stdout routing of
the in-process Lambdas, the live status line and its probe, Spark's log4j2 file configuration."""

from __future__ import annotations

import io
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from devkit.cli.run_console import (
    ConsoleWarnings,
    StatusProbe,
    StatusSample,
    is_own,
    run_logging,
    status_line,
    stdout_to,
)
from devkit.local.spark import log4j2_config, session_conf


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_only_our_own_loggers_reach_the_console() -> None:
    assert is_own("devkit.local.live")
    assert not is_own("lambdas.common.alerting")  # the function's log; its alerts come from the API
    assert is_own("spark.jobs.streaming_enrichment")
    assert not is_own("devkit.generator_sinks.librdkafka")  # librdkafka's own lines, under our name
    assert not is_own("py4j.clientserver")
    assert not is_own("pyspark")
    assert not is_own("sparkle")
    assert not is_own("botocore.credentials")


def test_a_warning_with_a_traceback_is_one_line_and_third_party_noise_stays_off_the_console(tmp_path: Path) -> None:
    console, out = _console()
    with run_logging(console, tmp_path) as run_log:
        try:
            raise RuntimeError("the streaming query stopped\non its own")
        except RuntimeError:
            logging.getLogger("devkit.local.live").exception("live enrich failed; restarting in 5 s")
        logging.getLogger("py4j.clientserver").error("There was an exception while executing the Python Proxy")
        logging.getLogger("devkit.local.esm").info("assigned [transactions-0]")
        logging.getLogger("devkit.local.esm").warning("lost %s", ["transactions-1"])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("error: live enrich failed; restarting in 5 s: RuntimeError: the streaming query "
                             "stopped on its own")
    assert lines[1].endswith("warning: lost ['transactions-1']")
    logged = run_log.read_text()
    assert "Traceback" in logged  # the file keeps the details
    assert "py4j.clientserver" in logged
    assert "assigned [transactions-0]" in logged
    assert not any(isinstance(h, ConsoleWarnings) for h in logging.getLogger().handlers)  # undone on exit


def test_what_runtimes_print_goes_to_the_lambda_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "lambda.log"
    console, out = _console()
    with stdout_to(log) as terminal:
        print('{"_aws": {"CloudWatchMetrics": []}, "RecordsIn": [3.0]}')
        console.print("stage line")
        assert terminal is not None
    assert '"_aws"' in log.read_text()
    assert out.getvalue() == "stage line\n"


class _Api:
    """A fake JSON GET: answers from ``pages`` by path, or raises ``error`` when set."""

    def __init__(self) -> None:
        self.error: OSError | None = None
        self.realtime: dict[str, Any] = {"items": [], "freshness_seconds": 1.4}
        self.alerts: dict[str, Any] = {"items": []}
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, headers: Mapping[str, str]) -> Any:
        self.calls.append((url, dict(headers)))
        if self.error is not None:
            raise self.error
        return self.realtime if "/v1/realtime" in url else self.alerts


def _probe(api: _Api, produced: list[int], times: list[float]) -> StatusProbe:
    return StatusProbe(api_url="http://127.0.0.1:9/", api_key="k", produced=lambda: produced[0],
                       lag=lambda: 7, fetch=api, clock=lambda: times[0])


def test_the_probe_reads_the_api_with_the_key_and_smooths_the_rate() -> None:
    api, produced, times = _Api(), [0], [100.0]
    probe = _probe(api, produced, times)
    assert probe.sample() == StatusSample(0.0, 7, 1.4, 0)
    assert api.calls[0] == ("http://127.0.0.1:9/v1/realtime?minutes=5", {"x-api-key": "k"})
    assert api.calls[1][0] == "http://127.0.0.1:9/v1/alerts?status=open"
    produced[0], times[0] = 100, 105.0  # a burst of confirmations, then none for 5 s
    assert probe.sample().events_per_second == pytest.approx(20.0)
    times[0] = 110.0
    assert probe.sample().events_per_second == pytest.approx(10.0)
    produced[0], times[0] = 150, 112.0
    assert probe.sample().events_per_second == pytest.approx(150 / 12)  # 100 s, 105 s: inside the window
    times[0] = 125.0  # both bursts have left the 10 s window
    assert probe.sample().events_per_second == pytest.approx(0.0)


def test_the_api_going_away_is_one_warning_and_each_new_alert_one_line(caplog: pytest.LogCaptureFixture) -> None:
    api, produced, times = _Api(), [0], [0.0]
    probe = _probe(api, produced, times)
    caplog.set_level(logging.INFO, logger="devkit.cli.run_console")
    api.error = ConnectionRefusedError(111, "Connection refused")
    first, second = probe.sample(), probe.sample()
    assert first.api_error is not None
    assert first.freshness_seconds is None
    assert second.open_alerts is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not answering" in warnings[0].getMessage()
    api.error = None
    api.alerts = {"items": [{"alert_id": "a1", "rule": "quarantine_ratio", "severity": "high",
                             "message": "quarantine ratio 12% over 5%"}], "next_token": "t"}
    sample = probe.sample()
    assert (sample.open_alerts, sample.more_alerts) == (1, True)
    probe.sample()  # the same alert again: not announced twice
    announced = [r.getMessage() for r in caplog.records if "alert open" in r.getMessage()]
    assert announced == ["alert open: quarantine_ratio (high) quarantine ratio 12% over 5%"]
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_the_status_line_shows_every_figure_on_one_line() -> None:
    line = status_line(StatusSample(19.96, 12, 1.4, 2, more_alerts=True)).plain
    assert "20.0 events/s in · lag 12 · freshness 1.4 s · open alerts 2+" in line
    assert "\n" not in line
    unknown = status_line(StatusSample(None, None, None, None, api_error="refused")).plain
    assert "off events/s in · lag – · freshness – · open alerts – · API not answering" in unknown


def test_spark_logs_to_its_file_only(tmp_path: Path) -> None:
    log = tmp_path / "spark.log"
    root = ET.fromstring(log4j2_config(log))
    appenders = root.find("Appenders")
    assert appenders is not None
    assert [a.tag for a in appenders] == ["RollingFile"]  # no Console appender
    assert appenders[0].get("fileName") == str(log)
    loggers = root.find("Loggers")
    assert loggers is not None
    root_logger = loggers.find("Root")
    assert root_logger is not None
    assert root_logger.get("level") == "WARN"
    conf = session_conf(endpoint_url=None, jars=(), log_config=tmp_path / "x.xml")
    options = conf["spark.driver.extraJavaOptions"].split()
    assert f"-Dlog4j2.configurationFile={tmp_path / 'x.xml'}" in options
    assert "-Duser.timezone=UTC" in options
    assert "log4j2" not in session_conf(endpoint_url=None, jars=())["spark.driver.extraJavaOptions"]


def test_a_failing_stage_is_one_console_line_and_its_traceback_is_in_run_log(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devkit import cli

    home = tmp_path / "home"
    home.mkdir()
    (home / "services.json").write_text("{not json")  # the services state is unreadable: `up` fails
    result = CliRunner().invoke(cli.app, ["run", "--no-serve"], env={"DATAFORGE_HOME": str(home), "COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if "stage failed" in line]
    assert len(failed) == 1, result.output
    assert "starting the embedded services: ServiceError: " in failed[0]
    assert "Traceback" not in result.output
    assert "Traceback" in (home / "logs" / "run.log").read_text()
