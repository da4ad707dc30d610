"""Per-batch landing counts in the metrics table, for the quarantine-ratio alert (ADR 0001).

One item per landed batch, keyed by a digest of the objects the batch wrote, so a retried batch
overwrites its own item instead of counting twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dataforge import aws, serving
from lambdas.common.errors import StorageError

_INGEST_DATE = re.compile(r"ingest_date=(\d{4}-\d{2}-\d{2})/")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IngestCounters:
    """Writes ``serving.IngestCounterItem``s; the DynamoDB client is created on first use."""

    def __init__(self, table_name: str, *, endpoint_url: str | None, region: str,
                 clock: Callable[[], datetime] = _utcnow, client: Any = None) -> None:
        self._table_name = table_name
        self._endpoint_url = endpoint_url
        self._region = region
        self._clock = clock
        self._client = client

    def _ddb(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb", endpoint_url=self._endpoint_url, region=self._region)
        return self._client

    def record(self, source: str, objects: Sequence[str], received: int, quarantined: int) -> None:
        """Count one landed batch (nothing to count when it wrote no object)."""
        if not objects:
            return
        now = self._clock()
        match = _INGEST_DATE.search(objects[0])
        ingest_date = date.fromisoformat(match.group(1)) if match else now.date()
        digest = hashlib.sha256("\n".join(sorted(objects)).encode()).hexdigest()[:20]
        item = {
            "pk": {"S": serving.ingest_pk(ingest_date)},
            "sk": {"S": serving.ingest_sk(source, digest)},
            "source": {"S": source},
            "received": {"N": str(received)},
            "quarantined": {"N": str(quarantined)},
            "at": {"S": now.astimezone(UTC).isoformat().replace("+00:00", "Z")},
        }
        try:
            self._ddb().put_item(TableName=self._table_name, Item=item)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot record ingest counts in {self._table_name}: {exc}") from exc
