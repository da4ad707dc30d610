"""The local query engine as its own second wall, behind the guard: what SQL reaching DuckDB directly can
read of the engine (no credential, no path of this machine), and its limits (memory, result bytes, time,
waiting queries, finished results kept), on the lake of the API fixtures (moto server + Parquet)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.api import silver_table

pytestmark = pytest.mark.integration

SILVER = "dfapi_local_silver"
TABLE = f'"{SILVER}".transactions'
HEAVY = f"SELECT count(*) FROM {TABLE} a, {TABLE} b, {TABLE} c, {TABLE} d"  # runs until it is interrupted
KEY_ID = "AKIADATAFORGEPROBE01"
SECRET = "dataforge-probe-secret-access-key-0123456789"
TOKEN = "dataforge-probe-session-token-abcdefghij"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait(engine: Any, query_id: str, timeout: float = 120) -> dict[str, Any]:
    """The engine's own view of the query once terminal (reading it never stops anything)."""
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = engine.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.02)


@pytest.fixture
def make_engine(api_services: Any) -> Iterator[Callable[..., Any]]:
    """``make_engine(timeout_seconds=..., **limits)``: a fresh ``LocalAthena`` on the API fixtures' lake."""
    from devkit.local.duckdb_engine import EngineLimits, LocalAthena

    made: list[Any] = []

    def make(*, timeout_seconds: float = 60, clock: Callable[[], float] = time.monotonic, catalog: Any = None,
             **limits: Any) -> Any:
        local = api_services.local_engine()
        engine = LocalAthena(catalog or api_services.catalog(), api_services.s3, local._access,
                             allowed_buckets=local._allowed_buckets, timeout_seconds=timeout_seconds,
                             limits=EngineLimits(**limits), clock=clock)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


def runner_on(api_services: Any, engine: Any, timeout_seconds: float = 60) -> Any:
    from chalicelib.runner import QueryLimits, QueryRunner

    settings = api_services.config.settings
    return QueryRunner(lambda: engine, api_services.catalog(), dialect="duckdb", workgroup=None,
                       limits=QueryLimits(max_rows=10_000, timeout_seconds=timeout_seconds),
                       redact=[settings.silver_bucket, settings.gold_bucket, settings.endpoint_url])


# --- no readable credentials, no paths of this machine ---------------------------------------------

PROBES = [
    "SELECT current_setting('s3_access_key_id')",
    "SELECT current_setting('s3_secret_access_key')",
    "SELECT current_setting('s3_session_token')",
    "SELECT current_setting('s3_endpoint'), current_setting('s3_region')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pg_catalog.pg_settings",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_secrets(redact := false)",
    "SELECT * FROM which_secret('s3://any/x.parquet', 's3')",
    "SELECT getvariable('s3_secret_access_key'), getvariable('secret')",
    "SELECT getenv('AWS_SECRET_ACCESS_KEY')",
    "SELECT * FROM duckdb_variables()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT current_setting('secret_directory'), current_setting('home_directory')",
    "SELECT current_setting('temp_directory'), current_setting('extension_directory')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_text('~/.aws/credentials')",
    "SELECT * FROM read_csv('http://169.254.169.254/latest/meta-data/')",
]
SETTING_CHANGES = [
    "SET lock_configuration = false",
    "SET enable_external_access = true",
    "SET allowed_directories = []",
    "SET s3_secret_access_key = 'x'",
    "SET memory_limit = '100GB'",
    "SET threads = 64",
    "RESET memory_limit",
    "SET allow_unredacted_secrets = true",
]


