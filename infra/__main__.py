"""Entry point ``pulumi up`` runs (``Pulumi.yaml``: ``main: infra/``)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # the language host runs this file from infra/; make the repo importable
    sys.path.insert(0, _ROOT)

from infra.program import main  # noqa: E402

main()
