"""Synthetic transaction events (schema v1), seeded and fast, with exact expectations attached.

``generate_events(config)`` yields ``GeneratedEvent`` items: the Kafka key (``account_id``), the JSON
value, and what the pipeline must do with it (``expected_reason``: None for a valid record, else the
exact ``Reason`` that ``dataforge.contract.Validator`` returns; ``enrichment_reason``: ``no_fx_rate``
for a valid record whose currency has no rate yet on its event date). Tests and benchmarks can
therefore reconcile exactly: received = valid + quarantined, reason by reason.

What the stream looks like:

- event times increase through ``[start, end)`` with an hourly day/night curve (UTC) and quieter
  weekends; a few producers send their local UTC offset instead of ``Z``;
- Zipf-like merchant popularity (enterprise merchants first), plus a few merchant ids that are not in
  the reference file (enriched as ``unknown``);
- buyers from per-country account pools with many repeat customers; most payments are domestic and
  in the merchant's currency;
- log-normal amounts per merchant category, converted to the event currency with the FX table (whole
  units for JPY), sent as strings with two decimals and sometimes as JSON numbers;
- a ``risk_score`` per event; declines become likelier as risk rises, each with a realistic reason;
- refunds of recent approved payments (same account, merchant, currency; full or partial);
- ``invalid_fraction`` of records break exactly one contract rule, cycling through every
  record-level reason; ``duplicate_fraction`` re-emit an earlier valid event byte for byte (what a
  retrying producer does).

Everything random comes from one ``random.Random(seed)``: the same config and reference data give
the same bytes. The hot path formats JSON text directly (every value is generator-controlled ASCII)
and draws categorical values from precomputed tables; see ``bench/generator_throughput.py``.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
import statistics
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from itertools import accumulate, cycle
from typing import Any, Final, NamedTuple

import msgspec

from dataforge.contract import FIELDS, MAX_FUTURE_SKEW, MAX_ID_LENGTH, Reason
from dataforge.reference import FxTable, Merchant, default_fx, default_merchants

log = logging.getLogger(__name__)

#: Every reason the record validator can give (the others come from enrichment, file landing and the
#: per-record backstops).
RECORD_REASONS: Final[tuple[Reason, ...]] = tuple(
    r for r in Reason if r not in (Reason.NO_FX_RATE, Reason.MALFORMED_FILE, Reason.VALIDATION_ERROR)
)
DEFAULT_WINDOW: Final = timedelta(hours=24)
DEFAULT_END_LAG: Final = timedelta(minutes=10)
ZERO_DECIMAL_CURRENCIES: Final = frozenset({"JPY", "KRW", "CLP", "ISK", "VND"})
# ISO 4217 codes that are well-formed; the generator uses those missing from the FX table.
UNKNOWN_CURRENCY_CANDIDATES: Final = ("ZAR", "TRY", "ARS", "KRW", "NZD", "THB", "CZK", "ILS", "XTS")
UNKNOWN_MERCHANTS: Final = 5

# Hourly traffic curve by UTC hour (Europe afternoon and the Americas' morning overlap at the peak).
HOURLY_WEIGHTS: Final = (
    0.30, 0.22, 0.17, 0.15, 0.16, 0.22, 0.34, 0.50, 0.66, 0.80, 0.90, 0.96,
    1.00, 1.00, 0.98, 0.97, 0.98, 1.00, 0.97, 0.90, 0.78, 0.63, 0.49, 0.38,
)
WEEKEND_FACTOR: Final = 0.85

# category -> (median ticket in USD, sigma of log amount)
CATEGORY_AMOUNTS: Final[Mapping[str, tuple[float, float]]] = {
    "grocery": (45.0, 0.7), "restaurants": (38.0, 0.6), "fast_food": (11.0, 0.5), "fuel": (55.0, 0.4),
    "electronics": (180.0, 1.0), "apparel": (70.0, 0.8), "department_store": (85.0, 0.8),
    "marketplace": (40.0, 1.0), "airlines": (350.0, 0.7), "lodging": (220.0, 0.7),
    "ride_hailing": (18.0, 0.6), "digital_goods": (9.0, 0.9), "streaming": (13.0, 0.3),
    "gaming": (15.0, 1.0), "pharmacy": (25.0, 0.7), "home_improvement": (95.0, 0.9),
    "sporting_goods": (75.0, 0.8), "books": (22.0, 0.5), "telecom": (45.0, 0.5),
    "utilities": (110.0, 0.5), "ticketing": (90.0, 0.7),
}
DEFAULT_AMOUNT: Final = (50.0, 0.9)
# category -> channel weights (web, mobile, pos)
CATEGORY_CHANNELS: Final[Mapping[str, tuple[float, float, float]]] = {
    "grocery": (0.10, 0.10, 0.80), "restaurants": (0.10, 0.15, 0.75), "fast_food": (0.05, 0.25, 0.70),
    "fuel": (0.02, 0.08, 0.90), "electronics": (0.50, 0.20, 0.30), "apparel": (0.40, 0.30, 0.30),
    "department_store": (0.30, 0.20, 0.50), "marketplace": (0.60, 0.40, 0.0), "airlines": (0.70, 0.30, 0.0),
    "lodging": (0.60, 0.25, 0.15), "ride_hailing": (0.0, 1.0, 0.0), "digital_goods": (0.50, 0.50, 0.0),
    "streaming": (0.60, 0.40, 0.0), "gaming": (0.30, 0.70, 0.0), "pharmacy": (0.15, 0.10, 0.75),
    "home_improvement": (0.30, 0.10, 0.60), "sporting_goods": (0.40, 0.20, 0.40), "books": (0.50, 0.20, 0.30),
    "telecom": (0.50, 0.40, 0.10), "utilities": (0.80, 0.20, 0.0), "ticketing": (0.60, 0.40, 0.0),
}
DEFAULT_CHANNELS: Final = (0.40, 0.30, 0.30)
CHANNEL_NAMES: Final = ("web", "mobile", "pos")
# channel -> payment-method weights (card, wallet, bank_transfer)
CHANNEL_METHODS: Final[Mapping[str, tuple[float, float, float]]] = {
    "web": (0.72, 0.18, 0.10), "mobile": (0.42, 0.55, 0.03), "pos": (0.93, 0.07, 0.0),
}
METHOD_NAMES: Final = ("card", "wallet", "bank_transfer")
# Issuer/acquirer decline reasons and their shares among ordinary (not high-risk) declines.
DECLINE_REASONS: Final[Mapping[str, float]] = {
    "insufficient_funds": 0.38, "do_not_honor": 0.25, "expired_card": 0.08, "incorrect_cvc": 0.07,
    "card_velocity_exceeded": 0.05, "invalid_account": 0.04, "suspected_fraud": 0.06,
    "processing_error": 0.04, "restricted_card": 0.03,
}
HIGH_RISK: Final = 0.75  # above this, most declines are suspected_fraud
# relative size of a country's card market (orders merchants of one tier by popularity)
MARKET_WEIGHTS: Final[Mapping[str, float]] = {
    "US": 1.0, "GB": 0.5, "DE": 0.45, "FR": 0.4, "JP": 0.4, "CA": 0.3, "BR": 0.3, "IN": 0.3, "AU": 0.25,
    "ES": 0.25, "IT": 0.25, "NL": 0.2, "MX": 0.2,
}
EURO_COUNTRIES: Final = frozenset({
    "AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT", "NL",
    "PT", "SI", "SK",
})
HOME_CURRENCIES: Final[Mapping[str, str]] = {
    "US": "USD", "GB": "GBP", "JP": "JPY", "CH": "CHF", "CA": "CAD", "AU": "AUD", "SE": "SEK",
    "NO": "NOK", "DK": "DKK", "PL": "PLN", "BR": "BRL", "MX": "MXN", "IN": "INR", "SG": "SGD",
    "HU": "HUF", "NZ": "NZD", "ZA": "ZAR", "KR": "KRW", "CZ": "CZK", "TR": "TRY",
}
# Standard UTC offsets (minutes) some producers send instead of "Z".
COUNTRY_OFFSETS: Final[Mapping[str, int]] = {
    "US": -300, "CA": -300, "MX": -360, "BR": -180, "GB": 0, "IE": 0, "PT": 0, "JP": 540, "SG": 480,
    "IN": 330, "AU": 600, "FI": 120,
}


class GeneratedEvent(msgspec.Struct, frozen=True, gc=False):
    """One produced record and what the pipeline must do with it.

    ``key`` is the Kafka key (the ``account_id`` bytes; empty when the record has none), ``value`` the
    exact bytes sent. ``expected_reason`` is the ``Reason`` the record validator returns, or None for
    a valid record. ``enrichment_reason`` is ``no_fx_rate`` for a valid record whose currency has no
    rate on or before its event date. ``is_duplicate`` marks a byte-identical re-send of an earlier
    valid event (same ``event_id``); the validator accepts it, silver dedupes it.
    """

    key: bytes
    value: bytes
    event_id: str | None
    expected_reason: Reason | None
    is_duplicate: bool = False
    enrichment_reason: Reason | None = None

    @property
    def is_valid(self) -> bool:
        return self.expected_reason is None


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What to generate. ``start``/``end`` (aware, UTC) default to the 24 h ending 10 minutes ago.

    Fractions are of all ``count`` records: ``invalid_fraction`` break one rule each,
    ``duplicate_fraction`` are re-sends; ``refund_fraction`` is the share of refunds among new
    valid events; ``unknown_merchant_fraction`` of new events name a merchant missing from the
    reference file; ``number_amount_fraction`` send the amount as a JSON number.
    """

    count: int = 10_000
    seed: int = 0
    start: datetime | None = None
    end: datetime | None = None
    invalid_fraction: float = 0.0
    duplicate_fraction: float = 0.0
    refund_fraction: float = 0.03
    unknown_merchant_fraction: float = 0.005
    number_amount_fraction: float = 0.05
    local_offset_fraction: float = 0.02
    cross_border_fraction: float = 0.10
    zipf_exponent: float = 1.1
    accounts_per_country: int = 100_000

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        fractions = {
            "invalid_fraction": self.invalid_fraction, "duplicate_fraction": self.duplicate_fraction,
            "refund_fraction": self.refund_fraction,
            "unknown_merchant_fraction": self.unknown_merchant_fraction,
            "number_amount_fraction": self.number_amount_fraction,
            "local_offset_fraction": self.local_offset_fraction,
            "cross_border_fraction": self.cross_border_fraction,
        }
        for name, value in fractions.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.invalid_fraction + self.duplicate_fraction > 1.0:
            raise ValueError("invalid_fraction + duplicate_fraction must not exceed 1")
        for name, moment in (("start", self.start), ("end", self.end)):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
        if self.accounts_per_country < 1:
            raise ValueError("accounts_per_country must be >= 1")

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The resolved ``[start, end)`` in UTC; ``end`` must not be in the future (given ``now``)."""
        end = (self.end or now - DEFAULT_END_LAG).astimezone(UTC)
        start = (self.start or end - DEFAULT_WINDOW).astimezone(UTC)
        if start >= end:
            raise ValueError(f"start {start.isoformat()} must be before end {end.isoformat()}")
        if end > now + MAX_FUTURE_SKEW:
            raise ValueError(
                f"end {end.isoformat()} is in the future: events after now + {MAX_FUTURE_SKEW} would be "
                "quarantined as event_time_in_future, so the generator does not produce them"
            )
        return start, end


# --- summary -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """Counts by kind. ``total`` = ``valid`` + ``invalid``; ``duplicates`` are among ``valid``."""

    total: int
    valid: int
    invalid: int
    duplicates: int
    no_fx_rate: int
    by_reason: Mapping[str, int] = field(default_factory=dict)

    @property
    def unique_valid(self) -> int:
        return self.valid - self.duplicates


class SummaryCounter:
    """Counts events as they pass (sinks use it while streaming)."""

    __slots__ = ("_duplicates", "_no_fx", "_reasons", "_total")

    def __init__(self) -> None:
        self._total = 0
        self._duplicates = 0
        self._no_fx = 0
        self._reasons: Counter[str] = Counter()

    def add(self, event: GeneratedEvent) -> None:
        self._total += 1
        if event.expected_reason is not None:
            self._reasons[event.expected_reason.value] += 1
        elif event.is_duplicate:
            self._duplicates += 1
        if event.enrichment_reason is not None and not event.is_duplicate:
            self._no_fx += 1

    def result(self) -> GenerationSummary:
        invalid = sum(self._reasons.values())
        return GenerationSummary(
            total=self._total, valid=self._total - invalid, invalid=invalid, duplicates=self._duplicates,
            no_fx_rate=self._no_fx, by_reason=dict(sorted(self._reasons.items())),
        )


def summary(events: Iterable[GeneratedEvent]) -> GenerationSummary:
    """Counts by kind: valid, invalid by reason, duplicates, and unique valid events lacking an FX rate."""
    counter = SummaryCounter()
    for event in events:
        counter.add(event)
    return counter.result()


# --- precomputed tables --------------------------------------------------------------------------

_TABLE_BITS: Final = 10  # categorical draws: 1024-entry lookup tables, 0.1 % resolution
_NORMAL_BITS: Final = 14  # standard-normal quantiles, 16384 entries
_RISK_BITS: Final = 16  # risk score: uniform 16 bits -> cubed -> 0..10000 (1e-4 steps)
_CHUNK: Final = 1024  # events per batch of random ids
_DUP_RING: Final = 1024  # a retry re-sends one of the last N valid events (power of two)
_REFUND_RING: Final = 256  # refunds pick one of the last N sampled approved payments (power of two)
_NO_RISK: Final = -1


def _table(weights: Iterable[float], bits: int = _TABLE_BITS) -> tuple[int, ...]:
    """A lookup table of indexes whose frequencies follow ``weights`` (largest remainder rounding)."""
    values = list(weights)
    total = sum(values)
    size = 1 << bits
    exact = [w / total * size for w in values]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(values)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    return tuple(i for i, n in enumerate(counts) for _ in range(n))


class _Tables(NamedTuple):
    """Text and number tables shared by every generator in the process (built once).

    A tuple, so the hot loop binds every table to a local in one unpack.
    """

    normal: tuple[float, ...]  # standard-normal quantiles
    minsec: tuple[str, ...]  # "mm:ss" for each second of an hour
    millis: tuple[str, ...]  # "000".."999"
    cents: tuple[str, ...]  # "00".."99"
    risk_level: tuple[int, ...]  # uniform 16 bits -> risk in 1e-4 steps, skewed low (cubed)
    risk_text: tuple[str, ...]  # risk level -> JSON number text
    risk_json: tuple[str, ...]  # risk level -> ',"risk_score":<n>'
    decline_p: tuple[float, ...]  # risk level -> probability of a decline


@cache
def _tables() -> _Tables:
    dist = statistics.NormalDist()
    n_normal = 1 << _NORMAL_BITS
    n_risk = 1 << _RISK_BITS
    risk_text = tuple(repr(k / 10_000) for k in range(10_001))
    return _Tables(
        normal=tuple(dist.inv_cdf((k + 0.5) / n_normal) for k in range(n_normal)),
        minsec=tuple(f"{s // 60:02d}:{s % 60:02d}" for s in range(3600)),
        millis=tuple(f"{m:03d}" for m in range(1000)),
        cents=tuple(f"{c:02d}" for c in range(100)),
        risk_level=tuple(int(((k + 0.5) / n_risk) ** 3 * 10_000) for k in range(n_risk)),
        risk_text=risk_text,
        risk_json=tuple(f',"risk_score":{text}' for text in risk_text),
        decline_p=tuple(0.035 + 0.5 * (k / 10_000) ** 3 for k in range(10_001)),
    )


class _Bucket(NamedTuple):
    """One hour (clipped to the window) of the event-time curve (a tuple: the hot loop unpacks it)."""

    cum_hi: float  # cumulative weight at the end of this bucket (infinite for the last one)
    cum_lo: float
    ms_per_weight: float
    ms0: int  # offset of the bucket start within its hour
    ms_max: int
    prefix: str  # "YYYY-MM-DDTHH:"
    hour_start: datetime
    no_rate: frozenset[str]  # currencies without an FX rate on this date


def _buckets(start: datetime, end: datetime, fx: FxTable) -> tuple[list[_Bucket], float]:
    """The hourly buckets of ``[start, end)`` and their total weight."""
    currencies = sorted(fx.currencies)
    no_rate_by_day: dict[date, frozenset[str]] = {}
    buckets: list[_Bucket] = []
    cum = 0.0
    hour_start = start.replace(minute=0, second=0, microsecond=0)
    while hour_start < end:
        lo, hi = max(hour_start, start), min(hour_start + timedelta(hours=1), end)
        span_ms = (hi - lo) // timedelta(milliseconds=1)
        if span_ms > 0:
            weekend = WEEKEND_FACTOR if hour_start.weekday() >= 5 else 1.0
            weight = HOURLY_WEIGHTS[hour_start.hour] * weekend * span_ms / 3_600_000
            day = hour_start.date()
            if day not in no_rate_by_day:
                no_rate_by_day[day] = frozenset(c for c in currencies if fx.rate_on(c, day) is None)
            ms0 = (lo - hour_start) // timedelta(milliseconds=1)
            buckets.append(_Bucket(
                cum_hi=cum + weight, cum_lo=cum, ms_per_weight=span_ms / weight, ms0=ms0,
                ms_max=ms0 + span_ms - 1, prefix=hour_start.strftime("%Y-%m-%dT%H:"),
                hour_start=hour_start, no_rate=no_rate_by_day[day],
            ))
            cum += weight
        hour_start += timedelta(hours=1)
    if buckets:  # no float rounding can push an event past the last bucket
        last = buckets[-1]
        buckets[-1] = last._replace(cum_hi=math.inf)
    return buckets, cum


def _usd_per_unit(fx: FxTable, currency: str, on: date) -> float:
    """The rate on ``on``, else the currency's first rate (used for the amount scale only)."""
    rate = fx.rate_on(currency, on)
    if rate is None:
        first = [r for r in fx.rates if r.currency == currency]
        rate = min(first, key=lambda r: r.rate_date).usd_per_unit if first else Decimal(1)
    return float(rate)


