"""The local Athena: DuckDB over the lake's Parquet on the embedded S3, behind Athena's API shape.

``LocalAthena`` implements the four Athena calls the runner makes (``start_query_execution``,
``get_query_execution``, ``get_query_results``, ``stop_query_execution``) with Athena's request and
response shapes, so the runner is the same code for both engines. Tables are resolved from the
Glue catalog (on moto): each allowed database becomes a DuckDB schema and each table a view over
the Parquet files of its registered partitions (read through the httpfs extension, S3 endpoint =
the moto server, path-style URLs).

The connection is a second wall behind the guard (``sqlguard``), built so that even SQL the guard
should have refused finds nothing to read or change:

- the S3 credentials live only in a DuckDB secret scoped to the lake buckets, whose secret and
  session token ``duckdb_secrets()`` redacts; the ``s3_*`` settings httpfs copies from the process
  environment when it loads are reset, and the connection refuses to start if any setting still
  holds a credential;
- no persistent secrets, no home, extension or temporary directory (nothing spills to disk), no
  file or network access outside the lake buckets, no extension loading; the configuration is then
  locked, so no ``SET`` can undo any of it;
- a memory limit and a thread count (``EngineLimits``), and a time limit that interrupts DuckDB
  (counted from the submission, so time spent waiting counts);
- at most ``max_waiting`` queries wait for a worker; more are refused as Athena refuses them
  (``TooManyRequestsException``);
- a result is bounded by bytes as well as rows: a row over ``page_bytes`` or a result over
  ``result_bytes`` fails the query (``result too large``) as soon as it is seen, pages are cut at
  ``page_bytes``, and finished results are kept in memory up to ``keep_bytes`` in all and for
  ``keep_seconds`` (then the query is unknown, as an expired Athena result);
- DuckDB's error text goes to the log; the query's reason says what the user can act on (the
  message of an error in the query, without locations or paths) or only that the engine failed.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

import duckdb
from botocore.exceptions import BotoCoreError, ClientError
from chalicelib.catalog import GlueCatalog, TableInfo
from chalicelib.config import LOCAL_QUERY_MEMORY_MB, MAX_RESULT_BYTES, MAX_RESULT_PAGE_BYTES
from chalicelib.errors import DependencyError
from chalicelib.runner import SYSTEM_ERROR, USER_ERROR, public_message, row_bytes

from dataforge.errors import ContractError
from dataforge.schemas import duckdb_type

if TYPE_CHECKING:
    from chalicelib.services import Services
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_ATHENA_TYPES: Final = {
    "VARCHAR": "varchar", "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "TINYINT": "tinyint",
    "HUGEINT": "decimal", "DOUBLE": "double", "FLOAT": "real", "BOOLEAN": "boolean", "DATE": "date",
    "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "BLOB": "varbinary",
    "UBIGINT": "decimal", "UINTEGER": "bigint", "USMALLINT": "integer", "UTINYINT": "smallint",
}
_HIVE_EXTRA: Final = {"boolean": "BOOLEAN", "float": "FLOAT", "smallint": "SMALLINT", "tinyint": "TINYINT"}
_NOWHERE: Final = "/nonexistent"  # the extension and secret directories: nothing of this machine is named
_INTERRUPT_EVERY: Final = 0.05  # seconds between repeated interrupts of a query being stopped
_FETCH_ROWS: Final = 256  # rows converted per fetch, so a result too large is seen before it is all in memory
# DuckDB errors that describe the query (the user can fix them); any other is the engine's own failure.
_QUERY_ERRORS: Final = (
    duckdb.ParserException, duckdb.SyntaxException, duckdb.BinderException, duckdb.CatalogException,
    duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
    duckdb.NotImplementedException, duckdb.TypeMismatchException, duckdb.InvalidTypeException,
)
CANCELLED_REASON: Final = "cancelled by the user"
ENGINE_FAILED_REASON: Final = "the local query engine failed; the details are in the server log"


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """What one local engine may use. Defaults fit a developer machine next to the rest of the platform."""

    memory_mb: int = LOCAL_QUERY_MEMORY_MB  # DuckDB's memory limit; past it a query fails, nothing spills
    threads: int = 2  # DuckDB threads (shared by the running queries)
    workers: int = 2  # queries running at once
    max_waiting: int = 8  # queries waiting for a worker; one more is refused (TooManyRequestsException)
    page_bytes: int = MAX_RESULT_PAGE_BYTES  # one results page; a larger row fails its query
    result_bytes: int = MAX_RESULT_BYTES  # one query's whole result
    keep_bytes: int = 128 * 1024**2  # finished results kept, in all (oldest forgotten first)
    keep_seconds: float = 3600.0  # a finished query is forgotten this long after it finished
    keep_count: int = 500  # finished queries kept


class ResultTooLarge(Exception):
    """A query's result passed a byte limit (internal: the query fails with a ``result too large`` reason)."""


