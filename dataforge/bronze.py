"""Bronze and quarantine line encoders: the one implementation every writer and test uses.

Formats (ADR 0003): gzip-compressed JSON lines, one object per topic-partition offset range or per
landed file version (``dataforge.lake.bronze_key``).

- bronze line: ``{"event": <the event JSON exactly as received>, "ingest": {"event_id", "source",
  "position", "ingested_at"}}``. The event bytes are concatenated, never re-encoded; the only change
  ever made to them is that CR/LF bytes (which in valid JSON can only be insignificant whitespace)
  become spaces, so that one record stays one line.
- quarantine line: exactly the columns of ``dataforge.schemas.QUARANTINE``, in order.

``ingested_at`` comes from the input (Kafka record timestamp, S3 object last-modified), never from
the clock, and gzip headers carry no time or name, so a retried batch writes byte-identical objects.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime
from tempfile import SpooledTemporaryFile
from typing import IO, Final

import msgspec
from isal import igzip, isal_zlib

from dataforge.contract import Rejection
from dataforge.errors import ContractError
from dataforge.lake import Source
from dataforge.schemas import QUARANTINE

GZIP_LEVEL: Final = 1
"""Compression level of bronze/quarantine objects (ISA-L's 0-3 scale). Objects are standard gzip
written by ISA-L (``isal.igzip``): at level 1 about 5x faster than zlib's level 1 and smaller, which
matters because compression was the biggest cost of a landing batch after validation."""
_GZIP_WBITS: Final = 16 + 15  # a gzip container (header with mtime 0, no name) around a 32 KiB window
SPOOL_MAX_BYTES: Final = 32 * 1024 * 1024
"""Compressed bytes kept in memory before a spooled object moves to a temporary file."""
BASE64_PREFIX: Final = "base64:"

QUARANTINE_COLUMNS: Final = QUARANTINE.column_names

_EVENT_OPEN: Final = b'{"event":'
_INGEST_OPEN: Final = b',"ingest":{"event_id":"'
_SOURCE_OPEN: Final = b'","source":"'
_POSITION_OPEN: Final = b'","position":'
_INGESTED_OPEN: Final = b',"ingested_at":"'
_LINE_CLOSE: Final = b'"}}\n'
_encode = msgspec.json.encode


class QuarantineLine(msgspec.Struct):
    """A quarantine record; field order is the column order of ``schemas.QUARANTINE``."""

    reason: str
    field: str | None
    detail: str
    raw: str
    source: str
    position: str
    ingested_at: str


if tuple(QuarantineLine.__struct_fields__) != QUARANTINE_COLUMNS:  # one table drives both
    raise ContractError("QuarantineLine no longer matches the columns of schemas.QUARANTINE")


def rfc3339(moment: datetime) -> str:
    """An aware timestamp as RFC 3339 UTC with milliseconds: ``2024-05-01T12:00:00.123Z``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def from_epoch_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


def kafka_position(topic: str, partition: int, offset: int) -> str:
    return f"{topic}-{partition}@{offset}"


def file_position(bucket: str, key: str, version: str, line: int) -> str:
    return f"s3://{bucket}/{key}#{version}:{line}"


def one_line(raw: bytes) -> bytes:
    """``raw`` with CR and LF bytes turned into spaces (only whitespace can hold them in valid JSON)."""
    if b"\n" in raw or b"\r" in raw:
        return raw.replace(b"\n", b" ").replace(b"\r", b" ")
    return raw


def bronze_line(raw: bytes, event_id: str, source: Source | str, position: str, ingested_at: str) -> bytes:
    """One bronze JSON line (with its newline) for a valid record; ``raw`` must be valid JSON."""
    return b"".join((
        _EVENT_OPEN, one_line(raw), _INGEST_OPEN, event_id.encode(), _SOURCE_OPEN, str(source).encode(),
        _POSITION_OPEN, _encode(position), _INGESTED_OPEN, ingested_at.encode(), _LINE_CLOSE,
    ))


class BronzeLines:
    """Fast bronze lines for one batch: the constant parts of ``bronze_line`` are encoded once.

    ``line(raw, event_id, offset_or_line, ingested_at)`` gives exactly ``bronze_line(raw, event_id,
    source, position_prefix + str(offset_or_line), ingested_at)``. A landing loop uses ``add`` (the
    same line, kept as parts: one call per record, no per-line join) and ``body()`` at the end.
    """

    __slots__ = ("_mid", "_parts", "_tail", "count")

    def __init__(self, source: Source | str, position_prefix: str) -> None:
        quoted = _encode(position_prefix)[:-1]  # the JSON string without its closing quote
        self._mid = _SOURCE_OPEN + str(source).encode() + _POSITION_OPEN + quoted
        self._tail = b'"' + _INGESTED_OPEN
        self._parts: list[bytes] = []
        self.count = 0

    def line(self, raw: bytes, event_id: bytes, index: int, ingested_at: bytes) -> bytes:
        """``event_id``: the canonical id as bytes (as ``Validator.admit`` gives it)."""
        if b"\n" in raw or b"\r" in raw:
            raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
        return b"".join((
            _EVENT_OPEN, raw, _INGEST_OPEN, event_id, self._mid, str(index).encode(), self._tail,
            ingested_at, _LINE_CLOSE,
        ))

    def add(self, raw: bytes, event_id: bytes, index: int, ingested_at: bytes) -> None:
        """Append ``line(raw, event_id, index, ingested_at)`` to the body (``event_id``: the
        canonical id as bytes, as ``Validator.admit`` gives it)."""
        if b"\n" in raw or b"\r" in raw:
            raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
        self._parts.extend((
            _EVENT_OPEN, raw, _INGEST_OPEN, event_id, self._mid, b"%d" % index, self._tail, ingested_at, _LINE_CLOSE,
        ))
        self.count += 1

    def body(self) -> bytes:
        """Every line ``add`` took, in order."""
        return b"".join(self._parts)


def raw_text(raw: bytes) -> str:
    """The ``raw`` column: the record as UTF-8 text, or ``base64:<...>`` when it is not UTF-8."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return BASE64_PREFIX + base64.b64encode(raw).decode("ascii")


def quarantine_line(
    rejection: Rejection, raw: bytes, source: Source | str, position: str, ingested_at: str
) -> bytes:
    """One quarantine JSON line (with its newline)."""
    line = QuarantineLine(
        reason=str(rejection.reason), field=rejection.field, detail=rejection.detail, raw=raw_text(raw),
        source=str(source), position=position, ingested_at=ingested_at,
    )
    return _encode(line) + b"\n"


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """Deterministic gzip (no name, mtime 0): the same lines always give the same object bytes."""
    return igzip.compress(data, compresslevel=level, mtime=0)


class SpooledGzip:
    """Gzip JSON lines written into a spooled temporary file (bounded memory for big files).

    Deterministic like ``gzip_bytes`` (a gzip stream with mtime 0 and no name). ``finish()`` returns
    the file, rewound, and its size.
    """

    def __init__(self, level: int = GZIP_LEVEL, max_memory: int = SPOOL_MAX_BYTES) -> None:
        self._spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=max_memory)  # noqa: SIM115
        self._deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, _GZIP_WBITS)
        self._open = True
        self.lines = 0

    def write(self, line: bytes) -> None:
        self._spool.write(self._deflate.compress(line))
        self.lines += 1

    def finish(self) -> tuple[IO[bytes], int]:
        if self._open:
            self._spool.write(self._deflate.flush())
            self._open = False
        size = self._spool.tell()
        self._spool.seek(0)
        return self._spool, size

    def close(self) -> None:
        self._open = False
        self._spool.close()


def read_lines(body: bytes) -> list[bytes]:
    """The JSON lines of a (gzip) bronze or quarantine object, without their newlines (tests, tools)."""
    data = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return [line for line in data.split(b"\n") if line]


def decode_lines(body: bytes) -> list[dict[str, object]]:
    """Decoded lines of a bronze or quarantine object (tests, tools)."""
    return [msgspec.json.decode(line) for line in read_lines(body)]


__all__ = [
    "BASE64_PREFIX", "GZIP_LEVEL", "QUARANTINE_COLUMNS", "BronzeLines", "QuarantineLine", "SpooledGzip",
    "bronze_line", "decode_lines", "file_position", "from_epoch_millis", "gzip_bytes",
    "kafka_position",
    "one_line", "quarantine_line", "raw_text", "read_lines", "rfc3339",
]
