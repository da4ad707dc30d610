"""What every Glue job shares: argument resolution, the session, settings, lake paths, catalog and
DynamoDB writes. Jobs stay thin: parse -> ``spark.transforms`` -> write.

On Glue, arguments come from ``awsglue.utils.getResolvedOptions`` (imported lazily: absent locally);
locally the same ``--name value`` pairs are parsed from ``argv``. Arguments named like a DataForge
environment variable (``--DATAFORGE_SILVER_BUCKET ...``) override the environment: that is how the
Pulumi outputs reach a Glue job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from dataforge import envvars, lake, schemas
from dataforge.errors import SettingsError
from dataforge.settings import LOCAL_ENV, Settings
from spark.errors import JobError
from spark.schemas import spark_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

_PASSTHROUGH_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION")
#: Every ``DATAFORGE_*`` name ``dataforge.envvars`` spells: a job argument so named is a setting.
SETTING_ARGUMENTS: Final = frozenset(
    value for value in vars(envvars).values() if isinstance(value, str) and value.startswith("DATAFORGE_"))

# The SQL settings every DataForge job runs with, on Glue (``session`` sets them on GlueContext's
# session) and locally (the toolkit's session includes them).
JOB_SQL_CONF: Final[Mapping[str, str]] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # The jobs' only window is the dedupe (row_number() = 1 per event_id). Spark 3.5 would put a
    # partial WindowGroupLimit before its shuffle: a map-side sort of every row that drops only the
    # rare duplicates. Off, the dedupe sorts once, after the shuffle (less CPU in the scan stage;
    # bench/daily_aggregation_vs_duckdb.py).
    "spark.sql.optimizer.windowGroupLimitThreshold": "-1",
}


def _on_glue() -> bool:
    try:
        import awsglue  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def parse_args(argv: Sequence[str], required: Iterable[str] = (), optional: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """``--name value`` pairs (Glue's argument style) -> dict, with defaults for ``optional``."""
    args: dict[str, str] = dict(optional or {})
    names = set(required) | set(optional or {})
    index = 0
    items = list(argv)
    while index < len(items):
        token = items[index]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq:
                if index + 1 >= len(items):
                    raise SettingsError(f"argument --{name} needs a value")
                value = items[index + 1]
                index += 1
            args[name] = value
        index += 1
    if _on_glue():
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]

        present = [n for n in names if f"--{n}" in items]
        args.update(getResolvedOptions(list(items), present))
    missing = [n for n in required if n not in args]
    if missing:
        raise SettingsError(f"missing job argument(s): {', '.join('--' + n for n in missing)}")
    return args


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def yesterday(clock: Clock = utc_now) -> date:
    """The UTC date before ``clock()``'s: the date a nightly run aggregates. Glue evaluates a
    scheduled trigger's cron expression in UTC, so the nightly workflow (``processing.dailySchedule``,
    01:30 UTC by default) computes the day that has just ended."""
    now = clock()
    if now.tzinfo is None:
        raise SettingsError(f"the job clock returned a naive datetime ({now}); it must be timezone-aware")
    return now.astimezone(UTC).date() - timedelta(days=1)


def run_date(args: Mapping[str, str], clock: Clock = utc_now) -> date:
    """``--date`` when given (``YYYY-MM-DD``), else yesterday in UTC (a scheduled run)."""
    text = args.get("date", "")
    if not text:
        return yesterday(clock)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"--date {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class JobArguments:
    """The job arguments a job reads (besides ``--DATAFORGE_*`` settings and the passthrough
    environment): ``required`` must be passed, ``optional`` default as given (an empty default
    means the job computes the value, e.g. ``--date`` -> yesterday)."""

    required: tuple[str, ...] = ()
    optional: Mapping[str, str] = field(default_factory=dict)

    def parse(self, argv: Sequence[str]) -> dict[str, str]:
        return parse_args(argv, required=self.required, optional=self.optional)

    def reads(self, name: str) -> bool:
        """Whether ``name`` (without ``--``) is an argument the job reads."""
        return (name in self.required or name in self.optional or name in _PASSTHROUGH_ENV
                or name in SETTING_ARGUMENTS)


def settings_from(args: Mapping[str, str]) -> Settings:
    environ = dict(os.environ)
    environ.update({k: v for k, v in args.items() if k.startswith("DATAFORGE_") or k in _PASSTHROUGH_ENV})
    return Settings.from_env(environ)


def session(app_name: str, settings: Settings) -> SparkSession:
    """Glue's session (``GlueContext``) on Glue, with the jobs' SQL settings; elsewhere the active
    session, which the developer toolkit starts (``dataforge jobs run``, the embedded platform)."""
    if _on_glue():
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from pyspark.context import SparkContext

        glue_session: SparkSession = GlueContext(SparkContext.getOrCreate()).spark_session
        for key, value in JOB_SQL_CONF.items():
            glue_session.conf.set(key, value)
        return glue_session
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        raise JobError(f"{app_name}: no Spark session. On Glue the job runs in GlueContext's session; "
                       "on this machine run it through the toolkit (`dataforge jobs run`), which starts one")
    return active


