"""The query runner end to end on the local engine: DuckDB over the lake's Parquet on the embedded S3."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from tests.fixtures.api import API_KEY, DAYS, silver_table

pytestmark = pytest.mark.integration
H = {"x-api-key": API_KEY, "Content-Type": "application/json"}
SILVER = "dfapi_local_silver"


def start(client: Any, sql: str, database: str | None = SILVER) -> tuple[int, Any]:
    body = {"sql": sql} if database is None else {"sql": sql, "database": database}
    response = client.http.post("/v1/queries", headers=H, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def wait(client: Any, query_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = json.loads(client.http.get(f"/v1/queries/{query_id}", headers=H).body)
        if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def run(client: Any, sql: str, database: str | None = SILVER, max_results: int = 1000) -> list[list[Any]]:
    status, body = start(client, sql, database)
    assert status == 202, body
    final = wait(client, body["query_id"])
    assert final["status"] == "SUCCEEDED", final
    rows: list[list[Any]] = []
    token = None
    while True:
        path = f"/v1/queries/{body['query_id']}/results?max_results={max_results}"
        page = json.loads(client.http.get(path + (f"&next_token={token}" if token else ""), headers=H).body)
        rows += page["rows"]
        token = page["next_token"]
        if token is None:
            assert final["rows"] == len(rows)
            return rows


def test_aggregate_matches_the_lake(api_client: Any, api_platform: Any) -> None:
    sql = """
        -- a dashboard query in Athena (Trino) SQL
        SELECT merchant_id, count(*) AS n, sum(amount_usd) AS volume, approx_distinct(account_id) AS accounts
        FROM transactions
        WHERE event_date = DATE '2024-01-02' AND event_type = 'payment' AND status = 'approved'
        GROUP BY merchant_id ORDER BY merchant_id
    """
    rows = run(api_client, sql)
    table = silver_table(api_platform.silver_rows_per_day, DAYS[1]).to_pylist()
    counts: Counter[str] = Counter()
    volume: dict[str, Decimal] = {}
    for r in table:
        if r["event_type"] == "payment" and r["status"] == "approved":
            counts[r["merchant_id"]] += 1
            volume[r["merchant_id"]] = volume.get(r["merchant_id"], Decimal(0)) + r["amount_usd"]
    assert [row[:3] for row in rows] == [[m, str(counts[m]), str(volume[m])] for m in sorted(counts)]


def test_trino_functions_partitions_and_pagination(api_client: Any, api_platform: Any) -> None:
    hours = run(api_client, f"""
        SELECT date_trunc('hour', event_time) AS hour, count(*) AS n FROM {SILVER}.transactions
        WHERE event_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-03' GROUP BY 1 ORDER BY 1""", database=None)
    assert len(hours) == 72
    assert hours[0][0] == "2024-01-01 00:00:00.000 UTC"
    assert sum(int(n) for _, n in hours) == 3 * api_platform.silver_rows_per_day
    ids = run(api_client, "SELECT event_id FROM transactions WHERE event_date = DATE '2024-01-01' ORDER BY event_id",
              max_results=120)
    assert len(ids) == api_platform.silver_rows_per_day == len({i[0] for i in ids})
    assert run(api_client, "SELECT event_id FROM transactions LIMIT 7")
    assert len(
        run(api_client, "SELECT event_id FROM transactions LIMIT 7")) == 7
    assert run(api_client, "SELECT count(*) FROM dfapi_local_gold.daily_kpis") == [["0"]]


