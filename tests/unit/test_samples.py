"""The committed sample events and reference data keep their promises."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dataforge.contract import FIELD_NAMES, Reason, Rejection, TransactionEvent, Validator
from dataforge.iso import COUNTRY_CODES
from dataforge.reference import FxTable, Merchant, load_fx, load_merchants
from devkit.paths import project_root

DATA = project_root() / "data"
SAMPLES = DATA / "samples"
REFERENCE = DATA / "reference"
RECORD_REASONS = set(Reason) - {Reason.NO_FX_RATE, Reason.MALFORMED_FILE, Reason.VALIDATION_ERROR}
LATE_CURRENCY, LATE_START = "HUF", date(2026, 6, 1)
FX_FIRST, FX_LAST = date(2025, 1, 1), date(2026, 12, 31)


@pytest.fixture(scope="module")
def fx() -> FxTable:
    return load_fx(REFERENCE)


@pytest.fixture(scope="module")
def merchants() -> Mapping[str, Merchant]:
    return load_merchants(REFERENCE)


@pytest.fixture(scope="module")
def validator(fx: FxTable) -> Validator:
    return Validator(fx.currencies)


def _reason(result: TransactionEvent | Rejection) -> Reason | None:
    return result.reason if isinstance(result, Rejection) else None


# --- single events -------------------------------------------------------------------------------


def test_the_valid_sample_validates(validator: Validator, merchants: Mapping[str, Merchant], fx: FxTable) -> None:
    raw = (SAMPLES / "transaction_event.json").read_bytes()
    event = validator.validate(raw)
    assert isinstance(event, TransactionEvent), event
    assert list(json.loads(raw)) == list(FIELD_NAMES)  # every field, in contract order
    assert event.merchant_id in merchants
    assert event.event_time < datetime.now(UTC) - timedelta(days=1)
    assert fx.rate_on(event.currency, event.event_time.date()) is not None


def test_every_record_level_reason_has_one_invalid_sample() -> None:
    names = {path.stem for path in (SAMPLES / "invalid").glob("*.json")}
    assert names == {reason.value for reason in RECORD_REASONS}


@pytest.mark.parametrize("path", sorted((SAMPLES / "invalid").glob("*.json")), ids=lambda p: p.stem)
def test_each_invalid_sample_gets_exactly_its_reason(path: Path, validator: Validator) -> None:
    assert _reason(validator.validate(path.read_bytes())) is Reason(path.stem)


@pytest.mark.parametrize("path", sorted((SAMPLES / "invalid").glob("*.json")), ids=lambda p: p.stem)
def test_each_invalid_sample_breaks_only_one_field(path: Path) -> None:
    """Apart from the broken rule, the sample is the valid one (so it fails for one reason only)."""
    valid = json.loads((SAMPLES / "transaction_event.json").read_bytes())
    try:
        broken = json.loads(path.read_bytes())
    except ValueError:
        assert path.stem == Reason.INVALID_JSON
        return
    if not isinstance(broken, dict):
        assert path.stem == Reason.NOT_AN_OBJECT
        assert broken == [valid]
        return
    changed = {k for k in valid.keys() | broken.keys() if valid.get(k, ...) != broken.get(k, ...)}
    # one field, or a status turned "declined" together with its decline_reason
    assert len(changed) == 1 or changed == {"status", "decline_reason"}, changed


# --- batch files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / "batch" / "expected.json").read_bytes())
    return data


def test_jsonl_batch_matches_its_expectations(validator: Validator, expected: dict[str, Any]) -> None:
    lines = (SAMPLES / "batch" / "transactions.jsonl").read_bytes().splitlines()
    want = expected["transactions.jsonl"]
    assert 40 <= len(lines) == want["records"] <= 60
    results = [validator.validate(line) for line in lines]
    reasons = {str(n): str(_reason(r)) for n, r in enumerate(results, start=1) if isinstance(r, Rejection)}
    assert reasons == want["line_reasons"]
    assert dict(Counter(reasons.values())) == want["quarantined"]
    assert 2 <= len(reasons) <= 10  # a few invalid lines
    ids = Counter(r.canonical_event_id for r in results if isinstance(r, TransactionEvent))
    assert [n for n in ids.values() if n > 1] == [2]  # exactly one event_id appears twice
    assert sum(ids.values()) == want["valid"]


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the JSON record it stands for (empty cell -> null)."""
    record: dict[str, Any] = {name: (value if value != "" else None) for name, value in row.items()}
    record["schema_version"] = int(row["schema_version"])
    record["risk_score"] = float(row["risk_score"]) if row["risk_score"] else None
    return record


