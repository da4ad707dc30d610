"""Unit tests import ``chalicelib`` the way Lambda does: from the Chalice project folder."""

import sys
from pathlib import Path

_CHALICE_DIR = str(Path(__file__).resolve().parents[3] / "chalice_api")
if _CHALICE_DIR not in sys.path:
    sys.path.insert(0, _CHALICE_DIR)
