"""Reference data: merchants and FX rates (USD per unit of a currency, dated).

Files (``data/reference/``, shipped inside the core package as ``dataforge/_data/reference``):

- ``merchants.csv``: ``merchant_id,name,category,mcc,country,tier``
- ``fx_rates.csv``: ``rate_date,currency,usd_per_unit`` (one row per currency and date; the rate
  for an event is the latest one on or before its ``event_date``; none at all -> ``no_fx_rate``)

Money stays ``Decimal``; rounding to cents is half-even, per record (ARCHITECTURE.md, KPIs).
"""

from __future__ import annotations

import bisect
import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from dataforge import envvars
from dataforge.errors import ReferenceDataError

MERCHANTS_FILE: Final = "merchants.csv"
FX_RATES_FILE: Final = "fx_rates.csv"
_CHECKOUT: Final = Path(__file__).resolve().parents[1] / "data" / "reference"
UNKNOWN_MERCHANT: Final = "unknown"
CENT: Final = Decimal("0.01")


def reference_dir() -> Traversable:
    """``DATAFORGE_REFERENCE_DIR`` when set, else the copy packaged in the artifacts, else the checkout's.

    The packaged copy is read as a package resource: on Glue the core is imported from the
    ``--extra-py-files`` zip itself (zipimport), where no file of the package exists on disk."""
    override = os.environ.get(envvars.REFERENCE_DIR)
    if override:
        return Path(override)
    packaged = resources.files(__package__ or "dataforge") / "_data" / "reference"
    return packaged if packaged.is_dir() else _CHECKOUT


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    name: str
    category: str
    mcc: str
    country: str
    tier: str


@dataclass(frozen=True, slots=True)
class FxRate:
    rate_date: date
    currency: str
    usd_per_unit: Decimal


class FxTable:
    """Dated USD-per-unit rates with "latest on or before" lookup."""

    def __init__(self, rates: list[FxRate]) -> None:
        by_currency: dict[str, list[FxRate]] = {}
        for rate in sorted(rates, key=lambda r: (r.currency, r.rate_date)):
            by_currency.setdefault(rate.currency, []).append(rate)
        self._rates = by_currency
        self._dates = {cur: [r.rate_date for r in rows] for cur, rows in by_currency.items()}

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self._rates)

    @property
    def rates(self) -> list[FxRate]:
        return [rate for rows in self._rates.values() for rate in rows]

    def rate_on(self, currency: str, on: date) -> Decimal | None:
        """The latest rate on or before ``on``; None when the currency has no rate that early."""
        dates = self._dates.get(currency)
        if not dates:
            return None
        index = bisect.bisect_right(dates, on) - 1
        return None if index < 0 else self._rates[currency][index].usd_per_unit

    def to_usd(self, amount: Decimal, currency: str, on: date) -> Decimal | None:
        """``amount`` in USD, rounded half-even to cents; None when there is no rate."""
        rate = self.rate_on(currency, on)
        return None if rate is None else (amount * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _read_csv(path: Traversable, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"cannot read reference file {path}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))  # newline="": the csv module's own line handling
    if tuple(reader.fieldnames or ()) != columns:
        raise ReferenceDataError(f"{path}: expected header {','.join(columns)}, got {reader.fieldnames}")
    return list(reader)


def load_merchants(directory: Traversable | None = None) -> Mapping[str, Merchant]:
    path = (directory or reference_dir()) / MERCHANTS_FILE
    rows = _read_csv(path, ("merchant_id", "name", "category", "mcc", "country", "tier"))
    return {row["merchant_id"]: Merchant(**row) for row in rows}


def load_fx(directory: Traversable | None = None) -> FxTable:
    path = (directory or reference_dir()) / FX_RATES_FILE
    rates: list[FxRate] = []
    for line, row in enumerate(_read_csv(path, ("rate_date", "currency", "usd_per_unit")), start=2):
        try:
            rate = FxRate(date.fromisoformat(row["rate_date"]), row["currency"], Decimal(row["usd_per_unit"]))
        except (ValueError, InvalidOperation) as exc:
            raise ReferenceDataError(f"{path}:{line}: bad FX row {row}: {exc}") from exc
        if rate.usd_per_unit <= 0:
            raise ReferenceDataError(f"{path}:{line}: rate must be > 0, got {rate.usd_per_unit}")
        rates.append(rate)
    return FxTable(rates)


@cache
def default_fx() -> FxTable:
    """The FX table of the configured reference directory, loaded once per process."""
    return load_fx()


@cache
def default_merchants() -> Mapping[str, Merchant]:
    return load_merchants()
