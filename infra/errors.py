"""Errors raised by the infrastructure program and its offline plan/diff engine."""

from __future__ import annotations

from dataforge.errors import DataForgeError


class InfraError(DataForgeError):
    """Base of every error ``infra/`` raises on purpose."""


class InfraConfigError(InfraError):
    """A stack's configuration is missing or invalid."""


class RenderError(InfraError):
    """A stack could not be rendered under the mock engine (or a git revision could not be read)."""
