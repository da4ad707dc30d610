"""``dataforge plan`` / ``dataforge diff`` (and ``chalice-config``): offline views of the Pulumi stacks.

Rendering runs the real Pulumi program under Pulumi's mock engine with the stack's own config, so
it needs no credentials; the engine lives in ``infra.plan`` and is imported only when a command
runs (the core never imports pulumi at module level).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from devkit.paths import project_root

app = typer.Typer(help="Offline plan and diff of the Pulumi stacks (no credentials needed).", no_args_is_help=True)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


@app.command("plan")
def plan(
    stack: Annotated[str, typer.Option("--stack", "-s", help="dev, staging or prod")],
    summary: Annotated[bool, typer.Option("--summary", help="a readable table instead of JSON")] = False,
    check: Annotated[bool, typer.Option("--check", help="run the policy checks; exit 1 on violations")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write to this file")] = None,
) -> None:
    """Render STACK's desired resources (type, name, inputs, dependencies) deterministically."""
    from infra import plan as engine
    from infra.errors import InfraError
    from infra.policy.checks import check_all

    engine.enable_bytecode_cache()
    try:
        rendered = engine.render(stack)
    except InfraError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if summary:
        from infra import artifacts

        bundle = artifacts.build_bundle()  # (built already by the render: cached, the same bytes)
        named = {**bundle.archives(), **{f"Glue job {job}": artifacts.glue_script(job) for job in artifacts.GLUE_JOBS}}
        _emit(engine.summary(rendered) + "\n" + artifacts.sizes(named), out)
    else:
        _emit(rendered.dumps(), out)
    if check:
        violations = check_all(stack, rendered.resources)
        for violation in violations:
            typer.echo(str(violation), err=True)
        typer.echo(f"policy: {len(violations)} violation(s) in {stack}", err=True)
        if violations:
            raise typer.Exit(1)


@app.command("diff")
def diff(
    from_stack: Annotated[str | None, typer.Option("--from", help="stack to compare from")] = None,
    to_stack: Annotated[str | None, typer.Option("--to", help="stack to compare to")] = None,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="with --rev: the stack to compare")] = None,
    rev: Annotated[list[str] | None, typer.Option("--rev", help="git revision (twice; '.' = working tree)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the Markdown to this file")] = None,
) -> None:
    """Markdown for a pull request: `--from dev --to prod`, or `--stack dev --rev main --rev .`."""
    from infra import plan as engine
    from infra.errors import InfraError

    engine.enable_bytecode_cache()
    revs = rev or []
    try:
        if revs:
            if len(revs) != 2 or (stack is None and (from_stack is None or from_stack != to_stack)):
                raise typer.BadParameter("give --stack and exactly two --rev")
            name = stack or str(from_stack)
            repo = project_root()
            before = engine.render_revision(name, revs[0], repo)
            after = engine.render_revision(name, revs[1], repo)
            result = engine.diff(before, after, f"{name}@{revs[0]}", f"{name}@{revs[1]}")
        else:
            if from_stack is None or to_stack is None:
                raise typer.BadParameter("give --from and --to (two stacks), or --stack with two --rev")
            before = engine.render_in_subprocess(from_stack, project_root())
            after = engine.render(to_stack)
            result = engine.diff(before, after)
    except InfraError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _emit(engine.markdown(result), out)


@app.command("chalice-config")
def chalice_config(
    stack: Annotated[str, typer.Option("--stack", "-s", help="the deployed stack to read outputs from")],
    outputs: Annotated[Path | None, typer.Option("--outputs", help="`pulumi stack output --json` saved to a file "
                                                                     "(default: ask the pulumi CLI)")] = None,
    config_file: Annotated[Path, typer.Option("--config-file")] = Path("chalice_api/.chalice/config.json"),
) -> None:
    """Set the STACK stage's environment_variables in `.chalice/config.json` from the deployed stack's outputs
    (for `chalice local` against it); the stage's Lambda and API settings, which the stack deploys, are kept."""
    from infra.chalice_config import write_stage

    if outputs is not None:
        values = json.loads(outputs.read_text())
    else:
        proc = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True,
                              text=True, check=False, cwd=project_root())
        if proc.returncode != 0:
            typer.echo(f"error: pulumi stack output failed: {proc.stderr.strip()}", err=True)
            raise typer.Exit(2)
        values = json.loads(proc.stdout)
    target = config_file if config_file.is_absolute() else project_root() / config_file
    write_stage(target, stack, values)
    typer.echo(f"wrote stage {stack} to {target}")
