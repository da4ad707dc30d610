"""The ``dataforge`` command line: services, data generation, the embedded platform, operations.

Each command group lives in its own module; this one only assembles them (thin entrypoint).
"""

from __future__ import annotations

import typer

from dataforge.cli import generate as _generate
from dataforge.cli import run as _run
from dataforge.cli import services as _services

app = typer.Typer(
    name="dataforge",
    help="DataForge: payment-transaction data platform (AWS via Pulumi, or embedded on this machine).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(_services.app, name="services", help="Start, stop and inspect the embedded local services.")
app.command("generate", help="Generate synthetic schema-v1 events (file, stdout or Kafka).")(_generate.generate)
app.command("run", help="Run the embedded platform on sample data (the README's main job).")(_run.run)


def main() -> None:
    app()