@cache
def _channel_methods(category: str) -> tuple[tuple[str, str], ...]:
    """(channel, payment_method) lookup table of a merchant category."""
    pairs: list[tuple[str, str]] = []
    weights: list[float] = []
    for channel, cw in zip(CHANNEL_NAMES, CATEGORY_CHANNELS.get(category, DEFAULT_CHANNELS), strict=True):
        for method, mw in zip(METHOD_NAMES, CHANNEL_METHODS[channel], strict=True):
            pairs.append((channel, method))
            weights.append(cw * mw)
    return tuple(pairs[i] for i in _table(weights))


def _home_currency(country: str, currencies: frozenset[str]) -> str:
    code = "EUR" if country in EURO_COUNTRIES else HOME_CURRENCIES.get(country, "USD")
    return code if code in currencies else "USD"


# A merchant as the hot loop needs it (a tuple: one unpack instead of many attribute loads):
# (merchant_id, country, currency, log median ticket in minor units, sigma, channel/method table,
#  account-id prefix of domestic buyers)
_Profile = tuple[str, str, str, float, float, tuple[tuple[str, str], ...], str]


def _popularity_key(merchant: Merchant) -> tuple[int, float, str]:
    """Popularity order: by tier, then a stable per-merchant draw favouring large markets."""
    tier = {"enterprise": 0, "mid": 1, "small": 2}.get(merchant.tier, 3)
    draw = (zlib.crc32(merchant.merchant_id.encode()) + 1) / 2**32
    return tier, -MARKET_WEIGHTS.get(merchant.country, 0.15) * draw, merchant.merchant_id


