"""Every route through Chalice's test client, against DynamoDB/Glue/S3 on the moto server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.api import API_KEY

pytestmark = pytest.mark.integration
H = {"x-api-key": API_KEY}


def get(client: Any, path: str, headers: dict[str, str] | None = H) -> tuple[int, Any]:
    response = client.http.get(path, headers=headers or {})
    return response.status_code, json.loads(response.body)


def assert_error(status: int, body: Any, expected: int, code: str | None = None) -> None:
    assert status == expected, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_health_is_open_and_checks_every_dependency(api_client: Any) -> None:
    status, body = get(api_client, "/v1/health", headers=None)
    assert status == 200
    assert body == {"status": "ok", "checks": {"dynamodb": "ok", "catalog": "ok", "query_engine": "ok"}}


def test_openapi_is_open(api_client: Any) -> None:
    status, body = get(api_client, "/v1/openapi.json", headers=None)
    assert status == 200
    assert body["openapi"].startswith("3.")


@pytest.mark.parametrize("path", ["/v1/kpis/daily?from=2024-01-01&to=2024-01-02", "/v1/alerts", "/v1/catalog"])
def test_api_key_missing_is_401_and_wrong_is_403(api_client: Any, path: str) -> None:
    assert_error(*get(api_client, path, headers=None), 401, "missing_api_key")
    assert_error(*get(api_client, path, headers={"x-api-key": "nope"}), 403, "invalid_api_key")


def test_daily_platform_totals(api_client: Any) -> None:
    status, body = get(api_client, "/v1/kpis/daily?from=2024-01-01&to=2024-01-03")
    assert status == 200
    assert body["next_token"] is None
    assert [r["event_date"] for r in body["items"]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    first = body["items"][0]
    assert first == {
        "event_date": "2024-01-01", "merchant_id": "*", "country": "*", "channel": "*", "txn_count": 1000,
        "approved_count": 900, "declined_count": 100, "approval_rate": "0.9000", "gross_volume_usd": "100000.50",
        "refund_count": 100, "refund_volume_usd": "5000.00", "net_volume_usd": "95000.50",
        "avg_ticket_usd": "111.11", "unique_accounts": 300,
    }


def test_daily_merchant_rows_filtered_and_paginated(api_client: Any) -> None:
    base = "/v1/kpis/daily?from=2024-01-01&to=2024-01-03&merchant_id=m_001"
    assert len(get(api_client, base)[1]["items"]) == 18
    us = get(api_client, base + "&country=US")[1]["items"]
    assert len(us) == 9
    assert {r["country"] for r in us} == {"US"}
    web_us = get(api_client, base + "&country=US&channel=web")[1]["items"]
    assert [(r["event_date"], r["channel"]) for r in web_us] == [(f"2024-01-0{d}", "web") for d in (1, 2, 3)]
    seen, token, pages = [], None, 0
    while True:
        status, body = get(api_client, base + "&limit=4" + (f"&next_token={token}" if token else ""))
        assert status == 200
        seen += [(r["event_date"], r["country"], r["channel"]) for r in body["items"]]
        pages += 1
        token = body["next_token"]
        if token is None:
            break
    assert len(seen) == 18 == len(set(seen))
    assert pages >= 5


def test_daily_country_without_merchant_spans_days(api_client: Any) -> None:
    status, body = get(api_client, "/v1/kpis/daily?from=2024-01-01&to=2024-01-02&country=DE&limit=1000")
    assert status == 200
    assert len(body["items"]) == 18
    assert {r["country"] for r in body["items"]} == {"DE"}
    assert "*" not in {r["merchant_id"] for r in body["items"]}


@pytest.mark.parametrize(("query", "code"), [
    ("", "missing_parameter"),
    ("from=2024-01-01", "missing_parameter"),
    ("from=2024-01-05&to=2024-01-01", "invalid_range"),
    ("from=2020-01-01&to=2024-01-01", "invalid_range"),
    ("from=2024-13-01&to=2024-01-01", "invalid_parameter"),
    ("from=yesterday&to=2024-01-01", "invalid_parameter"),
    ("from=2024-01-01&to=2024-01-02&limit=0", "invalid_parameter"),
    ("from=2024-01-01&to=2024-01-02&limit=abc", "invalid_parameter"),
    ("from=2024-01-01&to=2024-01-02&merchant_id=a%23b", "invalid_parameter"),
    ("from=2024-01-01&to=2024-01-02&next_token=garbage", "invalid_token"),
])
def test_daily_bad_inputs(api_client: Any, query: str, code: str) -> None:
    assert_error(*get(api_client, f"/v1/kpis/daily?{query}"), 400, code)


def test_token_of_another_query_is_refused(api_client: Any) -> None:
    body = get(api_client, "/v1/kpis/daily?from=2024-01-01&to=2024-01-03&merchant_id=m_001&limit=2")[1]
    other = f"/v1/kpis/daily?from=2024-01-01&to=2024-01-03&merchant_id=m_002&limit=2&next_token={body['next_token']}"
    assert_error(*get(api_client, other), 400, "invalid_token")


def test_summary_with_change(api_client: Any) -> None:
    status, body = get(api_client, "/v1/kpis/summary?date=2024-01-02")
    assert status == 200
    assert body["current"]["txn_count"] == 2000
    assert body["previous"]["txn_count"] == 1000
    assert body["change"]["txn_count"] == "100.00"
    assert body["change"]["approval_rate"] == "0.00"
    first = get(api_client, "/v1/kpis/summary?date=2024-01-01")[1]
    assert first["previous"] is None
    assert set(first["change"].values()) == {None}
    assert_error(*get(api_client, "/v1/kpis/summary?date=2024-02-01"), 404, "kpis_not_found")
    assert_error(*get(api_client, "/v1/kpis/summary"), 400, "missing_parameter")


def test_merchants_of_a_day(api_client: Any) -> None:
    status, body = get(api_client, "/v1/kpis/merchants?date=2024-01-02&limit=1000")
    assert status == 200
    assert len(body["items"]) == 18
    assert {r["merchant_id"] for r in body["items"]} == {"m_001", "m_002", "m_003"}
    assert get(api_client, "/v1/kpis/merchants?date=2030-01-01")[1] == {"items": [], "next_token": None}
    assert_error(*get(api_client, "/v1/kpis/merchants?date=2024-01-02&limit=5000"), 400, "invalid_parameter")


def test_realtime_windows(api_client: Any) -> None:
    status, body = get(api_client, "/v1/realtime")
    assert status == 200
    assert len(body["items"]) == 60
    # the age of the newest event time counted (12:30:10 at 12:30:15), not of the minute's start
    assert body["newest_event_time"] == "2024-01-03T12:30:10.000Z"
    assert body["freshness_seconds"] == 5.0
    assert body["pipeline_lag_seconds"] == 3.0
    assert body["items"][-1]["minute"] == "2024-01-03T12:30Z"
    assert body["items"][0]["minute"] == "2024-01-03T11:31Z"
    assert body["items"][-1] == {"minute": "2024-01-03T12:30Z", "status": "final", "txn_count": 10, "approved_count": 9,
                                 "declined_count": 1, "volume_usd": "100.25", "decline_rate": "0.1000"}
    assert len(get(api_client, "/v1/realtime?minutes=1")[1]["items"]) == 1
    day = get(api_client, "/v1/realtime?minutes=1440")[1]["items"]  # two partitions: 2024-01-02 and -03
    assert len(day) == 91
    assert day[0]["minute"] == "2024-01-02T23:59Z"
    for bad in ("0", "1441", "x"):
        assert_error(*get(api_client, f"/v1/realtime?minutes={bad}"), 400, "invalid_parameter")


def test_alerts_list_and_acknowledge(api_client: Any) -> None:
    status, body = get(api_client, "/v1/alerts?status=open")
    assert status == 200
    ids = [a["alert_id"] for a in body["items"]]
    assert ids == ["al-open-ack", "al-open-2", "al-open-1"]
    assert body["items"][0]["runbook_url"]
    assert body["items"][0]["value"] == "0.31"
    page = get(api_client, "/v1/alerts?status=open&limit=2")[1]
    rest = get(api_client, f"/v1/alerts?status=open&limit=2&next_token={page['next_token']}")[1]
    assert [a["alert_id"] for a in page["items"] + rest["items"]] == ids
    assert [a["alert_id"] for a in get(api_client, "/v1/alerts?status=resolved")[1]["items"]] == ["al-done"]
    assert_error(*get(api_client, "/v1/alerts?status=closed"), 400, "invalid_parameter")

    def ack(alert_id: str, body: Any, raw: str | None = None) -> tuple[int, Any]:
        response = api_client.http.post(f"/v1/alerts/{alert_id}/ack", headers={**H, "Content-Type": "application/json"},
                                        body=raw if raw is not None else json.dumps(body))
        return response.status_code, json.loads(response.body)

    status, alert = ack("al-open-ack", {"by": "alice"})
    assert status == 200
    assert alert["status"] == "acknowledged"
    assert alert["acknowledged_by"] == "alice"
    assert alert["acknowledged_at"].startswith("2024-01-03T12:30:15")
    assert_error(*ack("al-open-ack", {"by": "bob"}), 409, "alert_not_open")
    assert_error(*ack("al-done", {"by": "bob"}), 409, "alert_not_open")
    assert_error(*ack("no-such-alert", {"by": "bob"}), 404, "alert_not_found")
    assert_error(*ack("al-open-1", {}), 400, "invalid_body")
    assert_error(*ack("al-open-1", {"by": " "}), 400, "invalid_body")
    assert_error(*ack("al-open-1", None, raw="{not json"), 400, "invalid_body")
    acked = get(api_client, "/v1/alerts?status=acknowledged")[1]["items"]
    assert [a["alert_id"] for a in acked] == ["al-open-ack"]


def test_catalog_lists_allowed_databases(api_client: Any) -> None:
    status, body = get(api_client, "/v1/catalog")
    assert status == 200
    databases = {d["name"]: d for d in body["databases"]}
    assert set(databases) == {"dfapi_local_silver", "dfapi_local_gold"}
    (silver,) = databases["dfapi_local_silver"]["tables"]
    assert silver["name"] == "transactions"
    assert silver["partition_keys"] == ["event_date"]
    assert {"name": "amount_usd", "type": "decimal(18,2)"} in silver["columns"]
    assert {"name": "event_date", "type": "date"} in silver["columns"]
