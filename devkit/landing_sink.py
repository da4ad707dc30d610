"""The ``--to landing`` sink of the generator: generated records as batch files in the landing bucket.

Files are gzip JSON lines, ``records_per_file`` records each, named ``<prefix><run>-<nnnnn>.jsonl.gz``;
each upload fires the landing bucket's object-created event (the S3 batch landing path). One record
per line: the generator's values never hold a line break (CR/LF would be JSON whitespace anyway and
become spaces, as in bronze).
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dataforge.bronze import one_line
from dataforge.lake import LANDING_FILES_PREFIX
from devkit.generator import GeneratedEvent, GenerationSummary, SummaryCounter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_PREFIX: Final = LANDING_FILES_PREFIX
DEFAULT_RECORDS_PER_FILE: Final = 100_000


@dataclass(frozen=True, slots=True)
class LandingSinkResult:
    bucket: str
    keys: tuple[str, ...]
    summary: GenerationSummary
    bytes_written: int = 0


def write_to_landing(
    events: Iterable[GeneratedEvent],
    *,
    s3: S3Client,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    run_name: str | None = None,
    records_per_file: int = DEFAULT_RECORDS_PER_FILE,
    compress: bool = True,
    progress: Callable[[int], None] | None = None,
) -> LandingSinkResult:
    """Upload ``events`` as JSON-lines batch files to ``s3://bucket/prefix``; their keys and a summary."""
    if records_per_file < 1:
        raise ValueError("records_per_file must be >= 1")
    run = run_name or f"generated-{uuid.uuid4().hex[:8]}"
    counter = SummaryCounter()
    keys: list[str] = []
    lines: list[bytes] = []
    written = 0

    def flush() -> None:
        nonlocal written
        if not lines:
            return
        data = b"".join(lines)
        body = gzip.compress(data, compresslevel=1, mtime=0) if compress else data
        key = f"{prefix}{run}-{len(keys):05d}.jsonl{'.gz' if compress else ''}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        keys.append(key)
        written += len(body)
        if progress is not None:
            progress(len(lines))
        lines.clear()

    for event in events:
        counter.add(event)
        lines.append(one_line(event.value) + b"\n")
        if len(lines) >= records_per_file:
            flush()
    flush()
    return LandingSinkResult(bucket, tuple(keys), counter.result(), written)
