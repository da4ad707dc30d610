"""The synthetic event generator and its sinks: determinism, exact expectations, realism, I/O."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from dataforge.contract import Reason, Rejection, TransactionEvent, Validator
from dataforge.errors import ServiceError
from dataforge.reference import FxTable, Merchant, load_fx, load_merchants
from devkit.generator import (
    RECORD_REASONS,
    GeneratedEvent,
    GeneratorConfig,
    generate_events,
    summary,
)
from devkit.generator_sinks import (
    KAFKA_PRODUCER_DEFAULTS,
    KafkaOptions,
    send_to_kafka,
    write_jsonl,
    write_stream,
)
from devkit.paths import project_root

REFERENCE = project_root() / "data" / "reference"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
END = datetime(2026, 11, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def merchants() -> Mapping[str, Merchant]:
    return load_merchants(REFERENCE)


@pytest.fixture(scope="module")
def fx() -> FxTable:
    return load_fx(REFERENCE)


@pytest.fixture(scope="module")
def validator(fx: FxTable) -> Validator:
    return Validator(fx.currencies)


@pytest.fixture(scope="module")
def make(merchants: Mapping[str, Merchant], fx: FxTable) -> Callable[..., list[GeneratedEvent]]:
    def make(**overrides: Any) -> list[GeneratedEvent]:
        options: dict[str, Any] = {"count": 5_000, "seed": 7, "start": START, "end": END, **overrides}
        return list(generate_events(GeneratorConfig(**options), merchants=merchants, fx=fx))

    return make


@pytest.fixture(scope="module")
def mixed(make: Callable[..., list[GeneratedEvent]]) -> list[GeneratedEvent]:
    """20k records: 20 % invalid, 5 % duplicates, 10 % refunds."""
    return make(count=20_000, seed=42, invalid_fraction=0.2, duplicate_fraction=0.05, refund_fraction=0.1)


def _valid_new(events: list[GeneratedEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.value) for e in events if e.expected_reason is None and not e.is_duplicate]


@pytest.fixture(scope="module")
def records(mixed: list[GeneratedEvent]) -> list[dict[str, Any]]:
    """The new valid events of ``mixed``, decoded."""
    return _valid_new(mixed)


# --- determinism and exact expectations ----------------------------------------------------------


def test_same_seed_gives_the_same_bytes(make: Callable[..., list[GeneratedEvent]]) -> None:
    first = make(invalid_fraction=0.1, duplicate_fraction=0.05)
    again = make(invalid_fraction=0.1, duplicate_fraction=0.05)
    other = make(invalid_fraction=0.1, duplicate_fraction=0.05, seed=8)
    assert first == again
    assert [e.value for e in first] != [e.value for e in other]


def test_expected_reason_is_exactly_what_the_validator_returns(
    mixed: list[GeneratedEvent], validator: Validator
) -> None:
    mismatches = []
    for event in mixed:
        result = validator.validate(event.value)
        got = result.reason if isinstance(result, Rejection) else None
        if got is not event.expected_reason:
            mismatches.append((event.expected_reason, got, event.value[:200]))
        if isinstance(result, TransactionEvent):
            assert result.canonical_event_id == event.event_id
            assert event.key == result.account_id.encode()
    assert mismatches == []


def test_every_record_level_reason_is_generated(mixed: list[GeneratedEvent]) -> None:
    assert set(RECORD_REASONS) == set(Reason) - {Reason.NO_FX_RATE, Reason.MALFORMED_FILE, Reason.VALIDATION_ERROR}
    assert set(summary(mixed).by_reason) == {r.value for r in RECORD_REASONS}


def test_invalid_kinds_cycle_in_a_fixed_order(make: Callable[..., list[GeneratedEvent]]) -> None:
    kinds = [e.expected_reason for e in make(count=3_000, invalid_fraction=0.3) if e.expected_reason]
    assert kinds[: len(RECORD_REASONS) * 2] == list(RECORD_REASONS) * 2


def test_fractions_are_honoured(records: list[dict[str, Any]], mixed: list[GeneratedEvent]) -> None:
    counts = summary(mixed)
    assert counts.total == len(mixed) == counts.valid + counts.invalid
    assert counts.invalid / counts.total == pytest.approx(0.2, abs=0.012)
    assert counts.duplicates / counts.total == pytest.approx(0.05, abs=0.006)
    types = Counter(r["event_type"] for r in records)
    assert types["refund"] / sum(types.values()) == pytest.approx(0.1, abs=0.012)


def test_no_invalid_and_no_duplicates_by_default(make: Callable[..., list[GeneratedEvent]]) -> None:
    counts = summary(make(count=3_000))
    assert (counts.invalid, counts.duplicates, counts.valid) == (0, 0, 3_000)


def test_duplicates_re_send_an_earlier_valid_event_byte_for_byte(mixed: list[GeneratedEvent]) -> None:
    first_seen: dict[str, GeneratedEvent] = {}
    duplicates = 0
    for event in mixed:
        if event.is_duplicate:
            duplicates += 1
            assert event.event_id in first_seen
            original = first_seen[event.event_id]
            assert (event.value, event.key, event.expected_reason) == (original.value, original.key, None)
        elif event.event_id is not None and event.expected_reason is None:
            assert event.event_id not in first_seen, "a new event reused an event_id"
            first_seen[event.event_id] = event
    assert duplicates > 500


def test_refunds_repay_a_recent_approved_payment(records: list[dict[str, Any]]) -> None:
    payments: dict[tuple[str, str, str], list[Decimal]] = {}
    refunds = 0
    for record in records:
        key = (record["account_id"], record["merchant_id"], record["currency"])
        amount = Decimal(str(record["amount"]))
        if record["event_type"] == "payment" and record["status"] == "approved":
            payments.setdefault(key, []).append(amount)
        elif record["event_type"] == "refund":
            refunds += 1
            assert key in payments, "a refund of a payment that was never sent"
            assert amount <= max(payments[key])
    assert refunds > 100


# --- realism -------------------------------------------------------------------------------------


def test_a_few_merchants_carry_most_traffic(records: list[dict[str, Any]]) -> None:
    per_merchant = Counter(r["merchant_id"] for r in records)
    top = per_merchant.most_common(len(per_merchant) // 10)
    assert sum(n for _, n in top) / sum(per_merchant.values()) > 0.5


def test_unknown_merchants_appear(
    records: list[dict[str, Any]], mixed: list[GeneratedEvent], merchants: Mapping[str, Merchant]
) -> None:
    unknown = [r for r in records if r["merchant_id"] not in merchants]
    assert 0 < len(unknown) < 0.02 * len(mixed)


def test_event_times_increase_within_the_window_with_a_day_peak(records: list[dict[str, Any]]) -> None:
    times = [datetime.fromisoformat(r["event_time"]) for r in records]
    assert all(START <= t < END for t in times)
    assert times == sorted(times)
    per_hour = Counter(t.astimezone(UTC).hour for t in times)
    assert min(per_hour[h] for h in range(11, 19)) > 2.5 * max(per_hour[h] for h in range(1, 5))


def test_currency_mostly_follows_the_merchant_country(
    records: list[dict[str, Any]], merchants: Mapping[str, Merchant]
) -> None:
    euro = {"DE", "FR", "ES", "IT", "NL", "IE", "AT", "PT", "BE", "FI"}
    home = {"US": "USD", "GB": "GBP", "JP": "JPY", "BR": "BRL", "IN": "INR", "CA": "CAD"}
    known = [r for r in records if r["merchant_id"] in merchants]
    matching = 0
    for record in known:
        country = merchants[record["merchant_id"]].country
        expected = "EUR" if country in euro else home.get(country)
        matching += expected is None or record["currency"] == expected
    assert matching / len(known) > 0.9


def test_amounts_have_two_decimals_and_whole_yen(records: list[dict[str, Any]]) -> None:
    kinds = Counter(type(r["amount"]).__name__ for r in records)
    assert kinds["str"] > 0.9 * len(records)
    assert kinds["float"] + kinds["int"] > 0  # some amounts are JSON numbers
    for record in records:
        text = str(record["amount"])
        if record["currency"] == "JPY":
            assert text.isdigit()
        else:
            assert len(text.partition(".")[2]) <= 2
    usd = sorted(Decimal(str(r["amount"])) for r in records if r["currency"] == "USD")
    assert Decimal(5) < usd[len(usd) // 2] < Decimal(500)  # median ticket
    assert usd[-1] > 10 * usd[len(usd) // 2]  # a long right tail (log-normal)


def test_declines_carry_a_reason_and_rise_with_risk(records: list[dict[str, Any]]) -> None:
    payments = [r for r in records if r["event_type"] == "payment"]
    for record in payments:
        assert (record["status"] == "declined") is (record["decline_reason"] is not None)

    def decline_rate(rows: list[dict[str, Any]]) -> float:
        return sum(r["status"] == "declined" for r in rows) / len(rows)

    scored = [r for r in payments if r.get("risk_score") is not None]
    high = [r for r in scored if r["risk_score"] > 0.6]
    low = [r for r in scored if r["risk_score"] < 0.2]
    assert decline_rate(high) > 3 * decline_rate(low)
    assert 0.03 < decline_rate(payments) < 0.15
    assert {r["decline_reason"] for r in payments if r["decline_reason"]} >= {
        "insufficient_funds", "do_not_honor", "suspected_fraud", "expired_card"}


def test_accounts_repeat(records: list[dict[str, Any]]) -> None:
    accounts = Counter(r["account_id"] for r in records)
    repeat_share = sum(n for n in accounts.values() if n > 1) / sum(accounts.values())
    assert 0.2 < repeat_share < 0.9
    assert accounts.most_common(1)[0][1] < 0.01 * sum(accounts.values())


def test_no_fx_rate_is_flagged_for_the_late_currency(
    make: Callable[..., list[GeneratedEvent]], fx: FxTable
) -> None:
    """HUF rates start on 2026-06-01: valid HUF events before then must be flagged."""
    events = make(count=15_000, start=datetime(2026, 5, 31, tzinfo=UTC), end=datetime(2026, 6, 2, tzinfo=UTC))
    flagged = 0
    for event in events:
        record = json.loads(event.value)
        day = datetime.fromisoformat(record["event_time"]).astimezone(UTC).date()
        missing = fx.rate_on(record["currency"], day) is None
        assert (event.enrichment_reason is Reason.NO_FX_RATE) is missing
        flagged += missing
    assert flagged > 0
    assert summary(events).no_fx_rate == flagged


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"invalid_fraction": -0.1}, "invalid_fraction must be within"),
        ({"duplicate_fraction": 1.5}, "duplicate_fraction must be within"),
        ({"invalid_fraction": 0.6, "duplicate_fraction": 0.6}, "must not exceed 1"),
        ({"count": -1}, "count must be"),
        ({"start": datetime(2026, 11, 1)}, "timezone-aware"),  # naive
    ],
)
def test_bad_config_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**options)


def test_an_end_in_the_future_is_refused(merchants: Mapping[str, Merchant], fx: FxTable) -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    config = GeneratorConfig(count=10, end=now + timedelta(hours=1))
    with pytest.raises(ValueError, match="in the future"):
        generate_events(config, merchants=merchants, fx=fx, clock=lambda: now)


def test_default_window_is_the_last_day_ending_ten_minutes_ago(
    merchants: Mapping[str, Merchant], fx: FxTable
) -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    events = list(generate_events(GeneratorConfig(count=2_000), merchants=merchants, fx=fx, clock=lambda: now))
    times = [datetime.fromisoformat(json.loads(e.value)["event_time"]) for e in events]
    assert min(times) >= now - timedelta(hours=24, minutes=10)
    assert max(times) < now - timedelta(minutes=10)


def test_zero_count_yields_nothing(make: Callable[..., list[GeneratedEvent]]) -> None:
    assert make(count=0) == []


# --- sinks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_jsonl_file_holds_one_record_per_line(
    tmp_path: Path, make: Callable[..., list[GeneratedEvent]], compressed: bool
) -> None:
    events = make(count=9_000, invalid_fraction=0.1, duplicate_fraction=0.05)
    path = tmp_path / ("out.jsonl.gz" if compressed else "out.jsonl")
    seen: list[int] = []
    report = write_jsonl(events, path, gzip=compressed, progress=seen.append, progress_every=4_000)
    data = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
    assert data.split(b"\n")[:-1] == [e.value for e in events]
    assert (report.sent, report.delivered, report.failed) == (9_000, 9_000, 0)
    assert report.summary == summary(events)
    assert seen[-1] == 9_000
    assert len(seen) >= 2
    assert list(tmp_path.iterdir()) == [path]  # the .part file was renamed


def test_a_failed_file_write_leaves_no_partial_file(tmp_path: Path, make: Callable[..., list[GeneratedEvent]]) -> None:
    def broken() -> Any:
        yield from make(count=10)
        raise RuntimeError("producer crashed")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_stream_sink_writes_lines(make: Callable[..., list[GeneratedEvent]]) -> None:
    import io

    events = make(count=100)
    buffer = io.BytesIO()
    report = write_stream(events, buffer)
    assert buffer.getvalue() == b"".join(e.value + b"\n" for e in events)
    assert report.sent == 100


class _Topic:
    def __init__(self, error: KafkaError | None = None) -> None:
        self.error = error


class _Metadata:
    def __init__(self, topics: dict[str, _Topic]) -> None:
        self.topics = topics


class FakeProducer:
    """Records produce calls; delivers on poll/flush; can fail deliveries or fill its queue."""

    def __init__(self, config: dict[str, Any], *, topics: dict[str, _Topic] | None = None,
                 reachable: bool = True, fail_every: int = 0, queue_limit: int = 0) -> None:
        self.config = config
        self.topics = {"transactions": _Topic()} if topics is None else topics
        self.reachable = reachable
        self.fail_every = fail_every
        self.queue_limit = queue_limit
        self.pending: list[tuple[bytes, bytes, Any]] = []
        self.produced: list[tuple[str, bytes, bytes]] = []
        self.buffer_errors = 0
        self.reports = 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> _Metadata:
        if not self.reachable:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))
        return _Metadata({k: v for k, v in self.topics.items() if topic in (None, k)} or
                         {topic or "": _Topic(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))})

    def produce(self, topic: str, *, value: bytes | None = None, key: bytes | None = None,
                on_delivery: Any = None) -> None:
        if self.queue_limit and len(self.pending) >= self.queue_limit:
            self.buffer_errors += 1
            raise BufferError("queue full")
        assert value is not None
        assert key is not None
        self.produced.append((topic, key, value))
        self.pending.append((key, value, on_delivery))

    def poll(self, timeout: float = -1) -> int:
        delivered = len(self.pending)
        for _key, _value, callback in self.pending:
            self.reports += 1
            failed = self.fail_every and self.reports % self.fail_every == 0
            callback(KafkaError(KafkaError._MSG_TIMED_OUT) if failed else None, None)
        self.pending.clear()
        return delivered

    def flush(self, timeout: float = -1) -> int:
        self.poll(0)
        return 0


def test_kafka_sink_produces_every_record_keyed_by_account(make: Callable[..., list[GeneratedEvent]]) -> None:
    events = make(count=3_000, invalid_fraction=0.05, duplicate_fraction=0.02)
    producers: list[FakeProducer] = []

    def factory(config: dict[str, Any]) -> FakeProducer:
        producers.append(FakeProducer(config, queue_limit=700))
        return producers[-1]

    report = send_to_kafka(events, bootstrap_servers="broker:9092", topic="transactions",
                           options=KafkaOptions(producer_factory=factory))
    (producer,) = producers
    assert producer.produced == [("transactions", e.key, e.value) for e in events]
    assert producer.buffer_errors > 0  # a full queue was waited out, nothing lost
    assert (report.sent, report.delivered, report.failed) == (3_000, 3_000, 0)
    assert report.summary == summary(events)
    for name, value in KAFKA_PRODUCER_DEFAULTS.items():
        assert producer.config[name] == value
    assert producer.config["enable.idempotence"] is True
    assert producer.config["acks"] == "all"
    assert producer.config["bootstrap.servers"] == "broker:9092"


def test_kafka_sink_counts_failed_deliveries(make: Callable[..., list[GeneratedEvent]]) -> None:
    events = make(count=500)
    report = send_to_kafka(events, bootstrap_servers="b:1", topic="transactions",
                           options=KafkaOptions(producer_factory=lambda config: FakeProducer(config, fail_every=5)))
    assert (report.sent, report.delivered, report.failed) == (500, 400, 100)
    assert report.errors


def test_kafka_sink_respects_the_rate_limit(make: Callable[..., list[GeneratedEvent]]) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    send_to_kafka(make(count=200), bootstrap_servers="b:1", topic="transactions", rate=100.0,
                  options=KafkaOptions(producer_factory=FakeProducer, sleep=sleep, clock=lambda: now[0]))
    assert sum(slept) == pytest.approx(1.99, abs=0.02)  # 200 records at 100/s: the last leaves at 1.99 s


@pytest.mark.parametrize(
    ("producer_options", "message"),
    [({"reachable": False}, "not reachable.*dataforge services up"), ({"topics": {}}, "topic 'transactions'")],
)
def test_kafka_sink_fails_fast_with_a_hint(producer_options: dict[str, Any], message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        send_to_kafka([], bootstrap_servers="b:1", topic="transactions",
                      options=KafkaOptions(producer_factory=lambda config: FakeProducer(config, **producer_options)))


def test_summary_counts_by_kind(mixed: list[GeneratedEvent]) -> None:
    counts = summary(mixed)
    assert sum(counts.by_reason.values()) == counts.invalid
    assert counts.unique_valid == len({e.event_id for e in mixed if e.expected_reason is None})
    assert counts.no_fx_rate == 0  # every currency has rates in November 2026
