"""The transaction-event contract, schema v1: the one source every other schema derives from.

One table of ``FieldSpec`` rows defines the event (ARCHITECTURE.md, "Data contract"). From it come:

- ``Validator``: record validation with one machine-readable ``Reason`` per rule. ``validate`` is a
  single typed ``msgspec`` decode plus a few cheap checks; only a record that fails the decode is
  decoded a second time, field by field, to name the exact rule it breaks. Both paths run the same
  per-field checks in the same (contract) order, so a record always gets the same reason.
  ``admit``, the landing processors' hot path, first asks the compiled fast path (``dataforge_native``,
  Rust: ``native/``), which accepts the common form of a valid event without building Python objects
  and answers ``None`` for anything else; ``validate`` then decides. It never rejects, so every reason
  still comes from this module (ADR 0006).
- the JSON Schema of the event (for peers and docs), and, through ``dataforge.schemas``, the Spark
  ``StructType``, Glue column definitions and Arrow/DuckDB types of the raw, silver and gold tables.

Money is never float arithmetic: amounts are checked as text and become ``Decimal`` on demand.

No input makes ``admit``, ``validate`` or ``diagnose`` raise: every record gets a verdict. JSON nested
deeper than ``MAX_JSON_DEPTH`` and JSON that is not UTF-8 anywhere (an unknown field included) are
``invalid_json``; a number beyond what the decoder can represent (``1e400``, an integer of thousands of
digits) gets the reason of the field it sits in, like any other value of the wrong type.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import accumulate
from typing import Annotated, Any, Final, Literal, cast

import msgspec

from dataforge.iso import COUNTRY_CODES

try:
    from dataforge_native import FastPath
except ImportError:  # not built for this platform: ``admit`` uses the pure-Python path (same answers)
    FastPath = None  # type: ignore[assignment,misc]

SCHEMA_VERSION: Final = 1
MAX_FUTURE_SKEW: Final = timedelta(minutes=5)
MAX_ID_LENGTH: Final = 64
AMOUNT_MAX_INTEGER_DIGITS: Final = 16  # DECIMAL(18,2)
# A JSON *number* amount is read as a binary float; above this it may no longer carry its exact
# cents, so such amounts must be sent as strings (the contract allows both forms).
FLOAT_AMOUNT_LIMIT: Final = 1e13
# The deepest nesting of arrays and objects a record may have (the event itself is depth 1). msgspec's
# decoders recurse, and where they give up depends on how deep the caller's stack already is; so the
# contract checks its own fixed limit first, far above any producer's need and far below the parser's.
MAX_JSON_DEPTH: Final = 64
# The longest exception text a ``validation_error`` rejection keeps in its detail.
_MAX_ERROR_TEXT: Final = 2000

EventType = Literal["payment", "refund"]
Status = Literal["approved", "declined"]
Channel = Literal["web", "mobile", "pos"]
PaymentMethod = Literal["card", "wallet", "bank_transfer"]

EVENT_TYPES: Final = ("payment", "refund")
STATUSES: Final = ("approved", "declined")
CHANNELS: Final = ("web", "mobile", "pos")
PAYMENT_METHODS: Final = ("card", "wallet", "bank_transfer")


class Reason(StrEnum):
    """Why a record was quarantined. Stable, machine-readable codes (stored with the record)."""

    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    INVALID_SCHEMA_VERSION = "invalid_schema_version"
    INVALID_EVENT_ID = "invalid_event_id"
    INVALID_EVENT_TYPE = "invalid_event_type"
    INVALID_EVENT_TIME = "invalid_event_time"
    EVENT_TIME_IN_FUTURE = "event_time_in_future"
    INVALID_TRANSACTION_ID = "invalid_transaction_id"
    INVALID_ACCOUNT_ID = "invalid_account_id"
    INVALID_MERCHANT_ID = "invalid_merchant_id"
    INVALID_AMOUNT = "invalid_amount"
    NON_POSITIVE_AMOUNT = "non_positive_amount"
    AMOUNT_PRECISION = "amount_precision"
    INVALID_CURRENCY = "invalid_currency"
    UNKNOWN_CURRENCY = "unknown_currency"
    INVALID_STATUS = "invalid_status"
    INVALID_DECLINE_REASON = "invalid_decline_reason"
    MISSING_DECLINE_REASON = "missing_decline_reason"
    UNEXPECTED_DECLINE_REASON = "unexpected_decline_reason"
    INVALID_CHANNEL = "invalid_channel"
    INVALID_COUNTRY = "invalid_country"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    INVALID_RISK_SCORE = "invalid_risk_score"
    # Raised at enrichment (Spark), not by the record validator: a known currency with no rate on
    # or before the event date.
    NO_FX_RATE = "no_fx_rate"
    # Raised by file landing for a whole file that cannot be read (see the ingestion ADR).
    MALFORMED_FILE = "malformed_file"
    # Raised by the backstop of each per-record loop (MSK landing, file landing, Spark validation),
    # not by the validator: judging this one record raised an exception (in the detail). The contract
    # gives every input a verdict, so this should never appear; when it does, the record is kept in
    # quarantine, its batch lands, and the exception is logged (docs/ingestion.md).
    VALIDATION_ERROR = "validation_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that broke the contract: the rule (``reason``), the field, and a readable detail."""

    reason: Reason
    field: str | None
    detail: str


