"""``dataforge run``: the README's main job — the embedded platform on sample data.

Starts the embedded services (or reuses running ones), creates the lake resources, pushes sample
traffic through every stage (``devkit.local.platform``), then serves the API and the dashboard
until Ctrl-C (``--no-serve`` stops after the pipeline, ``--for N`` after N seconds of serving), with
live traffic flowing meanwhile (``devkit.local.live``; ``--live-rate 0`` turns it off).

The console shows the stages, the end-of-run table, then one live status line updated in place;
logs of the services, Spark and the in-process Lambdas go to files under ``logs_dir()``
(``devkit.cli.run_console``), and warnings from DataForge's own code reach the console as one line each.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from dataforge.settings import Settings
from devkit.cli.run_console import (
    LAMBDA_LOG,
    RUN_LOG,
    SPARK_LOG,
    StatusProbe,
    run_logging,
    spinner,
    status_line,
    stdout_to,
)
from devkit.local.platform import PipelineConfig, PipelineReport, run_pipeline, spark_session

if TYPE_CHECKING:
    from devkit.local.live import LiveTraffic

logger = logging.getLogger(__name__)

STATUS_PERIOD: Final = 1.0
"""Seconds between two updates of the live status line."""


def _report_table(report: PipelineReport) -> Table:
    table = Table(title="embedded platform run", title_justify="left")
    table.add_column("stage", style="bold")
    table.add_column("result")
    for name, summary in (("stream (Kafka)", report.stream), ("batch files", report.files)):
        if summary is not None:
            table.add_row(name, f"{summary.total:,} produced = {summary.valid:,} valid "
                                f"({summary.duplicates:,} duplicates) + {summary.invalid:,} invalid")
    for key, value in report.ingest.items():
        table.add_row(f"ingest: {key}", f"{value:,}")
    for key, value in report.spark.items():
        table.add_row(f"spark: {key}", str(value))
    for key, value in report.alerts.items():
        table.add_row(f"alerts: {key}", str(value))
    return table


def run(  # noqa: PLR0913, PLR0917 - a Typer command: its parameters are its options (docs/adr/0011-complexity-limits.md)
    stream_events: Annotated[int, typer.Option(min=0, help="Events sent to the Kafka topic.")] = 20_000,
    file_events: Annotated[int, typer.Option(min=0, help="Events dropped as batch files.")] = 5_000,
    days: Annotated[int, typer.Option(min=1, max=30, help="Event-time window, in days up to now.")] = 2,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 42,
    serve: Annotated[bool, typer.Option(help="Serve the API and the dashboard after the pipeline.")] = True,
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the local API.")] = 8000,
    dashboard_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the dashboard.")] = 5006,
    live_rate: Annotated[float, typer.Option(
        min=0, help="Live sample events/s kept flowing while serving (0: none).")] = 20.0,
    serve_for: Annotated[float | None, typer.Option(
        "--for", min=1, help="Serve for this many seconds, then stop as Ctrl-C does (default: until Ctrl-C).",
        show_default=False)] = None,
) -> None:
    """Run the embedded platform on sample data (services, ingestion, Spark, API, dashboard)."""
    from devkit.paths import logs_dir

    # The console (this process's stdout) shows the stages, the table and the live line; the services,
    # Spark, the in-process Lambdas' stdout and third-party logging write to files under `logs`.
    console = Console(file=sys.stdout)
    logs = logs_dir()
    with run_logging(console, logs), stdout_to(logs / LAMBDA_LOG):
        console.print(f"[bold]logs[/]       {logs}/ ({RUN_LOG}, {SPARK_LOG}, {LAMBDA_LOG}, kafka.log, moto.log, "
                      "dashboard.log)", highlight=False)
        _run(console, logs, PipelineConfig(stream_events=stream_events, file_events=file_events, days=days, seed=seed),
             serve=serve, api_port=api_port, dashboard_port=dashboard_port, live_rate=live_rate, serve_for=serve_for)


def _run(console: Console, logs: Path, config: PipelineConfig, *, serve: bool, api_port: int, dashboard_port: int,
         live_rate: float, serve_for: float | None) -> None:
    from devkit.local import services
    from devkit.local.context import platform_settings

    started = time.monotonic()
    stage = ["starting the embedded services"]
    try:
        with spinner(console, "starting the embedded services (moto server, Kafka broker)...") as status:
            result = services.up(status)
        console.print(f"[green]services ready[/] ({'already running' if result.already_running else 'started'})")
        settings = platform_settings()
        with spinner(console, "running the pipeline...") as status:

            def progress(message: str) -> None:
                stage[0] = message
                status(message)
                console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)

            progress("starting Spark (local, Glue-like session)")
            spark = spark_session(settings, log_file=logs / SPARK_LOG)
            report = run_pipeline(settings, config, progress=progress, spark=spark)
    except Exception as exc:  # the command's outermost boundary: one line here, the traceback in run.log
        logger.info("stage failed: %s", stage[0], exc_info=True)
        logger.error("stage failed: %s: %s: %s (details in %s)", stage[0], type(exc).__name__,
                     str(exc).strip().splitlines()[0] if str(exc).strip() else "", logs / RUN_LOG)
        raise typer.Exit(1) from exc
    console.print(_report_table(report))
    console.print(f"[green]pipeline done[/] in {time.monotonic() - started:,.0f} s")
    if serve:
        _serve(console, settings, api_port, dashboard_port, live=_live(settings, spark, config, live_rate),
               serve_for=serve_for)


def _live(settings: Settings, spark: Any, config: PipelineConfig, rate: float) -> LiveTraffic | None:
    from devkit.local.live import LiveConfig, LiveTraffic

    if not rate:
        return None
    live = LiveConfig(rate=rate, seed=config.seed, invalid_fraction=config.invalid_fraction,
                      duplicate_fraction=config.duplicate_fraction)
    return LiveTraffic(settings, spark, live)


def _lag_reader(settings: Settings) -> Callable[[], int | None]:
    """The landing consumer group's lag (records not yet committed), or None when Kafka does not answer."""
    from confluent_kafka import KafkaException

    from devkit.local.esm import committed_lag
    from devkit.local.platform import landing_group

    servers, group, topic = settings.require("kafka_bootstrap_servers"), landing_group(settings), settings.kafka_topic

    def read() -> int | None:
        try:
            return committed_lag(servers, group, topic, timeout=2.0)
        except (KafkaException, KeyError) as exc:  # KeyError: the topic is not in the metadata
            logger.info("consumer lag unavailable: %s", exc)
            return None

    return read


