"""Poison records and damaged batch files for the data chaos experiments, each with what the contract
says must become of it.

``poison_records`` builds one record of every class the hardening issue (14) names, and of the other
rules the contract tests break (ARCHITECTURE.md, "Data contract"), from a valid event: bytes that are
not JSON (cut mid-record, a Python repr, empty), JSON nested 1,000 levels deep (in an unknown member and
in the amount), amounts beyond every range (a 30-digit text amount with and without a third fraction
digit, the number ``1e400``, an integer of 5,000 digits), bytes that are not UTF-8, a lone surrogate (raw
and escaped), a repeated member whose last value breaks a rule, values of the wrong type, a missing
field, an unknown currency, JSON that is not an object, a time far in the future and a newer schema
version. Each carries the ``Reason`` (and field) the contract gives it, written here from the contract's
rules, not read back from the validator (``tests/chaos/test_data_faults.py`` checks the validator
agrees, then that the landing step quarantined each with exactly that reason).
``borderline_valid`` builds records that look poisonous but are valid (a number beyond the decoder in
an unknown member, nesting at the contract's limit): they must reach silver like any other event.

``batch_files`` builds the damaged batch files of experiment 7, each with its expected fate
(``docs/ingestion.md``, ``lambdas/common/file_landing.py``): a corrupt gzip, a truncated gzip, a CSV
with a ragged row and a file with a line over ``MAX_LINE_BYTES`` are quarantined whole as
``malformed_file`` (nothing of them reaches bronze); a plain JSON-lines file cut mid-record and one with
garbage lines are landed record by record (the bad lines quarantined with their reasons).
``write_oversized`` writes a large gzip file (hundreds of MB decompressed) ending in an over-long line,
to measure the landing process's memory on it.
"""

from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from dataforge.contract import MAX_JSON_DEPTH, Reason
from devkit.generator import GeneratedEvent

_encode: Final = msgspec.json.encode
_decode: Final = msgspec.json.decode


@dataclass(frozen=True, slots=True)
class Poison:
    """One record and the verdict the contract gives it (``reason`` None: valid)."""

    name: str
    key: bytes
    value: bytes
    reason: Reason | None
    field: str | None = None
    event_id: str | None = None  # set for a valid record

    def as_generated(self) -> GeneratedEvent:
        """The record as a generator item, for a producer and the harness's expectations."""
        return GeneratedEvent(self.key, self.value, self.event_id, self.reason)


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _member(record: Mapping[str, Any], name: str, raw: bytes) -> bytes:
    """``record`` encoded with member ``name`` replaced (or added) by the raw JSON text ``raw``."""
    marker = "\x00poison\x00"
    text = _encode({**record, name: marker})
    return text.replace(_encode(marker), raw)


def _fresh(base: Mapping[str, Any], rng: random.Random, **changes: Any) -> dict[str, Any]:
    """``base`` with a new event id and transaction id (no poison shares an id with another record)."""
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return {**base, "event_id": event_id, "transaction_id": f"txn_poison_{event_id[:8]}", **changes}


def poison_records(base: Mapping[str, Any], *, seed: int = 19) -> list[Poison]:
    """One record of every poison class, built from the valid event ``base`` (a decoded event whose
    currency is in the FX table and whose time is not in the future)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    key = str(base["account_id"]).encode()

    def one(name: str, value: bytes, reason: Reason, field_: str | None = None) -> Poison:
        return Poison(name, key, value, reason, field_)

    line = _encode(_fresh(base, rng))
    out = [
        one("truncated_json", line[: len(line) // 2], Reason.INVALID_JSON),
        one("python_repr", repr(_fresh(base, rng)).encode(), Reason.INVALID_JSON),
        one("empty_value", b"", Reason.INVALID_JSON),
        one("deep_in_unknown_member", _member(_fresh(base, rng), "extra", _deep(1000)), Reason.INVALID_JSON),
        one("deep_amount", _member(_fresh(base, rng), "amount", _deep(1000)), Reason.INVALID_JSON),
        one("deep_object", b'{"a":' * 1000 + b"1" + b"}" * 1000, Reason.INVALID_JSON),
        one("huge_text_amount_3_fraction_digits", _encode(_fresh(base, rng, amount="9" * 30 + ".123")),
            Reason.AMOUNT_PRECISION, "amount"),
        one("huge_text_amount", _encode(_fresh(base, rng, amount="9" * 30)), Reason.INVALID_AMOUNT, "amount"),
        one("number_amount_1e400", _member(_fresh(base, rng), "amount", b"1e400"), Reason.INVALID_AMOUNT, "amount"),
        one("integer_amount_5000_digits", _member(_fresh(base, rng), "amount", b"9" * 5000),
            Reason.INVALID_AMOUNT, "amount"),
        one("not_utf8", _encode(_fresh(base, rng, channel="w\x00b")).replace(b"\\u0000", b"\xff"),
            Reason.INVALID_JSON),
        one("raw_lone_surrogate", _member(_fresh(base, rng), "extra", b'"\xed\xa0\x80"'), Reason.INVALID_JSON),
        one("escaped_lone_surrogate", _member(_fresh(base, rng), "channel", b'"\\ud800"'), Reason.INVALID_JSON),
        one("repeated_member_last_breaks", _encode(_fresh(base, rng))[:-1] + b',"amount":"-1.00"}',
            Reason.NON_POSITIVE_AMOUNT, "amount"),
        one("amount_wrong_type", _encode(_fresh(base, rng, amount={"value": "1.00"})), Reason.INVALID_AMOUNT, "amount"),
        one("event_type_wrong_type", _encode(_fresh(base, rng, event_type=1)), Reason.INVALID_EVENT_TYPE,
            "event_type"),
        one("risk_score_wrong_type", _encode(_fresh(base, rng, risk_score="low")), Reason.INVALID_RISK_SCORE,
            "risk_score"),
        one("missing_currency", _encode({k: v for k, v in _fresh(base, rng).items() if k != "currency"}),
            Reason.MISSING_FIELD, "currency"),
        one("unknown_currency", _encode(_fresh(base, rng, currency="XTS")), Reason.UNKNOWN_CURRENCY, "currency"),
        one("not_an_object", _encode([_fresh(base, rng)]), Reason.NOT_AN_OBJECT),
        one("double_encoded", _encode(_encode(_fresh(base, rng)).decode()), Reason.NOT_AN_OBJECT),
        one("far_future", _encode(_fresh(base, rng, event_time="2999-01-01T00:00:00Z")),
            Reason.EVENT_TIME_IN_FUTURE, "event_time"),
        one("newer_schema_version", _encode(_fresh(base, rng, schema_version=2)),
            Reason.UNSUPPORTED_SCHEMA_VERSION, "schema_version"),
    ]
    return out


def borderline_valid(base: Mapping[str, Any], *, seed: int = 20) -> list[Poison]:
    """Valid records that look like poison: they must land and reach silver like any other event."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    key = str(base["account_id"]).encode()
    out = []
    for name, member, raw in (("1e400_in_unknown_member", "big", b"1e400"),
                              ("nesting_at_the_limit", "extra", _deep(MAX_JSON_DEPTH - 1))):
        record = _fresh(base, rng)
        out.append(Poison(name, key, _member(record, member, raw), None, None, record["event_id"]))
    return out