def validation_error(exc: Exception) -> Rejection:
    """What a per-record backstop quarantines a record with when judging it raised ``exc``."""
    text = f"{type(exc).__name__}: {exc}"
    if len(text) > _MAX_ERROR_TEXT:
        text = text[:_MAX_ERROR_TEXT] + "..."
    return Rejection(Reason.VALIDATION_ERROR, None, f"the validator failed on this record: {text}")


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
RiskScore = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class TransactionEvent(msgspec.Struct, frozen=True, gc=False):
    """A schema-v1 event that passed validation. Unknown extra fields are not kept here (bronze
    keeps the original bytes). ``amount`` stays as sent (text or JSON number); use ``amount_decimal``.
    """

    event_id: uuid.UUID
    event_type: EventType
    schema_version: int
    event_time: AwareDatetime
    transaction_id: Id
    account_id: Id
    merchant_id: Id
    amount: str | int | float
    currency: str
    status: Status
    decline_reason: str | None
    channel: Channel
    country: str
    payment_method: PaymentMethod
    risk_score: RiskScore | None = None

    @property
    def canonical_event_id(self) -> str:
        """The idempotency key in its one canonical form: lowercase 8-4-4-4-12 hex."""
        return str(self.event_id)

    @property
    def amount_decimal(self) -> Decimal:
        return amount_to_decimal(self.amount)


# --- per-field rules (shared by the fast and the diagnostic path) -------------------------------

_AMOUNT_TEXT = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,2})?")
_CURRENCY_TEXT = re.compile(r"[A-Z]{3}")


_INT_AMOUNT_LIMIT: Final = 10**AMOUNT_MAX_INTEGER_DIGITS


# The common form of a valid amount, checked right after the typed decode: 1-16 digits without a
# leading zero (so not zero), optionally 1-2 fraction digits. It is the text of every amount of 1 or
# more and the ``str()`` of every float with cents; any other amount (under 1, leading zeros, a float
# with more digits) takes the full ``check_amount``.
_common_amount: Final = re.compile(r"[1-9][0-9]{0,15}(?:\.[0-9]{1,2})?").fullmatch


def amount_to_decimal(amount: str | int | float) -> Decimal:
    """The exact decimal value of a validated amount (a float amount is read from its shortest repr)."""
    if isinstance(amount, float):
        return Decimal(repr(amount))
    return Decimal(amount)


