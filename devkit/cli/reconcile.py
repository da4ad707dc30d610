"""``dataforge reconcile --date D [--json]``: every stage's counts for one event date, each difference
explained; exit status 1 on an unexplained one, naming it. Thin: the rules live in :mod:`devkit.reconcile`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from dataforge.errors import DataForgeError
from dataforge.settings import LOCAL_ENV, Settings
from devkit import reconcile as rules

_console = Console()


def sources_for(settings: Settings, session: boto3.Session | None = None) -> rules.Sources:
    """The platform's S3, metrics table and (on the embedded platform) the topic's offsets."""
    session = session or boto3.Session(region_name=settings.region)
    s3 = session.client("s3", endpoint_url=settings.endpoint_url)
    table = session.resource("dynamodb", endpoint_url=settings.endpoint_url).Table(settings.require("metrics_table"))
    offsets = None
    if settings.env == LOCAL_ENV and settings.kafka_bootstrap_servers:
        from devkit.local.platform import landing_group

        servers, topic, group = settings.kafka_bootstrap_servers, settings.kafka_topic, landing_group(settings)

        def offsets() -> rules.KafkaOffsets | None:
            return rules.kafka_offsets(servers, topic, group)

    return rules.Sources(s3, table, offsets)


def _tables(result: rules.Reconciliation) -> tuple[Table, Table]:
    counts = Table(title=f"reconcile {result.day}", title_justify="left")
    counts.add_column("stage", style="bold")
    counts.add_column("count", justify="right", overflow="fold")
    for name, value in result.counts.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) or "0" if isinstance(value, dict) else value
        counts.add_row(name, "-" if shown is None else str(shown))
    checks = Table(title="checks", title_justify="left")
    checks.add_column("check", style="bold")
    checks.add_column("result")
    checks.add_column("detail", overflow="fold")
    for check in result.checks:
        checks.add_row(check.name, "[green]exact[/]" if check.ok else "[bold red]UNEXPLAINED[/]", check.detail)
    return counts, checks


def reconcile(
    day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="Event date (UTC).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Count every stage for one event date and explain each difference; exit 1 on an unexplained one."""
    from devkit.local.context import platform_settings

    try:
        settings = platform_settings(create_resources=False)
        result = rules.reconcile(settings, day.date(), sources_for(settings))
    except (DataForgeError, BotoCoreError, ClientError) as exc:
        typer.echo(f"reconcile: cannot read the platform: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        for table in _tables(result):
            _console.print(table)
    if result.unexplained:
        names = "; ".join(c.name for c in result.unexplained)
        typer.echo(f"reconcile {result.day}: unexplained difference(s): {names}", err=True)
        raise typer.Exit(code=1)