@dataclass(frozen=True, slots=True)
class BatchFile:
    """A damaged batch file and its fate: quarantined whole (``malformed``) or record by record, in
    which case ``records`` lists every record's expected verdict in file order."""

    name: str
    key_suffix: str  # the landing key's file name part (its extension picks the format)
    body: bytes
    malformed: bool
    records: tuple[Poison, ...] = field(default_factory=tuple)


def _valid(base: Mapping[str, Any], rng: random.Random, n: int) -> list[Poison]:
    out = []
    for _ in range(n):
        record = _fresh(base, rng)
        out.append(Poison("valid", str(base["account_id"]).encode(), _encode(record), None, None,
                          record["event_id"]))
    return out


def _jsonl(records: Sequence[Poison]) -> bytes:
    return b"".join(r.value + b"\n" for r in records)


def batch_files(base: Mapping[str, Any], *, seed: int = 21, per_file: int = 20) -> list[BatchFile]:
    """The damaged batch files of experiment 7 (see the module docstring)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    files = []
    body = gzip.compress(_jsonl(_valid(base, rng, per_file)), mtime=0)
    middle = len(body) // 2
    corrupt = body[:middle] + bytes(b ^ 0x5A for b in body[middle:middle + 64]) + body[middle + 64:]
    files.append(BatchFile("corrupt_gzip", "corrupt.jsonl.gz", corrupt, True))
    body = gzip.compress(_jsonl(_valid(base, rng, per_file)), mtime=0)
    files.append(BatchFile("truncated_gzip", "truncated.jsonl.gz", body[: len(body) * 2 // 3], True))
    ragged = b"event_id,event_type\n1,payment,extra\n"
    files.append(BatchFile("ragged_csv", "ragged.csv", ragged, True))
    over = _valid(base, rng, 3)
    long_line = _member(_fresh(base, rng), "padding", b'"' + b"x" * (2 * 1024 * 1024) + b'"')
    files.append(BatchFile("over_long_line", "long-line.jsonl", _jsonl(over) + long_line + b"\n", True))
    # A plain file cut mid-record: the records before the cut land, the cut one is invalid JSON.
    kept = _valid(base, rng, per_file)
    cut_line = _encode(_fresh(base, rng))
    cut = Poison("cut_record", kept[0].key, cut_line[: len(cut_line) // 3], Reason.INVALID_JSON)
    files.append(BatchFile("truncated_jsonl", "truncated.jsonl", _jsonl(kept) + cut.value, False, (*kept, cut)))
    # Garbage lines between valid ones: each quarantined with its reason, the others landed.
    mixed: list[Poison] = []
    for valid, poison in zip(_valid(base, rng, 4), poison_records(base, seed=seed + 1)[:4], strict=True):
        mixed += [valid, poison]
    mixed = [m for m in mixed if m.value.strip()]  # (a blank line is not a record)
    files.append(BatchFile("garbage_lines", "garbage.jsonl", _jsonl(mixed), False, tuple(mixed)))
    return files


def write_oversized(path: Path, base: Mapping[str, Any], *, decompressed_bytes: int) -> int:
    """Write a gzip JSON-lines file of about ``decompressed_bytes`` (copies of one valid record; fast
    gzip level 1) whose last line is over ``MAX_LINE_BYTES``, so the landing reads all of it and then
    quarantines it whole; returns the decompressed size written."""
    rng = random.Random(22)  # noqa: S311 - synthetic data, not security
    line = _encode(_fresh(base, rng)) + b"\n"
    block = line * max(1, (4 * 1024 * 1024) // len(line))
    written = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
        sink: IO[bytes] = out  # type: ignore[assignment]
        while written < decompressed_bytes:
            sink.write(block)
            written += len(block)
        tail = _member(_fresh(base, rng), "padding", b'"' + b"y" * (2 * 1024 * 1024) + b'"') + b"\n"
        sink.write(tail)
        written += len(tail)
    return written


def decoded(event: GeneratedEvent) -> dict[str, Any]:
    """A generated valid event as a dict (the base ``poison_records`` builds from)."""
    value = _decode(event.value)
    if not isinstance(value, dict):
        raise ValueError("expected a generated event object")
    return value
