"""The dashboard's exceptions (narrow, chained with ``from exc``)."""

from __future__ import annotations


class DashboardError(Exception):
    """Base of every error the dashboard raises on purpose."""


class DashboardSettingsError(DashboardError):
    """A dashboard setting (environment variable) is missing or malformed."""


class ApiError(DashboardError):
    """The API answered with an error document (``{"error": {"code", "message"}}``) or bad JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ApiUnavailableError(DashboardError):
    """The API could not be reached (connection refused, timeout, 5xx) after every retry."""
