"""The embedded platform, end to end: the README's main job, as plain functions.

``run_pipeline`` takes a running set of embedded services (moto + Kafka) and pushes sample traffic
through every stage the AWS deployment has, with the same runtimes:

1. lake resources (buckets, Glue catalog, DynamoDB, SNS) created like a stack would;
2. synthetic events to the ``transactions`` topic and batch files to the landing bucket;
3. ingestion: the local event source mapping runs the real MSK landing Lambda, the landing-bucket
   notifications run the real batch landing Lambda -> bronze + quarantine;
4. Spark: streaming enrichment (Kafka -> silver + realtime minutes), batch enrichment (bronze files
   -> silver), daily aggregation per date -> gold -> export to DynamoDB;
5. the alert evaluator, once.

Each stage reports counts so that the run reconciles (received = valid + quarantined). Serving the
API and the dashboard is the CLI's job (``dataforge run``), since those run until stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3

from dataforge.settings import Settings
from devkit.generator import GenerationSummary, GeneratorConfig, generate_events

if TYPE_CHECKING:
    from devkit.local.esm import LocalEventSourceMapping

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: How far before now the sample traffic's event-time window ends: the realtime minutes the pipeline
#: writes are then about a minute old, and ``dataforge run``'s live traffic continues from there.
END_LAG: Final = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """How much sample traffic to push, and over which event-time window."""

    stream_events: int = 20_000
    file_events: int = 5_000
    invalid_fraction: float = 0.02
    duplicate_fraction: float = 0.01
    days: int = 2
    seed: int = 42
    end: datetime | None = None  # default: now minus END_LAG

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        end = self.end or (now - END_LAG)
        return end - timedelta(days=self.days), end


@dataclass(slots=True)
class PipelineReport:
    """What each stage did (filled in as the stages run)."""

    stream: GenerationSummary | None = None
    files: GenerationSummary | None = None
    ingest: dict[str, int] = field(default_factory=dict)
    spark: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
    dates: tuple[date, ...] = ()
    notification_queue_url: str = ""


def _noop(_: str) -> None:
    return None


def _session(settings: Settings) -> boto3.Session:
    return boto3.Session(region_name=settings.region)


def produce(settings: Settings, config: PipelineConfig, report: PipelineReport, progress: Progress) -> None:
    """Stage 2: sample events to Kafka (streaming path) and batch files to the landing bucket."""
    from devkit.generator_sinks import send_to_kafka
    from devkit.landing_sink import write_to_landing
    from devkit.local.s3_notifications import configure as configure_notifications

    session = _session(settings)
    where: dict[str, Any] = {"endpoint_url": settings.endpoint_url, "region_name": settings.region}
    # Notifications first, as on AWS: every file dropped from now on is announced exactly once.
    report.notification_queue_url = configure_notifications(
        session.client("s3", **where), session.client("sqs", **where), settings.require("landing_bucket"))

    start, end = config.window(datetime.now(UTC))
    base = GeneratorConfig(count=config.stream_events, seed=config.seed, start=start, end=end,
                           invalid_fraction=config.invalid_fraction, duplicate_fraction=config.duplicate_fraction)
    progress(f"producing {config.stream_events:,} events to Kafka topic {settings.kafka_topic}")
    sent = send_to_kafka(generate_events(base), bootstrap_servers=settings.require("kafka_bootstrap_servers"),
                         topic=settings.kafka_topic)
    report.stream = sent.summary
    files = GeneratorConfig(count=config.file_events, seed=config.seed + 1, start=start, end=end,
                            invalid_fraction=config.invalid_fraction, duplicate_fraction=config.duplicate_fraction)
    progress(f"dropping {config.file_events:,} events as batch files into the landing bucket")
    s3 = session.client("s3", **where)
    landed = write_to_landing(generate_events(files), s3=s3, bucket=settings.require("landing_bucket"))
    report.files = landed.summary
    days = (end.date() - start.date()).days
    report.dates = tuple(start.date() + timedelta(days=i) for i in range(days + 1))


#: The local mapping's consumer: a member that crashed is noticed by the group coordinator after
#: ``session.timeout.ms`` without heartbeats, and until then the group cannot hand its partitions to the
#: restarted mapping (librdkafka CONFIGURATION.md: default 45000 ms, raised from 10 s by KIP-735 against
#: spurious failures on busy cloud networks). On the one-machine embedded platform 10 s (within the broker's
#: ``group.min.session.timeout.ms`` of 6 s) bounds that stall (tests/chaos, experiment ``mapping_sigkill``).
MAPPING_CONSUMER_OVERRIDES: Final[Mapping[str, str | int | float | bool]] = {"session.timeout.ms": 10_000}


def landing_group(settings: Settings) -> str:
    """The consumer group of the local event source mapping: one per environment (name prefix)."""
    return f"{settings.name_prefix}-landing"


def msk_mapping(settings: Settings) -> LocalEventSourceMapping:
    """The local event source mapping of the topic, invoking the real MSK landing Lambda wired to
    ``settings``; one consumer group per environment, so every mapping continues from its commits."""
    from devkit.local.esm import EsmConfig, LocalEventSourceMapping
    from lambdas.msk_landing import handler as msk_landing

    landing = msk_landing.build_landing(settings)
    esm = EsmConfig(settings.require("kafka_bootstrap_servers"), (settings.kafka_topic,),
                    group_id=landing_group(settings), extra=MAPPING_CONSUMER_OVERRIDES)
    return LocalEventSourceMapping(esm, msk_landing.make_handler(lambda: landing))


def spark_session(settings: Settings, *, log_file: Path | None = None) -> Any:
    """The Glue-like local SparkSession the pipeline's jobs run on (S3A on the embedded S3);
    ``log_file``: where the Spark JVM logs instead of the console."""
    from devkit.local.spark import build_session

    return build_session("dataforge-platform", endpoint_url=settings.endpoint_url or "", log_file=log_file)


def ingest(settings: Settings, report: PipelineReport, progress: Progress, *, idle_seconds: float = 3.0) -> None:
    """Stage 3: Kafka -> MSK landing Lambda, landing files -> batch landing Lambda (until idle)."""
    from devkit.local.s3_notifications import NotificationPoller
    from lambdas.batch_landing import handler as batch_landing

    # The real handlers, wired to these settings (not to whatever a cold start read earlier).
    files = batch_landing.build_landing(settings)
    batch_handler = batch_landing.make_handler(lambda: files)

    progress("ingesting the Kafka topic through the MSK landing Lambda (local event source mapping)")
    stats = msk_mapping(settings).run(until_idle=idle_seconds)
    report.ingest["stream_records"] = stats.records
    report.ingest["stream_invocations"] = stats.invocations

    progress("landing batch files through the batch landing Lambda (S3 notifications)")
    session = _session(settings)
    poller = NotificationPoller(report.notification_queue_url, batch_handler, session=session,
                                endpoint_url=settings.endpoint_url, region=settings.region)
    file_stats = poller.run(until_idle=idle_seconds)
    report.ingest["files"] = file_stats.files


def refine(settings: Settings, report: PipelineReport, progress: Progress, spark: Any = None) -> None:
    """Stage 4: the Glue jobs on local Spark (S3A on the embedded S3), as the Glue workflow runs them."""
    from spark.jobs import batch_enrichment, daily_aggregation, export_gold, streaming_enrichment

    spark = spark or spark_session(settings)
    progress("Spark streaming enrichment: Kafka -> silver + realtime minutes (availableNow)")
    report.spark["streaming"] = streaming_enrichment.run(spark, settings, trigger="availableNow")
    progress("Spark batch enrichment: bronze batch files -> silver")
    report.spark["batch"] = batch_enrichment.run(spark, settings)
    gold_rows = items = 0
    for day in report.dates:
        progress(f"Spark daily aggregation and export for {day.isoformat()}")
        gold_rows += daily_aggregation.run(spark, settings, day)["gold_rows"]
        items += export_gold.run(spark, settings, day)["items_upserted"]
    report.spark["gold_rows"] = gold_rows
    report.spark["dynamodb_items"] = items


def evaluate_alerts(settings: Settings, report: PipelineReport, progress: Progress) -> None:
    """Stage 5: one run of the scheduled alert evaluator."""
    from lambdas.alert_evaluator.handler import build_evaluator

    progress("alert evaluator: rules over the realtime metrics and ingest counts")
    result = build_evaluator(settings).run()
    report.alerts = {"raised": len(result.raised), "refreshed": len(result.refreshed),
                     "resolved": len(result.resolved)}


def run_pipeline(settings: Settings, config: PipelineConfig | None = None,
                 progress: Progress = _noop, spark: Any = None) -> PipelineReport:
    """Stages 2-5 on already running services and created resources (see the module docstring).

    ``spark`` is an existing SparkSession to reuse (tests share one per run, ``dataforge run`` keeps
    its session for the live traffic); by default the Glue-like local session is created.
    """
    config = config or PipelineConfig()
    report = PipelineReport()
    produce(settings, config, report, progress)
    ingest(settings, report, progress)
    refine(settings, report, progress, spark)
    evaluate_alerts(settings, report, progress)
    return report