def httpfs_extension_path() -> Path:
    """The httpfs extension shipped by the ``duckdb-ext-httpfs`` wheel (no download at run time)."""
    spec = importlib.util.find_spec("duckdb_ext")
    roots = list(spec.submodule_search_locations or []) if spec else []
    platform = duckdb.execute("SELECT * FROM pragma_platform()").fetchone()
    for root in roots:
        candidate = Path(root) / "extensions" / f"v{duckdb.__version__}" / str(platform[0] if platform else "") / (
            "httpfs.duckdb_extension"
        )
        if candidate.is_file():
            return candidate
    raise DependencyError(f"the httpfs extension for DuckDB {duckdb.__version__} is missing: install duckdb-ext-httpfs")


def hive_to_duckdb(hive_type: str) -> str:
    try:
        return duckdb_type(hive_type)
    except ContractError:
        return _HIVE_EXTRA.get(hive_type, "VARCHAR")


def athena_type(duck: str) -> str:
    if duck.startswith("DECIMAL"):
        return "decimal"
    if duck.endswith("[]"):
        return "array"
    return _ATHENA_TYPES.get(duck, duck.split("(")[0].lower())


def athena_text(value: Any) -> str | None:
    """One cell as Athena renders it as text (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def athena_cell(text: str | None) -> dict[str, str]:
    """A text cell in Athena's result shape (``VarCharValue``; ``{}`` for NULL)."""
    return {} if text is None else {"VarCharValue": text}


def athena_value(value: Any) -> dict[str, str]:
    """One cell as Athena renders it (``VarCharValue`` text; ``{}`` for NULL)."""
    return athena_cell(athena_text(value))


def _athena_error(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "InvalidRequestException", "Message": message}}, operation)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(slots=True)
class _Query:
    query_id: str
    sql: str
    database: str | None
    workgroup: str | None
    submitted_at: datetime
    deadline: float  # engine clock: when the query is interrupted if it still runs
    state: str = "QUEUED"
    reason: str | None = None
    category: int | None = None  # Athena's ErrorCategory of a failure
    completed_at: datetime | None = None
    finished: float = 0.0  # engine clock: when it reached a terminal state
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    row_sizes: list[int] = field(default_factory=list)
    size: int = 0  # bytes of the rows (``row_bytes``)
    cancel_requested: bool = False
    wake: threading.Event = field(default_factory=threading.Event)  # set on a stop and when the run ends
    started: float = 0.0
    elapsed_ms: int = 0


@dataclass(frozen=True, slots=True)
class S3Access:
    endpoint_url: str | None
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def values(self) -> tuple[str, ...]:
        """The credential values no setting or query result may show."""
        return tuple(v for v in (self.access_key_id, self.secret_access_key, self.session_token) if v)


