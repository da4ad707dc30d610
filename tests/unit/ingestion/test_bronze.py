from __future__ import annotations

import gzip
import uuid

import msgspec

from dataforge import bronze
from dataforge.contract import Reason, Rejection
from dataforge.schemas import QUARANTINE


def test_bronze_line_keeps_event_bytes_and_stays_one_line() -> None:
    raw = b'{"event_id": "X",\n  "extra": {"k": [1, 2]}\r\n}'
    line = bronze.bronze_line(raw, "6f1c", "kafka", "transactions-0@7", "2024-05-01T12:00:00.000Z")
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    decoded = msgspec.json.decode(line)
    assert decoded["event"] == {"event_id": "X", "extra": {"k": [1, 2]}}
    assert decoded["ingest"] == {"event_id": "6f1c", "source": "kafka", "position": "transactions-0@7",
                                 "ingested_at": "2024-05-01T12:00:00.000Z"}
    assert raw.replace(b"\n", b" ").replace(b"\r", b" ") in line  # concatenated, not re-encoded


def test_fast_lines_equal_the_reference_encoder() -> None:
    prefix = 's3://landing/files/we"ird key.jsonl#v1:'
    fast = bronze.BronzeLines("file", prefix)
    eid = "6f1c2d3e-0000-4000-8000-00000000abcd"
    raw = b'{"a":1}'
    expected = bronze.bronze_line(raw, eid, "file", prefix + "12", "2024-05-01T12:00:00.000Z")
    assert fast.line(raw, eid.encode(), 12, b"2024-05-01T12:00:00.000Z") == expected
    assert msgspec.json.decode(expected)["ingest"]["position"] == prefix + "12"


def test_added_lines_are_the_same_lines_joined() -> None:
    lines = bronze.BronzeLines("kafka", "transactions-3@")
    ids = [uuid.UUID(int=n) for n in (1, 2**127, 2**128 - 1)]
    raws = [b'{"a":1}', b'{"b":\r\n2}', b"{}"]
    for offset, (raw, eid) in enumerate(zip(raws, ids, strict=True)):
        lines.add(raw, str(eid).encode(), offset + 40, b"2024-05-01T12:00:00.000Z")
    assert lines.count == 3
    assert lines.body() == b"".join(
        bronze.bronze_line(raw, str(eid), "kafka", f"transactions-3@{offset + 40}", "2024-05-01T12:00:00.000Z")
        for offset, (raw, eid) in enumerate(zip(raws, ids, strict=True)))


def test_compressed_objects_are_standard_deterministic_gzip() -> None:
    body = b"".join(b'{"n":%d}\n' % n for n in range(5000))
    packed = bronze.gzip_bytes(body)
    assert packed == bronze.gzip_bytes(body)
    assert packed[:4] == b"\x1f\x8b\x08\x00"
    assert packed[4:8] == bytes(4)
    assert gzip.decompress(packed) == body
    spooled = bronze.SpooledGzip(max_memory=1024)  # spills to a temporary file
    for line in body.splitlines(keepends=True):
        spooled.write(line)
    stream, size = spooled.finish()
    data = stream.read()
    assert size == len(data)
    assert gzip.decompress(data) == body
    assert data[:4] == b"\x1f\x8b\x08\x00"
    assert data[4:8] == bytes(4)
    spooled.close()


def test_quarantine_line_has_exactly_the_quarantine_columns() -> None:
    line = bronze.quarantine_line(Rejection(Reason.INVALID_AMOUNT, "amount", "bad"), b'{"amount":"x"}',
                                  "kafka", "t-1@2", "2024-05-01T12:00:00.000Z")
    decoded = msgspec.json.decode(line)
    assert tuple(decoded) == QUARANTINE.column_names
    assert decoded["reason"] == "invalid_amount"
    assert decoded["raw"] == '{"amount":"x"}'


def test_non_utf8_raw_is_base64() -> None:
    line = bronze.quarantine_line(Rejection(Reason.INVALID_JSON, None, "x"), b"\xff\xfe", "file", "p", "t")
    assert msgspec.json.decode(line)["raw"] == "base64://4="


def test_gzip_is_deterministic() -> None:
    assert bronze.gzip_bytes(b"abc\n") == bronze.gzip_bytes(b"abc\n")
    spool = bronze.SpooledGzip(max_memory=10)
    spool.write(b"abc\n")
    body, size = spool.finish()
    data = body.read()
    assert size == len(data)
    assert data == bronze.gzip_bytes(b"abc\n")
    assert gzip.decompress(data) == b"abc\n"
    spool.close()
