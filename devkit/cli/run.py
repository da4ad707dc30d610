"""``dataforge run``: the README's main job — the embedded platform on sample data.

Starts the embedded services (or reuses running ones), creates the lake resources, pushes sample
traffic through every stage (``devkit.local.platform``), then serves the API and the dashboard
until Ctrl-C (``--no-serve`` stops after the pipeline), with live traffic flowing meanwhile
(``devkit.local.live``; ``--live-rate 0`` turns it off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dataforge.errors import DataForgeError
from dataforge.settings import Settings
from devkit.local.platform import PipelineConfig, PipelineReport, run_pipeline, spark_session

if TYPE_CHECKING:
    from devkit.local.live import LiveTraffic

_console = Console()


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


def run(
    stream_events: Annotated[int, typer.Option(min=0, help="Events sent to the Kafka topic.")] = 20_000,
    file_events: Annotated[int, typer.Option(min=0, help="Events dropped as batch files.")] = 5_000,
    days: Annotated[int, typer.Option(min=1, max=30, help="Event-time window, in days up to now.")] = 2,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 42,
    serve: Annotated[bool, typer.Option(help="Serve the API and the dashboard after the pipeline.")] = True,
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the local API.")] = 8000,
    dashboard_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the dashboard.")] = 5006,
    live_rate: Annotated[float, typer.Option(
        min=0, help="Live sample events/s kept flowing while serving (0: none).")] = 20.0,
) -> None:
    """Run the embedded platform on sample data (services, ingestion, Spark, API, dashboard)."""
    import os

    from devkit.local import services
    from devkit.local.context import platform_settings

    # The in-process Lambdas log JSON lines and EMF metrics to stdout, as on AWS; here the console
    # shows stage progress instead, unless the caller asked otherwise.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    try:
        with _console.status("starting the embedded services (moto server, Kafka broker)...") as status:
            result = services.up(lambda message: status.update(message))
        _console.print(f"[green]services ready[/] ({'already running' if result.already_running else 'started'})")
        settings = platform_settings()
        with _console.status("running the pipeline...") as status:

            def progress(message: str) -> None:
                status.update(message)
                _console.log(message)

            config = PipelineConfig(stream_events=stream_events, file_events=file_events, days=days, seed=seed)
            progress("starting Spark (local, Glue-like session)")
            spark = spark_session(settings)
            report = run_pipeline(settings, config, progress=progress, spark=spark)
    except DataForgeError as exc:
        _console.print(f"[bold red]run failed:[/] {exc}")
        raise typer.Exit(1) from exc
    _console.print(_report_table(report))
    if serve:
        _serve(settings, api_port, dashboard_port, live=_live(settings, spark, config, live_rate))


def _live(settings: Settings, spark: Any, config: PipelineConfig, rate: float) -> LiveTraffic | None:
    from devkit.local.live import LiveConfig, LiveTraffic

    if not rate:
        return None
    # Spark warns on every micro-batch (Kafka consumers outside UninterruptibleThread, batches behind
    # their trigger): while serving, the console keeps the URLs and the live traffic's own messages.
    spark.sparkContext.setLogLevel("ERROR")
    live = LiveConfig(rate=rate, seed=config.seed, invalid_fraction=config.invalid_fraction,
                      duplicate_fraction=config.duplicate_fraction)
    return LiveTraffic(settings, spark, live)


def _serve(settings: Settings, api_port: int, dashboard_port: int, live: LiveTraffic | None = None) -> None:
    """The API in this process, the dashboard as a ``panel serve`` child, and ``live`` traffic
    (threads of this process), until Ctrl-C."""
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
    _console.print(f"[bold green]API[/]        {api.url}/v1/health  (header x-api-key: {settings.require('api_key')})")
    _console.print(f"[bold green]dashboard[/]  http://127.0.0.1:{dashboard_port}/app  (log: {log})")
    if live is None:
        _console.print("[bold]live traffic[/] off (`--live-rate N` keeps N sample events/s flowing)")
    else:
        # PySpark's SIGINT handler cancels every running Spark job, which fails the live streaming
        # query mid-batch; with the plain KeyboardInterrupt, live.stop() ends it between two batches.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        live.start()
        _console.print(f"[bold green]live traffic[/] {live.config.rate:g} events/s through Kafka, the landing "
                       "Lambda and Spark streaming (`--live-rate 0` turns it off)")
    _console.print("Ctrl-C stops the API and the dashboard; `dataforge services down` stops moto and Kafka.")
    # a SIGTERM (a supervisor, `timeout`, `kill`) stops it as Ctrl-C does, so the dashboard child never outlives it
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        dashboard.wait()
    except KeyboardInterrupt:
        _console.print("stopping...")
    finally:
        if live is not None:
            live.stop()
            _console.print(f"live traffic stopped: {live.counters.produced:,} events sent, {live.landed:,} landed")
            if live.counters.errors:
                _console.print(f"[yellow]live traffic had {live.counters.errors} failure(s), each restarted; "
                               f"the latest:[/] {live.counters.failures[-1]}", highlight=False)
        dashboard.terminate()
        try:
            dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
        api.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
