"""The local Athena: DuckDB over the lake's Parquet on the embedded S3, behind Athena's API shape.

``LocalAthena`` implements the four Athena calls the runner makes (``start_query_execution``,
``get_query_execution``, ``get_query_results``, ``stop_query_execution``) with Athena's request and
response shapes, so the runner is the same code for both engines. Tables are resolved from the
Glue catalog (on moto): each allowed database becomes a DuckDB schema and each table a view over
the Parquet files of its registered partitions (read through the httpfs extension, S3 endpoint =
the moto server, path-style URLs). The connection is then locked down: no file or network access
outside the lake buckets, no extension loading, configuration locked (defense behind the guard).
"""

from __future__ import annotations

import importlib.util
import itertools
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
from chalicelib.errors import DependencyError
from dataforge.errors import ContractError
from dataforge.schemas import duckdb_type

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_KEEP_QUERIES: Final = 500
_ATHENA_TYPES: Final = {
    "VARCHAR": "varchar", "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "TINYINT": "tinyint",
    "HUGEINT": "decimal", "DOUBLE": "double", "FLOAT": "real", "BOOLEAN": "boolean", "DATE": "date",
    "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "BLOB": "varbinary",
    "UBIGINT": "decimal", "UINTEGER": "bigint", "USMALLINT": "integer", "UTINYINT": "smallint",
}
_HIVE_EXTRA: Final = {"boolean": "BOOLEAN", "float": "FLOAT", "smallint": "SMALLINT", "tinyint": "TINYINT"}


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