def test_csv_batch_has_the_contract_columns_and_valid_rows(validator: Validator, expected: dict[str, Any]) -> None:
    with (SAMPLES / "batch" / "transactions.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == FIELD_NAMES
        rows = list(reader)
    assert 15 <= len(rows) == expected["transactions.csv"]["records"] <= 30
    for row in rows:
        result = validator.validate(json.dumps(_csv_record(row)))
        assert isinstance(result, TransactionEvent), result


def test_batch_events_are_in_november_2026() -> None:
    lines = (SAMPLES / "batch" / "transactions.jsonl").read_bytes().splitlines()
    times = [m.group(1) for m in (re.search(rb'"event_time":"([^"]+)"', line) for line in lines) if m]
    assert times
    assert all(t.startswith(b"2026-11-") for t in times)


# --- reference data ------------------------------------------------------------------------------


def test_merchants_file(merchants: Mapping[str, Merchant]) -> None:
    assert 180 <= len(merchants) <= 220
    values = list(merchants.values())
    assert len({m.name for m in values}) == len(values)
    countries = Counter(m.country for m in values)
    assert len(countries) >= 18
    assert set(countries) <= COUNTRY_CODES
    assert {m.tier for m in values} == {"enterprise", "mid", "small"}
    assert all(re.fullmatch(r"[0-9]{4}", m.mcc) for m in values)
    assert len({m.category for m in values}) >= 12
    # one MCC per category
    assert all(len({m.mcc for m in values if m.category == c}) == 1 for c in {m.category for m in values})


def test_fx_rates_cover_two_years_daily_and_are_positive(fx: FxTable) -> None:
    assert len(fx.currencies) >= 14
    assert {"USD", "EUR", "GBP", "JPY", "INR", LATE_CURRENCY} <= fx.currencies
    days = (FX_LAST - FX_FIRST).days + 1
    per_currency = Counter(rate.currency for rate in fx.rates)
    for currency in fx.currencies - {LATE_CURRENCY}:
        assert per_currency[currency] == days, currency
    assert all(rate.usd_per_unit > 0 for rate in fx.rates)
    assert {rate.usd_per_unit for rate in fx.rates if rate.currency == "USD"} == {1}
    eur = [fx.rate_on("EUR", FX_FIRST + timedelta(days=d)) for d in range(0, days, 30)]
    assert all(r is not None and 0.8 < r < 1.4 for r in eur)  # plausible, not a runaway walk


def test_fx_rates_have_at_most_eight_decimals() -> None:
    with (REFERENCE / "fx_rates.csv").open(newline="", encoding="utf-8") as handle:
        rates = [row["usd_per_unit"] for row in csv.DictReader(handle)]
    assert all(len(rate.partition(".")[2]) <= 8 for rate in rates)


def test_the_late_currency_has_no_rate_before_its_start(fx: FxTable, validator: Validator) -> None:
    assert fx.rate_on(LATE_CURRENCY, LATE_START - timedelta(days=1)) is None
    assert fx.rate_on(LATE_CURRENCY, LATE_START) is not None
    assert fx.rate_on(LATE_CURRENCY, FX_LAST) is not None
    # the record validator accepts it (it is in the table): the miss surfaces at enrichment
    event = json.loads((SAMPLES / "transaction_event.json").read_bytes())
    event["currency"] = LATE_CURRENCY
    assert isinstance(validator.validate(json.dumps(event)), TransactionEvent)


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_files_are_reproducible(tmp_path: Path) -> None:
    script = _load_script(REFERENCE / "make_reference.py")
    script.write(tmp_path, script.DEFAULT_SEED)
    for name in ("merchants.csv", "fx_rates.csv"):
        assert (tmp_path / name).read_bytes() == (REFERENCE / name).read_bytes(), name
