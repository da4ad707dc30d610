"""The API's errors: each carries its HTTP status and a machine-readable code.

Raised anywhere below the routes; the route wrapper (``chalicelib.http``) turns them into
``{"error": {"code", "message"}}`` responses (a 429 also carries ``Retry-After``). Anything else
becomes a logged 500 with a generic message.
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


class ResultTooLargeError(ApiError):
    """A page of results is larger than the API answers in one response (``MAX_RESULT_PAGE_BYTES``)."""

    status = 422


class TooManyRequestsError(ApiError):
    """Too many queries at once; ``retry_after`` (seconds) becomes the response's ``Retry-After`` header."""

    status = 429

    def __init__(self, code: str, message: str, *, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class SqlRefusedError(BadRequestError):
    """The query guard refused a statement (not read-only, other database, file/network access, ...)."""


class DependencyError(Exception):
    """A backing service (DynamoDB, Glue, Athena, DuckDB) failed; reported as a generic 500."""
