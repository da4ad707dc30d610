"""``python -m infra.plan --stack S [--out F] [--summary]``: render one stack offline (also what a
checkout at another revision is rendered with)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.plan.diff import summary
from infra.plan.engine import enable_bytecode_cache, render


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summary", action="store_true")
    ns = parser.parse_args(argv)
    enable_bytecode_cache()
    rendered = render(ns.stack)
    text = summary(rendered) if ns.summary else rendered.dumps()
    if ns.out:
        ns.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
