"""Schema-v1 contract: every rule has a failing example with its reason code; both paths agree."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataforge.contract import (
    FIELD_NAMES,
    FIELDS,
    MAX_FUTURE_SKEW,
    MAX_JSON_DEPTH,
    SCHEMA_VERSION,
    Reason,
    Rejection,
    TransactionEvent,
    Validator,
    check_amount,
    check_currency,
    check_decline_reason,
    check_schema_version,
    epoch_us,
    json_schema,
    validation_error,
)
from dataforge.iso import COUNTRY_CODES

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CURRENCIES = frozenset({"USD", "EUR", "GBP", "JPY"})

BASE: dict[str, Any] = {
    "event_id": "6f1c2a9e-8d4b-4c3a-9e2f-1b7d5a0c4e21",
    "event_type": "payment",
    "schema_version": 1,
    "event_time": "2026-11-26T11:58:30.250+01:00",
    "transaction_id": "txn-000001",
    "account_id": "acct-42",
    "merchant_id": "m-0001",
    "amount": "125.40",
    "currency": "EUR",
    "status": "approved",
    "decline_reason": None,
    "channel": "web",
    "country": "DE",
    "payment_method": "card",
    "risk_score": 0.07,
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(CURRENCIES, clock=lambda: NOW)


def encode(record: Any) -> bytes:
    return json.dumps(record).encode()


def with_(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(BASE)
    record.update(changes)
    return record


def without(name: str) -> dict[str, Any]:
    record = copy.deepcopy(BASE)
    del record[name]
    return record


def test_valid_event_passes_with_its_values(validator: Validator) -> None:
    event = validator.validate(encode(BASE))
    assert isinstance(event, TransactionEvent)
    assert event.canonical_event_id == BASE["event_id"]
    assert event.amount_decimal == Decimal("125.40")
    assert event.event_time == datetime(2026, 11, 26, 10, 58, 30, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        pytest.param(b"{not json", Reason.INVALID_JSON, None, id="invalid_json"),
        pytest.param(b"\xff\xfe{}", Reason.INVALID_JSON, None, id="not_utf8"),
        pytest.param(encode(BASE).replace(b'"web"', b'"w\xffb"'), Reason.INVALID_JSON, None, id="not_utf8_in_a_value"),
        pytest.param(encode(BASE).replace(b'"txn-000001"', b'"txn-\xc3"'), Reason.INVALID_JSON, None,
                     id="truncated_utf8_in_an_id"),
        pytest.param(encode([BASE]), Reason.NOT_AN_OBJECT, None, id="array"),
        pytest.param(encode(without("amount")), Reason.MISSING_FIELD, "amount", id="missing_amount"),
        pytest.param(encode(without("decline_reason")), Reason.MISSING_FIELD, "decline_reason", id="missing_dr"),
        pytest.param(encode(with_(schema_version=2, amount=-5)), Reason.UNSUPPORTED_SCHEMA_VERSION,
                     "schema_version", id="newer_version_wins_over_other_faults"),
        pytest.param(encode(with_(schema_version=0)), Reason.INVALID_SCHEMA_VERSION, "schema_version", id="v0"),
        pytest.param(encode(with_(schema_version="1")), Reason.INVALID_SCHEMA_VERSION, "schema_version", id="v_str"),
        pytest.param(encode(with_(schema_version=True)), Reason.INVALID_SCHEMA_VERSION, "schema_version",
                     id="v_bool"),
        pytest.param(encode(with_(event_id="not-a-uuid")), Reason.INVALID_EVENT_ID, "event_id", id="event_id"),
        pytest.param(encode(with_(event_type="chargeback")), Reason.INVALID_EVENT_TYPE, "event_type", id="type"),
        pytest.param(encode(with_(event_time="2026-11-26T11:00:00")), Reason.INVALID_EVENT_TIME, "event_time",
                     id="no_offset"),
        pytest.param(encode(with_(event_time="yesterday")), Reason.INVALID_EVENT_TIME, "event_time", id="garbage"),
        pytest.param(encode(with_(event_time="2026-11-26T12:05:01Z")), Reason.EVENT_TIME_IN_FUTURE,
                     "event_time", id="future"),
        pytest.param(encode(with_(transaction_id="")), Reason.INVALID_TRANSACTION_ID, "transaction_id",
                     id="txn_empty"),
        pytest.param(encode(with_(transaction_id="x" * 65)), Reason.INVALID_TRANSACTION_ID, "transaction_id",
                     id="txn_long"),
        pytest.param(encode(with_(account_id=42)), Reason.INVALID_ACCOUNT_ID, "account_id", id="account"),
        pytest.param(encode(with_(merchant_id=None)), Reason.INVALID_MERCHANT_ID, "merchant_id", id="merchant"),
        pytest.param(encode(with_(amount="12,50")), Reason.INVALID_AMOUNT, "amount", id="amount_text"),
        pytest.param(encode(with_(amount="NaN")), Reason.INVALID_AMOUNT, "amount", id="amount_nan"),
        pytest.param(encode(with_(amount=[1])), Reason.INVALID_AMOUNT, "amount", id="amount_list"),
        pytest.param(encode(with_(amount="12345678901234567.00")), Reason.INVALID_AMOUNT, "amount",
                     id="amount_too_big"),
        pytest.param(encode(with_(amount=12345678901234.5)), Reason.INVALID_AMOUNT, "amount",
                     id="float_beyond_exact"),
        pytest.param(encode(with_(amount="0.00")), Reason.NON_POSITIVE_AMOUNT, "amount", id="zero"),
        pytest.param(encode(with_(amount=-3)), Reason.NON_POSITIVE_AMOUNT, "amount", id="negative"),
        pytest.param(encode(with_(amount="1.005")), Reason.AMOUNT_PRECISION, "amount", id="three_decimals"),
        pytest.param(encode(with_(amount=0.125)), Reason.AMOUNT_PRECISION, "amount", id="float_three_decimals"),
        pytest.param(encode(with_(currency="eur")), Reason.INVALID_CURRENCY, "currency", id="currency_case"),
        pytest.param(encode(with_(currency=978)), Reason.INVALID_CURRENCY, "currency", id="currency_number"),
        pytest.param(encode(with_(currency="CHF")), Reason.UNKNOWN_CURRENCY, "currency", id="currency_no_fx"),
        pytest.param(encode(with_(status="pending")), Reason.INVALID_STATUS, "status", id="status"),
        pytest.param(encode(with_(status="declined")), Reason.MISSING_DECLINE_REASON, "decline_reason",
                     id="declined_without_reason"),
        pytest.param(encode(with_(status="declined", decline_reason="")), Reason.MISSING_DECLINE_REASON,
                     "decline_reason", id="declined_empty_reason"),
        pytest.param(encode(with_(decline_reason="do_not_honor")), Reason.UNEXPECTED_DECLINE_REASON,
                     "decline_reason", id="approved_with_reason"),
        pytest.param(encode(with_(decline_reason=7)), Reason.INVALID_DECLINE_REASON, "decline_reason",
                     id="decline_reason_type"),
        pytest.param(encode(with_(channel="atm")), Reason.INVALID_CHANNEL, "channel", id="channel"),
        pytest.param(encode(with_(country="XX")), Reason.INVALID_COUNTRY, "country", id="country_unassigned"),
        pytest.param(encode(with_(country="deu")), Reason.INVALID_COUNTRY, "country", id="country_alpha3"),
        pytest.param(encode(with_(payment_method="cash")), Reason.INVALID_PAYMENT_METHOD, "payment_method",
                     id="payment_method"),
        pytest.param(encode(with_(risk_score=1.5)), Reason.INVALID_RISK_SCORE, "risk_score", id="risk_high"),
        pytest.param(encode(with_(risk_score="low")), Reason.INVALID_RISK_SCORE, "risk_score", id="risk_text"),
    ],
)
def test_each_rule_rejects_with_its_reason(
    validator: Validator, record: bytes, reason: Reason, field: str | None
) -> None:
    result = validator.validate(record)
    assert isinstance(result, Rejection), result
    assert (result.reason, result.field) == (reason, field)
    assert result.detail
    # The slow path names the same rule on its own.
    diagnosed = validator.diagnose(record)
    assert diagnosed is not None
    assert (diagnosed.reason, diagnosed.field) == (reason, field)


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 125.4},
        {"amount": 7},
        {"amount": "0.01"},
        {"amount": "9999999999999999.99"},
        {"amount": "125.400"[:-1]},
        {"risk_score": None},
        {"risk_score": 1},
        {"event_time": "2026-11-26T12:05:00Z"},  # exactly the 5-minute horizon
        {"event_id": "6F1C2A9E-8D4B-4C3A-9E2F-1B7D5A0C4E21"},
        {"event_type": "refund"},
        {"status": "declined", "decline_reason": "insufficient_funds"},
        {"extra_field": {"nested": True}},
    ],
)
def test_valid_variants_pass(validator: Validator, changes: dict[str, Any]) -> None:
    result = validator.validate(encode(with_(**changes)))
    assert isinstance(result, TransactionEvent), result
    assert validator.diagnose(encode(with_(**changes))) is None


def test_risk_score_is_optional(validator: Validator) -> None:
    assert isinstance(validator.validate(encode(without("risk_score"))), TransactionEvent)


def test_event_id_has_one_canonical_form(validator: Validator) -> None:
    upper = validator.validate(encode(with_(event_id=BASE["event_id"].upper())))
    assert isinstance(upper, TransactionEvent)
    assert upper.canonical_event_id == BASE["event_id"]


def test_validate_many_uses_one_horizon(validator: Validator) -> None:
    results = list(validator.validate_many([encode(BASE), b"[]", encode(with_(amount="0"))]))
    assert isinstance(results[0], TransactionEvent)
    assert [r.reason for r in results[1:] if isinstance(r, Rejection)] == [
        Reason.NOT_AN_OBJECT,
        Reason.NON_POSITIVE_AMOUNT,
    ]


def test_json_schema_derives_from_the_contract() -> None:
    schema = json_schema()
    assert tuple(schema["properties"]) == FIELD_NAMES
    assert "risk_score" not in schema["required"]
    jsonschema.validate(BASE, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_(channel="atm"), schema)


_MUTATIONS: dict[str, Any] = {
    "event_id": st.sampled_from(["", "zz", BASE["event_id"], 5, None]),
    "event_type": st.sampled_from(["payment", "refund", "x", 1]),
    "schema_version": st.sampled_from([1, 2, 0, -1, "1", None, 1.0]),
    "event_time": st.sampled_from(["2026-11-26T10:00:00Z", "2027-01-01T00:00:00Z", "2026-11-26", "", 0]),
    "amount": st.one_of(
        st.decimals(min_value=-10, max_value=10**6, places=3, allow_nan=False).map(str),
        st.floats(min_value=-1, max_value=1e6, allow_nan=False),
        st.integers(min_value=-2, max_value=10**17),
        st.sampled_from(["", "1e3", "+1", " 1", "1.", ".5", "١٢", "١٢.٥", "0", "0.00", "0.50", "00012.00",
                         "1.234", "1234567890123456.99", "12345678901234567", 10**16 - 1, 10**16,
                         9999999999999.99, 1e13, 0.1 + 0.2, True]),
    ),
    "currency": st.sampled_from(["EUR", "USD", "XYZ", "eu", 1]),
    "status": st.sampled_from(["approved", "declined", "ok"]),
    "decline_reason": st.sampled_from([None, "", "do_not_honor", 3]),
    "channel": st.sampled_from(["web", "pos", "fax"]),
    "country": st.sampled_from(["DE", "US", "ZZ", "", None]),
    "payment_method": st.sampled_from(["card", "wallet", "cheque"]),
    "risk_score": st.one_of(st.none(), st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)),
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.fixed_dictionaries({}, optional=_MUTATIONS),
    dropped=st.sets(st.sampled_from(FIELD_NAMES), max_size=2),
)
def test_fast_path_and_slow_path_always_agree(
    validator: Validator, changes: dict[str, Any], dropped: set[str]
) -> None:
    record = with_(**changes)
    for name in dropped:
        record.pop(name, None)
    raw = encode(record)
    fast = validator.validate(raw)
    slow = validator.diagnose(raw)
    if isinstance(fast, TransactionEvent):
        assert slow is None
    else:
        assert slow is not None
        assert (fast.reason, fast.field) == (slow.reason, slow.field)


# The per-field rules a type cannot express, spelled out naively: (converted value, record) -> the
# reason of the broken rule, or None. Fields without an entry have no such rule.
_NAIVE_RULES: dict[str, Callable[[Any, dict[str, Any]], Reason | None]] = {
    "schema_version": lambda value, _: check_schema_version(value),
    "event_time": lambda value, _: Reason.EVENT_TIME_IN_FUTURE if value > NOW + MAX_FUTURE_SKEW else None,
    "amount": lambda value, _: check_amount(value),
    "currency": lambda value, _: check_currency(value, CURRENCIES),
    "decline_reason": lambda value, record: check_decline_reason(record["status"], value),
    "country": lambda value, _: Reason.INVALID_COUNTRY if value not in COUNTRY_CODES else None,
}


def _no_rule(value: Any, record: dict[str, Any]) -> Reason | None:
    return None


def _first_broken_rule(record: dict[str, Any]) -> tuple[Reason, str] | None:
    """The contract's definition, spelled out naively: walk the fields in contract order, convert
    each value on its own, apply its rule, stop at the first failure. ``diagnose`` must agree with
    it whatever order the object's keys come in (it reads the field msgspec stopped at)."""
    version = record.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return Reason.UNSUPPORTED_SCHEMA_VERSION, "schema_version"
    for spec in FIELDS:
        if spec.name not in record:
            if spec.required:
                return Reason.MISSING_FIELD, spec.name
            continue
        try:
            value = msgspec.convert(record[spec.name], spec.decode_type)
        except msgspec.ValidationError:
            return spec.invalid, spec.name
        rule = _NAIVE_RULES.get(spec.name, _no_rule)(value, record)
        if rule is not None:
            return rule, spec.name
    return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.fixed_dictionaries({}, optional=_MUTATIONS),
    dropped=st.sets(st.sampled_from(FIELD_NAMES), max_size=2),
    order=st.permutations(FIELD_NAMES),
)
def test_the_first_broken_rule_is_named_whatever_the_key_order(
    validator: Validator, changes: dict[str, Any], dropped: set[str], order: list[str]
) -> None:
    record = with_(**changes)
    shuffled = {name: record[name] for name in order if name in record and name not in dropped}
    expected = _first_broken_rule(shuffled)
    result = validator.validate(encode(shuffled))
    if expected is None:
        assert isinstance(result, TransactionEvent), result
    else:
        assert isinstance(result, Rejection)
        assert (result.reason, result.field) == expected, result.detail



