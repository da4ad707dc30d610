"""``dataforge reconcile``: the counts of every stage of the embedded platform for one event date, each
difference explained, or named as unexplained.

Read straight from the lake (boto3 + gzip JSON lines + pyarrow Parquet, no Spark: it takes seconds), the
metrics table and the broker, through injected clients:

- **stream** (all dates, when a broker is given): records on the topic (end - start offsets), what the
  landing step's consumer group committed, its lag; ``landed`` (bronze + landing quarantine records of the
  Kafka source, counted by distinct position) must equal ``committed - start``: each record consumed is
  landed; lines of a position landed again after a redelivery are counted and explained.
- **bronze** records of the date (every ingest partition: bronze is partitioned by ingest time), their
  distinct ``event_id``\\ s and the duplicates dedupe drops; the **landing quarantine** by reason
  (attributed to the event date when the rejected record has a readable ``event_time``, else to its
  ingest date; those records never reach bronze).
- **silver** rows and distinct events; the **enrichment quarantine** (``no_fx_rate``) events.
  Check: the distinct bronze events are exactly the silver events plus the ``no_fx_rate`` ones.
- **gold**: the platform-total row equals silver's payments and refunds aggregated (one event per
  ``event_id``, the earliest ingested), and the grain rows add up to it.
- **DynamoDB** KPI items: exactly the keys the gold rows are exported under (``serving.kpi_item_keys``),
  and the total item equals gold's total row.
- **realtime** minute items: each equals silver's payments of that minute (final), or those of the
  Kafka source only (explained: the stream's figures, computed before batch files of that minute were
  refined into silver); a minute with stream payments in silver must have an item.

Anything else is an unexplained difference: the command exits non-zero naming it.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec
from boto3.dynamodb.conditions import Key

from dataforge import lake, serving
from dataforge.errors import ServiceError
from dataforge.schemas import PLATFORM_TOTAL
from dataforge.settings import Settings

GOLD_TOTAL_COLUMNS: Final = ("txn_count", "approved_count", "declined_count", "gross_volume_usd", "refund_count",
                             "refund_volume_usd", "unique_accounts")
_MINUTE_SK: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$")
_SILVER_ORDER: Final = ("ingested_at", "source", "transaction_id")  # spark.transforms.dedupe.SILVER_ORDER
_EXAMPLES: Final = 3
_FETCHERS: Final = 8


@dataclass(frozen=True, slots=True)
class Check:
    """One reconciliation rule: ``ok`` when exact, else ``detail`` names the difference."""

    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class Reconciliation:
    day: date
    counts: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def as_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "exact": not self.unexplained,
                "counts": {k: _plain(v) for k, v in self.counts.items()},
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class KafkaOffsets:
    """Totals over the topic's partitions: first and next offsets, and the landing group's commits."""

    start: int
    end: int
    committed: int


@dataclass(frozen=True, slots=True)
class Record:
    """What reconciliation needs of one silver row (or bronze record)."""

    event_id: str
    event_type: str
    status: str
    source: str
    minute: str
    amount_usd: Decimal
    account_id: str
    order: tuple[Any, ...]


# --- reading the lake ----------------------------------------------------------------------------------


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from (str(o["Key"]) for o in page.get("Contents", []))


def _int_or_digits(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits): kept as text
        return text


def json_line(line: bytes) -> Any:
    """One lake JSON line. A bronze line holds its record as sent, and the contract allows numbers beyond
    msgspec's range in unknown members (``1e400``, an integer of thousands of digits); such a line is read
    by the standard library instead (``inf`` for the float, the digits as text for the integer)."""
    try:
        return msgspec.json.decode(line)
    except msgspec.ValidationError:  # "Number out of range" (the syntax was fine)
        return json.loads(line, parse_int=_int_or_digits)


def _json_lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    return [json_line(line) for line in body.splitlines() if line.strip()]


def _objects_lines(s3: Any, bucket: str, keys: list[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(key, lines)`` of many small objects, fetched ``_FETCHERS`` at a time (boto3 clients are
    thread-safe; each fetch mostly waits on the endpoint)."""
    with ThreadPoolExecutor(max_workers=_FETCHERS) as pool:
        yield from zip(keys, pool.map(lambda key: _json_lines(s3, bucket, key), keys), strict=True)


