"""`dataforge quarantine replay` orders and matches lake lines by their position, read from the line's end:
a bronze line keeps its record as sent, which may hold numbers a JSON decoder refuses."""

from __future__ import annotations

from dataforge.bronze import bronze_line, quarantine_line
from dataforge.contract import Reason, Rejection
from devkit.quarantine import line_position, ordered_body


def test_the_position_of_a_bronze_line_whose_record_no_decoder_reads() -> None:
    record = b'{"event_id": "e", "huge": 1e400, "note": "\\"position\\":\\"forged\\",\\"ingested_at\\":\\"x\\"}"}'
    line = bronze_line(record, "e", "kafka", "transactions-2@41", "2026-03-02T10:00:00.000Z")
    assert line_position(line) == "transactions-2@41"


def test_lines_are_written_in_position_order_as_their_batch_writes_them() -> None:
    def rejected(line_no: int) -> bytes:
        return quarantine_line(Rejection(Reason.INVALID_JSON, None, "bad"), b"{", "file",
                               f"s3://landing/files/a.jsonl#v1:{line_no}", "2026-03-02T10:00:00.000Z")

    body = ordered_body([rejected(10), rejected(9), rejected(100)])
    assert [line_position(line) for line in body.splitlines()] == [
        "s3://landing/files/a.jsonl#v1:9", "s3://landing/files/a.jsonl#v1:10", "s3://landing/files/a.jsonl#v1:100"]