# --- no input makes the contract raise (issue 14) --------------------------------------------------


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _with_raw(name: str, value: bytes) -> bytes:
    """The base event with member ``name`` set to the JSON text ``value`` (added if unknown)."""
    members = [(json.dumps(k).encode(), json.dumps(v).encode()) for k, v in BASE.items() if k != name]
    members.append((json.dumps(name).encode(), value))
    return b"{" + b",".join(k + b":" + v for k, v in members) + b"}"


@pytest.fixture(scope="module", params=[True, False], ids=["native", "python"])
def either(request: pytest.FixtureRequest) -> Validator:
    return Validator(CURRENCIES, clock=lambda: NOW, native=request.param)


def _all_verdicts(validator: Validator, raw: bytes) -> set[tuple[Reason, str | None] | None]:
    """(reason, field) from admit, validate and diagnose (None: accepted); one element when they agree."""
    horizon = validator.horizon()
    admitted = validator.admit(raw, epoch_us(horizon))
    validated = validator.validate(raw, horizon)
    diagnosed = validator.diagnose(raw, horizon)
    return {
        None if not isinstance(result, Rejection) else (result.reason, result.field)
        for result in (admitted, validated, diagnosed)
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(_with_raw("extra", _deep(1000)), (Reason.INVALID_JSON, None), id="deep_in_an_unknown_member"),
        pytest.param(_deep(1000), (Reason.INVALID_JSON, None), id="deep_array"),
        pytest.param(b'{"a":' * 1000 + b"1" + b"}" * 1000, (Reason.INVALID_JSON, None), id="deep_object"),
        pytest.param(_with_raw("amount", _deep(1000)), (Reason.INVALID_JSON, None), id="deep_amount"),
        pytest.param(_with_raw("extra", _deep(MAX_JSON_DEPTH)), (Reason.INVALID_JSON, None), id="one_past_the_limit"),
        pytest.param(_with_raw("extra", _deep(MAX_JSON_DEPTH - 1)), None, id="at_the_limit"),
        pytest.param(_with_raw("extra", b'"' + b"[" * 1000 + b'"'), None, id="brackets_in_a_string"),
    ],
)
def test_nesting_is_judged_against_one_fixed_limit(either: Validator, raw: bytes,
                                                   expected: tuple[Reason, str | None] | None) -> None:
    assert _all_verdicts(either, raw) == {expected}
    if expected is not None:
        rejection = either.validate(raw)
        assert isinstance(rejection, Rejection)
        assert f"nested deeper than {MAX_JSON_DEPTH} levels" in rejection.detail


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        pytest.param("1" * 27 + ".123", Reason.AMOUNT_PRECISION, id="27_digits_3_decimals"),
        pytest.param("9" * 60 + "." + "9" * 60, Reason.AMOUNT_PRECISION, id="60_digits_60_decimals"),
        pytest.param("1" * 27 + ".100", Reason.INVALID_AMOUNT, id="27_digits_trailing_zero"),
        pytest.param("1" * 27, Reason.INVALID_AMOUNT, id="27_digits"),
    ],
)
def test_a_long_text_amount_gets_its_reason(either: Validator, amount: str, reason: Reason) -> None:
    assert check_amount(amount) is reason
    assert _all_verdicts(either, encode(with_(amount=amount))) == {(reason, "amount")}


