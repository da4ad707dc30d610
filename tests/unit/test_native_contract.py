"""The compiled fast path (``dataforge_native``, native/src/lib.rs) against the Python validator.

Its one promise: whatever it admits, the Python validator admits too, with the same canonical event
id and event time; whatever it does not admit, ``Validator.admit`` hands to ``validate``. So every
test here compares the two paths on the same bytes, and checks that the fast path does take the
common form of real traffic (else the speed it exists for would be gone, silently).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataforge.contract import MAX_FUTURE_SKEW, Admitted, Rejection, Validator, epoch_us
from dataforge.reference import default_fx
from devkit.generator import GeneratorConfig, generate_events
from tests.unit.test_contract import _MUTATIONS, BASE, CURRENCIES, NOW, encode, with_

HORIZON_US = epoch_us(NOW + MAX_FUTURE_SKEW)


@pytest.fixture(scope="module")
def native() -> Validator:
    validator = Validator(CURRENCIES, clock=lambda: NOW)
    assert validator.native, "dataforge_native is not installed: run `make setup` (it builds native/ with cargo)"
    return validator


@pytest.fixture(scope="module")
def python() -> Validator:
    validator = Validator(CURRENCIES, clock=lambda: NOW, native=False)
    assert not validator.native
    return validator


def fast_admit(validator: Validator, raw: bytes, horizon_us: int = HORIZON_US) -> Admitted | None:
    """The fast path's own answer (None: it passes the record on)."""
    fast = validator._admit_fast
    assert fast is not None
    return fast(raw, horizon_us)


def utf8(record: dict[str, Any]) -> bytes:
    """JSON with non-ASCII characters as UTF-8, not as ``\\u`` escapes."""
    return json.dumps(record, ensure_ascii=False).encode()


def without_amount() -> dict[str, Any]:
    return {k: v for k, v in BASE.items() if k != "amount"}


def test_the_base_event_is_admitted_by_the_fast_path_with_its_values(native: Validator, python: Validator) -> None:
    raw = encode(BASE)
    expected = (BASE["event_id"].encode(), epoch_us(datetime(2026, 11, 26, 10, 58, 30, 250000, tzinfo=UTC)))
    assert fast_admit(native, raw) == expected
    assert python.admit(raw, HORIZON_US) == expected


def test_generated_traffic_gets_the_same_answer_and_mostly_the_fast_path() -> None:
    currencies = default_fx().currencies
    native, python = Validator(currencies), Validator(currencies, native=False)
    horizon = epoch_us(native.horizon())
    events = list(generate_events(GeneratorConfig(count=20_000, seed=11, invalid_fraction=0.02,
                                                  duplicate_fraction=0.01)))
    fast = 0
    for event in events:
        expected = python.admit(event.value, horizon)
        assert native.admit(event.value, horizon) == expected, event.value
        assert (expected.__class__ is not Rejection) is event.is_valid, (event.value, expected)
        if fast_admit(native, event.value, horizon) is not None:
            fast += 1
    valid = sum(1 for e in events if e.is_valid)
    assert fast == valid  # every valid generated event is in the fast path's form (text, int and float amounts)


