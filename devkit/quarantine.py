"""The quarantine zone, read and replayed: ``dataforge quarantine list`` and ``dataforge quarantine replay``.

The runbooks' way into the quarantine zone (the query runner refuses it: ``chalicelib.sqlguard``).

- **list**: the quarantine rows counted under one event date (the rule ``dataforge reconcile`` uses,
  :func:`devkit.reconcile.quarantine_date`), per stage (``landing``: rejected by a landing function;
  ``enrichment``: ``no_fx_rate``, rejected by a Spark job), reason and source, with sample rows.
- **replay**: judges the landing quarantine rows of one reason and date again, through the landing code
  of their original path (``lambdas.common.kafka_landing.land_partition`` for a Kafka record,
  ``lambdas.common.file_landing.judge_lines`` for a batch-file line), with the validator the landing
  functions build (``lambdas.common.wiring.landing_parts``), after the cause was fixed (a currency added
  to the FX reference table, a validator bug fixed). Each row keeps its position and ingest time, so a
  record is judged against the same future-time horizon as when it arrived and its bronze line is
  byte for byte the one its batch would write if retried now.

  A replay rewrites, per quarantine object (one topic-partition offset range or one landed file
  version, ``dataforge.lake.bronze_key``), the two objects its batch wrote: the bronze object under the
  same key gains the now-valid lines (in position order, as the batch writes them), the quarantine
  object keeps the other rows and the still-invalid ones (deleted when none is left). The bronze object
  is written first; a line whose position bronze already holds is not added again. So every record
  stays exactly once in bronze or in quarantine (``dataforge reconcile``'s "every consumed Kafka record
  landed once" stays exact), a replay interrupted between the two writes is finished by running it
  again, and a second replay changes nothing.

Not replayed here: ``no_fx_rate`` rows (their records are in bronze already: ``dataforge backfill``
enriches them again with the current FX table) and ``malformed_file`` rows (a file that cannot be read
stays unreadable: upload a corrected file to the landing bucket). A replay updates neither the speed
path's provisional minutes nor the ingest counters: silver, gold, the export and the final realtime
minutes of the date are rebuilt from bronze by ``dataforge backfill --from D --to D``, which the command
prints as the next step (a final minute it writes replaces the provisional one in the API).
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import msgspec
from botocore.exceptions import ClientError

from dataforge import lake
from dataforge.bronze import BASE64_PREFIX, gzip_bytes, read_lines
from dataforge.contract import Reason, Validator
from dataforge.errors import DataForgeError
from devkit.reconcile import quarantine_date

SAMPLES_PER_REASON: Final = 3
RAW_SHOWN: Final = 200  # characters of a sample's raw record shown
NOT_REPLAYED: Final = {
    Reason.NO_FX_RATE.value: "no_fx_rate records are in bronze already: rebuild the date with "
                             "`dataforge backfill --from D --to D` once the FX reference table has the rate",
    Reason.MALFORMED_FILE.value: "a malformed file stays unreadable: upload a corrected file to the landing bucket "
                                 "(it lands as a new version)",
}
_KAFKA_POSITION: Final = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)@(?P<offset>\d+)$")
_LINE_POSITION: Final = re.compile(rb'"position":("(?:[^"\\]|\\.)*"),"ingested_at":"[^"]*"\}\}?\s*$')
_FILE_POSITION: Final = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)#(?P<version>[^#]*):(?P<line>\d+)$")


class QuarantineError(DataForgeError):
    """A quarantine command cannot run as asked (the message says what to do)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One quarantine row and where it is stored."""

    stage: str  # "landing" or "enrichment"
    key: str  # the quarantine object holding it
    line: bytes  # the row's JSON line as stored (without its newline)
    values: Mapping[str, Any]

    @property
    def reason(self) -> str:
        return str(self.values.get("reason"))

    @property
    def source(self) -> str:
        return str(self.values.get("source"))

    def sample(self) -> dict[str, Any]:
        raw = str(self.values.get("raw", ""))
        return {"stage": self.stage, "reason": self.reason, "field": self.values.get("field"),
                "detail": self.values.get("detail"), "source": self.source,
                "position": self.values.get("position"), "ingested_at": self.values.get("ingested_at"),
                "raw": raw if len(raw) <= RAW_SHOWN else raw[:RAW_SHOWN] + "..."}


@dataclass(frozen=True, slots=True)
class Listing:
    day: date
    counts: Counter[tuple[str, str, str]]  # (stage, reason, source) -> rows
    samples: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "total": sum(self.counts.values()),
                "counts": [{"stage": stage, "reason": reason, "source": source, "records": n}
                           for (stage, reason, source), n in sorted(self.counts.items())],
                "samples": self.samples}


@dataclass(slots=True)
class Replay:
    day: date
    reason: str
    dry_run: bool
    selected: int = 0
    landed: int = 0  # now valid: moved to bronze
    still: Counter[str] = field(default_factory=Counter)  # still invalid, by the reason they have now
    objects: list[str] = field(default_factory=list)  # objects written or deleted (or that would be)

    def as_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "reason": self.reason, "dry_run": self.dry_run,
                "selected": self.selected, "landed": self.landed, "still_quarantined": dict(sorted(self.still.items())),
                "objects": self.objects}


# --- reading -----------------------------------------------------------------------------------------


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [str(o["Key"]) for o in page.get("Contents", [])]
    return keys


def _lines(s3: Any, bucket: str, key: str) -> list[bytes]:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return []
        raise
    return read_lines(body)


def rows(s3: Any, bucket: str, day: date) -> Iterable[Row]:
    """The quarantine rows of ``bucket`` counted under ``day``: the landing functions' (by
    ``quarantine_date``) and the Spark jobs' (``enrichment/``, by their ``event_date`` partition or
    column)."""
    for key in _keys(s3, bucket, f"{lake.TRANSACTIONS_TOPIC}/"):
        if key.endswith(lake.BRONZE_SUFFIX):
            for line in _lines(s3, bucket, key):
                values = msgspec.json.decode(line)
                if quarantine_date(values) == day:
                    yield Row("landing", key, line, values)
    for key in _keys(s3, bucket, "enrichment/"):
        if key.endswith((".json", ".json.gz")):
            partition = re.search(r"/event_date=(\d{4}-\d{2}-\d{2})/", key)
            for line in _lines(s3, bucket, key):
                values = msgspec.json.decode(line)
                if (partition.group(1) if partition else str(values.get("event_date", ""))) == day.isoformat():
                    yield Row("enrichment", key, line, values)


def listing(s3: Any, bucket: str, day: date, reason: str | None = None) -> Listing:
    counts: Counter[tuple[str, str, str]] = Counter()
    samples: list[dict[str, Any]] = []
    shown: Counter[str] = Counter()
    for row in rows(s3, bucket, day):
        if reason is not None and row.reason != reason:
            continue
        counts[(row.stage, row.reason, row.source)] += 1
        if shown[row.reason] < SAMPLES_PER_REASON:
            shown[row.reason] += 1
            samples.append(row.sample())
    return Listing(day, counts, samples)


# --- replaying ---------------------------------------------------------------------------------------


def _raw_bytes(text: str) -> bytes:
    """A row's ``raw`` column back to the record's bytes (``dataforge.bronze.raw_text``'s inverse)."""
    if text.startswith(BASE64_PREFIX):
        return base64.b64decode(text[len(BASE64_PREFIX):])
    return text.encode()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _index(position: str) -> int:
    """The offset (Kafka) or line number (file) a position ends with: the order lines are written in."""
    return int(re.split(r"[@:]", position)[-1])


def line_position(line: bytes) -> str:
    """The position of a bronze line (``ingest.position``) or a quarantine line (``position``), read from
    the line's end, which both formats close with ``"position":...,"ingested_at":...``: a bronze line's
    record is kept as sent and may hold what a JSON decoder refuses (numbers beyond its range)."""
    match = _LINE_POSITION.search(line)
    if match is None:
        raise QuarantineError(f"a lake line without a position: {line[-200:]!r}")
    return str(msgspec.json.decode(match.group(1)))


def judge_again(selected: list[Row], validator: Validator) -> tuple[list[bytes], list[bytes]]:
    """The bronze and quarantine lines the landing code writes now for ``selected`` (rows of one
    quarantine object, so one topic-partition or one file version)."""
    source = selected[0].source
    if source == lake.Source.KAFKA.value:
        from lambdas.common.kafka_landing import land_partition

        records: list[dict[str, Any]] = []
        topic, partition = "", 0
        for row in selected:
            match = _KAFKA_POSITION.match(str(row.values["position"]))
            if match is None:
                raise QuarantineError(f"{row.key}: unreadable Kafka position {row.values['position']!r}")
            topic, partition = match["topic"], int(match["partition"])
            records.append({"topic": topic, "partition": partition, "offset": int(match["offset"]),
                            "timestamp": int(_instant(str(row.values["ingested_at"])).timestamp() * 1000),
                            "value": base64.b64encode(_raw_bytes(str(row.values["raw"]))).decode()})
        output = land_partition(topic, partition, records, validator)
        return output.bronze.splitlines(keepends=True), output.quarantine.splitlines(keepends=True)
    if source == lake.Source.FILE.value:
        from lambdas.common.file_landing import judge_lines

        first = _FILE_POSITION.match(str(selected[0].values["position"]))
        if first is None:
            raise QuarantineError(f"{selected[0].key}: unreadable file position {selected[0].values['position']!r}")
        position = lake.FilePosition(first["bucket"], first["key"], first["version"],
                                     _instant(str(selected[0].values["ingested_at"])))
        return judge_lines(position, validator, [(_index(str(r.values["position"])),
                                                  _raw_bytes(str(r.values["raw"]))) for r in selected])
    raise QuarantineError(f"{selected[0].key}: unknown source {source!r}")


def ordered_body(lines: list[bytes]) -> bytes:
    """The object body of ``lines``: in position order, as a batch writes them, each with its newline."""
    ordered = sorted(lines, key=lambda line: _index(line_position(line)))
    return b"".join(line if line.endswith(b"\n") else line + b"\n" for line in ordered)


def replay(s3: Any, bronze: str, quarantine: str, day: date, reason: str, validator: Validator, *,
           dry_run: bool = False) -> Replay:
    """Judge the landing quarantine rows of ``reason`` counted under ``day`` again and move the now-valid
    ones to the ``bronze`` bucket (see the module docstring); ``dry_run`` writes nothing."""
    if reason in NOT_REPLAYED:
        raise QuarantineError(f"{reason} is not replayed by this command: {NOT_REPLAYED[reason]}")
    if reason not in {r.value for r in Reason}:
        raise QuarantineError(f"unknown reason {reason!r}; reasons: {', '.join(r.value for r in Reason)}")
    result = Replay(day, reason, dry_run)
    by_key: dict[str, list[Row]] = {}
    for row in rows(s3, quarantine, day):
        if row.stage == "landing" and row.reason == reason:
            by_key.setdefault(row.key, []).append(row)
    for key, selected in sorted(by_key.items()):
        result.selected += len(selected)
        valid, invalid = judge_again(selected, validator)
        result.still.update(str(msgspec.json.decode(line)["reason"]) for line in invalid)
        held = _lines(s3, bronze, key)
        known = {line_position(line) for line in held}
        new = [line for line in valid if line_position(line) not in known]
        result.landed += len(valid)
        chosen = {row.line for row in selected}
        stored = _lines(s3, quarantine, key)
        _write(s3, bronze, key, held, held + new, result, dry_run)  # bronze first: a rerun finishes a replay
        _write(s3, quarantine, key, stored, [line for line in stored if line not in chosen] + invalid, result,
               dry_run)
    return result


def _write(s3: Any, bucket: str, key: str, before: list[bytes], after: list[bytes], result: Replay,
           dry_run: bool) -> None:
    """Store ``after`` as the object's lines (delete it when empty) unless it holds them already."""
    old, body = ordered_body(before), ordered_body(after)
    if old == body:
        return
    result.objects.append(lake.s3_uri(bucket, key))
    if dry_run:
        return
    if body:
        s3.put_object(Bucket=bucket, Key=key, Body=gzip_bytes(body), ContentType="application/gzip")
    else:
        s3.delete_object(Bucket=bucket, Key=key)