def _classify_amount(amount: str | int | float) -> Reason:
    """Name the rule an amount breaks (slow: only called for amounts that failed the fast check)."""
    if isinstance(amount, float) and amount >= FLOAT_AMOUNT_LIMIT:
        return Reason.INVALID_AMOUNT
    try:
        value = amount_to_decimal(amount)
    except (InvalidOperation, ValueError):
        return Reason.INVALID_AMOUNT
    if not value.is_finite():
        return Reason.INVALID_AMOUNT
    if value <= 0:
        return Reason.NON_POSITIVE_AMOUNT
    # A non-zero digit after the second fraction digit. (Read from the digits: ``quantize`` would
    # overflow the decimal context's 28 digits for a long amount.)
    _, digits, exponent = value.as_tuple()
    if isinstance(exponent, int) and exponent < -2 and any(digits[exponent + 2:]):
        return Reason.AMOUNT_PRECISION
    return Reason.INVALID_AMOUNT


def check_amount(amount: str | int | float) -> Reason | None:
    """> 0, at most 2 fraction digits, fits DECIMAL(18,2); text or JSON number."""
    if isinstance(amount, str):
        text = amount
    elif isinstance(amount, bool):
        return Reason.INVALID_AMOUNT
    elif isinstance(amount, int):
        return None if 0 < amount < _INT_AMOUNT_LIMIT else _classify_amount(amount)
    else:
        if not 0 < amount < FLOAT_AMOUNT_LIMIT:
            return _classify_amount(amount)
        text = repr(amount)
    if _AMOUNT_TEXT.fullmatch(text) is None:
        return _classify_amount(amount)
    if not text.replace(".", "").strip("0"):
        return Reason.NON_POSITIVE_AMOUNT
    return None


def check_currency(currency: str, known: Collection[str]) -> Reason | None:
    if currency in known:
        return None
    if _CURRENCY_TEXT.fullmatch(currency) is None:
        return Reason.INVALID_CURRENCY
    return Reason.UNKNOWN_CURRENCY


def check_decline_reason(status: str, decline_reason: str | None) -> Reason | None:
    if status == "declined":
        return Reason.MISSING_DECLINE_REASON if not decline_reason else None
    return None if decline_reason is None else Reason.UNEXPECTED_DECLINE_REASON


def check_schema_version(version: int) -> Reason | None:
    if version == SCHEMA_VERSION:
        return None
    return Reason.UNSUPPORTED_SCHEMA_VERSION if version > SCHEMA_VERSION else Reason.INVALID_SCHEMA_VERSION


# --- the contract table --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of schema v1: how it is decoded, which reason a bad value gets, what it means."""

    name: str
    decode_type: Any
    silver_type: str  # logical column type in silver (see dataforge.schemas)
    invalid: Reason
    required: bool
    json_schema: dict[str, Any]
    description: str


_UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_ID_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}

