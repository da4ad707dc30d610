"""``dataforge generate``: synthetic schema-v1 events to stdout, a JSON-lines file, or Kafka.

Thin: events come from :mod:`devkit.generator`, the sinks from :mod:`devkit.generator_sinks`;
this module parses options, draws a progress bar and the final summary (both on stderr, so stdout
carries only events when ``--to stdout``).

    dataforge generate --count 1000 | head
    dataforge generate --count 1000000 --invalid-fraction 0.01 --to file -o /tmp/tx.jsonl.gz
    dataforge generate --count 100000 --duplicate-fraction 0.02 --to kafka --rate 5000
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dataforge import envvars
from dataforge.errors import DataForgeError, ServiceError
from dataforge.lake import TRANSACTIONS_TOPIC
from devkit.generator import GeneratedEvent, GeneratorConfig, generate_events
from devkit.generator_sinks import (
    LIBRDKAFKA_LOGGER,
    ProgressCallback,
    SinkReport,
    send_to_kafka,
    write_jsonl,
    write_stream,
)

_errors = Console(stderr=True)


class Destination(StrEnum):
    """Where ``--to`` sends the events."""

    STDOUT = "stdout"
    FILE = "file"
    KAFKA = "kafka"
    LANDING = "landing"  # JSON-lines batch files dropped into the landing bucket (S3 batch path)


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """The destination options, validated for the chosen ``Destination``."""

    output: Path | None
    gzip: bool
    bootstrap_servers: str | None
    topic: str
    rate: float


def _to_stdout(events: Iterator[GeneratedEvent], options: SinkOptions, progress: ProgressCallback) -> SinkReport:
    try:
        return write_stream(events, sys.stdout.buffer, destination="stdout", progress=progress)
    except BrokenPipeError:  # `| head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(code=0) from None


def _to_file(events: Iterator[GeneratedEvent], options: SinkOptions, progress: ProgressCallback) -> SinkReport:
    if options.output is None:
        raise typer.BadParameter("--to file needs --output PATH", param_hint="--output")
    return write_jsonl(events, options.output, gzip=options.gzip, progress=progress)


def _to_kafka(events: Iterator[GeneratedEvent], options: SinkOptions, progress: ProgressCallback) -> SinkReport:
    # librdkafka logs every reconnect attempt; the outcome is reported below (summary or clear error)
    LIBRDKAFKA_LOGGER.setLevel(logging.CRITICAL)
    servers = options.bootstrap_servers or _local_bootstrap_servers()
    if not servers:
        raise ServiceError(
            f"no Kafka bootstrap servers: run `dataforge services up` (the embedded broker), or set "
            f"{envvars.KAFKA_BOOTSTRAP_SERVERS} / --bootstrap-servers"
        )
    return send_to_kafka(events, bootstrap_servers=servers, topic=options.topic, rate=options.rate,
                         progress=progress)


def _to_landing(events: Iterator[GeneratedEvent], options: SinkOptions, progress: ProgressCallback) -> SinkReport:
    import time

    import boto3

    from devkit.landing_sink import write_to_landing
    from devkit.local.context import platform_settings

    settings = platform_settings()
    s3 = boto3.Session(region_name=settings.region).client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region
    )
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done)

    started = time.perf_counter()
    result = write_to_landing(events, s3=s3, bucket=settings.require("landing_bucket"), progress=advance)
    sent = result.summary.total
    return SinkReport(destination=f"s3://{result.bucket} ({len(result.keys)} files)", sent=sent, delivered=sent,
                      failed=0, seconds=time.perf_counter() - started, summary=result.summary)


def _local_bootstrap_servers() -> str | None:
    """The embedded broker's address, when `dataforge services up` recorded one."""
    from devkit.local import services

    state = services.read_state()
    return None if state is None else state["kafka"]["bootstrap_servers"]


_SINKS: dict[Destination, Callable[[Iterator[GeneratedEvent], SinkOptions, ProgressCallback], SinkReport]] = {
    Destination.STDOUT: _to_stdout,
    Destination.FILE: _to_file,
    Destination.KAFKA: _to_kafka,
    Destination.LANDING: _to_landing,
}


