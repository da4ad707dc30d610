"""The Glue Data Catalog as the API sees it: allowed databases, their tables, columns, partitions.

Cached for a short TTL (the catalog changes when jobs add tables or partitions, not per request).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import DependencyError

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient


@dataclass(frozen=True, slots=True)
class TableInfo:
    database: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Glue/Hive type), data columns
    partition_keys: tuple[tuple[str, str], ...]
    location: str
    classification: str  # parquet | json | ...

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": [{"name": n, "type": t} for n, t in self.columns + self.partition_keys],
            "partition_keys": [n for n, _ in self.partition_keys],
        }


def _table_info(database: str, raw: Mapping[str, Any]) -> TableInfo:
    sd = raw.get("StorageDescriptor", {})
    serde = str(sd.get("SerdeInfo", {}).get("SerializationLibrary", "")).lower()
    classification = str(raw.get("Parameters", {}).get("classification", "")).lower() or (
        "parquet" if "parquet" in serde else "unknown"
    )
    return TableInfo(
        database=database,
        name=str(raw["Name"]).lower(),
        columns=tuple((str(c["Name"]).lower(), str(c["Type"]).lower()) for c in sd.get("Columns", [])),
        partition_keys=tuple((str(c["Name"]).lower(), str(c["Type"]).lower()) for c in raw.get("PartitionKeys", [])),
        location=str(sd.get("Location", "")),
        classification=classification,
    )


class GlueCatalog:
    def __init__(
        self, glue: Callable[[], GlueClient], databases: tuple[str, ...], *, ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._glue, self.databases, self._ttl, self._clock = glue, databases, ttl_seconds, clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, tuple[TableInfo, ...]]] | None = None

    def tables(self) -> dict[str, tuple[TableInfo, ...]]:
        """Allowed database -> its tables (a database missing from Glue has none)."""
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]
            loaded = {db: self._load(db) for db in self.databases}
            self._cached = (now, loaded)
            return loaded

    def known_tables(self) -> dict[str, frozenset[str]]:
        return {db: frozenset(t.name for t in tables) for db, tables in self.tables().items()}

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _load(self, database: str) -> tuple[TableInfo, ...]:
        tables: list[TableInfo] = []
        try:
            for page in self._glue().get_paginator("get_tables").paginate(DatabaseName=database):
                tables.extend(_table_info(database, t) for t in page.get("TableList", []))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                return ()
            raise DependencyError(f"Glue get_tables({database}) failed: {exc}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"Glue get_tables({database}) failed: {exc}") from exc
        return tuple(sorted(tables, key=lambda t: t.name))

    def partition_locations(self, table: TableInfo) -> list[str]:
        """Locations of a table's registered partitions (what Athena reads), in Glue's order."""
        locations: list[str] = []
        try:
            paginator = self._glue().get_paginator("get_partitions")
            for page in paginator.paginate(DatabaseName=table.database, TableName=table.name):
                for part in page.get("Partitions", []):
                    location = part.get("StorageDescriptor", {}).get("Location")
                    if location:
                        locations.append(str(location))
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"Glue get_partitions({table.database}.{table.name}) failed: {exc}") from exc
        return locations

    def check(self) -> None:
        """Health: the first allowed database answers."""
        try:
            self._glue().get_database(Name=self.databases[0])
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"Glue get_database failed: {exc}") from exc