class LocalAthena:
    """Athena's query API on DuckDB (see the module docstring). ``clock``: monotonic seconds."""

    def __init__(
        self, catalog: GlueCatalog, s3: Callable[[], S3Client], access: Callable[[], S3Access], *,
        allowed_buckets: Sequence[str], timeout_seconds: float, limits: EngineLimits = EngineLimits(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog, self._s3, self._access = catalog, s3, access
        self._allowed_buckets, self._timeout, self._limits = tuple(allowed_buckets), timeout_seconds, limits
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="local-athena")
        self._lock = threading.RLock()
        self._queries: OrderedDict[str, _Query] = OrderedDict()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._views_of: dict[str, tuple[TableInfo, ...]] | None = None
        self._views: set[tuple[str, str]] = set()

    @property
    def limits(self) -> EngineLimits:
        return self._limits

    # --- connection and views ---------------------------------------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the engine's DuckDB database, configured and locked as every query's is (for tests
        that probe the second wall directly, without the guard)."""
        return self._connection().cursor()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        access = self._access()
        limits = self._limits
        conn = duckdb.connect(":memory:", config={
            "autoinstall_known_extensions": False, "autoload_known_extensions": False,
            "allow_community_extensions": False, "allow_persistent_secrets": False,
            "threads": limits.threads, "memory_limit": f"{limits.memory_mb}MiB", "temp_directory": "",
        })
        try:
            for directory in ("extension_directory", "secret_directory"):  # else derived from $HOME
                conn.execute(f"SET GLOBAL {directory} = {_literal(_NOWHERE)}")
            conn.execute(f"LOAD {_literal(str(httpfs_extension_path()))}")
            # httpfs copies AWS_ACCESS_KEY_ID & co. of the process environment into global s3_* settings on
            # load, where current_setting() would read them: every s3_* setting goes back to its default.
            for (name,) in conn.execute("SELECT name FROM duckdb_settings() WHERE starts_with(name, 's3_')").fetchall():
                conn.execute(f"RESET GLOBAL {_quote(str(name))}")
                conn.execute(f"RESET {_quote(str(name))}")
            conn.execute(f"CREATE SECRET lake (TYPE s3, {', '.join(self._secret_options(access))})")
            conn.execute("SET GLOBAL TimeZone = 'UTC'")
            directories = ", ".join(_literal(f"s3://{bucket}/") for bucket in self._allowed_buckets)
            conn.execute(f"SET allowed_directories = [{directories}]")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
            _refuse_readable(conn, access)
            session = conn.cursor()  # what a query's own session sees
            try:
                _refuse_readable(session, access)
            finally:
                session.close()
        except BaseException:
            conn.close()
            raise
        return conn

    def _secret_options(self, access: S3Access) -> list[str]:
        scope = ", ".join(_literal(f"s3://{bucket}/") for bucket in self._allowed_buckets)
        options = [f"KEY_ID {_literal(access.access_key_id)}", f"SECRET {_literal(access.secret_access_key)}",
                   f"REGION {_literal(access.region)}", f"SCOPE [{scope}]"]
        if access.session_token:
            options.append(f"SESSION_TOKEN {_literal(access.session_token)}")
        if access.endpoint_url:
            endpoint = urlparse(access.endpoint_url)
            options += [f"ENDPOINT {_literal(endpoint.netloc)}", "URL_STYLE 'path'",
                        f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}"]
        return options

    def sync_views(self) -> None:
        """(Re)create one view per catalog table when the catalog snapshot changed."""
        tables = self._catalog.tables()
        with self._lock:
            if tables is self._views_of:
                return
            conn = self._connection()
            wanted: set[tuple[str, str]] = set()
            for database, infos in tables.items():
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(database)}")
                for info in infos:
                    try:
                        body = self._view_sql(info)
                        conn.execute(f"CREATE OR REPLACE VIEW {_quote(database)}.{_quote(info.name)} AS {body}")
                    except (DependencyError, duckdb.Error):  # one unreadable table: the others stay queryable
                        logger.exception("cannot make the view of %s.%s", info.database, info.name)
                        continue
                    wanted.add((database, info.name))
            for database, name in self._views - wanted:
                conn.execute(f"DROP VIEW IF EXISTS {_quote(database)}.{_quote(name)}")
            self._views, self._views_of = wanted, tables

    def _files(self, info: TableInfo) -> list[str]:
        parsed = urlparse(info.location)
        if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
            return []
        bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
        suffixes = (".parquet",) if info.classification == "parquet" else (".json", ".jsonl", ".json.gz", ".jsonl.gz")
        keys: list[str] = []
        try:
            for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffixes))
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"listing {info.location} failed: {exc}") from exc
        files = [f"s3://{bucket}/{key}" for key in sorted(keys)]
        if info.partition_keys:
            partitions = tuple(
                loc.replace("s3a://", "s3://", 1).rstrip("/") + "/" for loc in self._catalog.partition_locations(info)
            )
            files = [f for f in files if f.startswith(partitions)] if partitions else []
        return files

    def _view_sql(self, info: TableInfo) -> str:
        columns = info.columns + info.partition_keys
        files = self._files(info)
        if not files or info.classification not in ("parquet", "json"):
            nulls = ", ".join(f"CAST(NULL AS {hive_to_duckdb(t)}) AS {_quote(n)}" for n, t in columns)
            return f"SELECT {nulls} WHERE false"
        file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
        hive_types = ", ".join(f"{_literal(n)}: {_literal(hive_to_duckdb(t))}" for n, t in info.partition_keys)
        partition_options = f", hive_partitioning = true, hive_types = {{{hive_types}}}" if info.partition_keys else (
            ", hive_partitioning = false"
        )
        if info.classification == "parquet":
            source = f"read_parquet({file_list}, union_by_name = true{partition_options})"
        else:
            spec = ", ".join(f"{_literal(n)}: {_literal(hive_to_duckdb(t))}" for n, t in info.columns)
            source = f"read_json({file_list}, format = 'newline_delimited', columns = {{{spec}}}{partition_options})"
        select = ", ".join(_quote(n) for n, _ in columns)
        return f"SELECT {select} FROM {source}"

    # --- Athena API -------------------------------------------------------------------------------

    def start_query_execution(self, *, QueryString: str, QueryExecutionContext: dict[str, str] | None = None,
                              WorkGroup: str | None = None, **_: Any) -> dict[str, str]:
        now = self._clock()
        query = _Query(str(uuid.uuid4()), QueryString, (QueryExecutionContext or {}).get("Database"), WorkGroup,
                       datetime.now(UTC), deadline=now + self._timeout)
        with self._lock:
            self._forget_old(now)
            waiting = sum(1 for q in self._queries.values() if q.state == "QUEUED")
            if waiting >= self._limits.max_waiting:
                raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message":
                                             f"CONCURRENT_QUERY_LIMIT_EXCEEDED: {waiting} queries are waiting"}},
                                  "StartQueryExecution")
            self._queries[query.query_id] = query
        self._pool.submit(self._run, query)
        return {"QueryExecutionId": query.query_id}

    def _forget_old(self, now: float) -> None:
        """Forget finished queries older than ``keep_seconds``, then the oldest finished ones while more
        than ``keep_count`` queries or ``keep_bytes`` of results are kept (under the lock)."""
        limits = self._limits
        finished = sorted((q for q in self._queries.values() if q.state in TERMINAL), key=lambda q: q.finished)
        kept_bytes = sum(q.size for q in finished)
        kept = len(finished)
        for query in finished:
            too_old = now - query.finished > limits.keep_seconds
            if not too_old and kept <= limits.keep_count and kept_bytes <= limits.keep_bytes:
                break
            del self._queries[query.query_id]
            kept, kept_bytes = kept - 1, kept_bytes - query.size

    def _finish(self, query: _Query, state: str, reason: str | None = None, category: int | None = None) -> None:
        with self._lock:
            query.state, query.reason, query.category = state, reason, category
            query.completed_at = datetime.now(UTC)
            query.finished = self._clock()
            query.elapsed_ms = int((time.perf_counter() - query.started) * 1000) if query.started else 0
            if state != "SUCCEEDED":
                query.rows, query.row_sizes, query.size = [], [], 0
            self._forget_old(query.finished)

    def _timed_out_reason(self) -> str:
        return f"query timed out after {self._timeout:g} s"

    def _run(self, query: _Query) -> None:
        try:
            self.sync_views()
            self._connection()
        except Exception:  # the views or the connection cannot be made: the engine's failure, not the query's
            logger.exception("the local query engine cannot run query %s", query.query_id)
            self._finish(query, "FAILED", ENGINE_FAILED_REASON, SYSTEM_ERROR)
            return
        try:
            with self._lock:
                if query.cancel_requested:
                    self._finish(query, "CANCELLED", CANCELLED_REASON)
                    return
                remaining = query.deadline - self._clock()
                if remaining <= 0:  # waited past its time limit
                    self._finish(query, "FAILED", self._timed_out_reason(), USER_ERROR)
                    return
                cursor = self._connection().cursor()
                query.state, query.started = "RUNNING", time.perf_counter()
            done = threading.Event()
            watchdog = threading.Thread(target=_interrupt_when, args=(cursor, query.wake, remaining, done),
                                        name=f"local-athena-watch-{query.query_id[:8]}", daemon=True)
            watchdog.start()
            try:
                cursor.execute(query.sql)
                description = cursor.description or []
                query.columns = [(str(d[0]), athena_type(str(d[1]))) for d in description]
                self._fetch(query, cursor)
            finally:
                done.set()
                query.wake.set()
                watchdog.join()
                cursor.close()
            self._finish(query, "SUCCEEDED")
        except duckdb.InterruptException:
            if query.cancel_requested:
                self._finish(query, "CANCELLED", CANCELLED_REASON)
            else:
                self._finish(query, "FAILED", self._timed_out_reason(), USER_ERROR)
        except (ResultTooLarge, duckdb.Error) as exc:
            logger.info("local query %s failed: %s", query.query_id, exc)
            self._finish(query, "FAILED", *failure(exc, memory_mb=self._limits.memory_mb,
                                                   redact=self._allowed_buckets))
        except Exception:  # the worker's outermost boundary: record, never lose the query
            logger.exception("local query %s failed", query.query_id)
            self._finish(query, "FAILED", ENGINE_FAILED_REASON, SYSTEM_ERROR)

    def _fetch(self, query: _Query, cursor: duckdb.DuckDBPyConnection) -> None:
        """The rows as Athena's text cells, ``_FETCH_ROWS`` at a time; ``ResultTooLarge`` at the first row
        over ``page_bytes`` or the first byte over ``result_bytes`` (the rest is never fetched)."""
        limits = self._limits
        rows, sizes, total = query.rows, query.row_sizes, 0
        while chunk := cursor.fetchmany(_FETCH_ROWS):
            for values in chunk:
                row = tuple(athena_text(v) for v in values)
                size = row_bytes(row)
                if size > limits.page_bytes:
                    raise ResultTooLarge(f"a row holds more than {limits.page_bytes} bytes")
                total += size
                if total > limits.result_bytes:
                    raise ResultTooLarge(f"the result holds more than {limits.result_bytes} bytes")
                rows.append(row)
                sizes.append(size)
        query.size = total

    def _get(self, query_id: str, operation: str) -> _Query:
        with self._lock:
            query = self._queries.get(query_id)
        if query is None:
            raise _athena_error(operation, f"QueryExecution {query_id} was not found")
        return query

    def get_query_execution(self, *, QueryExecutionId: str) -> dict[str, Any]:
        query = self._get(QueryExecutionId, "GetQueryExecution")
        status: dict[str, Any] = {"State": query.state, "SubmissionDateTime": query.submitted_at}
        if query.reason:
            status["StateChangeReason"] = query.reason
        if query.category is not None:
            status["AthenaError"] = {"ErrorCategory": query.category, "ErrorMessage": query.reason or "",
                                     "Retryable": query.category == SYSTEM_ERROR}
        if query.completed_at:
            status["CompletionDateTime"] = query.completed_at
        execution: dict[str, Any] = {
            "QueryExecutionId": query.query_id, "Query": query.sql, "StatementType": "DML", "Status": status,
            "QueryExecutionContext": {"Database": query.database} if query.database else {},
            "Statistics": {"EngineExecutionTimeInMillis": query.elapsed_ms, "DataScannedInBytes": 0,
                           "ResultRowCount": len(query.rows) if query.state == "SUCCEEDED" else None},
        }
        if query.workgroup:
            execution["WorkGroup"] = query.workgroup
        return {"QueryExecution": execution}

    def get_query_results(self, *, QueryExecutionId: str, MaxResults: int = 1000,
                          NextToken: str | None = None) -> dict[str, Any]:
        """A page of at most ``MaxResults`` rows (the header row included on the first) and at most
        ``page_bytes`` of cells (always at least one row: no row is larger)."""
        query = self._get(QueryExecutionId, "GetQueryResults")
        if query.state != "SUCCEEDED":
            raise _athena_error("GetQueryResults", f"Query has not yet finished. Current state: {query.state}")
        offset = 0
        if NextToken is not None:
            if not NextToken.isascii() or not NextToken.isdigit() or int(NextToken) > len(query.rows):
                raise _athena_error("GetQueryResults", "NextToken is invalid")
            offset = int(NextToken)
        header = [{"Data": [{"VarCharValue": name} for name, _ in query.columns]}] if offset == 0 else []
        budget = self._limits.page_bytes - (row_bytes(name for name, _ in query.columns) if header else 0)
        end, room = offset, max(0, MaxResults - len(header))
        while end < len(query.rows) and end - offset < room:
            if end > offset and query.row_sizes[end] > budget:
                break
            budget -= query.row_sizes[end]
            end += 1
        rows = header + [{"Data": [athena_cell(v) for v in row]} for row in query.rows[offset:end]]
        result: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": rows,
                "ResultSetMetadata": {"ColumnInfo": [
                    {"CatalogName": "hive", "Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN"}
                    for name, kind in query.columns
                ]},
            },
        }
        if end < len(query.rows):
            result["NextToken"] = str(end)
        return result

    def stop_query_execution(self, *, QueryExecutionId: str) -> dict[str, Any]:
        query = self._get(QueryExecutionId, "StopQueryExecution")
        with self._lock:
            if query.state in TERMINAL:
                return {}
            query.cancel_requested = True
            query.wake.set()
            if query.state == "QUEUED":
                self._finish(query, "CANCELLED", CANCELLED_REASON)
        return {}

    def check(self) -> None:
        """Health: the engine answers a trivial query."""
        try:
            cursor = self._connection().cursor()
            try:
                cursor.execute("SELECT 1").fetchall()
            finally:
                cursor.close()
        except duckdb.Error as exc:
            raise DependencyError("DuckDB is not answering") from exc

    def close(self) -> None:
        """Cancel the waiting queries, interrupt the running ones and wait for them to end, then close the
        connection (closing it under a running cursor would crash DuckDB)."""
        with self._lock:
            for query in self._queries.values():
                query.cancel_requested = True
                query.wake.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _interrupt_when(cursor: duckdb.DuckDBPyConnection, wake: threading.Event, seconds: float,
                    done: threading.Event) -> None:
    """At ``seconds``, or when ``wake`` is set (a stop), interrupt ``cursor`` until ``done`` (the run ended; it
    sets ``wake`` too). DuckDB forgets an interrupt that comes before the query starts executing, so it is
    repeated until the query is over."""
    wake.wait(seconds)
    while not done.is_set():
        cursor.interrupt()
        done.wait(_INTERRUPT_EVERY)


def failure(exc: ResultTooLarge | duckdb.Error, *, memory_mb: int, redact: Sequence[str]) -> tuple[str, int]:
    """The reason (``StateChangeReason``) and Athena error category of a query that raised ``exc``: what the
    user can act on, in words the runner recognises (``result too large``, ``exhausted resources``), or the
    message of an error in the query without locations or paths; any other error is the engine's, told
    without its text (which the caller logs)."""
    if isinstance(exc, ResultTooLarge):
        return f"result too large: {exc}", USER_ERROR
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"query exhausted resources: it needs more than the engine's {memory_mb} MiB of memory", USER_ERROR
    if isinstance(exc, _QUERY_ERRORS):
        return public_message(str(exc), redact) or "the query failed", USER_ERROR
    return ENGINE_FAILED_REASON, SYSTEM_ERROR


def _refuse_readable(conn: duckdb.DuckDBPyConnection, access: S3Access) -> None:
    """Fail closed: no setting may hold a credential value, and no secret's description may show its secret
    or session token (DuckDB shows the key id, which is not a credential without the secret)."""
    settings = [str(v) for (v,) in conn.execute("SELECT value FROM duckdb_settings()").fetchall() if v is not None]
    hidden = {v for v in (access.secret_access_key, access.session_token) if v}
    shown = [pair.partition("=") for (text,) in conn.execute("SELECT secret_string FROM duckdb_secrets()").fetchall()
             for pair in str(text).split(";")]
    if (any(value in text for text in settings for value in access.values())
            or any(value in hidden for key, _, value in shown if key != "key_id")):
        raise DependencyError("the local query engine's connection would show its S3 credentials")


def engine_for(services: Services) -> LocalAthena:
    """The local engine of ``services`` (the factory the toolkit injects into the API's ``Services``): the
    lake's silver and gold buckets on the services' S3 endpoint, with the session's credentials."""
    settings = services.config.settings

    def access() -> S3Access:
        credentials = services.session().get_credentials()
        if credentials is None:
            raise DependencyError("no AWS credentials for the local query engine's S3 access")
        frozen = credentials.get_frozen_credentials()
        return S3Access(settings.endpoint_url, settings.region, frozen.access_key or "",
                        frozen.secret_key or "", frozen.token)

    buckets = [bucket for bucket in (settings.silver_bucket, settings.gold_bucket) if bucket]
    return LocalAthena(services.catalog(), services.s3, access, allowed_buckets=buckets,
                       timeout_seconds=services.config.query_timeout_seconds,
                       limits=EngineLimits(memory_mb=services.config.local_query_memory_mb))