def _serve(console: Console, settings: Settings, api_port: int, dashboard_port: int,
           live: LiveTraffic | None = None, serve_for: float | None = None) -> None:
    """The API in this process, the dashboard as a ``panel serve`` child, and ``live`` traffic
    (threads of this process), with the live status line, until Ctrl-C (or ``serve_for`` seconds)."""
    import os
    import signal
    import subprocess

    from devkit.cli.api import load_app, serve_in_thread
    from devkit.cli.dashboard import dashboard_env, panel_command
    from devkit.paths import logs_dir, project_root

    api = serve_in_thread(load_app(), port=api_port)
    log = logs_dir() / "dashboard.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dashboard_env(os.environ, api_url=api.url, api_key=settings.require("api_key"))
    with log.open("ab") as sink:
        dashboard = subprocess.Popen(panel_command(port=dashboard_port), env=env, cwd=project_root(),
                                     stdout=sink, stderr=subprocess.STDOUT)
    console.print(f"[bold green]API[/]        {api.url}/v1/health  (header x-api-key: {settings.require('api_key')})")
    console.print(f"[bold green]dashboard[/]  http://127.0.0.1:{dashboard_port}/app")
    if live is None:
        console.print("[bold]live traffic[/] off (`--live-rate N` keeps N sample events/s flowing)")
    else:
        # PySpark's SIGINT handler cancels every running Spark job, which fails the live streaming
        # query mid-batch; with the plain KeyboardInterrupt, live.stop() ends it between two batches.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        live.start()
        console.print(f"[bold green]live traffic[/] {live.config.rate:g} events/s through Kafka, the landing "
                      "Lambda and Spark streaming (`--live-rate 0` turns it off)")
    console.print("Ctrl-C stops the API and the dashboard; `dataforge services down` stops moto and Kafka.")
    # a SIGTERM (a supervisor, `timeout`, `kill`) stops it as Ctrl-C does, so the dashboard child never outlives it
    signal.signal(signal.SIGTERM, _interrupt)
    counters = None if live is None else live.counters
    probe = StatusProbe(api_url=api.url, api_key=settings.require("api_key"),
                        produced=None if counters is None else (lambda: counters.produced),
                        lag=_lag_reader(settings))
    try:
        _watch(console, probe, dashboard, log, serve_for)
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        if live is not None:
            live.stop()
            console.print(f"live traffic stopped: {live.counters.produced:,} events sent, {live.landed:,} landed")
            if live.counters.errors:
                console.print(f"[yellow]live traffic had {live.counters.errors} failure(s), each restarted; "
                              f"the latest:[/] {live.counters.failures[-1]}", highlight=False)
        dashboard.terminate()
        try:
            dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
        api.stop()


def _watch(console: Console, probe: StatusProbe, dashboard: Any, log: Path, serve_for: float | None) -> None:
    """Keep the live status line current (every ``STATUS_PERIOD`` s) until the dashboard exits or
    ``serve_for`` seconds pass; KeyboardInterrupt (Ctrl-C, SIGTERM) ends it too."""
    from rich.live import Live

    deadline = None if serve_for is None else time.monotonic() + serve_for
    # stdout/stderr stay as they are: the Lambdas' stdout goes to lambda.log, not above the live line
    with Live(status_line(probe.sample()), console=console, auto_refresh=False, redirect_stdout=False,
              redirect_stderr=False) as view:
        while (code := dashboard.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(STATUS_PERIOD)
            view.update(status_line(probe.sample()), refresh=True)
    logger.error("the dashboard server exited with code %s; see %s", code, log)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