FIELDS: Final[tuple[FieldSpec, ...]] = (
    FieldSpec("event_id", uuid.UUID, "string", Reason.INVALID_EVENT_ID, True,
              {"type": "string", "pattern": _UUID_PATTERN}, "UUID; the idempotency key end to end"),
    FieldSpec("event_type", EventType, "string", Reason.INVALID_EVENT_TYPE, True,
              {"enum": list(EVENT_TYPES)}, "payment or refund"),
    FieldSpec("schema_version", int, "int", Reason.INVALID_SCHEMA_VERSION, True,
              {"type": "integer", "const": SCHEMA_VERSION}, "contract version; 1"),
    FieldSpec("event_time", AwareDatetime, "timestamp", Reason.INVALID_EVENT_TIME, True,
              {"type": "string", "format": "date-time"}, "RFC 3339 with offset; at most 5 min ahead"),
    FieldSpec("transaction_id", Id, "string", Reason.INVALID_TRANSACTION_ID, True, _ID_SCHEMA, "1-64 chars"),
    FieldSpec("account_id", Id, "string", Reason.INVALID_ACCOUNT_ID, True, _ID_SCHEMA, "1-64 chars; Kafka key"),
    FieldSpec("merchant_id", Id, "string", Reason.INVALID_MERCHANT_ID, True, _ID_SCHEMA,
              "unknown merchants are kept and enriched as unknown"),
    FieldSpec("amount", str | int | float, "decimal(18,2)", Reason.INVALID_AMOUNT, True,
              {"type": ["string", "number"], "pattern": r"^[0-9]{1,16}(\.[0-9]{1,2})?$",
               "exclusiveMinimum": 0, "multipleOf": 0.01},
              "decimal > 0, at most 2 fraction digits; DECIMAL(18,2)"),
    FieldSpec("currency", str, "string", Reason.INVALID_CURRENCY, True,
              {"type": "string", "pattern": "^[A-Z]{3}$"}, "ISO 4217; must be in the FX reference table"),
    FieldSpec("status", Status, "string", Reason.INVALID_STATUS, True,
              {"enum": list(STATUSES)}, "approved or declined"),
    FieldSpec("decline_reason", str | None, "string", Reason.INVALID_DECLINE_REASON, True,
              {"type": ["string", "null"]}, "non-null exactly when declined"),
    FieldSpec("channel", Channel, "string", Reason.INVALID_CHANNEL, True,
              {"enum": list(CHANNELS)}, "web, mobile or pos"),
    FieldSpec("country", str, "string", Reason.INVALID_COUNTRY, True,
              {"type": "string", "enum": sorted(COUNTRY_CODES)}, "ISO 3166-1 alpha-2"),
    FieldSpec("payment_method", PaymentMethod, "string", Reason.INVALID_PAYMENT_METHOD, True,
              {"enum": list(PAYMENT_METHODS)}, "card, wallet or bank_transfer"),
    FieldSpec("risk_score", RiskScore | None, "double", Reason.INVALID_RISK_SCORE, False,
              {"type": ["number", "null"], "minimum": 0, "maximum": 1}, "0..1 or null; optional"),
)
FIELD_NAMES: Final = tuple(spec.name for spec in FIELDS)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a schema-v1 event, derived from the contract table."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "DataForge transaction event, schema v1",
        "type": "object",
        "required": [spec.name for spec in FIELDS if spec.required],
        "properties": {spec.name: {**spec.json_schema, "description": spec.description} for spec in FIELDS},
        "additionalProperties": True,
    }


# --- the validator -------------------------------------------------------------------------------


# The amount forms the typed decode can bound in C; text amounts and float precision are checked
# after the decode, and a record outside these bounds goes to ``diagnose``.
_DecodedAmount = (
    str
    | Annotated[int, msgspec.Meta(gt=0, lt=_INT_AMOUNT_LIMIT)]
    | Annotated[float, msgspec.Meta(gt=0.0, lt=FLOAT_AMOUNT_LIMIT)]
)


def _closed_event_type(currencies: frozenset[str]) -> type[TransactionEvent]:
    """``TransactionEvent`` with every rule the typed decode can check in C: ``currency`` and
    ``country`` closed to their code lists, ``schema_version`` fixed to 1, amount numbers bounded, a
    decline reason non-empty. A record outside them goes to ``diagnose``, which names the rule
    (``invalid_currency``/``unknown_currency``/``invalid_country``/...)."""
    if not currencies:
        return TransactionEvent
    closed = msgspec.defstruct(
        "ValidatedEvent",
        [
            ("schema_version", Literal[SCHEMA_VERSION]),
            ("amount", _DecodedAmount),
            ("currency", Literal[tuple(sorted(currencies))]),
            ("decline_reason", Annotated[str, msgspec.Meta(min_length=1)] | None),
            ("country", Literal[tuple(sorted(COUNTRY_CODES))]),
        ],
        bases=(TransactionEvent,), frozen=True, gc=False, module=__name__,
    )
    return cast(type[TransactionEvent], closed)


