"""Spark streaming enrichment replaying a micro-batch whose run died between its silver append and its
commit marker (the chaos experiment ``streaming_sigkill`` kills the driver there; here the append's caller
raises right after it, as fast). Spark runs the uncommitted batch again under the same id: silver must not
get its rows twice, and the realtime minutes of the batch must still be written."""

from __future__ import annotations

from typing import Any

import pytest

from dataforge.settings import Settings
from devkit.generator import GeneratedEvent
from spark import runtime
from spark.jobs import common, streaming_enrichment
from tests.integration.ingestion.conftest import produce_all
from tests.integration.spark.test_jobs import dynamo_items, events, platform  # noqa: F401 - fixtures
from tests.kpi_reference import expected_gold

pytestmark = pytest.mark.integration


class DriverKilled(RuntimeError):
    """Stands for the driver dying right after the silver append."""


def test_a_micro_batch_cut_short_after_its_silver_append_is_replayed_without_duplicates(
        spark: Any, platform: Settings, events: list[GeneratedEvent], kafka_broker: Any,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit.local.kafka import create_topics

    settings = platform
    create_topics(kafka_broker.bootstrap_servers, {settings.kafka_topic: 3})
    produce_all(kafka_broker.bootstrap_servers, settings.kafka_topic, events)
    checkpoint = runtime.Lake(settings).state("replay/checkpoint")
    append = common.write_silver

    def append_then_die(*args: Any, **kwargs: Any) -> Any:
        append(*args, **kwargs)
        raise DriverKilled("after the silver append, before the commit marker")

    monkeypatch.setattr(common, "write_silver", append_then_die)
    with pytest.raises(Exception, match="DriverKilled"):
        streaming_enrichment.run(spark, settings, trigger="availableNow", checkpoint_location=checkpoint)
    silver = spark.read.parquet(runtime.Lake(settings).silver()).select("event_id")
    assert silver.count() > 0  # the cut-short run did append

    monkeypatch.setattr(common, "write_silver", append)
    streaming_enrichment.run(spark, settings, trigger="availableNow", checkpoint_location=checkpoint)
    wanted = {e.event_id for e in events if e.is_valid and e.enrichment_reason is None}
    rows = [r["event_id"] for r in spark.read.parquet(runtime.Lake(settings).silver()).select("event_id").collect()]
    assert len(rows) == len(set(rows)) == len(wanted)
    assert set(rows) == wanted
    payments = sum(v[0] for k, v in expected_gold(events).items() if k[1] == "*")
    realtime = [i for i in dynamo_items(settings) if i["pk"].startswith("RT#")]
    assert sum(int(i["txn_count"]) for i in realtime) == payments