def _account_prefix(country: str) -> str:
    return f"acc_{country.lower()}"


# --- the generator -------------------------------------------------------------------------------


# A sampled approved payment a refund may reverse: (merchant_id, account_id, country, currency, channel,
# payment_method, amount in minor units).
_Payment = tuple[str, str, str, str, str, str, int]
# Fill for the rings' unwritten slots (never read: draws stay below the number of slots written).
_PLACEHOLDER_EVENT: Final = GeneratedEvent(b"", b"", None, None)
_PLACEHOLDER_PAYMENT: Final[_Payment] = ("", "", "", "", "", "", 0)
_APPROVED_JSON: Final = '"approved","decline_reason":null'
_DECLINE_JSON: Final = {r: f'"declined","decline_reason":"{r}"' for r in DECLINE_REASONS}
_NULL_RISK: Final = ',"risk_score":null'
_HIGH_RISK: Final = int(HIGH_RISK * 10_000)  # as a risk level (1e-4 steps)


class _Thresholds(NamedTuple):
    """What a config means for the per-event draws (a tuple: the hot loop unpacks it into locals).

    ``u`` (uniform) below ``dup_hi`` is a re-send, below ``invalid_hi`` an invalid record, above
    ``refund_hi`` a refund; ``w`` below ``cross_p`` a cross-border buyer, below ``dcc_p`` one charged
    in their home currency. ``number_t`` and ``offset_t`` are 10-bit thresholds for the rarer
    per-event choices (drawn from spare random bits). Half the buyers are among ``regulars``
    accounts of a country, the rest among ``pool``.
    """

    dup_hi: float
    invalid_hi: float
    refund_hi: float
    cross_p: float
    dcc_p: float
    number_t: int
    offset_t: int
    regulars: int
    pool: int

    @classmethod
    def of(cls, cfg: GeneratorConfig) -> _Thresholds:
        invalid_hi = cfg.duplicate_fraction + cfg.invalid_fraction
        return cls(
            dup_hi=cfg.duplicate_fraction,
            invalid_hi=invalid_hi,
            refund_hi=1.0 - (1.0 - invalid_hi) * cfg.refund_fraction,
            cross_p=cfg.cross_border_fraction,
            dcc_p=cfg.cross_border_fraction * 0.25,
            number_t=round(cfg.number_amount_fraction * 1024),
            offset_t=round(cfg.local_offset_fraction * 1024),
            regulars=2 * max(1, cfg.accounts_per_country // 20),
            pool=2 * cfg.accounts_per_country,
        )


def _resend(original: GeneratedEvent) -> GeneratedEvent:
    """A retrying producer's re-send of ``original``: the same bytes, marked as a duplicate."""
    return GeneratedEvent(original.key, original.value, original.event_id, None, True, original.enrichment_reason)


def _refund(payment: _Payment, random_: Callable[[], float]) -> tuple[str, str, str, str, str, str, int, str | None]:
    """A refund of ``payment`` (in full, or in part): its fields, the refunded units and a decline reason or None."""
    merchant_id, account, country, currency, channel, method, paid = payment
    units = paid if random_() < 0.7 else max(1, int(paid * (0.1 + 0.8 * random_())))
    reason = "processing_error" if random_() < 0.01 else None
    return merchant_id, account, country, currency, channel, method, units, reason


def generate_events(
    config: GeneratorConfig,
    *,
    merchants: Mapping[str, Merchant] | None = None,
    fx: FxTable | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> Iterator[GeneratedEvent]:
    """Yield ``config.count`` records (valid, invalid and duplicates mixed), event times increasing.

    ``merchants`` and ``fx`` default to the reference data (``dataforge.reference``); ``clock`` is
    only read to resolve the default window and to refuse an ``end`` in the future.
    """
    merchants = default_merchants() if merchants is None else merchants
    fx = default_fx() if fx is None else fx
    if not merchants:
        raise ValueError("the generator needs at least one merchant")
    if "USD" not in fx.currencies:
        raise ValueError("the FX table must contain USD")
    start, end = config.window(clock())
    return _Generator(config, merchants, fx, start, end).run()


class _Generator:
    """Setup (tables, merchant profiles, hourly buckets) and the hot loop."""

    def __init__(self, config: GeneratorConfig, merchants: Mapping[str, Merchant], fx: FxTable,
                 start: datetime, end: datetime) -> None:
        self.config = config
        self.end = end
        currencies = fx.currencies
        on = start.date()
        # minor units (cents, or whole yen) per USD, by currency
        self.minor_per_usd = {
            c: (1.0 if c in ZERO_DECIMAL_CURRENCIES else 100.0) / _usd_per_unit(fx, c, on)
            for c in sorted(currencies)
        }
        ordered = sorted(merchants.values(), key=_popularity_key)
        known = [self._profile(m.merchant_id, m.country, m.category, currencies) for m in ordered]
        # popularity: Zipf over the known merchants, plus a small flat share for unknown ones
        weights = [1.0 / (rank + 1) ** config.zipf_exponent for rank in range(len(known))]
        scale = (1.0 - config.unknown_merchant_fraction) / sum(weights)
        weights = [w * scale for w in weights]
        unknown = self._unknown(merchants, ordered, currencies)
        weights += [config.unknown_merchant_fraction / len(unknown)] * len(unknown)
        self.profiles = known + unknown
        self.merchant_cum = list(accumulate(weights))
        self.merchant_cum[-1] = math.inf
        countries = sorted({m.country for m in merchants.values()})
        share = Counter(m.country for m in merchants.values())
        self.country_table = tuple(countries[i] for i in _table(share[c] for c in countries))
        self.country_currency = {c: _home_currency(c, currencies) for c in countries}
        self.account_prefix = {c: _account_prefix(c) for c in countries}
        self.buckets, self.total_weight = _buckets(start, end, fx)
        reasons = list(DECLINE_REASONS)
        self.decline_table = tuple(reasons[i] for i in _table(DECLINE_REASONS.values()))
        self.unknown_currencies = [c for c in UNKNOWN_CURRENCY_CANDIDATES if c not in currencies] or ["QQQ"]
        log.debug("generator: %d records, seed %d, %s .. %s, %d merchants", config.count, config.seed,
                  start.isoformat(), end.isoformat(), len(merchants))

    def _profile(self, merchant_id: str, country: str, category: str, currencies: frozenset[str]) -> _Profile:
        median, sigma = CATEGORY_AMOUNTS.get(category, DEFAULT_AMOUNT)
        currency = _home_currency(country, currencies)
        return (merchant_id, country, currency, math.log(median * self.minor_per_usd[currency]), sigma,
                _channel_methods(category), _account_prefix(country))

    def _unknown(self, merchants: Mapping[str, Merchant], ordered: list[Merchant],
                 currencies: frozenset[str]) -> list[_Profile]:
        """Merchants onboarded after the reference snapshot: ids absent from ``merchants``."""
        result: list[_Profile] = []
        n = 9000
        while len(result) < UNKNOWN_MERCHANTS:
            n += 1
            if f"mrc_{n}" not in merchants:
                like = ordered[(len(result) * 7) % len(ordered)]
                result.append(self._profile(f"mrc_{n}", like.country, like.category, currencies))
        return result

    def run(self) -> Iterator[GeneratedEvent]:  # noqa: C901, PLR0912, PLR0915 - per-event hot loop, inline for throughput (docs/adr/0011-complexity-limits.md)
        """The hot loop: a new valid payment is the straight path; everything else is a branch.

        Setup lives in ``_Thresholds`` and the tables; the rare paths (a re-send, a refund, the next
        hour, a cross-border buyer, an invalid record) are helpers. The common path stays inline:
        a call per event costs throughput.
        """
        cfg = self.config
        count = cfg.count
        if count == 0 or not self.buckets:
            return
        rng = random.Random(cfg.seed)  # noqa: S311 - synthetic data, not security
        random_, getrandbits, randbytes = rng.random, rng.getrandbits, rng.randbytes
        normal, minsec, millis, cents, risk_level, risk_text, risk_json_t, decline_p = _tables()
        exp, bisect_right = math.exp, bisect.bisect_right
        profiles, merchant_cum, decline_table = self.profiles, self.merchant_cum, self.decline_table
        zero_decimal, no_fx, invalid_kinds = ZERO_DECIMAL_CURRENCIES, Reason.NO_FX_RATE, cycle(RECORD_REASONS)
        approved_json, decline_json, null_risk, high_risk = _APPROVED_JSON, _DECLINE_JSON, _NULL_RISK, _HIGH_RISK
        dup_hi, invalid_hi, refund_hi, cross_p, dcc_p, number_t, offset_t, regulars, pool = _Thresholds.of(cfg)

        # Rings of recent events, written round-robin; only the first min(n, size) slots are ever read.
        dup_ring = [_PLACEHOLDER_EVENT] * _DUP_RING
        n_valid = 0
        refund_ring = [_PLACEHOLDER_PAYMENT] * _REFUND_RING
        n_sampled = 0

        b_index = 0
        cum_hi, cum_lo, ms_per_weight, ms0, ms_max, prefix, hour_start, no_rate = self.buckets[0]
        scale = self.total_weight / count
        ids: list[str] = []
        txns: list[str] = []
        j = _CHUNK

        for i in range(count):
            u = random_()
            if u < dup_hi:
                if n_valid:
                    yield _resend(dup_ring[int(random_() * (n_valid if n_valid < _DUP_RING else _DUP_RING))])
                    continue
                u = invalid_hi  # nothing to re-send yet: a new payment instead

            # event time: the (i + jitter) / count quantile of the weighted hours, always increasing
            q = (i + random_()) * scale
            if q >= cum_hi:
                b_index = self._bucket_index(q, b_index)
                cum_hi, cum_lo, ms_per_weight, ms0, ms_max, prefix, hour_start, no_rate = self.buckets[b_index]
            off = ms0 + int((q - cum_lo) * ms_per_weight)
            if off > ms_max:
                off = ms_max

            if j == _CHUNK:
                ids, txns = _random_ids(randbytes)
                j = 0
            event_id = ids[j]
            txn = txns[j]
            j += 1

            bits = getrandbits(43)  # risk 16 | risk null/absent 7 | local offset 10 | JSON number 10
            opt = bits >> 16
            reason: str | None = None
            if u > refund_hi and n_sampled:
                merchant_id, account, country, currency, channel, method, units, reason = _refund(
                    refund_ring[int(random_() * (n_sampled if n_sampled < _REFUND_RING else _REFUND_RING))], random_)
                event_type = "refund"
                risk_k = _NO_RISK
            else:
                event_type = "payment"
                merchant_id, country, currency, mu, sigma, channel_methods, acc_prefix = profiles[
                    bisect_right(merchant_cum, random_())]
                channel, method = channel_methods[getrandbits(10)]
                x = exp(mu + sigma * normal[getrandbits(14)])  # minor units of the merchant currency
                w = random_()
                if w < cross_p:  # a visitor, or a cross-border online buyer
                    country, acc_prefix, currency, x = self._abroad(getrandbits(10), w < dcc_p, currency, x)
                a = random_()  # half the payments come from the regular 5 % of a country's accounts
                account = f"{acc_prefix}{int(a * regulars if a < 0.5 else (a - 0.5) * pool) + 10_000_000}"
                units = int(x + 0.5) or 1
                risk_k = risk_level[bits & 0xFFFF]
                if random_() < decline_p[risk_k]:
                    reason = "suspected_fraud" if risk_k > high_risk and opt & 1 else decline_table[getrandbits(10)]

            amount = (f'"{units}"' if currency in zero_decimal
                      else f'"{units // 100}.{cents[units % 100]}"')
            if u < invalid_hi:
                kind = next(invalid_kinds)
                # a valid record as a dict in contract order: the starting point of the invalid one
                record = {
                    "event_id": event_id, "event_type": event_type, "schema_version": 1,
                    "event_time": f"{prefix}{minsec[off // 1000]}.{millis[off % 1000]}Z",
                    "transaction_id": f"txn_{txn}", "account_id": account, "merchant_id": merchant_id,
                    "amount": amount[1:-1], "currency": currency,
                    "status": "approved" if reason is None else "declined", "decline_reason": reason,
                    "channel": channel, "country": country, "payment_method": method,
                    "risk_score": float(risk_text[risk_k]) if risk_k >= 0 else None,
                }
                key, value, eid = _break(kind, record, rng, self.end, self.unknown_currencies)
                yield GeneratedEvent(key, value, eid, kind)
                continue

            if reason is None:
                status_json = approved_json
                if not bits >> 40 and event_type == "payment":  # 1 in 8 may be refunded later
                    refund_ring[n_sampled & (_REFUND_RING - 1)] = (
                        merchant_id, account, country, currency, channel, method, units)
                    n_sampled += 1
            else:
                status_json = decline_json[reason]
            if (opt >> 17) < number_t:
                amount = amount[1:-1]  # sent as a JSON number
            null = opt & 127
            risk_json = risk_json_t[risk_k] if risk_k >= 0 and null > 4 else (null_risk if null else "")
            if ((opt >> 7) & 1023) < offset_t and country in COUNTRY_OFFSETS:
                event_time = _with_offset(hour_start, off, COUNTRY_OFFSETS[country])
            else:
                event_time = f"{prefix}{minsec[off // 1000]}.{millis[off % 1000]}Z"
            event = GeneratedEvent(
                account.encode(),
                f'{{"event_id":"{event_id}","event_type":"{event_type}","schema_version":1,'
                f'"event_time":"{event_time}","transaction_id":"txn_{txn}","account_id":"{account}",'
                f'"merchant_id":"{merchant_id}","amount":{amount},"currency":"{currency}",'
                f'"status":{status_json},"channel":"{channel}","country":"{country}",'
                f'"payment_method":"{method}"{risk_json}}}'.encode(),
                event_id, None, False, no_fx if currency in no_rate else None,
            )
            dup_ring[n_valid & (_DUP_RING - 1)] = event
            n_valid += 1
            yield event

    def _bucket_index(self, q: float, b_index: int) -> int:
        """The index of the hour bucket that cumulative weight ``q`` falls in, at or after ``b_index``."""
        buckets = self.buckets
        while q >= buckets[b_index].cum_hi:
            b_index += 1
        return b_index

    def _abroad(self, table_bits: int, in_home_currency: bool, currency: str,
                x: float) -> tuple[str, str, str, float]:
        """A buyer from another country: (country, account prefix, currency, amount in minor units).

        ``in_home_currency`` is dynamic currency conversion: the buyer is charged in their own currency.
        """
        country = self.country_table[table_bits]
        if in_home_currency:
            home = self.country_currency[country]
            x *= self.minor_per_usd[home] / self.minor_per_usd[currency]
            currency = home
        return country, self.account_prefix[country], currency, x


def _id_masks() -> tuple[bytes, int, int]:
    """Byte translation and masks that turn random bytes into ``<uuid4>\\n<16 hex>\\n`` records.

    Each output byte is a random byte ANDed and ORed with a per-position constant, then translated:
    0x00-0x0f -> a hex digit, 0x40 -> "-", 0x50 -> "4" (the version), 0x60-0x63 -> "8".."b" (the
    RFC 4122 variant), 0x70 -> newline. Whole batches go through big-int AND/OR and
    ``bytes.translate`` in C, which is several times cheaper than formatting ids one by one.
    """
    table = bytearray(b"0123456789abcdef"[b & 15] for b in range(256))
    table[0x40], table[0x50], table[0x70] = ord("-"), ord("4"), ord("\n")
    for b, char in zip(range(0x60, 0x64), "89ab", strict=True):
        table[b] = ord(char)
    and_mask = bytearray([0x0F] * _ID_RECORD)
    or_mask = bytearray(_ID_RECORD)
    for pos, keep, set_ in ((8, 0, 0x40), (13, 0, 0x40), (14, 0, 0x50), (18, 0, 0x40), (19, 0x03, 0x60),
                            (23, 0, 0x40), (36, 0, 0x70), (_ID_RECORD - 1, 0, 0x70)):
        and_mask[pos], or_mask[pos] = keep, set_
    return (bytes(table), int.from_bytes(bytes(and_mask) * _CHUNK, "big"),
            int.from_bytes(bytes(or_mask) * _CHUNK, "big"))


_ID_RECORD: Final = 36 + 1 + 16 + 1
_ID_TABLE, _ID_AND, _ID_OR = _id_masks()


def _random_ids(randbytes: Callable[[int], bytes]) -> tuple[list[str], list[str]]:
    """``_CHUNK`` UUID v4 event ids (canonical lowercase form) and 16-hex-digit transaction ids."""
    size = _ID_RECORD * _CHUNK
    mixed = (int.from_bytes(randbytes(size), "big") & _ID_AND) | _ID_OR
    parts = mixed.to_bytes(size, "big").translate(_ID_TABLE).decode("ascii").split("\n")
    return parts[0:-1:2], parts[1:-1:2]


def _with_offset(hour_start: datetime, off_ms: int, offset_minutes: int) -> str:
    """The same instant written in a local UTC offset (``+05:30``), as some producers send it."""
    local = (hour_start + timedelta(milliseconds=off_ms)).astimezone(timezone(timedelta(minutes=offset_minutes)))
    return local.isoformat(timespec="milliseconds")


_REQUIRED: Final = tuple(spec.name for spec in FIELDS if spec.required)


@dataclass(slots=True)
class _Breaking:
    """A valid record being made to break one rule, with the Kafka key and event id it leaves."""

    record: dict[str, Any]
    rng: random.Random
    end: datetime
    unknown_currencies: list[str]
    key: bytes
    event_id: str | None

    def choice(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return self.rng.choice(options)


def _missing_field(b: _Breaking) -> None:
    name = b.choice(_REQUIRED)
    del b.record[name]
    if name == "event_id":
        b.event_id = None
    if name == "account_id":
        b.key = b""


def _invalid_event_id(b: _Breaking) -> None:
    b.record["event_id"] = b.choice((f"evt_{b.rng.getrandbits(48):012x}", "", f"{b.event_id}-1", 12345))
    b.event_id = None


def _invalid_event_time(b: _Breaking) -> None:
    text: str = b.record["event_time"]
    moment = datetime.fromisoformat(text)
    b.record["event_time"] = b.choice((
        text.removesuffix("Z"),  # no offset
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.strftime("%d/%m/%Y %H:%M:%S"),
        int(moment.timestamp() * 1000),  # epoch millis
    ))


def _event_time_in_future(b: _Breaking) -> None:
    # A producer with a broken clock: far enough ahead to stay "in the future" for any replay.
    future = b.end + timedelta(days=36_524, minutes=b.rng.randrange(24 * 60))
    b.record["event_time"] = future.strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid_account_id(b: _Breaking) -> None:
    bad = b.choice(("", "acc_" + "9" * MAX_ID_LENGTH, 4242))
    b.record["account_id"] = bad
    b.key = str(bad).encode()


def _invalid_amount(b: _Breaking) -> None:
    amount: str = b.record["amount"]
    comma = amount.replace(".", ",") if "." in amount else amount + ",00"
    b.record["amount"] = b.choice((comma, f"{b.record['currency']} {amount}", "", True, "NaN"))


def _non_positive_amount(b: _Breaking) -> None:
    amount: str = b.record["amount"]
    b.record["amount"] = b.choice(("0.00", "-" + amount, 0, -float(amount)))


def _amount_precision(b: _Breaking) -> None:
    whole, _, frac = str(b.record["amount"]).partition(".")
    text = f"{whole}.{frac[:2]:0<2}{b.rng.randint(1, 9)}"  # a third, non-zero fraction digit
    b.record["amount"] = text if b.rng.random() < 0.5 else float(text)


def _declined_with(reasons: tuple[Any, ...]) -> Callable[[_Breaking], None]:
    def breaks(b: _Breaking) -> None:
        b.record["status"] = "declined"
        b.record["decline_reason"] = b.choice(reasons)

    return breaks


def _unexpected_decline_reason(b: _Breaking) -> None:
    b.record["status"] = "approved"
    b.record["decline_reason"] = b.choice(tuple(DECLINE_REASONS))


def _set(name: str, *options: Any) -> Callable[[_Breaking], None]:
    """A rule broken by giving ``name`` one of ``options``."""

    def breaks(b: _Breaking) -> None:
        b.record[name] = b.choice(options)

    return breaks


def _set_from(name: str, options: Callable[[_Breaking], tuple[Any, ...] | list[Any]]) -> Callable[[_Breaking], None]:
    """A rule broken by giving ``name`` one of the options computed from the record."""

    def breaks(b: _Breaking) -> None:
        b.record[name] = b.choice(options(b))

    return breaks


# How each record rule is broken (one entry per ``RECORD_REASONS`` code but the two whole-value ones,
# which ``_break`` handles: a value that is not JSON, or JSON that is not an object).
_BREAKERS: Final[dict[Reason, Callable[[_Breaking], None]]] = {
    Reason.MISSING_FIELD: _missing_field,
    Reason.UNSUPPORTED_SCHEMA_VERSION: _set("schema_version", 2, 3),
    Reason.INVALID_SCHEMA_VERSION: _set("schema_version", 0, -1, "1"),
    Reason.INVALID_EVENT_ID: _invalid_event_id,
    Reason.INVALID_EVENT_TYPE: _set("event_type", "chargeback", "Payment", "capture", ""),
    Reason.INVALID_EVENT_TIME: _invalid_event_time,
    Reason.EVENT_TIME_IN_FUTURE: _event_time_in_future,
    Reason.INVALID_TRANSACTION_ID: _set("transaction_id", "", "txn_" + "0" * MAX_ID_LENGTH, None),
    Reason.INVALID_ACCOUNT_ID: _invalid_account_id,
    Reason.INVALID_MERCHANT_ID: _set("merchant_id", "", "mrc_" + "x" * MAX_ID_LENGTH, None),
    Reason.INVALID_AMOUNT: _invalid_amount,
    Reason.NON_POSITIVE_AMOUNT: _non_positive_amount,
    Reason.AMOUNT_PRECISION: _amount_precision,
    Reason.INVALID_CURRENCY: _set_from(
        "currency", lambda b: (str(b.record["currency"]).lower(), "EURO", "US$", "", "€")),
    Reason.UNKNOWN_CURRENCY: _set_from("currency", lambda b: b.unknown_currencies),
    Reason.INVALID_STATUS: _set("status", "pending", "APPROVED", "authorized", "settled"),
    # an ISO 8583 response code sent as a number
    Reason.INVALID_DECLINE_REASON: _declined_with((51, 5, 54, ["do_not_honor"])),
    Reason.MISSING_DECLINE_REASON: _declined_with((None, "")),
    Reason.UNEXPECTED_DECLINE_REASON: _unexpected_decline_reason,
    Reason.INVALID_CHANNEL: _set("channel", "atm", "call_center", "WEB", "kiosk"),
    Reason.INVALID_COUNTRY: _set_from("country", lambda b: ("UK", "XX", "USA", str(b.record["country"]).lower())),
    Reason.INVALID_PAYMENT_METHOD: _set("payment_method", "crypto", "cash", "paypal", "CARD"),
    Reason.INVALID_RISK_SCORE: _set("risk_score", 1.5, -0.2, "high", 87),
}


def _break(kind: Reason, record: dict[str, Any], rng: random.Random, end: datetime,
           unknown_currencies: list[str]) -> tuple[bytes, bytes, str | None]:
    """Make ``record`` break exactly the rule behind ``kind``: (key, value, event_id or None)."""
    key = str(record["account_id"]).encode()
    if kind is Reason.INVALID_JSON:
        line = msgspec.json.encode(record)
        if rng.random() < 0.5:  # cut off mid-record (a producer crashing while writing)
            return key, line[: rng.randrange(1, len(line))], None
        return key, repr(record).encode(), None  # a Python dict repr: single quotes, None
    if kind is Reason.NOT_AN_OBJECT:
        if rng.random() < 0.5:
            return key, msgspec.json.encode([record]), None
        return key, msgspec.json.encode(msgspec.json.encode(record).decode()), None  # double-encoded
    breaker = _BREAKERS.get(kind)
    if breaker is None:  # pragma: no cover - RECORD_REASONS and _BREAKERS are kept in step by the tests
        raise ValueError(f"the generator cannot produce reason {kind}")
    breaking = _Breaking(record, rng, end, unknown_currencies, key, record["event_id"])
    breaker(breaking)
    return breaking.key, msgspec.json.encode(breaking.record), breaking.event_id
