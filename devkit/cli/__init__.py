"""The ``dataforge`` command line: services, data generation, the embedded platform, operations.

Each command group lives in its own module; this one only assembles them (thin entrypoint).
"""

from __future__ import annotations

import typer

from devkit.cli import api as _api
from devkit.cli import dashboard as _dashboard
from devkit.cli import generate as _generate
from devkit.cli import infra as _infra
from devkit.cli import ingest as _ingest
from devkit.cli import jobs as _jobs
from devkit.cli import quarantine as _quarantine
from devkit.cli import reconcile as _reconcile
from devkit.cli import rehearse as _rehearse
from devkit.cli import run as _run
from devkit.cli import services as _services

app = typer.Typer(
    name="dataforge",
    help="DataForge: payment-transaction data platform (AWS via Pulumi, or embedded on this machine).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(_services.app, name="services", help="Start, stop and inspect the embedded local services.")
app.command("generate", help="Generate synthetic schema-v1 events (file, stdout or Kafka).")(_generate.generate)
app.command("run", help="Run the embedded platform on sample data (the README's main job).")(_run.run)
app.add_typer(_api.app, name="api", help="Serve the analytics API locally.")
app.command("dashboard", help="Serve the Panel dashboard locally against an API.")(_dashboard.dashboard)
app.command("dashboard-image", help="Build the dashboard image (arm64), push it to ECR, set the stack's tag.")(
    _dashboard.dashboard_image)
app.command("backfill", help="Rebuild silver, gold and exports for a date range from bronze.")(_jobs.backfill)
app.command("reconcile", help="Count every stage for one event date and explain each difference "
            "(exit 1 on an unexplained one).")(_reconcile.reconcile)
app.add_typer(_jobs.app, name="jobs", help="Run one Spark/Glue job (locally, or as a Glue job run on AWS).")
app.add_typer(_ingest.app, name="ingest", help="Land Kafka records and batch files into bronze + quarantine.")
app.add_typer(_quarantine.app, name="quarantine", help="Inspect the quarantine zone; replay quarantined records "
              "once their cause is fixed.")
app.command("plan", help="Render a stack's resources offline (Pulumi mocks, real stack config).")(_infra.plan)
app.command("diff", help="Compare two stacks, or one stack at two git revisions, as Markdown.")(_infra.diff)
app.command("rehearse", help="Run a stack's deployables from their artifacts, wired as the stack declares, "
            "against the embedded AWS endpoint.")(_rehearse.rehearse)
app.command("chalice-config", help="Write .chalice/config.json stages from stack outputs.")(_infra.chalice_config)


def main() -> None:
    app()
