"""The API's errors: each carries its HTTP status and a machine-readable code.

Raised anywhere below the routes; the route wrapper (``chalicelib.http``) turns them into
``{"error": {"code", "message"}}`` responses. Anything else becomes a logged 500 with a generic message.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error the client can act on: ``status`` + ``code`` + a message saying what to do."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadRequestError(ApiError):
    status = 400


class UnauthorizedError(ApiError):
    status = 401


class ForbiddenError(ApiError):
    status = 403


class NotFoundError(ApiError):
    status = 404


class ConflictError(ApiError):
    status = 409


class SqlRefusedError(BadRequestError):
    """The query guard refused a statement (not read-only, other database, file/network access, ...)."""


class DependencyError(Exception):
    """A backing service (DynamoDB, Glue, Athena, DuckDB) failed; reported as a generic 500."""