@pytest.mark.parametrize(("sql", "code"), [
    ("DROP TABLE transactions", "statement_not_allowed"),
    ("CREATE TABLE x AS SELECT * FROM transactions", "statement_not_allowed"),
    ("INSERT INTO transactions SELECT * FROM transactions", "statement_not_allowed"),
    ("DELETE FROM transactions", "statement_not_allowed"),
    ("UPDATE transactions SET amount = 0", "statement_not_allowed"),
    ("SELECT 1; DROP TABLE transactions", "multiple_statements"),
    ("SELECT 1 -- harmless\n; DELETE FROM transactions", "multiple_statements"),
    ("SELECT * FROM transactions /* ; */ ; ATTACH 'x.db'", "multiple_statements"),
    ("SELECT * FROM other_db.secrets", "database_not_allowed"),
    ("SELECT * FROM information_schema.tables", "database_not_allowed"),
    ("SELECT * FROM hive.dfapi_local_silver.transactions", "catalog_not_allowed"),
    ("SELECT * FROM nope", "table_not_found"),
    ("SELECT * FROM read_csv('/etc/passwd')", "function_not_allowed"),
    ("SELECT * FROM read_parquet('s3://dfapi-local-silver/transactions/*.parquet')", "function_not_allowed"),
    ("SELECT * FROM glob('/etc/*')", "function_not_allowed"),
    ("SELECT getenv('HOME')", "function_not_allowed"),
    ("SELECT * FROM \"https://example.com/x.parquet\"", "table_not_found"),
    ("SELECT 'http://169.254.169.254/latest' AS u", "literal_not_allowed"),
    ("SELECT 1 INTO t2", "statement_not_allowed"),
    ("COPY transactions TO '/tmp/x.csv'", "statement_not_allowed"),
    ("ATTACH '/tmp/x.db' AS x", "statement_not_allowed"),
    ("INSTALL httpfs", "statement_not_allowed"),
    ("LOAD httpfs", "statement_not_allowed"),
    ("PRAGMA database_list", "statement_not_allowed"),
    ("SET enable_external_access = true", "statement_not_allowed"),
    ("SELEC oops", "statement_not_allowed"),
    ("SELECT FROM WHERE (", "invalid_sql"),
])
def test_hostile_sql_is_refused(api_client: Any, sql: str, code: str) -> None:
    status, body = start(api_client, sql)
    assert status == 400, body
    # What Trino has no syntax for (ATTACH, INSTALL, PRAGMA, glob(), ...) is refused as invalid SQL.
    accepted = (code, "invalid_sql")
    assert body["error"]["code"] in accepted, body
    assert "Traceback" not in body["error"]["message"]


def test_bad_bodies_and_ids(api_client: Any) -> None:
    for raw in ("{}", '{"sql": ""}', '{"sql": 5}', "[1]", "{oops"):
        response = api_client.http.post("/v1/queries", headers=H, body=raw)
        assert response.status_code == 400, raw
    assert start(api_client, "SELECT 1", database="other_db")[0] == 400
    for path in ("/v1/queries/not-a-uuid", "/v1/queries/00000000-0000-0000-0000-000000000000",
                 "/v1/queries/00000000-0000-0000-0000-000000000000/results"):
        response = api_client.http.get(path, headers=H)
        assert response.status_code == 404
        assert json.loads(response.body)["error"]["code"] == "query_not_found"


def test_cancel_and_conflicts(api_client: Any) -> None:
    slow = "SELECT count(*) FROM transactions a, transactions b, transactions c, transactions d"
    status, body = start(api_client, slow)
    assert status == 202
    query_id = body["query_id"]
    response = api_client.http.get(f"/v1/queries/{query_id}/results", headers=H)
    assert response.status_code == 409
    response = api_client.http.delete(f"/v1/queries/{query_id}", headers=H)
    assert response.status_code == 200, response.body
    assert wait(api_client, query_id)["status"] == "CANCELLED"
    response = api_client.http.delete(f"/v1/queries/{query_id}", headers=H)
    assert response.status_code == 409
    assert json.loads(response.body)["error"]["code"] == "query_finished"


def test_timeout_stops_the_query(api_services: Any) -> None:
    from devkit.cli.api import local_services

    config = dataclasses.replace(api_services.config, query_timeout_seconds=0.5)
    services = local_services(config, session=api_services.session())
    try:
        runner = services.runner()
        started = runner.start("SELECT count(*) FROM transactions a, transactions b, transactions c, transactions d",
                               SILVER)
        deadline = time.monotonic() + 30
        while (status := runner.status(started["query_id"]))["status"] in ("QUEUED", "RUNNING"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["status"] == "FAILED"
        assert status["error"]["code"] == "timeout"
    finally:
        services.close()
