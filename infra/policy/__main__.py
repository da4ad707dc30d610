"""Entry point of the policy pack: ``pulumi preview --policy-pack infra/policy``."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # the policy host runs this file from infra/policy/
    sys.path.insert(0, _ROOT)

from infra.policy.pack import build_pack  # noqa: E402

build_pack()