def test_the_connection_shows_no_credential_and_no_path(api_platform: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Directly on DuckDB (no guard): no setting, variable, secret listing or file read returns the S3 secret
    or session token, the key id is only in DuckDB's own secret listing, and no setting names a local path."""
    from chalicelib.config import ApiConfig

    from devkit.cli.api import local_services

    # httpfs copies these into its s3_* settings when it loads; the engine must not let them be read
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    session = boto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token=TOKEN,
                            region_name=api_platform.settings.region)
    services = local_services(ApiConfig.from_settings(api_platform.settings), session=session)
    try:
        engine = services.local_engine()
        engine.sync_views()
        conn = engine.connection()
        outputs: dict[str, str] = {}
        for sql in PROBES:
            try:
                outputs[sql] = repr(conn.execute(sql).fetchall())
            except Exception as exc:  # refused: what the refusal says is output too
                outputs[sql] = f"{type(exc).__name__}: {exc}"
        local_paths = [p for p in {str(Path.home()), os.getcwd(), str(Path(__file__).parents[3])} if len(p) > 1]
        for sql, text in outputs.items():
            assert SECRET not in text, (sql, text)
            assert TOKEN not in text, (sql, text)
            if "duckdb_secrets" not in sql:  # DuckDB lists a secret's key id (an identifier, not a credential)
                assert KEY_ID not in text, (sql, text)
            assert not any(path in text for path in local_paths), (sql, text)
        assert "secret=redacted" in outputs["SELECT * FROM duckdb_secrets()"]
        assert "root:" not in outputs["SELECT * FROM read_text('/etc/passwd')"]
        for sql in SETTING_CHANGES:
            with pytest.raises(Exception, match="locked"):
                conn.execute(sql)
        # and the secret still reads the lake
        rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchall()
        assert rows == [(3 * api_platform.silver_rows_per_day,)]
    finally:
        services.close()


# --- memory, threads, result bytes ---------------------------------------------------------------


def test_memory_and_threads_are_bounded(make_engine: Callable[..., Any], api_services: Any) -> None:
    engine = make_engine(memory_mb=96, threads=1)
    conn = engine.connection()
    assert conn.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall() == [
        ("96.0 MiB", 1)]
    # a distinct count over a cross join needs far more than 96 MiB of hash table
    sql = f"SELECT count(DISTINCT a.event_id || b.event_id || c.event_id) FROM {TABLE} a, {TABLE} b, {TABLE} c"
    query_id = engine.start_query_execution(QueryString=sql)["QueryExecutionId"]
    assert wait(engine, query_id)["Status"]["State"] == "FAILED"
    status = runner_on(api_services, engine).status(query_id)
    assert status["error"]["code"] == "resources_exhausted", status


def test_the_services_engine_has_the_configured_memory_limit(api_services: Any) -> None:
    conn = api_services.local_engine().connection()
    assert conn.execute("SELECT current_setting('memory_limit')").fetchall() == [("1.0 GiB",)]


@pytest.mark.parametrize("sql", ["SELECT repeat('x', 3000000) AS big", "SELECT repeat('x', 100000000) AS huge",
                                 f"SELECT event_id, repeat(event_id, 2000) AS wide FROM {TABLE}"])
def test_a_result_too_large_fails_the_query(make_engine: Callable[..., Any], api_services: Any, sql: str) -> None:
    engine = make_engine()
    query_id = engine.start_query_execution(QueryString=sql)["QueryExecutionId"]
    execution = wait(engine, query_id)
    assert execution["Status"]["State"] == "FAILED"
    status = runner_on(api_services, engine).status(query_id)
    assert status["status"] == "FAILED"
    assert status["error"]["code"] == "result_too_large", status
    assert "MiB" in status["error"]["message"]


