"""The query runner's answers about failures, limits and throttling, on Athena-shaped engine answers (no I/O):
a category and a short message for the user, the engine's text in the log only."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from botocore.exceptions import ClientError
from chalicelib.errors import DependencyError, ResultTooLargeError, TooManyRequestsError
from chalicelib.runner import QueryLimits, QueryRunner, public_message, row_bytes

from devkit.local.duckdb_engine import ENGINE_FAILED_REASON, ResultTooLarge, failure

QUERY_ID = "11111111-2222-3333-4444-555555555555"
SUBMITTED = datetime(2024, 1, 3, 12, 0, tzinfo=UTC)
BUCKET = "dataforge-prod-silver"
RESULTS = "dataforge-prod-athena-results"


class FakeCatalog:
    databases = ("db",)

    def known_tables(self) -> dict[str, frozenset[str]]:
        return {"db": frozenset({"t"})}


class FakeAthena:
    """Answers the runner's calls with what it is given; ``start_error``: raised by start_query_execution."""

    def __init__(self, status: dict[str, Any] | None = None, rows: list[list[str | None]] | None = None,
                 start_error: Exception | None = None) -> None:
        self.status = status or {"State": "SUCCEEDED"}
        self.rows = rows or []
        self.start_error = start_error
        self.stopped: list[str] = []

    def start_query_execution(self, **_: Any) -> dict[str, str]:
        if self.start_error is not None:
            raise self.start_error
        return {"QueryExecutionId": QUERY_ID}

    def get_query_execution(self, *, QueryExecutionId: str) -> dict[str, Any]:
        return {"QueryExecution": {"QueryExecutionId": QueryExecutionId, "WorkGroup": "wg",
                                   "Status": {"SubmissionDateTime": SUBMITTED, **self.status}}}

    def get_query_results(self, **_: Any) -> dict[str, Any]:
        header = {"Data": [{"VarCharValue": "c"}]}
        return {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": [{"Name": "c", "Type": "varchar"}]},
                              "Rows": [header, *({"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                                                 for row in self.rows)]}}

    def stop_query_execution(self, *, QueryExecutionId: str) -> dict[str, Any]:
        self.stopped.append(QueryExecutionId)
        self.status = {"State": "CANCELLED", "CompletionDateTime": SUBMITTED + timedelta(seconds=61)}
        return {}


def runner(engine: FakeAthena, now: datetime = SUBMITTED + timedelta(seconds=1), **kwargs: Any) -> QueryRunner:
    return QueryRunner(lambda: engine, FakeCatalog(), dialect="trino", workgroup="wg",  # type: ignore[arg-type]
                       limits=QueryLimits(max_rows=100, timeout_seconds=60, **kwargs), clock=lambda: now,
                       redact=[BUCKET, RESULTS, "wg"])


# --- Athena's reasons: category + short message, details in the log --------------------------------

ATHENA_FAILURES = [
    # (StateChangeReason, ErrorCategory, expected code, what the user must not see)
    ("HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split s3://dataforge-prod-silver/transactions/event_date=2024-01-01/"
     "part-00000.snappy.parquet (offset=0, length=1024): Access Denied (Service: Amazon S3; Status Code: 403)",
     1, "engine_error", [BUCKET, "s3://", "part-00000"]),
    ("Access denied when writing output to url: s3://dataforge-prod-athena-results/results/abc.csv. Please ensure "
     "you are allowed to access the S3 bucket.", 2, "query_failed", [RESULTS, "s3://", "abc.csv"]),
    ("Insufficient permissions to execute the query. User: arn:aws:sts::123456789012:assumed-role/dataforge-prod-api/"
     "fn is not authorized to perform: glue:GetTable on resource: arn:aws:glue:us-east-1:123456789012:catalog",
     2, "query_failed", ["arn:aws", "123456789012", "dataforge-prod-api"]),
    ("line 1:8: Column 'nope' cannot be resolved", 2, "query_failed", []),
    ("Query exhausted resources at this scale factor", 2, "resources_exhausted", []),
    ("Query cancelled! : Bytes scanned limit was exceeded", 2, "resources_exhausted", []),
    ("Query timed out", 1, "timeout", []),
    ("INTERNAL_ERROR_QUERY_ENGINE: Amazon Athena experienced an internal error while executing this query. "
     "Please contact AWS support with QueryExecutionId 123.", 1, "engine_error", ["QueryExecutionId"]),
]


@pytest.mark.parametrize(("reason", "category", "code", "hidden"), ATHENA_FAILURES)
def test_a_failure_shows_a_category_and_a_short_message(
        reason: str, category: int, code: str, hidden: list[str], caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeAthena({"State": "FAILED", "StateChangeReason": reason,
                         "AthenaError": {"ErrorCategory": category, "ErrorMessage": reason}})
    caplog.set_level(logging.INFO)
    status = runner(engine).status(QUERY_ID)
    assert status["status"] == "FAILED"
    assert status["error"]["code"] == code
    message = status["error"]["message"]
    assert message
    assert len(message) <= 300
    for text in hidden:
        assert text not in message, message
    assert reason in caplog.text  # the whole reason is logged


def test_a_query_stopped_at_the_limit_by_someone_else_reads_as_timed_out() -> None:
    """On AWS the scheduled evaluator stops it (state CANCELLED); the user did not cancel it."""
    engine = FakeAthena({"State": "CANCELLED", "CompletionDateTime": SUBMITTED + timedelta(seconds=75)})
    status = runner(engine).status(QUERY_ID)
    assert (status["status"], status["error"]["code"]) == ("FAILED", "timeout")
    engine.status = {"State": "CANCELLED", "CompletionDateTime": SUBMITTED + timedelta(seconds=3)}
    status = runner(engine).status(QUERY_ID)
    assert (status["status"], status["error"]) == ("CANCELLED", None)


def test_a_running_query_past_the_limit_is_stopped_when_read() -> None:
    engine = FakeAthena({"State": "RUNNING"})
    status = runner(engine, now=SUBMITTED + timedelta(seconds=61)).status(QUERY_ID)
    assert engine.stopped == [QUERY_ID]
    assert (status["status"], status["error"]["code"]) == ("FAILED", "timeout")


@pytest.mark.parametrize(("text", "shown"), [
    ('IO Error: Cannot open file "s3://dataforge-prod-silver/a/b.parquet": 404',
     'IO Error: Cannot open file "<location>": 404'),
    ('Permission Error: Cannot access file "/etc/passwd" - file system operations are disabled',
     'Permission Error: Cannot access file "<path>" - file system operations are disabled'),
    ("HTTP GET error on 'http://127.0.0.1:5000/x' (HTTP 500)", "HTTP GET error on '<location>' (HTTP 500)"),
    ("connect to 10.0.3.7:9092 failed", "connect to <host> failed"),
    ("bucket DATAFORGE-PROD-SILVER is gone", "bucket <name> is gone"),
    ('Binder Error: column "x" not found\nCandidate bindings: ...\nLINE 1: SELECT x',
     'Binder Error: column "x" not found'),
    ("Conversion Error: Could not convert 'a/b' to INT32", "Conversion Error: Could not convert 'a/b' to INT32"),
    ("x" * 5000, "x" * 297 + "..."),
])
def test_public_message(text: str, shown: str) -> None:
    assert public_message(text, [BUCKET]) == shown


# --- starting: throttled is a 429, other failures a 500 without the engine's text ---------------------


def test_a_throttled_start_is_429_with_retry_after() -> None:
    error = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}},
                        "StartQueryExecution")
    with pytest.raises(TooManyRequestsError) as raised:
        runner(FakeAthena(start_error=error)).start("SELECT c FROM t", "db")
    assert (raised.value.status, raised.value.code) == (429, "too_many_queries")
    assert raised.value.retry_after >= 1


def test_dependency_errors_hold_no_engine_text() -> None:
    error = ClientError({"Error": {"Code": "InternalServerException",
                                   "Message": f"failed writing to s3://{RESULTS}/results/"}}, "StartQueryExecution")
    with pytest.raises(DependencyError) as raised:
        runner(FakeAthena(start_error=error)).start("SELECT c FROM t", "db")
    assert RESULTS not in str(raised.value)
    assert raised.value.__cause__ is error  # chained: the log's traceback has it


# --- results pages bounded by bytes ----------------------------------------------------------------


def test_a_results_page_over_the_byte_limit_is_refused() -> None:
    engine = FakeAthena(rows=[["x" * 600], ["y" * 600]])
    with pytest.raises(ResultTooLargeError) as raised:
        runner(engine, page_bytes=1000).results(QUERY_ID, max_results=10, next_token=None)
    assert (raised.value.status, raised.value.code) == (422, "result_too_large")
    page = runner(engine, page_bytes=2000).results(QUERY_ID, max_results=10, next_token=None)
    assert [len(row[0] or "") for row in page["rows"]] == [600, 600]


def test_row_bytes_counts_utf8() -> None:
    assert row_bytes(["ab", None, "é"]) == 3 + 1 + 3


# --- the local engine's failures, as reasons the runner understands ------------------------------------

LOCAL_FAILURES = [
    (duckdb.IOException('IO Error: Cannot open file "s3://dataforge-prod-silver/x.parquet"'), "engine_error"),
    (duckdb.HTTPException("HTTP Error: HTTP GET error on 'http://127.0.0.1:5000/b/x' (HTTP 404)"), "engine_error"),
    (duckdb.PermissionException('Permission Error: Cannot access file "/etc/passwd"'), "engine_error"),
    (duckdb.InternalException("INTERNAL Error: Attempted to access index 3 within vector of size 2"), "engine_error"),
    (duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate 16 MiB"), "resources_exhausted"),
    (ResultTooLarge("a row holds more than 1048576 bytes"), "result_too_large"),
    (duckdb.BinderException('Binder Error: Referenced column "nope" not found'), "query_failed"),
    (duckdb.InvalidInputException('Invalid Input Error: Malformed JSON in file "s3://dataforge-prod-silver/x.json"'),
     "query_failed"),
]


@pytest.mark.parametrize(("exc", "code"), LOCAL_FAILURES, ids=[type(e).__name__ for e, _ in LOCAL_FAILURES])
def test_local_engine_failures(exc: Exception, code: str) -> None:
    reason, category = failure(exc, memory_mb=1024, redact=[BUCKET])  # type: ignore[arg-type]
    engine = FakeAthena({"State": "FAILED", "StateChangeReason": reason,
                         "AthenaError": {"ErrorCategory": category, "ErrorMessage": reason}})
    status = runner(engine).status(QUERY_ID)
    assert status["error"]["code"] == code
    if code == "engine_error":
        assert reason == ENGINE_FAILED_REASON
    for hidden in (BUCKET, "s3://", "127.0.0.1", "/etc/passwd"):
        assert hidden not in status["error"]["message"]
