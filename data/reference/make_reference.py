"""Regenerate the synthetic reference data: ``merchants.csv`` and ``fx_rates.csv`` (this folder).

Deterministic: the same ``--seed`` always writes byte-identical files, so the committed files can be
checked by rerunning this script and diffing (``git diff --exit-code data/reference``).

    python data/reference/make_reference.py            # writes next to this script
    python data/reference/make_reference.py --out /tmp/ref --seed 7

Standard library only (it runs before any dependency is installed). The formats are the ones
``dataforge.reference`` loads; see README.md in this folder.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Final

log = logging.getLogger("make_reference")

DEFAULT_SEED: Final = 20250101
FX_START: Final = date(2025, 1, 1)
FX_END: Final = date(2026, 12, 31)
# A valid ISO 4217 currency whose rates only start here: events before this date in it exercise
# ``no_fx_rate`` at enrichment.
LATE_CURRENCY: Final = "HUF"
LATE_START: Final = date(2026, 6, 1)
RATE_PLACES: Final = Decimal("0.00000001")  # at most 8 decimal places

# currency -> (USD per unit on 2025-01-01, daily volatility of the log rate)
FX_BASE: Final[dict[str, tuple[float, float]]] = {
    "USD": (1.0, 0.0),
    "EUR": (1.0350, 0.0040),
    "GBP": (1.2520, 0.0042),
    "JPY": (0.006360, 0.0055),
    "CHF": (1.1030, 0.0040),
    "CAD": (0.6950, 0.0030),
    "AUD": (0.6190, 0.0050),
    "SEK": (0.09050, 0.0050),
    "NOK": (0.08800, 0.0055),
    "DKK": (0.13870, 0.0),  # pegged to EUR (ERM II, central rate 7.46038 DKK per EUR)
    "PLN": (0.24300, 0.0050),
    "BRL": (0.16200, 0.0085),
    "MXN": (0.04820, 0.0075),
    "INR": (0.011680, 0.0020),
    "SGD": (0.7330, 0.0025),
    LATE_CURRENCY: (0.002530, 0.0060),
}
DKK_PER_EUR: Final = 7.46038
MEAN_REVERSION: Final = 0.01  # daily pull of the log rate back towards its base

# country -> (merchants in the file, currency)
COUNTRIES: Final[dict[str, tuple[int, str]]] = {
    "US": (40, "USD"), "GB": (18, "GBP"), "DE": (16, "EUR"), "FR": (12, "EUR"), "JP": (10, "JPY"),
    "ES": (8, "EUR"), "IT": (8, "EUR"), "NL": (8, "EUR"), "CA": (8, "CAD"), "BR": (8, "BRL"),
    "IN": (8, "INR"), "AU": (7, "AUD"), "MX": (6, "MXN"), "SG": (5, "SGD"), "CH": (5, "CHF"),
    "SE": (5, "SEK"), "PL": (5, "PLN"), "NO": (4, "NOK"), "DK": (4, "DKK"), "IE": (3, "EUR"),
    "HU": (3, LATE_CURRENCY), "AT": (3, "EUR"), "PT": (2, "EUR"), "BE": (2, "EUR"), "FI": (2, "EUR"),
}

# category -> (MCC, relative frequency, name suffixes)
CATEGORIES: Final[dict[str, tuple[str, int, tuple[str, ...]]]] = {
    "grocery": ("5411", 14, ("Market", "Grocers", "Fresh Foods", "Supermarket", "Food Hall")),
    "restaurants": ("5812", 10, ("Bistro", "Kitchen", "Trattoria", "Grill", "Brasserie")),
    "fast_food": ("5814", 8, ("Burgers", "Coffee", "Bakery", "Noodle Bar", "Express")),
    "fuel": ("5541", 6, ("Fuel", "Petrol", "Energy Stations", "Gas & Go")),
    "electronics": ("5732", 7, ("Electronics", "Tech Store", "Digital", "Gadgets")),
    "apparel": ("5651", 9, ("Outfitters", "Apparel", "Fashion House", "Clothing Co.")),
    "department_store": ("5311", 4, ("Department Store", "Galleries", "Emporium")),
    "marketplace": ("5399", 6, ("Marketplace", "Shop", "Bazaar", "Direct")),
    "airlines": ("4511", 4, ("Airways", "Air", "Airlines")),
    "lodging": ("7011", 5, ("Hotels", "Suites", "Inn", "Resorts")),
    "ride_hailing": ("4121", 4, ("Rides", "Mobility", "Cabs")),
    "digital_goods": ("5817", 6, ("Apps", "Software", "Cloud", "Labs")),
    "streaming": ("4899", 3, ("Stream", "Play", "TV")),
    "gaming": ("5816", 3, ("Games", "Arcade", "Studios")),
    "pharmacy": ("5912", 5, ("Pharmacy", "Chemist", "Health")),
    "home_improvement": ("5200", 3, ("Home & Garden", "Hardware", "Builders")),
    "sporting_goods": ("5941", 3, ("Sports", "Outdoor", "Athletics")),
    "books": ("5942", 2, ("Books", "Booksellers", "Press")),
    "telecom": ("4814", 3, ("Mobile", "Telecom", "Connect")),
    "utilities": ("4900", 2, ("Energy", "Power", "Utilities")),
    "ticketing": ("7922", 2, ("Tickets", "Live", "Events")),
}

# Fictional brand stems; per-country ones first give names a local flavour.
LOCAL_STEMS: Final[dict[str, tuple[str, ...]]] = {
    "DE": ("Alpen", "Rhein", "Nordlicht", "Lindenhof", "Elbe", "Schwarzwald", "Bergmann", "Adler"),
    "FR": ("Belle Rive", "Le Comptoir", "Lumière", "Sainte-Claire", "Mistral", "Val d'Or"),
    "ES": ("Sol y Mar", "La Alameda", "Costa Brava", "El Faro"),
    "IT": ("Bella Vita", "Dolce", "Il Ponte", "Aurora", "Laguna"),
    "NL": ("Tulip", "Van der Berg", "Grachten", "Polder"),
    "JP": ("Sakura", "Fujimi", "Kumo", "Hikari", "Midori", "Yamato"),
    "BR": ("Estrela", "Ipanema", "Sol Nascente", "Bela Vista"),
    "MX": ("El Sol", "Azteca", "Jacaranda", "Casa Verde"),
    "IN": ("Lotus", "Ganga", "Saffron", "Himalaya", "Chandni"),
    "SE": ("Norrsken", "Fjäll", "Skärgård"),
    "NO": ("Fjord", "Nordkapp", "Viking"),
    "DK": ("Havn", "Øresund", "Lys"),
    "PL": ("Wisła", "Zielona", "Bursztyn"),
    "HU": ("Duna", "Balaton", "Tokaj"),
    "CH": ("Matterhorn", "Edelweiss", "Lac Léman"),
}
GLOBAL_STEMS: Final = (
    "Northwind", "Bluebird", "Silverline", "Harborview", "Maple & Oak", "Granite", "Sunset", "Atlas",
    "Evergreen", "Pioneer", "Copperfield", "Lakeside", "Summit", "Redwood", "Brightwater", "Ironbridge",
    "Kestrel", "Meridian", "Oakmont", "Riverside", "Starling", "Westgate", "Cobalt", "Juniper",
    "Highland", "Clearwater", "Foxglove", "Beacon", "Crescent", "Driftwood", "Everbright", "Goldleaf",
)
TIERS: Final = (("enterprise", 0.10), ("mid", 0.30), ("small", 0.60))


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _rate_text(value: float) -> str:
    rate = Decimal(repr(value)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN).normalize()
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {value}")
    return format(rate, "f")


def fx_rows(seed: int) -> list[tuple[str, str, str]]:
    """Daily rates, a mean-reverting random walk of each log rate; weekends repeat Friday's rate."""
    rng = random.Random(f"fx:{seed}")  # noqa: S311 - synthetic data, not security
    log_rate = {cur: math.log(base) for cur, (base, _) in FX_BASE.items()}
    rows: list[tuple[str, str, str]] = []
    for day in _days(FX_START, FX_END):
        if day != FX_START and day.weekday() < 5:
            for cur, (base, vol) in FX_BASE.items():
                if vol:
                    pull = MEAN_REVERSION * (math.log(base) - log_rate[cur])
                    log_rate[cur] += pull + rng.gauss(0.0, vol)
        log_rate["DKK"] = log_rate["EUR"] - math.log(DKK_PER_EUR)
        for cur in sorted(FX_BASE):
            if cur == LATE_CURRENCY and day < LATE_START:
                continue
            rows.append((day.isoformat(), cur, _rate_text(math.exp(log_rate[cur]))))
    return rows


