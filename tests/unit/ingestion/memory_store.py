"""An in-memory ``ObjectStore`` for unit tests (no I/O); integration tests use the moto server."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import IO

from lambdas.common.errors import StorageError
from lambdas.common.storage import StoredObject


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts = 0

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.puts += 1
        self.objects[(bucket, key)] = body

    def put_file(self, bucket: str, key: str, body: IO[bytes], size: int) -> None:
        self.put(bucket, key, body.read())

    def open(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> StoredObject:
        data = self.objects[(bucket, key)]
        return StoredObject(io.BytesIO(data), version_id or "v1", datetime(2024, 5, 1, 12, tzinfo=UTC), len(data))


class FailingOnce:
    """Wraps a store; the ``fail_at``-th write raises ``StorageError`` once (failure injection)."""

    def __init__(self, inner: object, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.writes = 0
        self.failed = False

    def _maybe_fail(self) -> None:
        self.writes += 1
        if not self.failed and self.writes == self.fail_at:
            self.failed = True
            raise StorageError("injected storage failure")

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self._maybe_fail()
        self.inner.put(bucket, key, body)  # type: ignore[attr-defined]

    def put_file(self, bucket: str, key: str, body: IO[bytes], size: int) -> None:
        self._maybe_fail()
        self.inner.put_file(bucket, key, body, size)  # type: ignore[attr-defined]

    def open(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> StoredObject:
        return self.inner.open(bucket, key, version_id, etag)  # type: ignore[attr-defined,no-any-return]