def dates(first: date, last: date) -> list[date]:
    if last < first:
        raise SettingsError(f"date range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class Lake:
    """``s3://`` locations of one environment's lake tables.

    Each zone's bucket is looked up when a location in it is asked for: a Glue job is given the
    buckets it touches only (``infra.components.processing.standard_jobs``), so asking for every zone
    (``Settings.lake``) would fail a job for a bucket it never uses."""

    settings: Settings

    def bucket(self, zone: lake.Zone) -> str:
        return self.settings.require(f"{zone.value}_bucket")

    def silver(self, event_date: date | None = None) -> str:
        return lake.s3_uri(self.bucket(lake.Zone.SILVER), lake.silver_prefix(event_date))

    def gold(self, event_date: date | None = None) -> str:
        return lake.s3_uri(self.bucket(lake.Zone.GOLD), lake.gold_prefix(event_date))

    def bronze(self, key: str = "") -> str:
        return lake.s3_uri(self.bucket(lake.Zone.BRONZE), key)

    def quarantine(self, key: str) -> str:
        return lake.s3_uri(self.bucket(lake.Zone.QUARANTINE), f"enrichment/{key}")

    def state(self, key: str) -> str:
        """Job state (checkpoints, commit markers): the artifacts bucket."""
        return lake.s3_uri(self.settings.require("artifacts_bucket"), f"jobs/{key}")


# --- Hadoop file system helpers (S3A locally, EMRFS on Glue) -------------------------------------


def _fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise JobError("the Spark session has no JVM gateway: it was stopped")
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs(spark, uri)
    return bool(fs.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    fs, path = _fs(spark, uri)
    fs.delete(path, True)


def touch(spark: SparkSession, uri: str, text: str = "") -> None:
    fs, path = _fs(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode()))
    finally:
        stream.close()


def read_table(spark: SparkSession, uri: str, table: schemas.Table, partition: date | None = None) -> DataFrame:
    """A lake table (or one ``event_date`` partition of it) with its declared schema; empty if absent."""
    from pyspark.sql import functions as F

    if partition is not None:
        schema = spark_schema(table, include_partitions=False)
        if not exists(spark, uri):
            return spark.createDataFrame([], spark_schema(table))
        return spark.read.schema(schema).parquet(uri).withColumn("event_date", F.lit(partition))
    if not exists(spark, uri):
        return spark.createDataFrame([], spark_schema(table))
    return spark.read.schema(spark_schema(table)).parquet(uri)


# --- Glue catalog -------------------------------------------------------------------------------


def _glue(settings: Settings) -> Any:
    from dataforge import aws

    return aws.client("glue", endpoint_url=settings.endpoint_url, region=settings.region)


def dynamodb_table(settings: Settings, session: Any = None) -> Any:
    """The metrics table; ``session``: an injected ``boto3.Session`` (default: a new one)."""
    from dataforge import aws

    resource = aws.resource("dynamodb", session=session, endpoint_url=settings.endpoint_url, region=settings.region)
    return resource.Table(settings.require("metrics_table"))


def register_partitions(settings: Settings, zone: lake.Zone, table: schemas.Table, location: str,
                        event_dates: Iterable[date]) -> int:
    """Create the ``event_date`` partitions in the Glue catalog (idempotent: existing ones are kept)."""
    wanted = sorted(set(event_dates))
    if not wanted:
        return 0
    glue = _glue(settings)
    database = lake.zone_database(settings.glue_database_prefix, zone)
    descriptor = glue.get_table(DatabaseName=database, Name=table.name)["Table"]["StorageDescriptor"]
    created = 0
    for start in range(0, len(wanted), 100):
        batch = [
            {"Values": [d.isoformat()],
             "StorageDescriptor": {**descriptor, "Location": f"{location.rstrip('/')}/event_date={d.isoformat()}/"}}
            for d in wanted[start:start + 100]
        ]
        response = glue.batch_create_partition(DatabaseName=database, TableName=table.name, PartitionInputList=batch)
        errors = response.get("Errors", [])
        unexpected = [e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if unexpected:
            raise SettingsError(f"Glue batch_create_partition failed for {database}.{table.name}: {unexpected}")
        created += len(batch) - len(errors)
    return created


def drop_partition(settings: Settings, zone: lake.Zone, table: schemas.Table, event_date: date) -> None:
    glue = _glue(settings)
    database = lake.zone_database(settings.glue_database_prefix, zone)
    with contextlib.suppress(glue.exceptions.EntityNotFoundException):
        glue.delete_partition(DatabaseName=database, TableName=table.name, PartitionValues=[event_date.isoformat()])


def is_local(settings: Settings) -> bool:
    return settings.env == LOCAL_ENV


def configure_logging() -> None:
    logging.basicConfig(level=os.environ.get("DATAFORGE_LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
