"""The contract never raises and its entry points agree, whatever the bytes.

For any input: ``Validator.admit``, ``validate`` and ``diagnose`` return (never raise), with the
compiled fast path on and off, and they agree: the same accept/reject decision, the same reason and
field, the same event id and time for an accepted record; a record given as text gets the answer its
UTF-8 bytes get (``tests.fixtures.contract_agreement``, which the fuzz target uses too).

Inputs: arbitrary bytes; arbitrary JSON text built byte by byte (deep nesting, numbers beyond the
float and integer ranges, tiny numbers, escaped and raw lone surrogates, bytes that are not UTF-8,
repeated keys); and the contract's own event with one member replaced by any such value, removed,
repeated, or joined by an unknown member.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataforge.contract import FIELD_NAMES, MAX_FUTURE_SKEW, MAX_JSON_DEPTH, TransactionEvent, Validator
from tests.fixtures.contract_agreement import assert_one_verdict
from tests.unit.test_contract import BASE, CURRENCIES, NOW

HORIZON = NOW + MAX_FUTURE_SKEW
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def validators() -> tuple[Validator, Validator]:
    native = Validator(CURRENCIES, clock=lambda: NOW)
    assert native.native, "dataforge_native is not installed: run `make setup`"
    return native, Validator(CURRENCIES, clock=lambda: NOW, native=False)


def check(validators: tuple[Validator, Validator], raw: bytes) -> None:
    assert_one_verdict(validators, raw, HORIZON)


# --- JSON text, byte by byte -----------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers().map(lambda n: str(n).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,5})?\Z").map(str.encode),
    st.sampled_from([b"1e400", b"-1e999", b"1e-400", b"-1e-400", b"9" * 400, b"-" + b"9" * 400, b"9" * 4301,
                     b"-" + b"9" * 5000, b"1" * 27 + b".123", b"4.9e-324", b"1.7976931348623157e308", b"-0",
                     b"0.0", b"1E2", b"100.0", b"0.01", b"1e13", b"9999999999999.99", b"1" + b"0" * 16]),
)
_ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included
_STRINGS = st.one_of(
    # escaped (lone surrogates become \\udxxx escapes) or raw UTF-8 (lone surrogates: invalid bytes)
    st.text(_ANY_CHARACTER, max_size=12).map(lambda s: json.dumps(s).encode()),
    st.text(_ANY_CHARACTER, max_size=12).map(
        lambda s: json.dumps(s, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=12).map(lambda b: b'"' + b.replace(b'"', b"").replace(b"\\", b"") + b'"'),
    st.sampled_from([json.dumps(v).encode() for v in BASE.values() if isinstance(v, str)]
                    + [b'"2026-11-26T12:05:00Z"', b'"2026-11-26T12:05:00.000001Z"', b'"declined"', b'"USD"',
                       b'"CHF"', b'"125.400"', b'"0.00"', b'"\\ud800"', b'"\\udc00\\ud800"', b'"\\u0000"']),
)
_SCALARS = st.one_of(st.sampled_from([b"null", b"true", b"false"]), _NUMBERS, _STRINGS)
_KEYS = st.one_of(st.sampled_from([json.dumps(name).encode() for name in FIELD_NAMES]), _STRINGS)


def _array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def _object(members: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(key + b":" + value for key, value in members) + b"}"


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    return b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)  # mixed


_DEEP = st.builds(_nested, st.one_of(st.integers(1, 1200), st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH,
                                                                               MAX_JSON_DEPTH + 1])),
                  st.sampled_from(["array", "object", "mixed"]))
_VALUES = st.recursive(
    st.one_of(_SCALARS, _DEEP),
    lambda children: st.one_of(st.lists(children, max_size=4).map(_array),
                               st.lists(st.tuples(_KEYS, children), max_size=5).map(_object)),
    max_leaves=12,
)
_WHITESPACE = st.sampled_from([b"", b" ", b"\n", b"\t\r\n "])


def _event_members() -> list[tuple[bytes, bytes]]:
    return [(json.dumps(name).encode(), json.dumps(value).encode()) for name, value in BASE.items()]


@st.composite
def _mutated_events(draw: st.DrawFn) -> bytes:
    """The contract's valid event with one member replaced, removed, repeated, or an unknown one added."""
    members = _event_members()
    index = draw(st.integers(0, len(members) - 1))
    change = draw(st.sampled_from(["replace", "remove", "repeat_after", "repeat_before", "add"]))
    value = draw(_VALUES)
    key = members[index][0]
    if change == "replace":
        members[index] = (key, value)
    elif change == "remove":
        del members[index]
    elif change == "repeat_after":
        members.append((key, value))
    elif change == "repeat_before":
        members.insert(0, (key, value))
    else:
        members.insert(index, (draw(_STRINGS), value))
    if draw(st.booleans()):
        members = draw(st.permutations(members))
    return draw(_WHITESPACE) + _object(members) + draw(_WHITESPACE)


# --- the properties ---------------------------------------------------------------------------------


@SETTINGS
@given(raw=st.binary(max_size=600))
def test_arbitrary_bytes(validators: tuple[Validator, Validator], raw: bytes) -> None:
    check(validators, raw)


@SETTINGS
@given(raw=_VALUES)
def test_arbitrary_json(validators: tuple[Validator, Validator], raw: bytes) -> None:
    check(validators, raw)


@SETTINGS
@given(raw=_mutated_events())
def test_the_event_with_one_member_changed(validators: tuple[Validator, Validator], raw: bytes) -> None:
    check(validators, raw)


@SETTINGS
@given(raw=_mutated_events(), cut=st.integers(0, 400), junk=st.binary(max_size=4))
def test_the_event_cut_or_spliced(validators: tuple[Validator, Validator], raw: bytes, cut: int, junk: bytes) -> None:
    check(validators, raw[:cut] + junk + raw[cut:] if junk else raw[:cut])


def test_the_properties_see_valid_events(validators: tuple[Validator, Validator]) -> None:
    """The mutated-event strategy is not all rejections: an unknown member keeps the event valid."""
    members = _event_members()
    raw = _object([*members, (b'"extra"', _nested(MAX_JSON_DEPTH - 1, "array")), (b'"big"', b"1e400")])
    check(validators, raw)
    assert isinstance(validators[1].validate(raw, HORIZON), TransactionEvent)
