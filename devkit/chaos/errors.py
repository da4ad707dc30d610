"""The chaos harness's errors."""

from __future__ import annotations

from dataforge.errors import DataForgeError


class ChaosError(DataForgeError):
    """An experiment could not be run as asked (a component missing, a platform that does not settle)."""
