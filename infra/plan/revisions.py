"""Rendering a git revision: a detached worktree, rendered by its own code in a fresh interpreter."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from infra.errors import RenderError
from infra.plan.config import PROJECT_FALLBACK
from infra.plan.engine import render
from infra.plan.model import Rendered

WORKTREE: Final = "."  # "revision" meaning the working tree as it is


def render_in_subprocess(stack: str, root: Path) -> Rendered:
    """Render ``stack`` of the checkout at ``root`` in a fresh interpreter (its own code and config)."""
    module = _renderer(root)
    if module is None:
        if not (root / "infra" / "program.py").is_file():
            return Rendered(project=PROJECT_FALLBACK, stack=stack, resources=[], outputs={})
        raise RenderError(f"{root} has an infra/ program but no renderer (infra/plan/) to render it with")
    with tempfile.TemporaryDirectory(prefix="dataforge-render-") as tmp:
        out = Path(tmp) / "plan.json"
        proc = subprocess.run([sys.executable, "-m", module, "--stack", stack, "--out", str(out)],
                              cwd=root, capture_output=True, text=True, check=False,
                              env={**_clean_env(), "PYTHONPATH": str(root)})
        if proc.returncode != 0:
            raise RenderError(f"rendering {stack} in {root} failed:\n{proc.stderr[-4000:]}")
        return Rendered.from_json(json.loads(out.read_text()))


def _renderer(root: Path) -> str | None:
    """The module that renders the checkout at ``root``: ``infra.plan``, or ``infra.render`` in
    revisions from before the renderer became a package."""
    if (root / "infra" / "plan" / "__main__.py").is_file():
        return "infra.plan"
    return "infra.render" if (root / "infra" / "render.py").is_file() else None


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "AWS_"))}


@contextlib.contextmanager
def checkout(rev: str, repo: Path) -> Iterator[Path]:
    """A detached ``git worktree`` of ``rev`` (``.`` is the working tree itself), removed afterwards."""
    if rev == WORKTREE:
        yield repo
        return
    with tempfile.TemporaryDirectory(prefix="dataforge-rev-") as tmp:
        target = Path(tmp) / "tree"
        add = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(target), rev],
                             capture_output=True, text=True, check=False)
        if add.returncode != 0:
            raise RenderError(f"cannot check out {rev!r}: {add.stderr.strip()}")
        try:
            yield target
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(target)],
                           capture_output=True, check=False)


def render_revision(stack: str, rev: str, repo: Path) -> Rendered:
    with checkout(rev, repo) as tree:
        return render_in_subprocess(stack, tree) if rev != WORKTREE else render(stack, tree)
