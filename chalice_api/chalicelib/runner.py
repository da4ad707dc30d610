"""The query runner: guard -> engine -> Athena-shaped status and results -> the API's JSON.

The engine is Athena's client (AWS, in the stack's workgroup, whose enforced result location and
bytes-scanned cutoff apply) or ``LocalAthena`` (DuckDB) with the same four calls and shapes, so this
module is engine-agnostic. The guard (``sqlguard``) and its limits are the same for both; the
timeout is enforced here too (a query still running past it is stopped; on AWS the scheduled evaluator
also stops it without anyone asking, ``lambdas.common.query_timeouts``).

What the user sees of a failure is a category and a short message: the engine's reason goes to the
log, and a user error's message is shown without locations, paths, hosts, ARNs or the lake's bucket
names (``public_message``). A results page is bounded by bytes as well as rows (``MAX_RESULT_PAGE_BYTES``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.catalog import GlueCatalog
from chalicelib.config import MAX_RESULT_BYTES, MAX_RESULT_PAGE_BYTES
from chalicelib.errors import (
    BadRequestError,
    ConflictError,
    DependencyError,
    NotFoundError,
    ResultTooLargeError,
    TooManyRequestsError,
)
from chalicelib.sqlguard import guard

logger = logging.getLogger(__name__)

TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_QUERY_ID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MAX_TOKEN: Final = 4096
RETRY_AFTER_SECONDS: Final = 5  # when the engine has too many queries running or waiting
_THROTTLED: Final = frozenset({"TooManyRequestsException", "ThrottlingException"})
SYSTEM_ERROR: Final = 1  # Athena's ``AthenaError.ErrorCategory``: 1 system, 2 user, 3 other
USER_ERROR: Final = 2

# The category of a failure reason, by what Athena and the local engine write; the first match wins.
_REASON_KINDS: Final = (
    ("timeout", re.compile(r"\btimed out\b|\btimeout\b", re.IGNORECASE)),
    ("result_too_large", re.compile(r"\bresult too large\b", re.IGNORECASE)),
    ("resources_exhausted", re.compile(r"exhausted resources|bytes scanned limit|out of memory", re.IGNORECASE)),
)
_MAX_MESSAGE: Final = 300
_HIDDEN: Final = (  # what a message shown to the user never holds, and what stands in its place
    (re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`]*"), "<location>"),
    (re.compile(r"\barn:aws[A-Za-z-]*:[^\s'\"`]*"), "<arn>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|\blocalhost(?::\d+)?\b|[\w.-]+\.amazonaws\.com\b"), "<host>"),
    (re.compile(r"(?<![\w.)\]}/<>-])(?:~|\.{1,2})?/[\w.@%+=,-]+(?:/[\w.@%+=,-]*)*"), "<path>"),
)


def public_message(text: str, redact: Iterable[str] = ()) -> str:
    """What an engine message may show a user: its first line, without URLs and ``s3://`` locations,
    ARNs, hosts, file paths and the ``redact`` names (bucket names, ...), at most 300 characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")[:4 * _MAX_MESSAGE]
    for pattern, stand_in in _HIDDEN:
        line = pattern.sub(stand_in, line)
    for name in sorted((n for n in redact if n), key=len, reverse=True):
        line = re.sub(re.escape(name), "<name>", line, flags=re.IGNORECASE)
    return line if len(line) <= _MAX_MESSAGE else line[:_MAX_MESSAGE - 3] + "..."


def row_bytes(cells: Iterable[str | None]) -> int:
    """What a row of text cells weighs in a results page: the UTF-8 bytes of its values, one more per cell."""
    size = 0
    for cell in cells:
        size += 1 if cell is None else 1 + (len(cell) if cell.isascii() else len(cell.encode("utf-8", "replace")))
    return size


def _mib(size: int) -> str:
    return f"{size / 1024**2:g} MiB"


class AthenaLike(Protocol):
    """The four Athena calls the runner makes (boto3's Athena client, or a ``LocalEngine``)."""

    @property
    def start_query_execution(self) -> Callable[..., Any]: ...
    @property
    def get_query_execution(self) -> Callable[..., Any]: ...
    @property
    def get_query_results(self) -> Callable[..., Any]: ...
    @property
    def stop_query_execution(self) -> Callable[..., Any]: ...


