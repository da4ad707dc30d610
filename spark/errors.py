"""Errors the Glue jobs raise on purpose (bad arguments are ``dataforge.errors.SettingsError``)."""

from __future__ import annotations

from dataforge.errors import DataForgeError


class JobError(DataForgeError):
    """A job cannot run: its Spark session or what it reads is not as the job needs."""
