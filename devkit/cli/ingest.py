"""``dataforge ingest stream|files``: run the landing processors on the embedded platform.

- ``stream``: the local event source mapping (Kafka consumer group -> MSK events -> the real MSK landing
  handler, in-process), until Ctrl-C or, with ``--until-idle``, once no record arrived for that long.
- ``files``: the landing bucket's object-created events (S3 -> SQS on moto) -> the real batch landing
  handler, until Ctrl-C or ``--until-idle``.

Thin: the decisions live in ``devkit.local.esm``, ``devkit.local.s3_notifications`` and the
handlers in ``lambdas/``. The environment comes from the shell, completed from the running services
(``dataforge services up``) and the embedded platform's names (``local_environment``).
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import boto3
import typer
from rich.console import Console

from dataforge.errors import DataForgeError
from dataforge.settings import Settings
from devkit.local.context import platform_settings

app = typer.Typer(help="Land Kafka records and batch files into bronze + quarantine.", no_args_is_help=True)
_console = Console()
_errors = Console(stderr=True)


def _settings() -> Settings:
    try:
        return platform_settings()
    except DataForgeError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handle(signum: int, frame: Any) -> None:
        _console.print("[yellow]stopping after the current batch...[/]")
        stop.set()

    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)
    return stop


@app.command("stream")
def stream(
    batch_size: Annotated[int, typer.Option(help="Max records per invocation (MSK ESM BatchSize).")] = 10_000,
    window: Annotated[float, typer.Option(help="Batching window in seconds (MaximumBatchingWindowInSeconds).")] = 0.5,
    group: Annotated[str, typer.Option(help="Consumer group id.")] = "dataforge-msk-landing",
    until_idle: Annotated[float | None, typer.Option(help="Stop after this many idle seconds.")] = None,
) -> None:
    """Run the local event source mapping: Kafka -> MSK landing handler -> bronze + quarantine."""
    from devkit.local.esm import EsmConfig, LocalEventSourceMapping
    from lambdas.msk_landing.handler import handler

    try:
        settings = _settings()
        config = EsmConfig(settings.require("kafka_bootstrap_servers"), (settings.kafka_topic,), group_id=group,
                           batch_size=batch_size, batching_window=window)
        stats = LocalEventSourceMapping(config, handler).run(stop=_stop_on_signals(), until_idle=until_idle)
    except DataForgeError as exc:
        _errors.print(f"[red]ingest stream failed:[/] {exc}")
        raise typer.Exit(1) from exc
    rate = stats.records / stats.seconds if stats.seconds else 0.0
    _console.print(f"{stats.records} records in {stats.invocations} invocations, {stats.failures} failed attempts "
                   f"retried, {stats.commits} commits, {stats.seconds:.1f}s ({rate:,.0f} records/s)")


@app.command("files")
def files(
    until_idle: Annotated[float | None, typer.Option(help="Stop after this many idle seconds.")] = None,
    configure: Annotated[bool, typer.Option(help="(Re)configure the landing bucket's notifications.")] = True,
) -> None:
    """Deliver landing-bucket object-created events to the batch landing handler."""
    from devkit.local.s3_notifications import NotificationPoller, queue_name
    from devkit.local.s3_notifications import configure as configure_notifications
    from lambdas.batch_landing.handler import handler

    try:
        settings = _settings()
        session = boto3.Session(region_name=settings.region)
        where: dict[str, Any] = {"endpoint_url": settings.endpoint_url, "region_name": settings.region}
        landing = settings.require("landing_bucket")
        sqs = session.client("sqs", **where)
        if configure:
            url = configure_notifications(session.client("s3", **where), sqs, landing)
        else:
            url = sqs.get_queue_url(QueueName=queue_name(landing))["QueueUrl"]
        poller = NotificationPoller(url, handler, session=session, endpoint_url=settings.endpoint_url,
                                    region=settings.region)
        stats = poller.run(stop=_stop_on_signals(), until_idle=until_idle)
    except DataForgeError as exc:
        _errors.print(f"[red]ingest files failed:[/] {exc}")
        raise typer.Exit(1) from exc
    _console.print(f"{stats.files} files landed from {stats.messages} events "
                   f"({stats.failures} failed deliveries retried, {stats.ignored} ignored)")