@pytest.mark.parametrize(
    ("raw", "fast_path"),
    [
        pytest.param(encode(with_(event_id="6F1C2A9E-8D4B-4C3A-9E2F-1B7D5A0C4E21")), True, id="uuid_upper"),
        pytest.param(encode(with_(event_id="6f1c2a9e8d4b4c3a9e2f1b7d5a0c4e21")), False, id="uuid_no_hyphens"),
        pytest.param(encode(with_(event_id="{6f1c2a9e-8d4b-4c3a-9e2f-1b7d5a0c4e21}")), False, id="uuid_braces"),
        pytest.param(encode(with_(event_time="2026-11-26T11:58:30Z")), True, id="time_no_fraction"),
        pytest.param(encode(with_(event_time="2026-11-26T11:58:30.123456+03:30")), True, id="time_micros"),
        pytest.param(encode(with_(event_time="2026-11-26T11:58:30.1234567Z")), False, id="time_nanos"),
        pytest.param(encode(with_(event_time="2026-11-26t11:58:30Z")), False, id="time_lower_t"),
        pytest.param(encode(with_(event_time="2026-11-26 11:58:30Z")), False, id="time_space"),
        pytest.param(encode(with_(event_time="2026-11-26T11:58:30z")), False, id="time_lower_z"),
        pytest.param(encode(with_(event_time="2026-11-26T11:58:30-00:00")), False, id="time_unknown_offset"),
        pytest.param(encode(with_(event_time="2026-11-26T11:58Z")), False, id="time_no_seconds"),
        pytest.param(encode(with_(event_time="2024-02-29T00:00:00Z")), True, id="time_leap_day"),
        pytest.param(encode(with_(event_time="2026-11-26T12:05:00Z")), True, id="time_exactly_the_horizon"),
        pytest.param(encode(with_(event_time="2026-11-26T12:05:00.000001Z")), False, id="time_past_the_horizon"),
        pytest.param(encode(with_(amount=125.4)), True, id="amount_float"),
        pytest.param(encode(with_(amount=100.0)), True, id="amount_float_whole"),
        pytest.param(b'{"amount":1e2,' + encode(without_amount())[1:], True, id="amount_exponent"),
        pytest.param(encode(with_(amount=0.5)), True, id="amount_float_under_1"),
        pytest.param(encode(with_(amount=1e-05)), False, id="amount_float_tiny"),
        pytest.param(encode(with_(amount="0.50")), True, id="amount_text_under_1"),
        pytest.param(encode(with_(amount="007")), True, id="amount_text_leading_zeros"),
        pytest.param(encode(with_(amount="0.00")), False, id="amount_text_zero"),
        pytest.param(encode(with_(amount=7)), True, id="amount_int"),
        pytest.param(encode(with_(amount=0.125)), False, id="amount_float_precision"),
        pytest.param(encode(with_(amount=12345678901234.5)), False, id="amount_float_too_big"),
        pytest.param(encode(with_(risk_score=1)), True, id="risk_int"),
        pytest.param(encode(with_(risk_score=None)), True, id="risk_null"),
        pytest.param(encode({k: v for k, v in BASE.items() if k != "risk_score"}), True, id="risk_absent"),
        pytest.param(utf8(with_(transaction_id="é" * 64)), True, id="id_64_chars_128_bytes"),
        pytest.param(utf8(with_(transaction_id="é" * 65)), False, id="id_65_chars"),
        pytest.param(encode(with_(merchant_id="m\u00e9")), False, id="escaped_string"),
        pytest.param(encode(with_(extra=2.5e300, note="ok", flag=True, gone=None)), True, id="unknown_fields_skipped"),
        pytest.param(encode(with_(extra={"nested": [1, None]})), False, id="unknown_nested_field"),
        pytest.param(encode(with_(note="x\\y")), False, id="unknown_field_escaped"),
        pytest.param(encode(BASE)[:-1] + b',"amount":"1.00"}', False, id="duplicate_field"),
        pytest.param(b'{"event_\\u0069d"' + encode(BASE)[11:], False, id="escaped_key"),
        pytest.param(encode(BASE).replace(b", ", b",\n\t"), True, id="json_whitespace"),
        pytest.param(encode(BASE).replace(b'"channel": "web"', b'"channel": "w\x00b"'), False, id="control_char"),
        pytest.param(encode(BASE).replace(b'"channel": "web"', b'"channel": "w\xffb"'), False, id="invalid_utf8"),
        pytest.param(encode(BASE)[:-1] + b",}", False, id="trailing_comma"),
        pytest.param(encode(with_(risk_score=None)).replace(b"null}", b"nul}"), False, id="bad_literal"),
        pytest.param(encode(with_(amount=7)).replace(b": 7,", b": 07,"), False, id="leading_zero_number"),
        pytest.param(encode(with_(amount=7)).replace(b": 7,", b": 7.,"), False, id="number_without_fraction"),
        pytest.param(encode(with_(amount=7)).replace(b": 7,", b": NaN,"), False, id="nan"),
        pytest.param(encode(with_(amount=7)).replace(b'"amount": 7', b"'amount': 7"), False, id="single_quotes"),
        pytest.param(encode(BASE) + b" \n", True, id="trailing_whitespace"),
        pytest.param(encode(BASE) + b"{}", False, id="trailing_data"),
        pytest.param(encode(with_(status="declined", decline_reason="do_not_honor")), True, id="declined"),
        pytest.param(encode(with_(status="declined", decline_reason="")), False, id="declined_empty_reason"),
        pytest.param(encode(with_(schema_version=1.0)), False, id="version_float"),
        pytest.param(encode(with_(currency="CHF")), False, id="currency_without_rate"),
        pytest.param(b"\xef\xbb\xbf" + encode(BASE), False, id="utf8_bom"),
    ],
)
def test_each_form_gets_the_python_answer(native: Validator, python: Validator, raw: bytes, fast_path: bool) -> None:
    expected = python.admit(raw, HORIZON_US)
    assert native.admit(raw, HORIZON_US) == expected
    fast = fast_admit(native, raw)
    assert (fast is not None) is fast_path, (fast, expected)
    if fast is not None:
        assert fast == expected


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.fixed_dictionaries({}, optional=_MUTATIONS), dropped=st.sets(st.sampled_from(list(BASE)), max_size=2))
def test_whatever_the_fast_path_admits_python_admits_the_same(
    native: Validator, python: Validator, changes: dict[str, Any], dropped: set[str]
) -> None:
    record = with_(**changes)
    for name in dropped:
        record.pop(name, None)
    raw = encode(record)
    expected = python.admit(raw, HORIZON_US)
    fast = fast_admit(native, raw)
    if fast is not None:
        assert fast == expected
    assert native.admit(raw, HORIZON_US) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    moment=st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(2026, 11, 25)),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    fraction_digits=st.integers(min_value=0, max_value=6),
)
def test_event_times_convert_exactly_like_python(
    native: Validator, python: Validator, moment: datetime, offset_minutes: int, fraction_digits: int
) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = aware.isoformat(timespec="microseconds")
    head, _, tail = text.partition(".")
    text = head + ("." + tail[:fraction_digits] if fraction_digits else "") + tail[6:]
    raw = encode(with_(event_time=text))
    expected = python.admit(raw, HORIZON_US)
    assert not isinstance(expected, Rejection), (text, expected)
    fast = fast_admit(native, raw)
    if text.endswith("-00:00"):
        assert fast is None
    else:
        assert fast == expected, text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.one_of(
    st.floats(min_value=1.0, max_value=1e13, allow_nan=False),
    st.integers(min_value=100, max_value=10**15 - 1).map(lambda cents: cents / 100),
    st.integers(min_value=1, max_value=10**13).map(float),
))
def test_float_amounts_from_1_get_the_same_answer_from_both_paths(
    native: Validator, python: Validator, amount: float
) -> None:
    raw = encode(with_(amount=amount))
    expected = python.admit(raw, HORIZON_US)
    fast = fast_admit(native, raw)
    assert (fast is not None) is (expected.__class__ is not Rejection), (repr(amount), expected)
    if fast is not None:
        assert fast == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000, id="deep_array"),
        pytest.param(b'{"a":' * 50_000, id="deep_object"),
        pytest.param(encode(BASE)[:-1] + b', "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}", id="deep_unknown_member"),
        pytest.param(encode(BASE).replace(b'"125.40"', b"1e400"), id="amount_1e400"),
        pytest.param(encode(BASE).replace(b'"125.40"', b"-1e999"), id="amount_-1e999"),
        pytest.param(encode(BASE).replace(b'"125.40"', b"9" * 5000), id="amount_5000_digits"),
        pytest.param(encode(BASE).replace(b'"125.40"', b'"' + b"1" * 27 + b'.123"'), id="amount_long_text"),
        pytest.param(encode(BASE).replace(b"0.07", b"1e400"), id="risk_1e400"),
        pytest.param(encode(BASE).replace(b'"schema_version": 1', b'"schema_version": ' + b"9" * 400),
                     id="version_400_digits"),
        pytest.param(encode(BASE).replace(b'"web"', b'"\xed\xa0\x80"'), id="encoded_surrogate"),
        pytest.param(encode(BASE)[:-1] + b', "x": "\xff"}', id="bad_utf8_in_an_unknown_member"),
        pytest.param(encode(BASE).replace(b'"2026-11-26T11:58:30.250+01:00"', b'"9999-12-31T23:59:59-23:59"'),
                     id="time_past_year_9999_in_utc"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00" * 64, id="nul_bytes"),
    ],
)
def test_the_fast_path_answers_none_for_hostile_bytes(native: Validator, python: Validator, raw: bytes) -> None:
    """The fast path never raises or panics: it answers None, and the Python contract decides."""
    assert fast_admit(native, raw) is None
    assert native.admit(raw, HORIZON_US) == python.admit(raw, HORIZON_US)
