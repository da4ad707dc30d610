"""spark.transforms on the one shared local session: known inputs -> exact expected rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from dataforge.contract import Validator
from dataforge.reference import FxRate, FxTable, Merchant
from spark.transforms import dedupe, enrich, kpis, validate
from tests.fixtures.failing_validator import FAILURE, FailingValidator

NOW = datetime(2025, 3, 12, 12, 0, tzinfo=UTC)
FX = FxTable([
    FxRate(date(2025, 3, 1), "USD", Decimal("1")),
    FxRate(date(2025, 3, 1), "EUR", Decimal("1.5")),
    FxRate(date(2025, 3, 11), "EUR", Decimal("1.00000005")),
    FxRate(date(2025, 3, 11), "HUF", Decimal("0.0025")),  # no HUF rate before 2025-03-11
])
MERCHANTS = {"m1": Merchant("m1", "Shop One", "grocery", "5411", "US", "small")}


def event(n: int, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"00000000-0000-4000-8000-{n:012d}", "event_type": "payment", "schema_version": 1,
        "event_time": "2025-03-10T10:00:30Z", "transaction_id": f"t{n}", "account_id": f"a{n}",
        "merchant_id": "m1", "amount": "10.00", "currency": "USD", "status": "approved",
        "decline_reason": None, "channel": "web", "country": "US", "payment_method": "card", "risk_score": 0.1,
    }
    base.update(over)
    return base


def bronze_df(spark, records: list[tuple[dict[str, Any] | str, str, str]]):
    """Bronze lines (event, position, ingested_at) as ``spark.read.text`` would give them."""
    lines = []
    for ev, position, ingested_at in records:
        event_json = ev if isinstance(ev, str) else json.dumps(ev)
        eid = "x" if isinstance(ev, str) else ev.get("event_id", "x")
        lines.append((f'{{"event":{event_json},"ingest":{{"event_id":"{eid}","source":"file",'
                      f'"position":"{position}","ingested_at":"{ingested_at}"}}}}',))
    return spark.createDataFrame(lines, "raw string")


def silver_of(spark, records):
    validated = validate.validate_bronze(bronze_df(spark, records), FX.currencies, clock=lambda: NOW)
    deduped = dedupe.dedupe_earliest(validate.valid(validated))
    return enrich.enrich(deduped, enrich.fx_frame(spark, FX), enrich.merchants_frame(spark, MERCHANTS))


def test_validate_uses_the_core_validator_reason_by_reason(spark) -> None:
    rows = [
        (event(1), "p1", "2025-03-10T10:01:00Z"),
        (event(2, amount="1.234"), "p2", "2025-03-10T10:01:00Z"),
        (event(3, schema_version=2), "p3", "2025-03-10T10:01:00Z"),
        (event(4, status="declined"), "p4", "2025-03-10T10:01:00Z"),
        ("[1,2]", "p5", "2025-03-10T10:01:00Z"),
    ]
    out = validate.validate_bronze(bronze_df(spark, rows), FX.currencies, clock=lambda: NOW)
    got = {r["position"]: (r["reason"], r["event_id"]) for r in out.collect()}
    assert got == {
        "p1": (None, "00000000-0000-4000-8000-000000000001"),
        "p2": ("amount_precision", None),
        "p3": ("unsupported_schema_version", None),
        "p4": ("missing_decline_reason", None),
        "p5": ("not_an_object", None),
    }


def test_validate_kafka_values_types_and_offsets(spark) -> None:
    value = json.dumps(event(1, amount=12.5, event_time="2025-03-10T12:00:30+02:00")).encode()
    df = spark.createDataFrame([(bytearray(value), "transactions-0@7")], "raw binary, position string")
    (row,) = validate.validate_events(df, FX.currencies, clock=lambda: NOW).collect()
    assert row["reason"] is None
    assert row["amount"] == Decimal("12.50")
    assert row["event_time"] == datetime(2025, 3, 10, 10, 0, 30)  # UTC, naive in the UTC session
    assert row["position"] == "transactions-0@7"
    assert row["raw"] == value.decode()


def test_empty_input_gives_empty_silver_and_gold(spark) -> None:
    enriched = silver_of(spark, [])
    assert enrich.silver_rows(enriched).count() == 0
    assert kpis.daily_kpis(enrich.silver_rows(enriched)).count() == 0


def test_all_invalid_input_gives_no_silver_row(spark) -> None:
    rows = [(event(n, currency="ZZZ"), f"p{n}", "2025-03-10T10:01:00Z") for n in range(3)]
    validated = validate.validate_bronze(bronze_df(spark, rows), FX.currencies, clock=lambda: NOW)
    assert {r["reason"] for r in validated.collect()} == {"unknown_currency"}
    assert validate.valid(validated).count() == 0
    assert {r["reason"] for r in enrich.rejected_rows(validated).collect()} == {"unknown_currency"}


def test_duplicates_across_batches_keep_the_earliest_ingested(spark) -> None:
    rows = [
        (event(1, amount="99.00"), "file-b:1", "2025-03-10T11:00:00Z"),  # a later re-send, other batch
        (event(1), "file-a:1", "2025-03-10T10:01:00Z"),
        (event(1, amount="50.00"), "file-a:2", "2025-03-10T10:01:00Z"),  # same time: position decides
    ]
    (row,) = enrich.silver_rows(silver_of(spark, rows)).collect()
    assert (row["amount"], row["ingested_at"]) == (Decimal("10.00"), datetime(2025, 3, 10, 10, 1))


def test_dedupe_sorts_once_after_the_shuffle(spark) -> None:
    """The jobs' session turns off Spark 3.5's partial WindowGroupLimit (JOB_SQL_CONF): for a dedupe
    whose duplicates are rare, its map-side sort of every row saves nothing."""
    deduped = dedupe.dedupe_earliest(spark.createDataFrame(
        [("e1", 2, "b"), ("e1", 1, "a"), ("e2", 1, "c")], "event_id string, ingested_at int, position string"))
    plan = deduped._jdf.queryExecution().executedPlan().toString()
    assert "Window [" in plan, plan
    assert "WindowGroupLimit" not in plan, plan
    assert sorted(tuple(r) for r in deduped.collect()) == [("e1", 1, "a"), ("e2", 1, "c")]


def test_unknown_merchant_is_kept_and_enriched_as_unknown(spark) -> None:
    rows = [(event(1, merchant_id="m404"), "p", "2025-03-10T10:01:00Z")]
    (row,) = enrich.silver_rows(silver_of(spark, rows)).collect()
    assert (row["merchant_id"], row["merchant_name"], row["merchant_category"], row["merchant_tier"]) == (
        "m404", "unknown", "unknown", "unknown")


def test_currency_without_rate_for_the_date_is_quarantined_not_silver(spark) -> None:
    rows = [(event(1, currency="HUF", amount="1000"), "p1", "2025-03-10T10:01:00Z"),
            (event(2, currency="HUF", amount="1000", event_time="2025-03-11T00:00:00Z"), "p2", "2025-03-11T00:01:00Z")]
    enriched = silver_of(spark, rows)
    assert [(r["event_id"][-1], r["amount_usd"]) for r in enrich.silver_rows(enriched).collect()] == [
        ("2", Decimal("2.50"))]
    (q,) = enrich.no_rate_rows(enriched).collect()
    assert (q["reason"], q["field"], q["position"], q["event_date"]) == (
        "no_fx_rate", "currency", "p1", date(2025, 3, 10))
    assert json.loads(q["raw"])["event_id"].endswith("1")


def test_fx_latest_on_or_before_and_half_even_per_record(spark) -> None:
    rows = [
        (event(1, currency="EUR", amount="0.01"), "p1", "2025-03-10T10:01:00Z"),  # 0.015 -> 0.02 (even)
        (event(2, currency="EUR", amount="0.03"), "p2", "2025-03-10T10:01:00Z"),  # 0.045 -> 0.04 (even)
        (event(3, currency="EUR", amount="0.05", event_time="2025-03-11T01:00:00Z"), "p3", "2025-03-11T01:00:00Z"),
    ]
    silver = enrich.silver_rows(silver_of(spark, rows)).collect()
    got = {r["transaction_id"]: (r["usd_rate"], r["amount_usd"]) for r in silver}
    assert got == {"t1": (Decimal("1.50000000"), Decimal("0.02")), "t2": (Decimal("1.50000000"), Decimal("0.04")),
                   "t3": (Decimal("1.00000005"), Decimal("0.05"))}


def test_daily_kpis_exact_rows_with_platform_total(spark) -> None:
    rows = [
        (event(1, amount="10.00", account_id="a"), "p1", "2025-03-10T10:01:00Z"),
        (event(2, amount="5.00", account_id="a", channel="pos"), "p2", "2025-03-10T10:01:00Z"),
        (event(3, amount="7.00", account_id="b", status="declined", decline_reason="x"), "p3", "2025-03-10T10:01:00Z"),
        (event(4, amount="2.50", account_id="a", event_type="refund"), "p4", "2025-03-10T10:01:00Z"),
        (event(5, amount="3.33", account_id="c"), "p5", "2025-03-10T10:01:00Z"),
    ]
    gold = kpis.daily_kpis(enrich.silver_rows(silver_of(spark, rows)))
    got = {(r["merchant_id"], r["country"], r["channel"]): r.asDict() for r in gold.collect()}
    assert set(got) == {("m1", "US", "web"), ("m1", "US", "pos"), ("*", "*", "*")}
    web = got[("m1", "US", "web")]
    assert (web["txn_count"], web["approved_count"], web["declined_count"]) == (3, 2, 1)
    assert web["approval_rate"] == Decimal("0.6667")
    assert (web["gross_volume_usd"], web["refund_count"], web["refund_volume_usd"]) == (
        Decimal("13.33"), 1, Decimal("2.50"))
    assert web["net_volume_usd"] == Decimal("10.83")
    assert web["avg_ticket_usd"] == Decimal("6.66")  # 6.665 -> half-even 6.66
    assert web["unique_accounts"] == 3
    total = got[("*", "*", "*")]
    assert (total["txn_count"], total["approved_count"], total["unique_accounts"]) == (4, 3, 3)
    assert total["approval_rate"] == Decimal("0.7500")
    assert total["avg_ticket_usd"] == Decimal("6.11")  # 18.33 / 3
    assert {r["event_date"] for r in gold.collect()} == {date(2025, 3, 10)}


def test_refund_only_grain_has_null_rates(spark) -> None:
    rows = [(event(1, event_type="refund"), "p1", "2025-03-10T10:01:00Z")]
    got = {r["merchant_id"]: r for r in kpis.daily_kpis(enrich.silver_rows(silver_of(spark, rows))).collect()}
    assert got["m1"]["txn_count"] == 0
    assert got["m1"]["approval_rate"] is None
    assert got["m1"]["avg_ticket_usd"] is None
    assert got["m1"]["net_volume_usd"] == Decimal("-10.00")


def test_late_event_for_a_closed_date_lands_in_its_event_date(spark) -> None:
    rows = [(event(1), "p1", "2025-03-10T10:01:00Z"),
            (event(2, event_time="2025-03-10T23:59:59Z"), "p2", "2025-03-12T09:00:00Z")]  # 2 days late
    silver = enrich.silver_rows(silver_of(spark, rows))
    assert sorted(r["event_date"] for r in silver.collect()) == [date(2025, 3, 10)] * 2
    total = [r for r in kpis.daily_kpis(silver).collect() if r["merchant_id"] == "*"]
    assert [(r["event_date"], r["txn_count"]) for r in total] == [(date(2025, 3, 10), 2)]


@pytest.mark.parametrize(("num", "den", "expected"), [
    (1, 8, "0.1250"), (1, 3, "0.3333"), (2, 3, "0.6667"), (1, 20000, "0.0000"), (3, 20000, "0.0002"),
    (5, 10000 * 2, "0.0002"), (0, 5, "0.0000"), (1, 0, None), (7, 7, "1.0000"),
])
def test_half_even_ratio_is_exact(spark, num: int, den: int, expected: str | None) -> None:
    df = spark.createDataFrame([(num, den)], "n bigint, d bigint")
    (value,) = df.select(kpis.half_even_ratio("n", "d", 4, "DECIMAL(5,4)")).first()
    assert value == (None if expected is None else Decimal(expected))


def test_realtime_minutes_over_payments(spark) -> None:
    rows = [
        (event(1, event_time="2025-03-10T10:00:01Z"), "p1", "2025-03-10T10:01:00Z"),
        (event(2, event_time="2025-03-10T10:00:59Z", status="declined", decline_reason="x"), "p2",
         "2025-03-10T10:01:00Z"),
        (event(3, event_time="2025-03-10T10:01:00Z", event_type="refund"), "p3", "2025-03-10T10:01:00Z"),
    ]
    got = [r.asDict() for r in kpis.realtime_minutes(enrich.silver_rows(silver_of(spark, rows))).collect()]
    assert got == [{"minute": datetime(2025, 3, 10, 10, 0), "txn_count": 2, "approved_count": 1, "declined_count": 1,
                    "volume_usd": Decimal("10.00"), "decline_rate": Decimal("0.5000")}]


def test_validation_never_fails_the_batch_for_one_record(spark) -> None:
    """A record nested 1,000 deep gets invalid_json; a record the validator fails on gets
    validation_error with the exception; every row comes out (received = valid + rejected)."""
    deep = json.dumps(event(2))[:-1] + ', "extra": ' + "[" * 1000 + "]" * 1000 + "}"
    rows = [
        (event(1), "p1", "2025-03-10T10:01:00Z"),
        (deep, "p2", "2025-03-10T10:01:00Z"),
        (event(3, poison=True), "p3", "2025-03-10T10:01:00Z"),
        (event(4), "p4", "2025-03-10T10:01:00Z"),
    ]

    def make_validator(codes: frozenset[str], clock: Any) -> Validator:
        return FailingValidator(codes, b'"poison"', clock=clock)

    out = validate.validate_bronze(bronze_df(spark, rows), FX.currencies, clock=lambda: NOW,
                                   make_validator=make_validator)
    got = {r["position"]: (r["reason"], r["event_id"], r["detail"]) for r in out.collect()}
    assert set(got) == {"p1", "p2", "p3", "p4"}
    assert got["p1"] == (None, "00000000-0000-4000-8000-000000000001", None)
    assert got["p4"] == (None, "00000000-0000-4000-8000-000000000004", None)
    assert got["p2"][:2] == ("invalid_json", None)
    assert got["p3"][:2] == ("validation_error", None)
    assert f"RecursionError: {FAILURE}" in got["p3"][2]