def _field_probe(spec: FieldSpec) -> type[msgspec.Struct]:
    """A struct of one contract field, for ``diagnose``: converting a whole decoded object to it checks
    that one field (present, right type) in C, and its error message names the field."""
    field: tuple[str, Any] | tuple[str, Any, Any] = (
        (spec.name, spec.decode_type) if spec.required else (spec.name, spec.decode_type, None)
    )
    return msgspec.defstruct(f"_Probe_{spec.name}", [field], gc=False, module=__name__)


# A field's rule beyond its type: (its value, the whole object, the future horizon, the known
# currencies) -> the reason it breaks, or None.
_FieldRule = Callable[[Any, dict[str, Any], datetime, Collection[str]], "Reason | None"]


def _decline_rule(value: Any, obj: dict[str, Any], _horizon: datetime, _known: Collection[str]) -> Reason | None:
    status = obj.get("status")
    return check_decline_reason(status, value) if isinstance(status, str) else None


# The fields that have a rule beyond their type; ``_walk`` applies only these.
_FIELD_RULES: Final[dict[str, _FieldRule]] = {
    "schema_version": lambda value, _obj, _horizon, _known: check_schema_version(value),
    "event_time": lambda value, _obj, horizon, _known: Reason.EVENT_TIME_IN_FUTURE if value > horizon else None,
    "amount": lambda value, _obj, _horizon, _known: check_amount(value),
    "currency": lambda value, _obj, _horizon, known: check_currency(value, known),
    "decline_reason": _decline_rule,
    "country": lambda value, _obj, _horizon, _known: None if value in COUNTRY_CODES else Reason.INVALID_COUNTRY,
}
_PROBES: Final = tuple((spec, _field_probe(spec), _FIELD_RULES.get(spec.name)) for spec in FIELDS)
# The fields whose rule needs the decoded value, not the JSON one (a datetime, not its text).
_PROBED_ALWAYS: Final = frozenset({"event_time"})
# The field a msgspec ValidationError names: "... - at `$.amount`" or "Object missing required field `x`".
# (``match`` with a leading ``.*``: one backtrack from the end, not a ``search`` from every position.)
_ERROR_FIELD: Final = re.compile(r".*- at `\$\.(\w+)`$|Object missing required field `(\w+)`", re.DOTALL)


# --- JSON the decoders cannot take as it is ------------------------------------------------------

# A JSON string, or an unterminated one up to the end: the brackets in it do not nest. (No two
# branches start alike, so the match never backtracks: linear in the input.)
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP: Final = tuple(1 if b in b"[{" else -1 for b in range(256))  # (looked up for brackets only)


def _nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (exact for valid JSON; C loops only)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _too_deep(raw: bytes | str) -> Rejection | None:
    """``invalid_json`` for a record nested deeper than ``MAX_JSON_DEPTH``, checked before any decode.
    A flat record (every real event: no ``[``, no ``{`` but the first) costs two ``memchr`` scans."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.find(b"[") < 0 and raw.find(b"{", 1) < 0:
        return None
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return None
    if _nesting_depth(raw) <= MAX_JSON_DEPTH:
        return None
    return Rejection(Reason.INVALID_JSON, None,
                     f"JSON nested deeper than {MAX_JSON_DEPTH} levels (the contract's limit)")


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """Stands in, in ``diagnose``'s object, for a value the JSON grammar allows but the decoder cannot
    represent (a number beyond the float range such as ``1e400``, an integer of more than 4,300
    digits), so that the field holding it gets that field's reason, as any value of a wrong type does."""

    text: bytes
    error: str

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 40 else self.text[:20] + b"..." + self.text[-10:]
        return f"{shown.decode(errors='replace')} ({self.error})"


_check_syntax: Final = msgspec.json.Decoder(msgspec.Raw).decode  # (skips values: converts no number)
_decode_members: Final = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode


