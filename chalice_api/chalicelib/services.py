"""The API's dependencies, created lazily on first use (never at import) and injectable.

What only a local server needs is injected by it (the developer toolkit): a ``Recorder`` of what each
response was computed from, and the local query engine that stands in for Athena
(``query_engine = "duckdb"``). On Lambda neither exists: nothing is recorded and the engine is Athena.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import boto3

from chalicelib.cache import TtlCache
from chalicelib.catalog import GlueCatalog
from chalicelib.config import CATALOG_TTL_SECONDS, ApiConfig
from chalicelib.errors import DependencyError
from chalicelib.recording import NO_RECORDING, Recorder
from chalicelib.repositories import AlertRepository, KpiRepository, RealtimeRepository
from chalicelib.runner import AthenaLike, LocalEngine, QueryLimits, QueryRunner
from dataforge import aws

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
EngineFactory = Callable[["Services"], LocalEngine]

# One client serves every request thread: botocore's default pool (10 connections) would make
# concurrent cache misses wait for, or churn, connections to DynamoDB.
MAX_POOL_CONNECTIONS = 64


class Services:
    def __init__(
        self, config: ApiConfig, *, session: boto3.Session | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recorder: Recorder = NO_RECORDING, local_engine: EngineFactory | None = None,
    ) -> None:
        self.config, self.clock, self.recorder = config, clock, recorder
        self._session = session
        self._engine_factory = local_engine
        self._lock = threading.RLock()
        self._made: dict[str, Any] = {}

    def _once(self, name: str, make: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            value: T = self._made[name]
            return value

    def session(self) -> boto3.Session:
        return self._once("session", lambda: self._session or boto3.Session(region_name=self.config.settings.region))

    def _client(self, service: str) -> Any:
        settings = self.config.settings
        # retries: the one configuration of every runtime's clients (dataforge.aws)
        return self._once(service, lambda: aws.client(
            service, session=self.session(), endpoint_url=settings.endpoint_url, region=settings.region,
            max_pool_connections=MAX_POOL_CONNECTIONS))

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    def glue(self) -> GlueClient:
        client: GlueClient = self._client("glue")
        return client

    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    def athena(self) -> AthenaClient:
        client: AthenaClient = self._client("athena")
        return client

    def _cache(self, ttl_seconds: float) -> TtlCache[Any]:
        return TtlCache(ttl_seconds, self.config.cache.max_entries, recorder=self.recorder)

    def kpis(self) -> KpiRepository:
        return self._once("kpis", lambda: KpiRepository(
            self.dynamodb(), self.config.metrics_table, self._cache(self.config.cache.kpi_ttl_seconds)))

    def realtime(self) -> RealtimeRepository:
        return self._once("realtime", lambda: RealtimeRepository(
            self.dynamodb(), self.config.metrics_table, self._cache(self.config.cache.realtime_ttl_seconds)))

    def alerts(self) -> AlertRepository:
        return self._once("alerts", lambda: AlertRepository(
            self.dynamodb(), self.config.alerts_table, self._cache(self.config.cache.alerts_ttl_seconds)))

    def catalog(self) -> GlueCatalog:
        return self._once("catalog", lambda: GlueCatalog(
            self.glue, self.config.allowed_databases, ttl_seconds=CATALOG_TTL_SECONDS))

    def engine(self) -> AthenaLike:
        if self.config.query_engine == "athena":
            engine: AthenaLike = self._client("athena")
            return engine
        return self.local_engine()

    def local_engine(self) -> LocalEngine:
        """The injected local query engine (the toolkit's DuckDB engine), made once."""
        factory = self._engine_factory
        if factory is None:
            raise DependencyError("the query engine is set to the local one (DATAFORGE_QUERY_ENGINE=duckdb) but "
                                  "none is running here; serve the API with the toolkit (`dataforge api serve`)")
        return self._once("local_engine", lambda: factory(self))

    def runner(self) -> QueryRunner:
        settings = self.config.settings
        # what a failure message shown to a user must not name (Athena's reasons name buckets and locations)
        redact = [name for name in (settings.silver_bucket, settings.gold_bucket, settings.athena_results_bucket,
                                    settings.athena_workgroup) if name]
        if settings.endpoint_url:
            redact.append(urlparse(settings.endpoint_url).netloc)
        return self._once("runner", lambda: QueryRunner(
            self.engine, self.catalog(), dialect="trino" if self.config.query_engine == "athena" else "duckdb",
            workgroup=self.config.athena_workgroup,
            limits=QueryLimits(max_rows=self.config.max_query_rows, timeout_seconds=self.config.query_timeout_seconds),
            clock=self.clock, redact=redact))

    def close(self) -> None:
        with self._lock:
            engine = self._made.pop("local_engine", None)
        if engine is not None:
            engine.close()