def test_pages_are_cut_by_bytes(make_engine: Callable[..., Any], api_services: Any, api_platform: Any) -> None:
    from chalicelib.runner import row_bytes

    engine = make_engine(page_bytes=2000)
    query_id = engine.start_query_execution(QueryString=f"SELECT event_id FROM {TABLE} ORDER BY event_id")[
        "QueryExecutionId"]
    assert wait(engine, query_id)["Status"]["State"] == "SUCCEEDED"
    runner = runner_on(api_services, engine)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = runner.results(query_id, max_results=1000, next_token=token)
        assert sum(row_bytes(row) for row in page["rows"]) <= 2000
        seen += [row[0] for row in page["rows"]]
        pages += 1
        token = page["next_token"]
        if token is None:
            break
    expected = sorted(r["event_id"] for day in silver_days(api_platform) for r in day)
    assert seen == expected
    assert pages > 1
    assert pages >= -(-sum(row_bytes([e]) for e in expected) // 2000)


def silver_days(api_platform: Any) -> list[list[dict[str, Any]]]:
    from tests.fixtures.api import DAYS

    return [silver_table(api_platform.silver_rows_per_day, day).to_pylist() for day in DAYS]


# --- finished results: bounded by age and bytes ------------------------------------------------------


def test_finished_results_are_forgotten_by_age_and_by_bytes(make_engine: Callable[..., Any]) -> None:
    clock = FakeClock()
    engine = make_engine(clock=clock, keep_seconds=10, keep_bytes=300)

    def run(sql: str) -> str:
        query_id: str = engine.start_query_execution(QueryString=sql)["QueryExecutionId"]
        assert wait(engine, query_id)["Status"]["State"] == "SUCCEEDED"
        return query_id

    def known(query_id: str) -> bool:
        try:
            engine.get_query_execution(QueryExecutionId=query_id)
        except ClientError as exc:
            return str(exc.response["Error"]["Code"]) != "InvalidRequestException"
        return True

    first = run("SELECT 1 AS one")
    clock.now += 5
    second = run("SELECT 2 AS two")
    clock.now += 6  # the first finished 11 s ago, the second 6 s ago
    third = run("SELECT 3 AS three")
    assert (known(first), known(second), known(third)) == (False, True, True)
    big = run("SELECT repeat('x', 200) AS x")
    assert (known(second), known(third), known(big)) == (True, True, True)
    bigger = run("SELECT repeat('y', 200) AS y")  # 2 x 201 bytes > 300: the oldest results go first
    assert (known(second), known(third), known(big), known(bigger)) == (False, False, False, True)
    assert len(engine.get_query_results(QueryExecutionId=bigger)["ResultSet"]["Rows"]) == 2


# --- time limit and waiting queries -------------------------------------------------------------


def test_the_time_limit_interrupts_duckdb_and_waiting_is_bounded(make_engine: Callable[..., Any],
                                                                 api_services: Any) -> None:
    from chalicelib.errors import TooManyRequestsError

    engine = make_engine(timeout_seconds=1.0, workers=1, max_waiting=1)
    running = engine.start_query_execution(QueryString=HEAVY)["QueryExecutionId"]
    while engine.get_query_execution(QueryExecutionId=running)["QueryExecution"]["Status"]["State"] == "QUEUED":
        time.sleep(0.01)
    waiting = engine.start_query_execution(QueryString=HEAVY)["QueryExecutionId"]
    with pytest.raises(ClientError) as refused:
        engine.start_query_execution(QueryString=HEAVY)
    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    with pytest.raises(TooManyRequestsError) as too_many:
        runner_on(api_services, engine).start("SELECT event_id FROM transactions", SILVER)
    assert (too_many.value.status, too_many.value.code) == (429, "too_many_queries")
    assert too_many.value.retry_after > 0
    # nobody asks the runner for their status: the engine stops both at their time limit on its own
    for query_id in (running, waiting):
        execution = wait(engine, query_id)
        assert execution["Status"]["State"] == "FAILED"
        assert "timed out" in execution["Status"]["StateChangeReason"]
    assert engine.start_query_execution(QueryString="SELECT 1")  # room again


# --- errors: short for the user, whole in the log -------------------------------------------------


def test_an_error_in_the_query_is_shown_short_and_logged_whole(
        make_engine: Callable[..., Any], api_services: Any, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    caplog.set_level(logging.INFO)
    query_id = engine.start_query_execution(QueryString=f"SELECT no_such_column FROM {TABLE}")["QueryExecutionId"]
    wait(engine, query_id)
    assert "Candidate bindings" in caplog.text  # DuckDB's whole message, in the log
    status = runner_on(api_services, engine).status(query_id)
    assert status["error"]["code"] == "query_failed", status
    assert "no_such_column" in status["error"]["message"]
    assert "\n" not in status["error"]["message"]
    assert len(status["error"]["message"]) <= 300


def test_a_huge_cell_never_comes_back_through_the_api(api_client: Any) -> None:
    from tests.integration.api.test_queries import H, start
    from tests.integration.api.test_queries import wait as wait_api

    status, body = start(api_client, "SELECT lpad('x', 3000000, 'x') AS big FROM transactions LIMIT 1")
    assert status == 202, body
    final = wait_api(api_client, body["query_id"])
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "result_too_large"
    response = api_client.http.get(f"/v1/queries/{body['query_id']}/results", headers=H)
    assert response.status_code == 409