def _parquet_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    def read(key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = pq.read_table(
            io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()
        return rows

    keys = [k for k in _keys(s3, bucket, prefix) if k.endswith(".parquet")]
    with ThreadPoolExecutor(max_workers=_FETCHERS) as pool:
        return [row for rows in pool.map(read, keys) for row in rows]


def _event_date(text: Any) -> date | None:
    try:
        return datetime.fromisoformat(str(text)).astimezone(UTC).date()
    except ValueError:
        return None


def _raw_event(raw: Any) -> dict[str, Any]:
    """The event of a quarantine row's ``raw`` (an event, or a bronze line holding one); {} if unreadable
    (quarantined records are often not JSON a decoder can read: bad syntax, numbers beyond its range, or
    nesting deeper than its recursion allows, which raises ``RecursionError``)."""
    try:
        obj = msgspec.json.decode(str(raw))
    except (msgspec.DecodeError, RecursionError):
        return {}
    if isinstance(obj, dict) and isinstance(obj.get("event"), dict):
        return dict(obj["event"])
    return obj if isinstance(obj, dict) else {}


def quarantine_date(row: dict[str, Any]) -> date | None:
    """The event date a landing quarantine row counts under: its record's ``event_time`` when readable,
    else its ingest date (``dataforge quarantine`` selects rows by the same rule)."""
    return _event_date(_raw_event(row.get("raw")).get("event_time")) or _event_date(row.get("ingested_at"))


def bronze_records(s3: Any, bucket: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(event, ingest)`` of every bronze line (``dataforge.bronze`` format), all sources and partitions."""
    keys = [k for k in _keys(s3, bucket, f"{lake.TRANSACTIONS_TOPIC}/") if k.endswith(lake.BRONZE_SUFFIX)]
    for _, lines in _objects_lines(s3, bucket, keys):
        for line in lines:
            yield line["event"], line["ingest"]


def landing_quarantine(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Quarantine rows the landing step wrote (``transactions/source=.../``)."""
    keys = [k for k in _keys(s3, bucket, f"{lake.TRANSACTIONS_TOPIC}/") if k.endswith(lake.BRONZE_SUFFIX)]
    for _, lines in _objects_lines(s3, bucket, keys):
        yield from lines


def enrichment_quarantine_ids(s3: Any, bucket: str, day: date) -> set[str]:
    """``event_id``\\ s quarantined by the Spark jobs (``no_fx_rate``) for ``day``, over every job's output."""
    ids: set[str] = set()
    keys = [k for k in _keys(s3, bucket, "enrichment/") if k.endswith((".json", ".json.gz"))]
    for key, rows in _objects_lines(s3, bucket, keys):
        partition = re.search(r"/event_date=(\d{4}-\d{2}-\d{2})/", key)
        for row in rows:
            when = partition.group(1) if partition else str(row.get("event_date", ""))
            event_id = _raw_event(row.get("raw")).get("event_id")
            if when == day.isoformat() and event_id:
                ids.add(str(event_id))
    return ids


def _silver_record(row: dict[str, Any]) -> Record:
    event_time: datetime = row["event_time"]
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=UTC)
    return Record(str(row["event_id"]), str(row["event_type"]), str(row["status"]), str(row["source"]),
                  serving.realtime_sk(event_time), Decimal(row["amount_usd"]), str(row["account_id"]),
                  tuple(row[c] for c in _SILVER_ORDER))


def earliest(records: list[Record]) -> list[Record]:
    """One record per ``event_id``: the earliest ingested (the KPI definition's dedupe)."""
    best: dict[str, Record] = {}
    for record in records:
        held = best.get(record.event_id)
        if held is None or record.order < held.order:
            best[record.event_id] = record
    return list(best.values())


# --- realtime: the one reader of the metrics table's minute items ----------------------------------------


def realtime_minutes(table: Any, day: date) -> dict[str, dict[str, Any]]:
    """The final realtime minute items of ``day`` by minute: Spark's items under ``RT#<date>`` keyed by the
    minute itself (``serving.realtime_sk``), not flagged ``provisional``. The speed path's provisional
    per-partition items live under other keys (ADR 0014) and are not read: the final figures replace them."""
    found: dict[str, dict[str, Any]] = {}
    for item in _query(table, serving.realtime_pk(datetime.combine(day, datetime.min.time(), UTC))):
        if _MINUTE_SK.match(str(item[serving.SK])) and not item.get("provisional"):
            found[str(item[serving.SK])] = item
    return found


def _query(table: Any, pk: str, sk_prefix: str | None = None) -> list[dict[str, Any]]:
    condition: Any = Key(serving.PK).eq(pk)
    if sk_prefix is not None:
        condition = condition & Key(serving.SK).begins_with(sk_prefix)
    query: dict[str, Any] = {"KeyConditionExpression": condition}
    items: list[dict[str, Any]] = []
    while True:
        page = table.query(**query)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the stages ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sources:
    """Where reconciliation reads: an S3 client, the metrics table (a boto3 ``Table``), and optionally the
    topic's offsets."""

    s3: Any
    metrics_table: Any
    kafka_offsets: Callable[[], KafkaOffsets | None] | None = None


def reconcile(settings: Settings, day: date, sources: Sources) -> Reconciliation:
    """Every stage's counts for ``day`` and the checks between them (see the module docstring)."""
    result = Reconciliation(day)
    buckets = settings.lake()
    bronze_ids = _bronze(result, sources, buckets.bronze, buckets.quarantine)
    silver = [_silver_record(r) for r in _parquet_rows(sources.s3, buckets.silver, lake.silver_prefix(day))]
    _silver(result, sources, buckets.quarantine, bronze_ids, silver)
    deduped = earliest(silver)
    gold = _parquet_rows(sources.s3, buckets.gold, lake.gold_prefix(day))
    _gold(result, gold, deduped)
    _dynamodb(result, sources.metrics_table, gold)
    _realtime(result, sources.metrics_table, deduped)
    return result


def _bronze(result: Reconciliation, sources: Sources, bronze: str, quarantine: str) -> set[str]:
    day, s3 = result.day, sources.s3
    records = 0
    ids: set[str] = set()
    kafka_landed = 0
    positions: set[str] = set()  # topic-partition@offset of every Kafka record landed
    for event, ingest in bronze_records(s3, bronze):
        if ingest.get("source") == lake.Source.KAFKA.value:
            kafka_landed += 1
            positions.add(str(ingest.get("position")))
        if _event_date(event.get("event_time")) == day:
            records += 1
            ids.add(str(ingest["event_id"]))
    reasons: Counter[str] = Counter()
    for row in landing_quarantine(s3, quarantine):
        if row.get("source") == lake.Source.KAFKA.value:
            kafka_landed += 1
            positions.add(str(row.get("position")))
        if quarantine_date(row) == day:
            reasons[str(row.get("reason"))] += 1
    offsets = sources.kafka_offsets() if sources.kafka_offsets is not None else None
    if offsets is not None:
        _stream(result, offsets, len(positions), kafka_landed - len(positions))
    result.counts.update({"bronze records": records, "bronze events": len(ids),
                          "duplicates dropped": records - len(ids),
                          "landing quarantine": dict(sorted(reasons.items()))})
    return ids


def _stream(result: Reconciliation, offsets: KafkaOffsets, landed: int, again: int) -> None:
    """``landed``: distinct Kafka positions in bronze + quarantine; ``again``: further lines of a position
    already counted. A landing process that crashes after writing a batch and before committing its offsets
    gets the batch again, possibly cut at other offsets (the mapping polls from the committed offsets), so
    its records are written a second time under another offset-range key: at-least-once in bronze,
    explained; silver keeps one row per ``event_id`` (tests/chaos, experiment ``mapping_sigkill``)."""
    consumed, lag = offsets.committed - offsets.start, offsets.end - offsets.committed
    result.counts.update({"topic records (all dates)": offsets.end - offsets.start,
                          "landing lag (all dates)": lag, "landed from Kafka (all dates)": landed,
                          "Kafka records landed again after a redelivery (explained)": again})
    result.check("every consumed Kafka record landed once", landed == consumed,
                 f"bronze + quarantine hold {landed} distinct Kafka records; the landing group consumed "
                 f"{consumed} ({lag} more awaiting landing)")


def _examples(ids: set[str]) -> str:
    return ", ".join(sorted(ids)[:_EXAMPLES])


def _silver(result: Reconciliation, sources: Sources, quarantine: str, bronze_ids: set[str],
            silver: list[Record]) -> None:
    silver_ids = {r.event_id for r in silver}
    no_rate = enrichment_quarantine_ids(sources.s3, quarantine, result.day)
    result.counts.update({"silver rows": len(silver), "silver events": len(silver_ids),
                          "silver duplicate rows (gold drops them)": len(silver) - len(silver_ids),
                          "quarantined no_fx_rate events": len(no_rate)})
    missing = bronze_ids - silver_ids - no_rate
    extra = silver_ids - bronze_ids
    both = silver_ids & no_rate
    problems = []
    if missing:
        problems.append(f"{len(missing)} bronze event(s) in neither silver nor quarantine (e.g. {_examples(missing)})")
    if extra:
        problems.append(f"{len(extra)} silver event(s) not in bronze (e.g. {_examples(extra)})")
    if both:
        problems.append(f"{len(both)} event(s) both in silver and quarantined (e.g. {_examples(both)})")
    result.check("bronze events = silver events + no_fx_rate quarantined", not problems,
                 "; ".join(problems) or f"{len(bronze_ids)} = {len(silver_ids)} + {len(no_rate - silver_ids)}")


def silver_totals(deduped: list[Record]) -> dict[str, Any]:
    """Gold's platform-total columns computed from silver (ARCHITECTURE.md, KPI definitions)."""
    payments = [r for r in deduped if r.event_type == "payment"]
    approved = [r for r in payments if r.status == "approved"]
    refunds = [r for r in deduped if r.event_type == "refund" and r.status == "approved"]
    return {"txn_count": len(payments), "approved_count": len(approved),
            "declined_count": len(payments) - len(approved),
            "gross_volume_usd": sum((r.amount_usd for r in approved), Decimal(0)),
            "refund_count": len(refunds), "refund_volume_usd": sum((r.amount_usd for r in refunds), Decimal(0)),
            "unique_accounts": len({r.account_id for r in payments})}


def _is_total(row: dict[str, Any]) -> bool:
    return bool(row["merchant_id"] == row["country"] == row["channel"] == PLATFORM_TOTAL)


def _gold(result: Reconciliation, gold: list[dict[str, Any]], deduped: list[Record]) -> None:
    totals = [r for r in gold if _is_total(r)]
    total = {c: totals[0][c] for c in GOLD_TOTAL_COLUMNS} if totals else None
    expected = silver_totals(deduped)
    result.counts.update({"gold rows": len(gold), "gold transactions": total and total["txn_count"],
                          "gold gross volume usd": total and total["gross_volume_usd"],
                          "gold refund volume usd": total and total["refund_volume_usd"]})
    if total is None:
        ok = expected["txn_count"] == expected["refund_count"] == 0
        held = f" while silver holds {expected['txn_count']} payment(s), {expected['refund_count']} refund(s)"
        result.check("gold total = silver aggregated", ok, "no gold total row" + ("" if ok else held))
        return
    diffs = [f"{c}: gold {total[c]} vs silver {expected[c]}" for c in GOLD_TOTAL_COLUMNS if total[c] != expected[c]]
    result.check("gold total = silver aggregated", not diffs, "; ".join(diffs) or f"{total['txn_count']} payments")
    grain = [r for r in gold if not _is_total(r)]
    sums = {c: sum((r[c] for r in grain), Decimal(0)) for c in ("txn_count", "gross_volume_usd", "refund_volume_usd")}
    wrong = [f"{c}: grain rows add to {sums[c]}, total {total[c]}" for c in sums if sums[c] != total[c]]
    result.check("gold grain rows add up to the total", not wrong, "; ".join(wrong) or f"{len(grain)} grain rows")


def _batch_get(table: Any, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The items of ``keys`` that exist (``BatchGetItem``, 100 keys a request, unprocessed keys retried)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 100):
        request: dict[str, Any] = {table.name: {"Keys": [{serving.PK: pk, serving.SK: sk}
                                                          for pk, sk in ordered[start:start + 100]]}}
        while request:
            answer = table.meta.client.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(table.name, []):
                found[(str(item[serving.PK]), str(item[serving.SK]))] = item
            request = answer.get("UnprocessedKeys") or {}
    return found


def _dynamodb(result: Reconciliation, table: Any, gold: list[dict[str, Any]]) -> None:
    """The date's items (one key query) must be the gold rows' grain keys; the other keys a row is served
    under (by merchant, platform total) are fetched by key."""
    day = result.day
    wanted = {key for row in gold for key in serving.kpi_item_keys(day, row["merchant_id"], row["country"],
                                                                    row["channel"])}
    by_date = {(str(i[serving.PK]), str(i[serving.SK])): i for i in _query(table, serving.kpi_date_pk(day))}
    items = {**by_date, **_batch_get(table, wanted - set(by_date))}
    result.counts["DynamoDB KPI items"] = len(items)
    missing, extra = wanted - set(items), set(items) - wanted
    problems = [f"{len(missing)} item(s) missing (e.g. {_examples({'/'.join(k) for k in missing})})"] if missing else []
    if extra:
        problems.append(f"{len(extra)} item(s) not in gold (e.g. {_examples({'/'.join(k) for k in extra})})")
    for row in (r for r in gold if _is_total(r)):
        item = items.get((serving.KPI_TOTAL_PK, serving.kpi_total_sk(day)), {})
        problems += [f"total item {c}: {item.get(c)} vs gold {row[c]}" for c in GOLD_TOTAL_COLUMNS
                     if item and Decimal(item.get(c, 0)) != Decimal(row[c])]
    result.check("DynamoDB items = gold rows exported", not problems,
                 "; ".join(problems) or f"{len(gold)} gold rows -> {len(items)} items")


def minute_totals(records: list[Record]) -> dict[str, tuple[int, int, int, Decimal]]:
    """Per minute over payments: (count, approved, declined, approved volume usd)."""
    acc: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for r in records:
        if r.event_type == "payment":
            a = acc[r.minute]
            a[0] += 1
            a[1 if r.status == "approved" else 2] += 1
            a[3] += r.amount_usd if r.status == "approved" else 0
    return {m: (a[0], a[1], a[2], a[3]) for m, a in acc.items()}


def _item_totals(item: dict[str, Any]) -> tuple[int, int, int, Decimal]:
    return (int(item["txn_count"]), int(item["approved_count"]), int(item["declined_count"]),
            Decimal(item.get("volume_usd", 0)))


def _realtime(result: Reconciliation, table: Any, deduped: list[Record]) -> None:
    items = realtime_minutes(table, result.day)
    final = minute_totals(deduped)
    stream = minute_totals([r for r in deduped if r.source == lake.Source.KAFKA.value])
    counted = {m: _item_totals(i) for m, i in items.items()}
    result.counts.update({"realtime minutes": len(items),
                          "realtime transactions": sum(v[0] for v in counted.values()),
                          "realtime volume usd": sum((v[3] for v in counted.values()), Decimal(0))})
    stale = sorted(m for m, v in counted.items() if v != final.get(m) and v == stream.get(m))
    wrong = sorted(m for m, v in counted.items() if v != final.get(m) and v != stream.get(m))
    missing = sorted(set(stream) - set(items))
    result.counts["realtime minutes before batch files (explained)"] = len(stale)
    problems = [f"{len(wrong)} minute(s) differ from silver (e.g. {', '.join(wrong[:_EXAMPLES])})"] if wrong else []
    if missing:
        problems.append(f"{len(missing)} minute(s) with stream payments have no item "
                        f"(e.g. {', '.join(missing[:_EXAMPLES])})")
    result.check("realtime minutes = silver payments per minute", not problems, "; ".join(problems) or
                 f"{len(items) - len(stale)} final, {len(stale)} equal to the stream's payments (batch files of "
                 "those minutes were refined after them)")


def _committed(consumer: Any, partitions: list[Any], group_id: str, timeout: float) -> list[Any]:
    """The group's commits, waiting (up to ``timeout``) for the group coordinator of a fresh cluster."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout
    while True:
        try:
            committed: list[Any] = consumer.committed(partitions, timeout=timeout)
            return committed
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise ServiceError(f"no committed offsets for the landing group {group_id}: {exc}") from exc
            time.sleep(0.5)


def kafka_offsets(bootstrap_servers: str, topic: str, group_id: str, timeout: float = 10.0) -> KafkaOffsets | None:
    """The topic's offsets summed over its partitions, and what ``group_id`` committed (its start offset
    where it committed nothing); None when the topic does not exist."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group_id,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return None
        partitions = metadata.partitions
        start = end = committed = 0
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout) for p in partitions}
        for tp in _committed(consumer, [TopicPartition(topic, p) for p in partitions], group_id, timeout):
            low, high = marks[tp.partition]
            start, end = start + low, end + high
            committed += tp.offset if tp.offset >= 0 else low
        return KafkaOffsets(start, end, committed)
    except KafkaException as exc:
        raise ServiceError(f"cannot read the offsets of topic {topic} at {bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