@pytest.mark.parametrize(
    ("name", "number", "reason"),
    [
        pytest.param("amount", b"1e400", Reason.INVALID_AMOUNT, id="amount_1e400"),
        pytest.param("amount", b"-1e999", Reason.INVALID_AMOUNT, id="amount_-1e999"),
        pytest.param("amount", b"9" * 400, Reason.INVALID_AMOUNT, id="amount_400_digits"),
        pytest.param("amount", b"9" * 5000, Reason.INVALID_AMOUNT, id="amount_5000_digits"),
        pytest.param("schema_version", b"1e400", Reason.INVALID_SCHEMA_VERSION, id="version_1e400"),
        pytest.param("schema_version", b"9" * 5000, Reason.UNSUPPORTED_SCHEMA_VERSION, id="version_5000_digits"),
        pytest.param("schema_version", b"-" + b"9" * 5000, Reason.INVALID_SCHEMA_VERSION, id="version_-5000_digits"),
        pytest.param("risk_score", b"1e400", Reason.INVALID_RISK_SCORE, id="risk_1e400"),
        pytest.param("risk_score", b"-1e400", Reason.INVALID_RISK_SCORE, id="risk_-1e400"),
        pytest.param("risk_score", b"9" * 5000, Reason.INVALID_RISK_SCORE, id="risk_5000_digits"),
        pytest.param("event_time", b"1e400", Reason.INVALID_EVENT_TIME, id="time_1e400"),
        pytest.param("decline_reason", b"[1e400]", Reason.INVALID_DECLINE_REASON, id="nested_in_a_member"),
    ],
)
def test_a_number_beyond_the_decoder_gets_its_field_reason(either: Validator, name: str, number: bytes,
                                                           reason: Reason) -> None:
    assert _all_verdicts(either, _with_raw(name, number)) == {(reason, name)}


