"""The query runner: guard -> engine -> Athena-shaped status and results -> the API's JSON.

The engine is Athena's client (AWS, in the stack's workgroup, whose enforced result location and
bytes-scanned cutoff apply) or ``LocalAthena`` (DuckDB) with the same four calls and shapes, so this
module is engine-agnostic. The guard (``sqlguard``) and its limits are the same for both; the
timeout is enforced here too (a query still running past it is stopped).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.catalog import GlueCatalog
from chalicelib.errors import BadRequestError, ConflictError, DependencyError, NotFoundError
from chalicelib.sqlguard import guard

TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_QUERY_ID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MAX_TOKEN: Final = 4096


class AthenaLike(Protocol):
    """The four Athena calls the runner makes (boto3's Athena client, or ``LocalAthena``)."""

    @property
    def start_query_execution(self) -> Callable[..., Any]: ...
    @property
    def get_query_execution(self) -> Callable[..., Any]: ...
    @property
    def get_query_results(self) -> Callable[..., Any]: ...
    @property
    def stop_query_execution(self) -> Callable[..., Any]: ...


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class QueryRunner:
    def __init__(
        self, engine: Callable[[], AthenaLike], catalog: GlueCatalog, *, dialect: str, workgroup: str | None,
        max_rows: int, timeout_seconds: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine, self._catalog, self._dialect, self._workgroup = engine, catalog, dialect, workgroup
        self._max_rows, self._timeout, self._clock = max_rows, timeout_seconds, clock

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
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"starting the query failed: {exc}") from exc
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
            raise DependencyError(f"reading query {query_id} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"reading query {query_id} failed: {exc}") from exc
        if self._workgroup and execution.get("WorkGroup") not in (None, self._workgroup):
            raise unknown
        return execution

    def status(self, query_id: str) -> dict[str, Any]:
        execution = self._execution(query_id)
        state = str(execution["Status"]["State"])
        submitted = execution["Status"].get("SubmissionDateTime")
        timed_out = False
        if state not in TERMINAL and isinstance(submitted, datetime):
            aware = submitted if submitted.tzinfo else submitted.replace(tzinfo=UTC)
            if (self._clock() - aware).total_seconds() > self._timeout:
                self._stop(query_id)
                execution = self._execution(query_id)
                state, timed_out = str(execution["Status"]["State"]), True
        return self._format(execution, state, timed_out)

    def _format(self, execution: dict[str, Any], state: str, timed_out: bool) -> dict[str, Any]:
        status = execution["Status"]
        reason = str(status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage") or "")
        error: dict[str, str] | None = None
        if timed_out or "timed out" in reason:
            error = {"code": "timeout", "message": f"the query ran longer than {self._timeout:g} s and was stopped;"
                     " narrow it (partition filter on event_date, fewer columns) and retry"}
        elif state == "FAILED":
            error = {"code": "query_failed", "message": reason or "the query failed"}
        rows = execution.get("Statistics", {}).get("ResultRowCount")
        return {
            "query_id": execution["QueryExecutionId"],
            "status": "CANCELLED" if state == "CANCELLED" and not timed_out else ("FAILED" if timed_out else state),
            "error": error,
            "submitted_at": _iso(status.get("SubmissionDateTime")),
            "completed_at": _iso(status.get("CompletionDateTime")),
            "rows": rows if isinstance(rows, int) else None,
        }

    def _stop(self, query_id: str) -> None:
        try:
            self._engine().stop_query_execution(QueryExecutionId=query_id)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"stopping query {query_id} failed: {exc}") from exc

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
            raise DependencyError(f"reading results of {query_id} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"reading results of {query_id} failed: {exc}") from exc
        info = response["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        rows = response["ResultSet"].get("Rows", [])
        if next_token is None and rows:
            rows = rows[1:]  # Athena's first page starts with the header row
        return {
            "columns": [{"name": c["Name"], "type": c["Type"]} for c in info],
            "rows": [[cell.get("VarCharValue") for cell in row.get("Data", [])] for row in rows],
            "next_token": response.get("NextToken"),
        }
