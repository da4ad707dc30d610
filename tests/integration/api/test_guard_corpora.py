"""The query guard's corpora through the API on the local engine: every analyst query is answered,
every hostile statement is a 400 with a message, and the issue's findings are refused over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fixtures.api import API_KEY
from tests.fixtures.sql_corpus import ALLOWED, HOSTILE

pytestmark = pytest.mark.integration
H = {"x-api-key": API_KEY, "Content-Type": "application/json"}
SILVER, GOLD = "dfapi_local_silver", "dfapi_local_gold"


def post(client: Any, sql: str, database: str = SILVER) -> tuple[int, dict[str, Any]]:
    response = client.http.post("/v1/queries", headers=H, body=json.dumps({"sql": sql, "database": database}))
    return response.status_code, json.loads(response.body)


def final_status(client: Any, query_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = json.loads(client.http.get(f"/v1/queries/{query_id}", headers=H).body)
        if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.mark.parametrize("sql", ALLOWED, ids=[f"allowed{n:02d}" for n in range(len(ALLOWED))])
def test_allowed_corpus_is_answered(api_client: Any, sql: str) -> None:
    status, body = post(api_client, sql.format(silver=SILVER, gold=GOLD))
    assert status == 202, body
    final = final_status(api_client, body["query_id"])
    assert final["status"] == "SUCCEEDED", final
    page = json.loads(api_client.http.get(f"/v1/queries/{body['query_id']}/results", headers=H).body)
    assert isinstance(page["rows"], list)


@pytest.mark.parametrize(("sql", "named"), HOSTILE, ids=[f"hostile{n:02d}" for n in range(len(HOSTILE))])
def test_hostile_corpus_is_a_400_naming_it(api_client: Any, sql: str, named: str | None) -> None:
    status, body = post(api_client, sql.format(silver=SILVER, gold=GOLD))
    assert status == 400, body
    message = body["error"]["message"]
    assert message
    assert "Traceback" not in message
    if named is not None:
        assert named.lower() in message.lower(), message


def test_the_issues_findings_are_refused_over_http(api_client: Any) -> None:
    status, body = post(api_client, "SELECT \"current_setting\"('s3_secret_access_key')")
    assert (status, body["error"]["code"]) == (400, "function_not_allowed")
    assert "current_setting" in body["error"]["message"]
    status, body = post(api_client, "SELECT * FROM (WITH sqlite_master AS (SELECT 1 a) SELECT a FROM sqlite_master) t,"
                                    " sqlite_master u")
    assert (status, body["error"]["code"]) == (400, "table_not_found")
    assert "sqlite_master" in body["error"]["message"]
    status, body = post(api_client, "SELECT " + "(" * 200 + "1" + ")" * 200)
    assert (status, body["error"]["code"]) == (400, "invalid_sql")
