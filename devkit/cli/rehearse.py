"""``dataforge rehearse --stack <env>``: every deployable of a stack run the way AWS runs it, from its built
artifact, with exactly the wiring the stack declares, against the embedded AWS endpoint (a moto server
started for the run). See ``devkit.rehearse``; docs/infra.md says what the rehearsal does and does not
prove."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final

import typer

STACKS: Final = ("dev", "staging", "prod")


def rehearse(
    stack: Annotated[list[str] | None, typer.Option(
        "--stack", "-s", metavar="STACK", help="dev, staging or prod (repeatable; default: all three)")] = None,
    out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON to this file")] = None,
) -> None:
    """Rehearse the stack's deployables from their artifacts; exit 1 unless every check is green."""
    from devkit.rehearse.run import rehearse as run
    from infra.errors import InfraError
    from infra.plan import enable_bytecode_cache

    enable_bytecode_cache()
    stacks = stack or list(STACKS)
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        raise typer.BadParameter(f"unknown stack(s) {', '.join(unknown)}; stacks: {', '.join(STACKS)}",
                                 param_hint="--stack")
    def progress(stack_name: str) -> Callable[[str], None]:
        return lambda message: typer.echo(f"[{stack_name}] {message}", err=True)

    reports = []
    for name in stacks:
        try:
            report = run(name, progress=progress(name))
        except InfraError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo("\n".join(report.lines()))
        reports.append(report)
    if out is not None:
        out.write_text(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)