@pytest.mark.parametrize("number", [b"1e400", b"-1e999", b"9" * 5000, b"[1e400, {\"x\": -1e999}]"])
def test_a_number_beyond_the_decoder_in_an_unknown_member_is_allowed(either: Validator, number: bytes) -> None:
    assert _all_verdicts(either, _with_raw("extra", number)) == {None}
    assert _all_verdicts(either, b"[" + number + b"]") == {(Reason.NOT_AN_OBJECT, None)}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_with_raw("extra", b'"w\xffb"'), id="bad_byte_in_an_unknown_member"),
        pytest.param(_with_raw("extra", b'["\xed\xa0\x80"]'), id="encoded_surrogate_in_an_unknown_member"),
        pytest.param(_with_raw("extra", b'1e400, "more": "\xff"'), id="after_a_number_beyond_the_decoder"),
    ],
)
def test_bytes_that_are_not_utf8_anywhere_are_invalid_json(either: Validator, raw: bytes) -> None:
    assert _all_verdicts(either, raw) == {(Reason.INVALID_JSON, None)}


@pytest.mark.parametrize("raw", [b"-1e999 x", b'[1e400] "a"', _with_raw("extra", b"1e400") + b",", b"1e400\xff"])
def test_a_number_beyond_the_decoder_does_not_hide_a_syntax_error_after_it(either: Validator, raw: bytes) -> None:
    assert _all_verdicts(either, raw) == {(Reason.INVALID_JSON, None)}


def test_text_with_a_lone_surrogate_is_invalid_json(validator: Validator) -> None:
    text = encode(BASE).decode().replace("web", "w\udcffb")
    for result in (validator.validate(text), validator.diagnose(text)):
        assert isinstance(result, Rejection)
        assert (result.reason, result.field) == (Reason.INVALID_JSON, None)


def test_a_repeated_member_counts_with_its_last_value_on_every_path(either: Validator) -> None:
    first_wrong = b'{"amount": [1],' + encode(BASE)[1:]
    assert _all_verdicts(either, first_wrong) == {None}
    last_wrong = encode(BASE)[:-1] + b', "amount": [1]}'
    assert _all_verdicts(either, last_wrong) == {(Reason.INVALID_AMOUNT, "amount")}


def test_validation_error_is_the_backstop_reason_with_the_exception_text() -> None:
    rejection = validation_error(RecursionError("maximum recursion depth exceeded"))
    assert (rejection.reason, rejection.field) == (Reason.VALIDATION_ERROR, None)
    assert "RecursionError: maximum recursion depth exceeded" in rejection.detail
    assert len(validation_error(ValueError("x" * 100_000)).detail) < 3000