class LocalEngine(AthenaLike, Protocol):
    """A query engine that stands in for Athena on one machine (the toolkit's DuckDB engine)."""

    def check(self) -> None:
        """Raise ``DependencyError`` unless the engine can run queries (the health check)."""

    def close(self) -> None:
        """Stop running queries and release the engine."""


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """What one query may take."""

    max_rows: int  # the row limit the guard enforces (LIMIT added or lowered)
    timeout_seconds: float  # a query still running past it is stopped
    page_bytes: int = MAX_RESULT_PAGE_BYTES  # one results page; a larger page fails with result_too_large
    result_bytes: int = MAX_RESULT_BYTES  # a whole result (the engine's limit, named in the user's message)


class QueryRunner:
    """``redact``: names a failure message shown to the user must not hold (the lake's buckets, ...)."""

    def __init__(
        self, engine: Callable[[], AthenaLike], catalog: GlueCatalog, *, dialect: str, workgroup: str | None,
        limits: QueryLimits, clock: Callable[[], datetime] = lambda: datetime.now(UTC), redact: Sequence[str] = (),
    ) -> None:
        self._engine, self._catalog, self._dialect, self._workgroup = engine, catalog, dialect, workgroup
        self._max_rows, self._timeout, self._clock = limits.max_rows, limits.timeout_seconds, clock
        self._redact, self._page_bytes, self._result_bytes = tuple(redact), limits.page_bytes, limits.result_bytes

    def start(self, sql: str, database: str | None) -> dict[str, Any]:
        checked = guard(
            sql, default_database=database, allowed_databases=frozenset(self._catalog.databases),
            known_tables=self._catalog.known_tables(), max_rows=self._max_rows,
        )
        request: dict[str, Any] = {
            "QueryString": checked.sql(self._dialect),
            "QueryExecutionContext": {"Database": database or min(checked.databases or self._catalog.databases)},
        }
        if self._workgroup:
            request["WorkGroup"] = self._workgroup
        try:
            response = self._engine().start_query_execution(**request)
        except ClientError as exc:
            if _error_code(exc) in _THROTTLED:
                logger.info("query refused by the engine: %s", exc)
                raise TooManyRequestsError(
                    "too_many_queries", "too many queries are running or waiting; retry in a few seconds",
                    retry_after=RETRY_AFTER_SECONDS) from None
            raise DependencyError("starting the query failed") from exc
        except BotoCoreError as exc:
            raise DependencyError("starting the query failed") from exc
        return {"query_id": response["QueryExecutionId"], "status": "QUEUED"}

    def _execution(self, query_id: str) -> dict[str, Any]:
        unknown = NotFoundError(
            "query_not_found", f"no query with id {query_id[:80]!r}; start one with POST /v1/queries"
        )
        if not _QUERY_ID.fullmatch(query_id):
            raise unknown
        try:
            execution: dict[str, Any] = self._engine().get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        except ClientError as exc:
            if _error_code(exc) in ("InvalidRequestException", "ResourceNotFoundException"):
                raise unknown from None
            raise DependencyError(f"reading query {query_id} failed") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"reading query {query_id} failed") from exc
        if self._workgroup and execution.get("WorkGroup") not in (None, self._workgroup):
            raise unknown
        return execution

    def status(self, query_id: str) -> dict[str, Any]:
        execution = self._execution(query_id)
        state = str(execution["Status"]["State"])
        submitted = _aware(execution["Status"].get("SubmissionDateTime"))
        timed_out = False
        if state not in TERMINAL and submitted is not None:
            if (self._clock() - submitted).total_seconds() > self._timeout:
                self._stop(query_id)
                execution = self._execution(query_id)
                state, timed_out = str(execution["Status"]["State"]), True
        elif state == "CANCELLED" and submitted is not None:
            # stopped at the time limit by the scheduled evaluator (AWS), not by its user
            completed = _aware(execution["Status"].get("CompletionDateTime"))
            timed_out = completed is not None and (completed - submitted).total_seconds() >= self._timeout
        return self._format(execution, state, timed_out)

    def _format(self, execution: dict[str, Any], state: str, timed_out: bool) -> dict[str, Any]:
        status = execution["Status"]
        error: dict[str, str] | None = None
        if timed_out:
            error = self._error("timeout", "")
        elif state == "FAILED":
            athena_error = status.get("AthenaError") or {}
            reason = str(status.get("StateChangeReason") or athena_error.get("ErrorMessage") or "")
            kind = next((k for k, pattern in _REASON_KINDS if pattern.search(reason)), None)
            if kind is None:
                kind = "engine_error" if athena_error.get("ErrorCategory") == SYSTEM_ERROR else "query_failed"
            logger.info("query %s failed (%s): %s", execution["QueryExecutionId"], kind, reason)
            error = self._error(kind, reason)
        rows = execution.get("Statistics", {}).get("ResultRowCount")
        return {
            "query_id": execution["QueryExecutionId"],
            "status": "CANCELLED" if state == "CANCELLED" and not timed_out else ("FAILED" if timed_out else state),
            "error": error,
            "submitted_at": _iso(status.get("SubmissionDateTime")),
            "completed_at": _iso(status.get("CompletionDateTime")),
            "rows": rows if isinstance(rows, int) else None,
        }

    def _error(self, kind: str, reason: str) -> dict[str, str]:
        """The category and the short message a user sees (the engine's reason itself is logged)."""
        messages = {
            "timeout": f"the query ran longer than {self._timeout:g} s and was stopped;"
                       " narrow it (partition filter on event_date, fewer columns) and retry",
            "result_too_large": f"the result is larger than the API returns ({_mib(self._result_bytes)} in all, "
                                f"{_mib(self._page_bytes)} per row); select fewer columns or rows, or aggregate",
            "resources_exhausted": "the query needs more memory or scans more data than the engine allows;"
                                   " filter on event_date, select fewer columns, or aggregate",
            "engine_error": "the query engine could not run the query; retry later (details are in the server log)",
        }
        message = messages.get(kind) or public_message(reason, self._redact) or "the query failed"
        return {"code": kind, "message": message}

    def _stop(self, query_id: str) -> None:
        try:
            self._engine().stop_query_execution(QueryExecutionId=query_id)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"stopping query {query_id} failed") from exc

    def cancel(self, query_id: str) -> dict[str, Any]:
        current = self.status(query_id)
        if current["status"] in TERMINAL:
            raise ConflictError("query_finished", f"query {query_id} is already {current['status']}; nothing to cancel")
        self._stop(query_id)
        return self.status(query_id)

    def results(self, query_id: str, *, max_results: int, next_token: str | None) -> dict[str, Any]:
        current = self.status(query_id)
        if current["status"] != "SUCCEEDED":
            raise ConflictError("query_not_succeeded",
                                f"query {query_id} is {current['status']}; results exist only once it SUCCEEDED")
        if next_token is not None and len(next_token) > _MAX_TOKEN:
            raise BadRequestError("invalid_token", "next_token is not a token returned for this query")
        first_page = next_token is None
        request: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": min(1000, max_results + first_page)}
        if next_token is not None:
            request["NextToken"] = next_token
        try:
            response = self._engine().get_query_results(**request)
        except ClientError as exc:
            if _error_code(exc) == "InvalidRequestException" and next_token is not None:
                raise BadRequestError("invalid_token", "next_token is not a token returned for this query") from None
            raise DependencyError(f"reading results of {query_id} failed") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"reading results of {query_id} failed") from exc
        info = response["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        rows = response["ResultSet"].get("Rows", [])
        if next_token is None and rows:
            rows = rows[1:]  # Athena's first page starts with the header row
        cells = [[cell.get("VarCharValue") for cell in row.get("Data", [])] for row in rows]
        if sum(row_bytes(row) for row in cells) > self._page_bytes:
            raise ResultTooLargeError(
                "result_too_large", f"this page of results holds more than {_mib(self._page_bytes)}; ask for fewer "
                "rows per page (max_results) or select fewer columns")
        return {
            "columns": [{"name": c["Name"], "type": c["Type"]} for c in info],
            "rows": cells,
            "next_token": response.get("NextToken"),
        }