def _decode_member_by_member(raw: bytes | str) -> dict[str, Any] | Rejection:
    """The object of a record whose untyped decode failed on a value out of the decoder's range: each
    member decoded on its own, the unreadable ones kept as ``_Unreadable``. (The failed decode stopped
    at that value, so the syntax and UTF-8 of the rest are checked here first.)"""
    try:
        _check_syntax(raw)
    except msgspec.DecodeError as exc:
        return Rejection(Reason.INVALID_JSON, None, f"not valid JSON: {exc}")
    if not isinstance(raw, str) and not raw.isascii():  # (skipped strings are not checked)
        try:
            raw.decode()
        except UnicodeDecodeError as exc:
            return Rejection(Reason.INVALID_JSON, None, f"not valid UTF-8: {exc}")
    try:
        members = _decode_members(raw)
    except msgspec.ValidationError as exc:
        return Rejection(Reason.NOT_AN_OBJECT, None, f"expected a JSON object: {exc}")
    except msgspec.DecodeError as exc:  # (defensive: the syntax was checked)
        return Rejection(Reason.INVALID_JSON, None, f"not valid JSON: {exc}")
    obj: dict[str, Any] = {}
    for name, member in members.items():
        try:
            obj[name] = msgspec.json.decode(member)
        except msgspec.ValidationError as exc:
            obj[name] = _Unreadable(bytes(member), str(exc))
        except msgspec.DecodeError as exc:  # (defensive: the member decode checked its syntax)
            return Rejection(Reason.INVALID_JSON, None, f"not valid JSON: {exc}")
    return obj


def _decode_untyped(raw: bytes | str) -> object:
    """``diagnose``'s untyped reading of a record, or the ``invalid_json`` rejection of one that is
    not JSON the contract reads (too deep, bad syntax, bad UTF-8)."""
    too_deep = _too_deep(raw)
    if too_deep is not None:
        return too_deep
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:  # a value beyond the decoder's range (1e400): member by member
        return _decode_member_by_member(raw)
    except msgspec.DecodeError as exc:
        return Rejection(Reason.INVALID_JSON, None, f"not valid JSON: {exc}")
    except UnicodeError as exc:
        return Rejection(Reason.INVALID_JSON, None, f"not valid UTF-8: {exc}")
    except RecursionError:  # (only when the caller's own stack is nearly exhausted)
        return Rejection(Reason.INVALID_JSON, None, "JSON nested deeper than the decoder can go here")


def _newer_version(version: Any) -> bool:
    """Whether a ``schema_version`` value is an integer above the supported one."""
    if isinstance(version, _Unreadable):
        return version.text.isdigit()  # a positive integer too long to decode
    return isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION


def _utcnow() -> datetime:
    return datetime.now(UTC)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_encode_json: Final = msgspec.json.Encoder().encode


def epoch_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_epoch_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# What ``Validator.admit`` gives for a valid record: (canonical event id as bytes, event time in
# epoch microseconds): all a landing processor needs to write the bronze line and the lag metric.
Admitted = tuple[bytes, int]