def merchant_rows(seed: int) -> list[tuple[str, str, str, str, str, str]]:
    rng = random.Random(f"merchants:{seed}")  # noqa: S311 - synthetic data, not security
    categories = list(CATEGORIES)
    weights = [CATEGORIES[c][1] for c in categories]
    countries = [cc for cc, (n, _) in COUNTRIES.items() for _ in range(n)]
    rng.shuffle(countries)
    used: set[str] = set()
    rows: list[tuple[str, str, str, str, str, str]] = []
    for index, country in enumerate(countries, start=1):
        category = rng.choices(categories, weights)[0]
        mcc, _, suffixes = CATEGORIES[category]
        stems = LOCAL_STEMS.get(country, ())
        for _ in range(1000):
            stem = rng.choice(stems) if stems and rng.random() < 0.6 else rng.choice(GLOBAL_STEMS)
            name = f"{stem} {rng.choice(suffixes)}"
            if name not in used:
                break
        else:  # pragma: no cover - the pools hold far more names than merchants
            raise RuntimeError("ran out of merchant names")
        used.add(name)
        roll, tier = rng.random(), TIERS[-1][0]
        for candidate, share in TIERS:
            if roll < share:
                tier = candidate
                break
            roll -= share
        rows.append((f"mrc_{index:04d}", name, category, mcc, country, tier))
    return rows


def write(out: Path, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "merchants.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("merchant_id", "name", "category", "mcc", "country", "tier"))
        writer.writerows(merchant_rows(seed))
    with (out / "fx_rates.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("rate_date", "currency", "usd_per_unit"))
        writer.writerows(fx_rows(seed))
    log.info("wrote %s/merchants.csv and %s/fx_rates.csv (seed %d)", out, out, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write(args.out, args.seed)


if __name__ == "__main__":
    main()