def _parse_time(value: str | None, option: str) -> datetime | None:
    """ISO 8601 (``2026-11-03``, ``2026-11-03T10:00``, ``...Z``, ``...+01:00``); no offset means UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 date/time: {value!r}", param_hint=option) from exc
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment


def _summary_table(report: SinkReport, destination: Destination) -> Table:
    s = report.summary
    table = Table(title=f"generated → {report.destination}", title_justify="left")
    table.add_column("records", style="bold")
    table.add_column("count", justify="right")
    table.add_row("sent", f"{report.sent:,}")
    table.add_row("valid", f"{s.valid:,}")
    table.add_row("  of which duplicates (same event_id re-sent)", f"{s.duplicates:,}")
    table.add_row("  of which no FX rate on event date (no_fx_rate at enrichment)", f"{s.no_fx_rate:,}")
    table.add_row("invalid (quarantined by the validator)", f"{s.invalid:,}")
    for reason, n in s.by_reason.items():
        table.add_row(f"  {reason}", f"{n:,}")
    if destination is Destination.KAFKA:
        table.add_row("delivered", f"[green]{report.delivered:,}[/]")
        table.add_row("failed", f"[red]{report.failed:,}[/]" if report.failed else "0")
    table.add_row("seconds", f"{report.seconds:.2f}")
    table.add_row("records/s", f"{report.rate:,.0f}")
    return table


def generate(  # noqa: PLR0913, PLR0917 - a Typer command: its parameters are its options (docs/adr/0011-complexity-limits.md)
    count: Annotated[int, typer.Option(min=0, help="Number of records to produce (duplicates and invalid included).")]
    = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same options and seed give the same bytes.")] = 0,
    invalid_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of records breaking one contract rule (cycling through every reason).")] = 0.0,
    duplicate_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of records re-sending an earlier valid event byte for byte.")] = 0.0,
    refund_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of refunds among new valid events.")] = 0.03,
    start: Annotated[str | None, typer.Option(
        help="First event time (ISO 8601; UTC when no offset). Default: END minus 24 h.")] = None,
    end: Annotated[str | None, typer.Option(
        help="Event times stay before this (ISO 8601). Default: now minus 10 minutes.")] = None,
    to: Annotated[Destination | None, typer.Option(
        "--to", help="Destination. Default: file when --output is given, else stdout.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="JSON-lines file for --to file (gzip when it ends in .gz or --gzip).")] = None,
    gzip: Annotated[bool, typer.Option("--gzip", help="gzip-compress the output file.")] = False,
    bootstrap_servers: Annotated[str | None, typer.Option(
        envvar=envvars.KAFKA_BOOTSTRAP_SERVERS,
        help="Kafka bootstrap servers. Default: the embedded broker of `dataforge services up`.")] = None,
    topic: Annotated[str, typer.Option(envvar=envvars.KAFKA_TOPIC, help="Kafka topic.")] = TRANSACTIONS_TOPIC,
    rate: Annotated[float, typer.Option(min=0.0, help="Kafka: at most this many records/s (0 = unlimited).")]
    = 0.0,
) -> None:
    """Generate synthetic schema-v1 transaction events (valid, invalid, duplicates) for testing."""
    destination = to or (Destination.FILE if output is not None else Destination.STDOUT)
    if output is not None and destination is not Destination.FILE:
        raise typer.BadParameter(f"--output applies to --to file, not --to {destination}", param_hint="--output")
    if gzip and destination is not Destination.FILE:
        raise typer.BadParameter("--gzip applies to --to file", param_hint="--gzip")
    if rate and destination is not Destination.KAFKA:
        raise typer.BadParameter("--rate applies to --to kafka", param_hint="--rate")
    try:
        config = GeneratorConfig(
            count=count, seed=seed, start=_parse_time(start, "--start"), end=_parse_time(end, "--end"),
            invalid_fraction=invalid_fraction, duplicate_fraction=duplicate_fraction,
            refund_fraction=refund_fraction,
        )
        events = generate_events(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    options = SinkOptions(
        output=output, gzip=gzip or (output is not None and output.suffix == ".gz"),
        bootstrap_servers=bootstrap_servers, topic=topic, rate=rate,
    )
    sink = _SINKS[destination]
    try:
        if destination is Destination.STDOUT:
            report = sink(events, options, lambda _: None)
        else:
            with Progress(
                TextColumn(f"[bold]{destination}[/]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=_errors, transient=True,
            ) as bar:
                task = bar.add_task("generate", total=count, rate="")

                def progress(done: int) -> None:
                    elapsed = bar.tasks[task].elapsed or 0.0
                    bar.update(task, completed=done, rate=f"{done / elapsed:,.0f}/s" if elapsed else "")

                report = sink(events, options, progress)
    except DataForgeError as exc:
        _errors.print(f"[bold red]generate failed:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    except OSError as exc:
        _errors.print(f"[bold red]generate failed:[/] cannot write: {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    _errors.print(_summary_table(report, destination))
    if report.failed:
        _errors.print(f"[bold red]{report.failed:,} records were not delivered:[/] {'; '.join(report.errors)}")
        raise typer.Exit(code=1)