class Validator:
    """Validates raw event bytes against schema v1.

    ``currencies`` is the set of codes in the FX reference table (``dataforge.reference``);
    ``clock`` gives "now" for the future-time rule (inject a fixed one in tests).
    """

    __slots__ = ("_admit_fast", "_clock", "_currencies", "_decoder", "_horizon")

    def __init__(self, currencies: Collection[str], *, clock: Callable[[], datetime] = _utcnow,
                 native: bool = True) -> None:
        """``native=False`` leaves the compiled fast path out (tests compare both paths with it)."""
        self._currencies = frozenset(currencies)
        self._clock = clock
        self._decoder = msgspec.json.Decoder(_closed_event_type(self._currencies))
        fast = FastPath(sorted(self._currencies), sorted(COUNTRY_CODES)) if native and FastPath is not None else None
        self._admit_fast: Callable[[bytes, int], Admitted | None] | None = None if fast is None else fast.admit
        self._horizon = (0, _EPOCH)  # the last horizon admit was given, as epoch µs and as a datetime

    @property
    def native(self) -> bool:
        """Whether ``admit`` uses the compiled fast path."""
        return self._admit_fast is not None

    def horizon(self) -> datetime:
        """Latest acceptable ``event_time``; compute once per batch and pass to ``validate``."""
        return self._clock() + MAX_FUTURE_SKEW

    def validate(self, raw: bytes | str, horizon: datetime | None = None) -> TransactionEvent | Rejection:
        """The validated event, or the first rule it breaks (in contract order), for one record.

        This is the hot path of every landing processor: one typed decode checks every rule it can
        express in C; the few it cannot (future time, decline reason by status, the amount's text
        form) follow as plain compares. Any failure is explained by ``_explain`` or ``diagnose``,
        which apply the per-field rule functions; property tests and a fuzz target keep the paths in
        agreement with each other and with a naive reading of the contract. No input makes it raise.
        """
        if horizon is None:
            horizon = self.horizon()
        try:
            event = self._decoder.decode(raw)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            return self._judge(raw, horizon)  # (UnicodeError: bad UTF-8 in a string, a lone surrogate in a str)
        if isinstance(raw, str) or 91 in raw or 123 in raw[1:] or not raw.isascii():
            # A nested member (91 is "[", 123 a second "{") or a non-ASCII byte: the typed decode skips
            # unknown members unchecked, so their depth and UTF-8 are checked here (not for a flat
            # ASCII record: every real event; the test above is four C scans of its bytes).
            too_deep = _too_deep(raw)
            if too_deep is not None:
                return too_deep
            if not isinstance(raw, str) and not raw.isascii():
                try:
                    raw.decode()
                except UnicodeDecodeError:
                    return self._judge(raw, horizon)
        amount = event.amount
        if (
            event.event_time <= horizon
            and (event.status == "declined") is (event.decline_reason is not None)
            and (amount.__class__ is int or _common_amount(str(amount)) is not None)
        ):
            return event
        return self._explain(event, horizon)

    def admit(self, raw: bytes | str, horizon_us: int) -> Admitted | Rejection:
        """The landing processors' hot path: ``(canonical event id, event time in epoch µs)`` of a
        valid record, or the ``Rejection`` that ``validate`` gives it; ``horizon_us`` is the latest
        acceptable event time (``epoch_us(horizon())``, once per batch).

        The compiled fast path accepts the common form of a valid event; whatever it does not accept
        (an invalid record, or a valid one in a rarer form: a float amount, an escaped string, ...)
        goes through ``validate``, which decides and names the rule.
        """
        fast = self._admit_fast
        if fast is not None and raw.__class__ is bytes:
            admitted = fast(raw, horizon_us)
            if admitted is not None:
                return admitted
        if horizon_us != self._horizon[0]:  # (one horizon per batch: convert it once)
            self._horizon = (horizon_us, from_epoch_us(horizon_us))
        result = self.validate(raw, self._horizon[1])
        if result.__class__ is Rejection:
            return result
        event = cast(TransactionEvent, result)
        return _encode_json(event.event_id)[1:-1], epoch_us(event.event_time)  # (the id's canonical text)

    def validate_many(self, raws: Iterable[bytes | str]) -> Iterator[TransactionEvent | Rejection]:
        horizon = self.horizon()
        for raw in raws:
            yield self.validate(raw, horizon)

    def _explain(self, event: TransactionEvent, horizon: datetime) -> TransactionEvent | Rejection:
        """Apply the per-field rules a typed decode cannot express, in contract order."""
        reason = check_schema_version(event.schema_version)
        if reason is not None:
            return self._reject(reason, "schema_version", event)
        if event.event_time > horizon:
            return Rejection(Reason.EVENT_TIME_IN_FUTURE, "event_time",
                             f"event_time {event.event_time.isoformat()} is after {horizon.isoformat()}")
        reason = check_amount(event.amount)
        if reason is not None:
            return self._reject(reason, "amount", event)
        reason = check_currency(event.currency, self._currencies)
        if reason is not None:
            return self._reject(reason, "currency", event)
        reason = check_decline_reason(event.status, event.decline_reason)
        if reason is not None:
            return self._reject(reason, "decline_reason", event)
        if event.country not in COUNTRY_CODES:
            return self._reject(Reason.INVALID_COUNTRY, "country", event)
        return event  # a float amount that passed check_amount: valid

    @staticmethod
    def _reject(reason: Reason, field: str, event: TransactionEvent) -> Rejection:
        return Rejection(reason, field, f"{field}={getattr(event, field)!r} breaks rule {reason}")

    def diagnose(self, raw: bytes | str, horizon: datetime | None = None) -> Rejection | None:
        """The slow path: name the first rule (in contract order) a record breaks; ``None`` if none.

        ``validate`` takes this path (``_judge``) only for records that failed the typed decode (with
        its horizon); tests call it to check that both paths agree. One untyped decode, then one
        C-level conversion to the open ``TransactionEvent`` (every type rule at once). If that passes,
        the rules a type cannot express decide (``_explain``). If it fails, msgspec names the field it
        stopped at; it checked the object's fields in their order, so every field before that one is
        well typed, and only the fields after it that come earlier in the contract still need a type
        check (``_walk``).
        """
        result = self._judge(raw, self.horizon() if horizon is None else horizon)
        return result if isinstance(result, Rejection) else None

    def _judge(self, raw: bytes | str, horizon: datetime) -> TransactionEvent | Rejection:
        """``diagnose``'s verdict, with the (open) event of a valid record. A record the typed decode
        refused is valid here only if it repeats a field whose first value is wrongly typed: like the
        typed decode, this reading keeps the last value of a repeated member."""
        obj = _decode_untyped(raw)
        if isinstance(obj, Rejection):
            return obj
        if not isinstance(obj, dict):
            return Rejection(Reason.NOT_AN_OBJECT, None, f"expected a JSON object, got {type(obj).__name__}")
        version = obj.get("schema_version")
        if _newer_version(version):
            return Rejection(Reason.UNSUPPORTED_SCHEMA_VERSION, "schema_version",
                             f"schema_version {version!r} is newer than the supported {SCHEMA_VERSION}")
        try:
            event = msgspec.convert(obj, TransactionEvent)
        except msgspec.ValidationError as exc:
            return self._walk(obj, horizon, exc)
        return self._explain(event, horizon)

    def _walk(self, obj: dict[str, Any], horizon: datetime, error: msgspec.ValidationError) -> Rejection:
        """Field by field in contract order, for an object whose conversion failed with ``error``."""
        message = str(error)
        match = _ERROR_FIELD.match(message)
        failed = match.group(1) or match.group(2) if match else None
        keys = list(obj)
        # The fields msgspec accepted before it stopped (all present ones for a missing field).
        typed = set(keys[: keys.index(failed)] if failed in obj else keys) if failed else set()
        for spec, probe, rule in _PROBES:
            name = spec.name
            unreadable = obj.get(name)
            if isinstance(unreadable, _Unreadable):
                return Rejection(spec.invalid, name, f"{name}={unreadable!r}")
            if name == failed:
                return Rejection(Reason.MISSING_FIELD if name not in obj else spec.invalid, name, message)
            if name not in obj:
                if spec.required:
                    return Rejection(Reason.MISSING_FIELD, name, f"required field {name!r} is missing")
                continue
            if name in typed and name not in _PROBED_ALWAYS:  # (the open types keep these as decoded)
                value = obj[name]
            else:
                try:
                    value = getattr(msgspec.convert(obj, probe), name)
                except msgspec.ValidationError as exc:
                    return Rejection(spec.invalid, name, str(exc))
            if rule is None:
                continue
            reason = rule(value, obj, horizon, self._currencies)
            if reason is not None:
                return Rejection(reason, name, f"{name}={obj[name]!r} breaks rule {reason}")
        return Rejection(Reason.INVALID_JSON, None, f"not a schema-v1 event: {message}")  # (defensive)

