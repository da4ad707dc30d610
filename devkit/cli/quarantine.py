"""``dataforge quarantine list|replay``: inspect the quarantine zone and re-ingest quarantined records once
their cause is fixed. Thin: the rules live in :mod:`devkit.quarantine`."""

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
from dataforge.settings import Settings
from devkit import quarantine as rules

app = typer.Typer(help="Inspect the quarantine zone and replay quarantined records.", no_args_is_help=True)
_console = Console()

_DAY = typer.Option("--date", formats=["%Y-%m-%d"], help="Event date (UTC), counted as `dataforge reconcile` does.")


def _platform() -> tuple[Settings, object]:
    from devkit.local.context import platform_settings

    settings = platform_settings(create_resources=False)
    s3 = boto3.Session(region_name=settings.region).client("s3", endpoint_url=settings.endpoint_url)
    return settings, s3


def _fail(command: str, exc: Exception) -> typer.Exit:
    typer.echo(f"quarantine {command}: {exc}", err=True)
    return typer.Exit(code=2)


@app.command("list")
def list_(
    day: Annotated[datetime, _DAY],
    reason: Annotated[str | None, typer.Option(help="Only this reason code (e.g. unknown_currency).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Quarantined records of one event date: counts per stage, reason and source, and sample records."""
    try:
        settings, s3 = _platform()
        found = rules.listing(s3, settings.require("quarantine_bucket"), day.date(), reason)
    except (DataForgeError, BotoCoreError, ClientError) as exc:
        raise _fail("list", exc) from exc
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
        return
    counts = Table(title=f"quarantine {found.day}: {sum(found.counts.values())} record(s)", title_justify="left")
    for column in ("stage", "reason", "source", "records"):
        counts.add_column(column, justify="right" if column == "records" else "left")
    for (stage, why, source), n in sorted(found.counts.items()):
        counts.add_row(stage, why, source, str(n))
    _console.print(counts)
    samples = Table(title="samples", title_justify="left")
    for column in ("reason", "field", "detail", "position", "raw"):
        samples.add_column(column, overflow="fold")
    for sample in found.samples:
        samples.add_row(*(str(sample[c]) for c in ("reason", "field", "detail", "position", "raw")))
    _console.print(samples)


@app.command("replay")
def replay(
    reason: Annotated[str, typer.Option(help="The reason code whose records are judged again.")],
    day: Annotated[datetime, _DAY],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would move; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Judge the quarantined records of one reason and date again, with the landing code and reference data
    deployed now: now-valid ones land in bronze (their batch's object), the others stay quarantined."""
    from lambdas.common.wiring import landing_parts

    try:
        settings, s3 = _platform()
        validator = landing_parts(settings).validator
        result = rules.replay(s3, settings.require("bronze_bucket"), settings.require("quarantine_bucket"),
                              day.date(), reason, validator, dry_run=dry_run)
    except (DataForgeError, BotoCoreError, ClientError) as exc:
        raise _fail("replay", exc) from exc
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
        return
    still = ", ".join(f"{why}: {n}" for why, n in sorted(result.still.items())) or "none"
    verb = "would land" if dry_run else "landed"
    _console.print(f"{result.selected} {reason} record(s) of {result.day}: {result.landed} {verb} in bronze; "
                   f"still quarantined: {still}; {len(result.objects)} object(s) "
                   f"{'would change' if dry_run else 'written'}")
    for uri in result.objects:
        _console.print(f"  {uri}")
    if result.landed and not dry_run:
        _console.print(f"next: dataforge backfill --from {result.day} --to {result.day} (silver, gold, the "
                       f"export and the realtime minutes from bronze), then dataforge reconcile --date {result.day}")
