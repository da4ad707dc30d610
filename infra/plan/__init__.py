"""Offline plan and diff: render a stack's desired resources with Pulumi's mock engine and the
stack's real config (no credentials, no cloud calls), then print them as JSON, a summary table, or
a Markdown diff between two stacks or two git revisions.

- ``config``: a stack's configuration from ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``;
- ``model``: the rendered resources (``Resource``, ``Rendered``), as JSON;
- ``engine``: the mock engine and ``render`` (runs ``infra.program.main``, the very function
  ``pulumi up`` runs);
- ``diff``: the summary table, the resource diff and its Markdown;
- ``revisions``: rendering another git revision in a worktree, in a fresh interpreter;
- ``__main__``: ``python -m infra.plan --stack S [--out F] [--summary]``.
"""

from __future__ import annotations

from infra.plan.config import StackConfig, load_stack_config
from infra.plan.diff import Change, Diff, diff, markdown, summary
from infra.plan.engine import enable_bytecode_cache, render
from infra.plan.model import Rendered, Resource
from infra.plan.revisions import WORKTREE, checkout, render_in_subprocess, render_revision

__all__ = [
    "WORKTREE", "Change", "Diff", "Rendered", "Resource", "StackConfig", "checkout", "diff", "enable_bytecode_cache",
    "load_stack_config", "markdown", "render", "render_in_subprocess", "render_revision", "summary",
]
