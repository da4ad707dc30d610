"""Regenerate the sample events in this folder (deterministic; rerun after a contract change).

    .venv/bin/python data/samples/make_samples.py

Writes ``transaction_event.json`` (one valid schema-v1 event), ``invalid/<reason>.json`` (one record
per reason the record validator can give, each breaking only that rule), and the batch files
``batch/transactions.jsonl``, ``batch/transactions.csv`` plus ``batch/expected.json`` (what landing
must make of them). Every file is checked against ``dataforge.contract.Validator`` before it is kept.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from dataforge.contract import FIELD_NAMES, Reason, Rejection, Validator
from dataforge.reference import load_fx, load_merchants
from devkit.generator import RECORD_REASONS, GeneratorConfig, generate_events

log = logging.getLogger("make_samples")

HERE: Final = Path(__file__).resolve().parent
REFERENCE: Final = HERE.parent / "reference"

VALID: Final[dict[str, Any]] = {
    "event_id": "3f6d2c8a-91b4-4e57-a0c3-5d7e2b9f1a64",
    "event_type": "payment",
    "schema_version": 1,
    "event_time": "2026-11-03T14:25:31.120Z",
    "transaction_id": "txn_8c41e0f27b9d5a36",
    "account_id": "acc_us10004217",
    "merchant_id": "mrc_0027",
    "amount": "129.99",
    "currency": "USD",
    "status": "approved",
    "decline_reason": None,
    "channel": "web",
    "country": "US",
    "payment_method": "card",
    "risk_score": 0.0731,
}

# reason -> the fields that change (a field set to ... is removed); each breaks exactly one rule
BROKEN: Final[dict[Reason, dict[str, Any]]] = {
    Reason.MISSING_FIELD: {"transaction_id": ...},
    Reason.UNSUPPORTED_SCHEMA_VERSION: {"schema_version": 2},
    Reason.INVALID_SCHEMA_VERSION: {"schema_version": 0},
    Reason.INVALID_EVENT_ID: {"event_id": "evt-20261103-000042"},
    Reason.INVALID_EVENT_TYPE: {"event_type": "chargeback"},
    Reason.INVALID_EVENT_TIME: {"event_time": "2026-11-03 14:25:31"},  # no UTC offset
    Reason.EVENT_TIME_IN_FUTURE: {"event_time": "2099-11-03T14:25:31.120Z"},
    Reason.INVALID_TRANSACTION_ID: {"transaction_id": ""},
    Reason.INVALID_ACCOUNT_ID: {"account_id": "acc_" + "0" * 61},  # 65 chars, limit is 64
    Reason.INVALID_MERCHANT_ID: {"merchant_id": ""},
    Reason.INVALID_AMOUNT: {"amount": "129,99"},
    Reason.NON_POSITIVE_AMOUNT: {"amount": "-129.99"},
    Reason.AMOUNT_PRECISION: {"amount": "129.999"},
    Reason.INVALID_CURRENCY: {"currency": "usd"},
    Reason.UNKNOWN_CURRENCY: {"currency": "ZAR"},  # valid ISO 4217, not in the FX table
    Reason.INVALID_STATUS: {"status": "pending"},
    Reason.INVALID_DECLINE_REASON: {"status": "declined", "decline_reason": 51},  # ISO 8583 code
    Reason.MISSING_DECLINE_REASON: {"status": "declined", "decline_reason": None},
    Reason.UNEXPECTED_DECLINE_REASON: {"decline_reason": "do_not_honor"},
    Reason.INVALID_CHANNEL: {"channel": "atm"},
    Reason.INVALID_COUNTRY: {"country": "UK"},  # GB is the ISO 3166-1 code
    Reason.INVALID_PAYMENT_METHOD: {"payment_method": "crypto"},
    Reason.INVALID_RISK_SCORE: {"risk_score": 1.7},
}

BATCH_CONFIG: Final = GeneratorConfig(
    count=50, seed=11, start=datetime(2026, 11, 3, tzinfo=UTC), end=datetime(2026, 11, 4, tzinfo=UTC),
    invalid_fraction=0.08, duplicate_fraction=0.03, number_amount_fraction=0.1,
)
CSV_CONFIG: Final = GeneratorConfig(
    count=20, seed=12, start=datetime(2026, 11, 4, tzinfo=UTC), end=datetime(2026, 11, 5, tzinfo=UTC),
    number_amount_fraction=0.0,
)


def _pretty(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def invalid_samples() -> dict[Reason, bytes]:
    """One file body per record-level reason."""
    pretty = _pretty(VALID)
    samples = {
        Reason.INVALID_JSON: b"\n".join(pretty.splitlines()[:8]) + b"\n",  # cut off mid-object
        Reason.NOT_AN_OBJECT: _pretty([VALID]),
    }
    for reason, changes in BROKEN.items():
        record = copy.deepcopy(VALID)
        for name, value in changes.items():
            if value is ...:
                del record[name]
            else:
                record[name] = value
        samples[reason] = _pretty(record)
    missing = set(RECORD_REASONS) - set(samples)
    if missing:
        raise SystemExit(f"no sample for reasons {sorted(missing)}: add them to BROKEN")
    return samples


def _csv_rows(values: list[bytes]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELD_NAMES)
    for value in values:
        record = json.loads(value)
        writer.writerow(["" if record.get(name) is None else record[name] for name in FIELD_NAMES])
    return out.getvalue()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fx = load_fx(REFERENCE)
    merchants = load_merchants(REFERENCE)
    validator = Validator(fx.currencies)

    (HERE / "transaction_event.json").write_bytes(_pretty(VALID))
    if isinstance(validator.validate(_pretty(VALID)), Rejection):
        raise SystemExit("the valid sample does not validate")
    (HERE / "invalid").mkdir(exist_ok=True)
    for reason, body in invalid_samples().items():
        got = validator.validate(body)
        if not isinstance(got, Rejection) or got.reason is not reason:
            raise SystemExit(f"invalid/{reason}.json: expected {reason}, validator says {got}")
        (HERE / "invalid" / f"{reason.value}.json").write_bytes(body)

    batch = HERE / "batch"
    batch.mkdir(exist_ok=True)
    events = list(generate_events(BATCH_CONFIG, merchants=merchants, fx=fx))
    (batch / "transactions.jsonl").write_bytes(b"".join(e.value + b"\n" for e in events))
    rows = [e for e in generate_events(CSV_CONFIG, merchants=merchants, fx=fx) if e.expected_reason is None]
    (batch / "transactions.csv").write_text(_csv_rows([e.value for e in rows]), encoding="utf-8")
    reasons = Counter(str(e.expected_reason) for e in events if e.expected_reason is not None)
    expected = {
        "transactions.jsonl": {
            "records": len(events),
            "valid": sum(e.expected_reason is None for e in events),
            "duplicates": sum(e.is_duplicate for e in events),
            "quarantined": dict(sorted(reasons.items())),
            "line_reasons": {str(n): str(e.expected_reason) for n, e in enumerate(events, start=1)
                             if e.expected_reason is not None},
        },
        "transactions.csv": {"records": len(rows), "valid": len(rows), "duplicates": 0, "quarantined": {}},
    }
    (batch / "expected.json").write_bytes(_pretty(expected))
    log.info("samples written under %s (%d batch records, %s)", HERE, len(events), dict(reasons))


if __name__ == "__main__":
    main()
