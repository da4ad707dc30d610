"""``dataforge dashboard``: serve the Panel dashboard locally (127.0.0.1) against a given API.

Thin: ``panel_command`` builds the ``panel serve`` command line and ``dashboard_env`` the environment
(pure, tested); ``dashboard`` runs it in the foreground until Ctrl-C. The API key travels by
environment variable to the server process only (never on the command line, never to the browser).
Panel is not imported here: the core stays importable without the dashboard's dependencies.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final

import typer

from dataforge import envvars
from devkit.paths import project_root

LOCAL_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 5006
APP_MODULE: Final = "panel_dashboard.app"


def app_path() -> Path:
    """The dashboard's app script, as installed (``panel serve`` takes a script, as in the image)."""
    spec = importlib.util.find_spec(APP_MODULE)
    if spec is None or spec.origin is None:
        raise typer.BadParameter(f"{APP_MODULE} is not installed: run `make setup`")
    return Path(spec.origin)


def panel_command(*, port: int, address: str = LOCAL_HOST, num_procs: int = 1, python: str | None = None,
                  app: Path | None = None, allow_origins: tuple[str, ...] = ()) -> list[str]:
    """The ``panel serve`` command line (liveness endpoint at ``/liveness``)."""
    origins = allow_origins or (f"{address}:{port}", f"localhost:{port}")
    command = [python or sys.executable, "-m", "panel", "serve", str(app or app_path()),
               "--address", address, "--port", str(port), "--num-procs", str(num_procs),
               "--liveness", "--liveness-endpoint", "liveness", "--warm"]
    for origin in origins:
        command += ["--allow-websocket-origin", origin]
    return command


def dashboard_env(base: Mapping[str, str], *, api_url: str, api_key: str | None,
                  realtime_seconds: float | None = None, daily_seconds: float | None = None) -> dict[str, str]:
    env = dict(base)
    env[envvars.API_URL] = api_url
    if api_key:
        env[envvars.API_KEY] = api_key
    if realtime_seconds is not None:
        env[envvars.REALTIME_REFRESH_SECONDS] = str(realtime_seconds)
    if daily_seconds is not None:
        env[envvars.DAILY_REFRESH_SECONDS] = str(daily_seconds)
    return env


def dashboard(
    api_url: Annotated[str, typer.Option(help="Base URL of the DataForge API.", envvar=envvars.API_URL)]
    = "http://127.0.0.1:8000",
    port: Annotated[int, typer.Option(help="Port to serve on (bound to 127.0.0.1).", min=1, max=65535)]
    = DEFAULT_PORT,
    api_key: Annotated[str | None, typer.Option(help="API key (default: $DATAFORGE_API_KEY).", show_default=False,
                                                 envvar=envvars.API_KEY)] = None,
    realtime_seconds: Annotated[float | None, typer.Option(help="Realtime refresh period (s).", min=0.2)] = None,
    daily_seconds: Annotated[float | None, typer.Option(help="Daily KPI refresh period (s).", min=1.0)] = None,
    num_procs: Annotated[int, typer.Option(help="panel serve worker processes.", min=1)] = 1,
) -> None:
    """Start the Panel dashboard on http://127.0.0.1:PORT against API_URL (Ctrl-C stops it)."""
    if not api_key:
        typer.echo(f"Set {envvars.API_KEY} or pass --api-key: the dashboard calls the API with it.", err=True)
        raise typer.Exit(code=2)
    command = panel_command(port=port, num_procs=num_procs)
    env = dashboard_env(os.environ, api_url=api_url, api_key=api_key, realtime_seconds=realtime_seconds,
                        daily_seconds=daily_seconds)
    typer.echo(f"Dashboard on http://{LOCAL_HOST}:{port}/app (API {api_url}); Ctrl-C to stop.")
    try:
        code = subprocess.call(command, env=env, cwd=project_root())
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code=code)


def dashboard_image(
    stack: Annotated[str, typer.Option(help="The stack whose ECR repository receives the image (dev, staging, prod).")],
    repository: Annotated[str | None, typer.Option(
        help="The ECR repository URL (default: the stack output dashboard_repository_url, via `pulumi stack output`).",
        show_default=False)] = None,
    push: Annotated[bool, typer.Option(
        "--push/--plan", help="Build, push and set dashboard.imageTag, or print the tag and the commands.")] = False,
    first_deploy: Annotated[bool, typer.Option(
        help="Print the targeted `pulumi up` that creates the repository (and its KMS key) on a new stack.")] = False,
) -> None:
    """Build the dashboard image for linux/arm64, push it under its content-derived tag, set the stack's tag."""
    from devkit.dashboard_image import ImagePush, Repository, first_deploy_targets, image_tag, run_command

    root = project_root()
    if first_deploy:
        from infra.plan import render

        targets = " ".join(f"--target '{urn}'" for urn in first_deploy_targets(render(stack, root)))
        typer.echo(f"pulumi up --stack {stack} {targets}")
        return
    tag = image_tag(root)
    if repository is None:
        done = run_command(["pulumi", "stack", "output", "dashboard_repository_url", "--stack", stack])
        if done.returncode != 0:
            typer.echo(f"`pulumi stack output dashboard_repository_url --stack {stack}` failed: create the "
                       "repository first (docs/dashboard.md, \"Image\") or pass --repository.\n" + done.stderr,
                       err=True)
            raise typer.Exit(code=2)
        repository = done.stdout.strip()
    job = ImagePush(stack=stack, repository=Repository.parse(repository), tag=tag, root=root)
    if not push:
        typer.echo(f"tag: {tag}")
        for command in job.plan():
            typer.echo("  " + " ".join(command))
        return
    job.run(log=typer.echo)
