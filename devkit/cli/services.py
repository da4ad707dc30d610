"""``dataforge services up|down|status|env``: the embedded local services, from the shell.

Thin: every decision lives in :mod:`devkit.local.services`; this module only renders.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import time
from collections.abc import Iterator
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dataforge.errors import ServiceError
from devkit.local import services

app = typer.Typer(
    help="Start, inspect and stop the embedded local services (moto server for AWS APIs, Kafka).",
    no_args_is_help=True,
)
_console = Console()
_errors = Console(stderr=True)


def _exports(env: dict[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]


def _status_table(statuses: list[services.ServiceStatus]) -> Table:
    table = Table(title="DataForge local services")
    table.add_column("service", style="bold")
    table.add_column("state")
    table.add_column("endpoint", overflow="fold")
    table.add_column("pid", justify="right")
    table.add_column("log", overflow="fold")
    colours = {"running": "green", "unresponsive": "yellow", "stopped": "red"}
    for item in statuses:
        table.add_row(
            item.name,
            f"[{colours[item.state]}]{item.state}[/]",
            item.endpoint or "-",
            str(item.pid) if item.pid is not None and item.running else "-",
            item.log_file or "-",
        )
    return table


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM / SIGHUP raise KeyboardInterrupt meanwhile, so `up` stops what it started (like Ctrl-C)."""

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fail(action: str, exc: ServiceError) -> typer.Exit:
    _errors.print(f"[bold red]services {action} failed:[/] {exc}", markup=True, highlight=False)
    return typer.Exit(code=1)


@app.command()
def up(
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the services to answer.", min=1.0)
    ] = services.DEFAULT_READY_TIMEOUT,
) -> None:
    """Start moto and Kafka in the background (no-op when already running) and print the env to use."""
    started = time.monotonic()
    try:
        with _signals_interrupt(), _console.status("Starting services...") as spinner:
            result = services.up(lambda step: spinner.update(f"{step}..."), ready_timeout=ready_timeout)
    except ServiceError as exc:
        raise _fail("up", exc) from exc
    except KeyboardInterrupt as exc:
        _errors.print("Interrupted: the services this command had started were stopped again.")
        raise typer.Exit(code=130) from exc
    if result.already_running:
        _console.print("Services are already running; nothing was started.")
    else:
        _console.print(f"[green]Services are up[/] ({time.monotonic() - started:.1f}s).")
    _console.print(_status_table(services.status()))
    _console.print('\nPoint clients at them (or run [bold]eval "$(dataforge services env)"[/]):')
    _console.print("\n".join(_exports(services.service_env(result.state))), markup=False, highlight=False)


@app.command()
def status() -> None:
    """Show each service (state, endpoint, pid, log). Exit code 1 unless all are running and answering."""
    try:
        statuses = services.status()
    except ServiceError as exc:
        raise _fail("status", exc) from exc
    _console.print(_status_table(statuses))
    if not all(item.state == "running" for item in statuses):
        raise typer.Exit(code=1)


@app.command()
def down(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a clean shutdown before SIGKILL.", min=1.0)
    ] = 30.0,
) -> None:
    """Stop the services started by `up` (Kafka's data is kept; moto's in-memory state is not)."""
    try:
        stopped = services.down(timeout=timeout)
    except ServiceError as exc:
        raise _fail("down", exc) from exc
    if stopped:
        _console.print(f"Stopped: {', '.join(stopped)}.")
    else:
        _console.print("Nothing was running.")


@app.command()
def env(
    prefix: Annotated[str | None, typer.Option(
        help="The lake's name prefix, when the moto server holds several (default: the one it holds).")] = None,
    api_url: Annotated[str | None, typer.Option(
        help="Where the API is served (default: the local default URL); exported only when it answers.")] = None,
) -> None:
    """Print `export` lines for the running platform, for `eval "$(dataforge services env)"`: the AWS endpoint,
    fake credentials and region, the broker and topic, every bucket and table, the Glue database prefix, the
    environment and name prefix, the query engine, and the API's URL and key when it answers."""
    try:
        state = services.read_state()
        if state is None:
            _errors.print("No services are running; start them with `dataforge services up`.")
            raise typer.Exit(code=1)
        found = services.platform_env(state, prefix=prefix, api_url=api_url)
    except ServiceError as exc:
        raise _fail("env", exc) from exc
    for note in found.notes:
        _errors.print(f"# {note}", markup=False, highlight=False)
    typer.echo("\n".join(_exports(found.env)))
