"""The OpenAPI document and the Chalice routes stay in step; tokens and money formatting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from chalicelib import handlers, tokens
from chalicelib.errors import BadRequestError
from chalicelib.openapi import document


def _routes() -> set[tuple[str, str]]:
    import app  # chalice_api/app.py

    return {(path, method.lower()) for path, methods in app.app.routes.items() for method in methods}


def test_every_route_is_documented_and_vice_versa() -> None:
    doc: dict[str, Any] = document()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _routes()


def test_protected_operations_declare_auth_errors() -> None:
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            public = op.get("security") == []
            assert public == path.endswith(("/health", "/openapi.json")), (path, method)
            if not public:
                assert {"401", "403"} <= set(op["responses"]), (path, method)


def test_tokens_round_trip_and_are_bound_to_their_query() -> None:
    cursor = tokens.Cursor(2, {"pk": "KPI#TOTAL", "sk": "2024-01-01"})
    token = tokens.encode(cursor, "q1")
    assert tokens.decode(token, "q1", key_names=frozenset({"pk", "sk"})) == cursor
    for bad in (token[:-3], "x" * 5000, tokens.encode(tokens.Cursor(0, {"evil": "x"}), "q1")):
        with pytest.raises(BadRequestError):
            tokens.decode(bad, "q1", key_names=frozenset({"pk", "sk"}))
    with pytest.raises(BadRequestError):
        tokens.decode(token, "q2", key_names=frozenset({"pk", "sk"}))


def test_formatting() -> None:
    assert handlers.money("12.5") == "12.50"
    assert handlers.rate("0.95125") == "0.9512"  # half-even
    assert handlers.pct_change(150, 100) == "50.00"
    assert handlers.pct_change(1, 0) is None
    assert handlers.pct_change(1, None) is None


def test_the_kpi_row_and_its_schema_derive_from_the_gold_row() -> None:
    from dataforge.schemas import GOLD_KPI_ROW, KPI_DATE

    names = [KPI_DATE, *(c.name for c in GOLD_KPI_ROW)]
    schema = document()["components"]["schemas"]["KpiRow"]
    assert list(schema["properties"]) == names
    assert {n for n, s in schema["properties"].items() if s.get("nullable")} == {"approval_rate", "avg_ticket_usd"}
    row = handlers.kpi_row({"event_date": "2025-03-10", "merchant_id": "m1", "country": "US", "channel": "web",
                            "txn_count": Decimal(3), "approval_rate": Decimal("0.66666"),
                            "gross_volume_usd": Decimal("10.005")})
    assert list(row) == names
    assert row["txn_count"] == 3
    assert row["approval_rate"] == "0.6667"
    assert row["gross_volume_usd"] == "10.00"
    assert row["avg_ticket_usd"] is None
    assert row["refund_count"] == 0