def athena_value(value: Any) -> dict[str, str]:
    """One cell as Athena renders it (``VarCharValue`` text; ``{}`` for NULL)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        if value.tzinfo is not None:
            text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        else:
            text = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = format(value, "f")
    else:
        text = str(value)
    return {"VarCharValue": text}


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
    state: str = "QUEUED"
    reason: str | None = None
    completed_at: datetime | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[dict[str, str]]] = field(default_factory=list)
    cancel_requested: bool = False
    cursor: duckdb.DuckDBPyConnection | None = None
    started: float = 0.0
    elapsed_ms: int = 0


@dataclass(frozen=True, slots=True)
class S3Access:
    endpoint_url: str | None
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class LocalAthena:
    """Athena's query API on DuckDB (see the module docstring)."""

    def __init__(
        self, catalog: GlueCatalog, s3: Callable[[], S3Client], access: Callable[[], S3Access], *,
        allowed_buckets: Sequence[str], timeout_seconds: float, workers: int = 2, threads: int = 2,
    ) -> None:
        self._catalog, self._s3, self._access = catalog, s3, access
        self._allowed_buckets, self._timeout, self._threads = tuple(allowed_buckets), timeout_seconds, threads
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local-athena")
        self._lock = threading.RLock()
        self._queries: OrderedDict[str, _Query] = OrderedDict()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._views_of: dict[str, tuple[TableInfo, ...]] | None = None
        self._views: set[tuple[str, str]] = set()

    # --- connection and views ---------------------------------------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def _connect(self) -> duckdb.DuckDBPyConnection:
        access = self._access()
        conn = duckdb.connect(":memory:", config={
            "autoinstall_known_extensions": False, "autoload_known_extensions": False, "threads": self._threads,
        })
        conn.execute(f"LOAD {_literal(str(httpfs_extension_path()))}")
        options = [f"KEY_ID {_literal(access.access_key_id)}", f"SECRET {_literal(access.secret_access_key)}",
                   f"REGION {_literal(access.region)}"]
        if access.session_token:
            options.append(f"SESSION_TOKEN {_literal(access.session_token)}")
        if access.endpoint_url:
            endpoint = urlparse(access.endpoint_url)
            options += [f"ENDPOINT {_literal(endpoint.netloc)}", "URL_STYLE 'path'",
                        f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}"]
        conn.execute(f"CREATE SECRET lake (TYPE s3, {', '.join(options)})")
        conn.execute("SET TimeZone = 'UTC'")
        directories = ", ".join(_literal(f"s3://{bucket}/") for bucket in self._allowed_buckets)
        conn.execute(f"SET allowed_directories = [{directories}]")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        return conn

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
                    except DependencyError:
                        logger.exception("cannot resolve the files of %s.%s", info.database, info.name)
                        continue
                    conn.execute(f"CREATE OR REPLACE VIEW {_quote(database)}.{_quote(info.name)} AS {body}")
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
        query = _Query(str(uuid.uuid4()), QueryString, (QueryExecutionContext or {}).get("Database"), WorkGroup,
                       datetime.now(UTC))
        with self._lock:
            self._queries[query.query_id] = query
            self._forget_old()
        self._pool.submit(self._run, query)
        return {"QueryExecutionId": query.query_id}

    def _forget_old(self) -> None:
        finished = [qid for qid, q in self._queries.items() if q.state in TERMINAL]
        for qid in itertools.islice(finished, max(0, len(self._queries) - _KEEP_QUERIES)):
            del self._queries[qid]

    def _finish(self, query: _Query, state: str, reason: str | None = None) -> None:
        with self._lock:
            query.state, query.reason, query.cursor = state, reason, None
            query.completed_at = datetime.now(UTC)
            query.elapsed_ms = int((time.perf_counter() - query.started) * 1000) if query.started else 0

    def _run(self, query: _Query) -> None:
        try:
            self.sync_views()
            with self._lock:
                if query.cancel_requested:
                    self._finish(query, "CANCELLED", "cancelled by the user")
                    return
                cursor = self._connection().cursor()
                query.cursor, query.state, query.started = cursor, "RUNNING", time.perf_counter()
            timer = threading.Timer(self._timeout, cursor.interrupt)
            timer.daemon = True
            timer.start()
            try:
                cursor.execute(query.sql)
                description = cursor.description or []
                rows = cursor.fetchall()
            finally:
                timer.cancel()
                cursor.close()
            query.columns = [(str(d[0]), athena_type(str(d[1]))) for d in description]
            query.rows = [[athena_value(v) for v in row] for row in rows]
            self._finish(query, "SUCCEEDED")
        except duckdb.InterruptException:
            if query.cancel_requested:
                self._finish(query, "CANCELLED", "cancelled by the user")
            else:
                self._finish(query, "FAILED", f"query timed out after {self._timeout:g} s")
        except duckdb.Error as exc:
            self._finish(query, "FAILED", str(exc).splitlines()[0][:500])
        except Exception:  # the worker's outermost boundary: record, never lose the query
            logger.exception("local query %s failed", query.query_id)
            self._finish(query, "FAILED", "internal error of the local query engine")

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
        query = self._get(QueryExecutionId, "GetQueryResults")
        if query.state != "SUCCEEDED":
            raise _athena_error("GetQueryResults", f"Query has not yet finished. Current state: {query.state}")
        offset = 0
        if NextToken is not None:
            if not NextToken.isdigit():
                raise _athena_error("GetQueryResults", "NextToken is invalid")
            offset = int(NextToken)
        header = [{"Data": [{"VarCharValue": name} for name, _ in query.columns]}] if offset == 0 else []
        take = max(0, MaxResults - len(header))
        rows = header + [{"Data": r} for r in query.rows[offset:offset + take]]
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
        if offset + take < len(query.rows):
            result["NextToken"] = str(offset + take)
        return result

    def stop_query_execution(self, *, QueryExecutionId: str) -> dict[str, Any]:
        query = self._get(QueryExecutionId, "StopQueryExecution")
        with self._lock:
            if query.state in TERMINAL:
                return {}
            query.cancel_requested = True
            cursor = query.cursor
            if query.state == "QUEUED":
                self._finish(query, "CANCELLED", "cancelled by the user")
        if cursor is not None:
            cursor.interrupt()
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
            raise DependencyError(f"DuckDB is not answering: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
