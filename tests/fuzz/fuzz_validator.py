"""Coverage-guided fuzz target of the record validator (atheris, libFuzzer).

    .venv/bin/python tests/fuzz/fuzz_validator.py -max_total_time=600 .cache/fuzz/fuzz_validator

Each input becomes one record, by the first byte's choice: the raw bytes; a sample record (the
committed samples, valid and invalid, seeded into the corpus directory on start) with JSON fragments
inserted or substituted; or a record assembled from JSON fragments (contract members, deep brackets,
numbers beyond the float and integer ranges, escapes, lone surrogates, bytes that are not UTF-8).
``Validator.admit`` (compiled fast path on and off), ``validate`` and ``diagnose`` must all return
and agree on it (``tests.fixtures.contract_agreement``); an exception escaping any of them, or a
disagreement (an ``AssertionError``), is a crash.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["dataforge"]):
    from dataforge.contract import FIELD_NAMES, MAX_JSON_DEPTH, Validator

from dataforge.reference import default_fx
from tests.fixtures.contract_agreement import assert_one_verdict
from tests.fuzz.seeds import seed_corpus

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
HORIZON = datetime(2026, 12, 31, tzinfo=UTC)
VALIDATORS = (Validator(default_fx().currencies, clock=lambda: HORIZON),
              Validator(default_fx().currencies, clock=lambda: HORIZON, native=False))
assert VALIDATORS[0].native, "dataforge_native is not installed: run `make setup`"


def _samples() -> list[bytes]:
    seeds = [(SAMPLES / "transaction_event.json").read_bytes()]
    seeds += [path.read_bytes() for path in sorted((SAMPLES / "invalid").glob("*.json"))]
    seeds += [line for line in (SAMPLES / "batch" / "transactions.jsonl").read_bytes().splitlines() if line]
    return seeds


SEEDS = _samples()
PIECES = [
    *(json.dumps(name).encode() for name in FIELD_NAMES), b'"extra"', b":", b",", b"{", b"}", b"[", b"]",
    b"[" * (MAX_JSON_DEPTH - 1), b"[" * MAX_JSON_DEPTH, b"]" * MAX_JSON_DEPTH, b'{"a":' * MAX_JSON_DEPTH,
    b"[" * 1000, b"null", b"true", b"false", b"0", b"-0", b"1", b"-1", b"0.01", b"1.005", b"1e2", b"1E-2", b"1e13",
    b"1e400", b"-1e999", b"1e-400", b"4.9e-324", b"1.7976931348623157e308", b"9" * 17, b"9" * 400, b"9" * 4301,
    b'"' + b"1" * 27 + b'.123"', b'"125.40"', b'"0.00"', b'"NaN"', b'"1e3"', b'" 1"', b"1.0", b"0.125",
    b'"2026-11-26T11:58:30.250+01:00"', b'"2026-11-26T11:58:30Z"', b'"2026-11-26T11:58:30-00:00"',
    b'"9999-12-31T23:59:59-23:59"', b'"0001-01-01T00:00:00+23:59"', b'"2026-02-29T00:00:00Z"',
    b'"6f1c2a9e-8d4b-4c3a-9e2f-1b7d5a0c4e21"', b'"6F1C2A9E8D4B4C3A9E2F1B7D5A0C4E21"', b'"payment"', b'"refund"',
    b'"approved"', b'"declined"', b'"web"', b'"pos"', b'"card"', b'"USD"', b'"EUR"', b'"CHF"', b'"US"', b'"DE"',
    b'"do_not_honor"', b'""', b'"\\ud800"', b'"\\udc00"', b'"\\u0000"', b'"\\"', b'"\\\\"', b'"\xed\xa0\x80"',
    b'"\xff"', b"\xc3", b"\xef\xbb\xbf", b" ", b"\n", b"\t", b"\r", b'"', b"\\", b"\x00",
]



def record(data: bytes) -> bytes:
    # The mode is the first byte, read directly: FuzzedDataProvider takes its integers from the end.
    mode = data[0] % 3 if data else 0
    if mode == 0:
        return data[1:]
    fdp = atheris.FuzzedDataProvider(data[1:])
    if mode == 1:
        base = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            at = fdp.ConsumeIntInRange(0, len(base))
            cut = fdp.ConsumeIntInRange(0, 40)
            fragment = fdp.PickValueInList(PIECES) if fdp.ConsumeBool() else fdp.ConsumeBytes(6)
            base = base[:at] + fragment + base[at + cut:]
        return base
    return b"".join(fdp.PickValueInList(PIECES) for _ in range(fdp.ConsumeIntInRange(1, 60)))


def test_one_input(data: bytes) -> None:
    raw = record(data)
    try:
        assert_one_verdict(VALIDATORS, raw, HORIZON)
    except AssertionError as failure:
        raise AssertionError(f"disagreement on {raw!r}: {failure}") from None


def main() -> None:
    seed_corpus(sys.argv, SEEDS)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
