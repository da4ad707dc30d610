"""The batch-file landing core: one landed object (CSV or JSON lines, plain or gzip) -> bronze + quarantine.

Streaming with bounded memory whatever the file size: the object is read in chunks, each record is
validated and its line written into a spooled, gzip-compressing temporary file (bronze or quarantine).
Only once the whole file was read are the two objects published, under keys derived from the source
object and the version (or ETag) that was read. A malformed file (wrong CSV header, ragged CSV row, not
UTF-8, truncated or corrupt gzip, a line over ``MAX_LINE_BYTES``) publishes no bronze at all: one
quarantine line with reason ``malformed_file`` stands for the whole file, which stays in landing.

Judging a record never fails the file: should it raise (the contract gives every input a verdict, so it
should not), that record is quarantined as ``validation_error`` with the exception text and logged.

Blank lines are not records. CSV rows become JSON objects keyed by the header (see ADR 0003): values
are text, except ``schema_version`` (an integer literal becomes a number), ``risk_score`` (a number
literal becomes a number) and empty ``decline_reason``/``risk_score`` (null).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

import msgspec

from dataforge.bronze import (
    BronzeLines,
    SpooledGzip,
    file_position,
    gzip_bytes,
    quarantine_line,
    rfc3339,
)
from dataforge.contract import (
    FIELDS,
    MAX_FUTURE_SKEW,
    Admitted,
    Reason,
    Rejection,
    Validator,
    epoch_us,
    validation_error,
)
from dataforge.lake import LANDING_STREAM_PREFIX, FilePosition, Source, Zone, bronze_key
from lambdas.common.config import LandingConfig
from lambdas.common.counters import IngestCounters
from lambdas.common.errors import MalformedFileError
from lambdas.common.storage import ObjectStore, StoredObject

logger = logging.getLogger(__name__)

MAX_LINE_BYTES: Final = 1024 * 1024
SAMPLE_BYTES: Final = 2048
ARCHIVE_PREFIX: Final = LANDING_STREAM_PREFIX  # raw stream batches archived by the MSK processor
REQUIRED_COLUMNS: Final = frozenset(spec.name for spec in FIELDS if spec.required)
_INTEGER: Final = re.compile(r"-?[0-9]+")
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class FileResult:
    bucket: str
    key: str
    version: str
    records: int
    valid: int
    quarantined: int
    malformed: str | None  # the reason detail when the whole file was quarantined
    objects: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"source": f"s3://{self.bucket}/{self.key}#{self.version}", "records": self.records,
                "valid": self.valid, "quarantined": self.quarantined, "malformed": self.malformed,
                "objects": list(self.objects)}


class _Sampling(io.RawIOBase):
    """Passes reads through and keeps the first ``SAMPLE_BYTES`` (the raw sample of a malformed file)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sample = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += data[: SAMPLE_BYTES - len(self.sample)]
        buffer[: len(data)] = data
        return len(data)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines without their terminators; an overlong line makes the file malformed."""
    readline = stream.readline
    while True:
        line = readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise MalformedFileError(f"a line is longer than {MAX_LINE_BYTES} bytes")
        yield line.rstrip(b"\r\n")


def _csv_value(name: str, value: str) -> Any:
    if name == "schema_version" and _INTEGER.fullmatch(value):
        return int(value)
    if name in ("decline_reason", "risk_score") and value == "":
        return None
    if name == "risk_score" and _NUMBER.fullmatch(value):
        return msgspec.Raw(value.encode())
    return value


class _Staging:
    """The two spooled outputs of one file and their counters."""

    def __init__(self, position: FilePosition, validator: Validator) -> None:
        self.position = position
        self.validator = validator
        self.ingested = rfc3339(position.received_at)
        self.ingested_bytes = self.ingested.encode()
        self.horizon_us = epoch_us(position.received_at + MAX_FUTURE_SKEW)
        self.prefix = file_position(position.bucket, position.key, position.version, 0)[:-1]
        self.lines = BronzeLines(Source.FILE, self.prefix)
        self.bronze = SpooledGzip()
        self.quarantine = SpooledGzip()
        self.records = 0

    def add(self, raw: bytes, line_no: int) -> None:
        self.records += 1
        try:
            result: Admitted | Rejection = self.validator.admit(raw, self.horizon_us)
        except Exception as exc:  # the per-record backstop: one record never fails its file
            logger.exception("judging a record raised; it is quarantined as validation_error",
                             extra={"position": f"{self.prefix}{line_no}"})
            result = validation_error(exc)
        if isinstance(result, Rejection):
            self.quarantine.write(quarantine_line(result, raw, Source.FILE, f"{self.prefix}{line_no}", self.ingested))
        else:
            self.bronze.write(self.lines.line(raw, result[0], line_no, self.ingested_bytes))

    def close(self) -> None:
        self.bronze.close()
        self.quarantine.close()


def _read_jsonl(stream: IO[bytes], staging: _Staging) -> None:
    for line_no, line in enumerate(_lines(stream), start=1):
        if not line.isascii():
            try:
                line.decode()
            except UnicodeDecodeError as exc:
                raise MalformedFileError(f"line {line_no} is not UTF-8: {exc}") from exc
        if not line.strip():
            continue
        staging.add(line, line_no)


def _read_csv(stream: IO[bytes], staging: _Staging) -> None:
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise MalformedFileError("empty CSV file: no header")
        names = [name.strip() for name in header]
        missing = REQUIRED_COLUMNS.difference(names)
        if missing or len(set(names)) != len(names) or "" in names:
            raise MalformedFileError(
                f"wrong CSV header {header!r}: missing {sorted(missing)}" if missing
                else f"wrong CSV header {header!r}: empty or repeated column names")
        width = len(names)
        encode = msgspec.json.encode
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                raise MalformedFileError(f"CSV record ending on line {reader.line_num} has {len(row)} "
                                         f"fields, the header has {width}")
            staging.add(encode({n: _csv_value(n, v) for n, v in zip(names, row, strict=True)}), reader.line_num)
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"not UTF-8: {exc}") from exc
    except csv.Error as exc:
        raise MalformedFileError(f"not a readable CSV file: {exc}") from exc


def judge_lines(position: FilePosition, validator: Validator,
                records: Iterable[tuple[int, bytes]]) -> tuple[list[bytes], list[bytes]]:
    """The bronze and the quarantine lines (each with its newline) that landing ``position`` writes for
    ``records`` (line number, raw record): exactly the per-record step of ``FileLanding``, for a tool that
    judges some records of a landed file again (``dataforge quarantine replay``)."""
    staging = _Staging(position, validator)
    try:
        for line_no, raw in records:
            staging.add(raw, line_no)
        outputs = []
        for spool in (staging.bronze, staging.quarantine):
            body, _ = spool.finish()
            outputs.append(gzip.decompress(body.read()).splitlines(keepends=True))
        return outputs[0], outputs[1]
    finally:
        staging.close()


def data_format(key: str) -> str:
    """``csv`` or ``jsonl``, from the key (a ``.gz`` suffix is ignored: gzip is detected from the bytes)."""
    name = key.lower().removesuffix(".gz").removesuffix(".gzip")
    return "csv" if name.endswith(".csv") else "jsonl"


class FileLanding:
    """Lands one batch file version. Dependencies are injected (store, validator)."""

    def __init__(self, config: LandingConfig, store: ObjectStore, validator: Validator,
                 counters: IngestCounters | None = None) -> None:
        self.config = config
        self.store = store
        self.validator = validator
        self.counters = counters

    def land(self, bucket: str, key: str, version_id: str | None = None, etag: str | None = None) -> FileResult:
        stored = self.store.open(bucket, key, version_id, etag)
        position = FilePosition(bucket, key, stored.version, stored.last_modified)
        result = self.land_stream(position, stored)
        if self.counters is not None:
            self.counters.record(Source.FILE.value, result.objects, result.records, result.quarantined)
        return result

    def land_stream(self, position: FilePosition, stored: StoredObject) -> FileResult:
        staging = _Staging(position, self.validator)
        sampling = _Sampling(stored.body)
        try:
            try:
                self._parse(io.BufferedReader(sampling, 256 * 1024), position.key, staging)
            except (MalformedFileError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
                detail = str(exc) or type(exc).__name__
                if isinstance(exc, EOFError):
                    detail = f"truncated gzip: {detail}"
                return self._quarantine_file(position, detail, sampling.sample)
            return self._publish(position, staging)
        finally:
            staging.close()
            stored.body.close()

    @staticmethod
    def _parse(raw: io.BufferedReader, key: str, staging: _Staging) -> None:
        stream: IO[bytes] = (
            gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            if raw.peek(2)[:2] == b"\x1f\x8b" else raw
        )
        if data_format(key) == "csv":
            _read_csv(stream, staging)
        else:
            _read_jsonl(stream, staging)

    def _publish(self, position: FilePosition, staging: _Staging) -> FileResult:
        objects: list[str] = []
        for zone, spool, bucket in ((Zone.QUARANTINE, staging.quarantine, self.config.quarantine_bucket),
                                    (Zone.BRONZE, staging.bronze, self.config.bronze_bucket)):
            if spool.lines:
                body, size = spool.finish()
                key = bronze_key(position, zone)
                self.store.put_file(bucket, key, body, size)
                objects.append(f"s3://{bucket}/{key}")
        return FileResult(position.bucket, position.key, position.version, staging.records,
                          staging.bronze.lines, staging.quarantine.lines, None, tuple(objects))

    def _quarantine_file(self, position: FilePosition, detail: str, sample: bytes) -> FileResult:
        line = quarantine_line(
            Rejection(Reason.MALFORMED_FILE, None, f"{detail} (the file stays in landing; raw holds its first "
                                                   f"{SAMPLE_BYTES} bytes at most)"),
            sample, Source.FILE, file_position(position.bucket, position.key, position.version, 0),
            rfc3339(position.received_at),
        )
        key = bronze_key(position, Zone.QUARANTINE)
        self.store.put(self.config.quarantine_bucket, key, gzip_bytes(line))
        return FileResult(position.bucket, position.key, position.version, 1, 0, 1, detail,
                          (f"s3://{self.config.quarantine_bucket}/{key}",))


def is_batch_file(key: str) -> bool:
    """Whether a landing key is a batch file (not a raw stream archive, not a folder marker)."""
    return not key.startswith(ARCHIVE_PREFIX) and not key.endswith("/")


