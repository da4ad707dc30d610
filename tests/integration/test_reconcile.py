"""`dataforge reconcile` on a lake built by the backfill job (real Spark, moto server): exact as built, and
a planted difference (a DynamoDB item deleted, a silver file deleted) is reported by name, non-zero."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from dataforge import serving
from dataforge.settings import Settings
from devkit.cli import app
from devkit.generator import generate_events
from devkit.local import local_environment
from devkit.reconcile import Sources, reconcile
from spark.jobs import backfill
from tests.integration.spark.test_jobs import CONFIG, DAYS, write_bronze
from tests.kpi_reference import expected_gold

pytestmark = pytest.mark.integration


@pytest.fixture
def built(spark: Any, aws_env: dict[str, str], kafka_broker: Any, unique_name: str,
          monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Bronze (batch-file source) -> backfill of every date: silver, gold and the DynamoDB export; the
    CLI's environment points at it."""
    from devkit.local.bootstrap import bootstrap
    from devkit.local.spark import configure_s3a

    env = local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                            kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    bootstrap(settings)
    configure_s3a(spark, aws_env["AWS_ENDPOINT_URL"])
    write_bronze(settings, list(generate_events(CONFIG)), sources=("file",))
    for day in DAYS:
        backfill.run(spark, settings, day, late_days=1)
    return settings


def _sources(settings: Settings) -> Sources:
    session = boto3.Session()
    return Sources(session.client("s3"), session.resource("dynamodb").Table(settings.require("metrics_table")))


def test_reconcile_is_exact_on_a_built_lake_and_names_a_planted_difference(built: Settings) -> None:
    settings, day = built, DAYS[0]
    expected = expected_gold(generate_events(CONFIG))
    started = time.monotonic()
    exact = reconcile(settings, day, _sources(settings))
    elapsed = time.monotonic() - started
    assert not exact.unexplained, exact.unexplained
    assert exact.counts["gold transactions"] == expected[(day, "*", "*", "*")][0]
    assert exact.counts["gold gross volume usd"] == expected[(day, "*", "*", "*")][4]
    assert exact.counts["bronze events"] == exact.counts["silver events"] + exact.counts[
        "quarantined no_fx_rate events"]
    print(f"reconcile of one date: {elapsed:.2f}s")  # a figure for the report, not an assertion

    cli = CliRunner().invoke(app, ["reconcile", "--date", day.isoformat(), "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["exact"] is True

    # plant: one merchant item of the export is gone
    table = boto3.resource("dynamodb").Table(settings.require("metrics_table"))
    grain = next(i for i in table.query(KeyConditionExpression="pk = :pk",
                                        ExpressionAttributeValues={":pk": serving.kpi_date_pk(day)})["Items"]
                 if not str(i["sk"]).startswith("*"))
    merchant, country, channel = str(grain["sk"]).split("#")
    table.delete_item(Key={"pk": serving.kpi_merchant_pk(merchant),
                           "sk": serving.kpi_merchant_sk(day, country, channel)})
    after = reconcile(settings, day, _sources(settings))
    assert [c.name for c in after.unexplained] == ["DynamoDB items = gold rows exported"]
    assert "1 item(s) missing" in after.unexplained[0].detail

    # plant: a silver file is gone (its events are neither in silver nor quarantined; gold no longer adds up)
    s3 = boto3.client("s3")
    bucket = settings.require("silver_bucket")
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"transactions/event_date={day}/")["Contents"]
               if o["Key"].endswith(".parquet"))
    s3.delete_object(Bucket=bucket, Key=key)
    cli = CliRunner().invoke(app, ["reconcile", "--date", day.isoformat()])
    assert cli.exit_code == 1, cli.output
    assert "bronze events = silver events + no_fx_rate quarantined" in cli.stderr
    assert "gold total = silver aggregated" in cli.stderr
    assert "UNEXPLAINED" in cli.stdout

    other = reconcile(settings, DAYS[1], _sources(settings))  # the other date is untouched
    assert not other.unexplained, other.unexplained
