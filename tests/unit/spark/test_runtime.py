"""Job plumbing without a JVM: argument parsing, session settings, export items, CLI helpers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dataforge import serving
from dataforge.errors import SettingsError
from dataforge.settings import Settings
from devkit.cli import jobs as cli_jobs
from devkit.local.spark import s3a_conf, session_conf
from spark import runtime
from spark.jobs import backfill


def test_glue_style_arguments_locally() -> None:
    args = runtime.parse_args(["--date", "2025-03-10", "--DATAFORGE_GOLD_BUCKET=g", "--late_days", "2"],
                              required=["date"], optional={"late_days": "7", "trigger": "availableNow"})
    assert args == {"date": "2025-03-10", "DATAFORGE_GOLD_BUCKET": "g", "late_days": "2", "trigger": "availableNow"}
    assert runtime.settings_from(args).gold_bucket == "g"
    with pytest.raises(SettingsError, match="--date"):
        runtime.parse_args([], required=["date"])


def test_local_session_is_glue_like() -> None:
    conf = session_conf(endpoint_url="http://127.0.0.1:5000", jars=[Path("/j/a.jar"), Path("/j/b.jar")])
    assert conf["spark.jars"] == "/j/a.jar,/j/b.jar"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5000"
    assert "spark.hadoop.fs.s3a.endpoint" not in session_conf(endpoint_url="", jars=[])
    assert s3a_conf("https://x")["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"


def test_export_items_use_the_serving_keys() -> None:
    row = {"merchant_id": "m1", "country": "US", "channel": "web", "txn_count": 2, "approved_count": 1,
           "declined_count": 1, "approval_rate": Decimal("0.5000"), "gross_volume_usd": Decimal("1.00"),
           "refund_count": 0, "refund_volume_usd": Decimal("0.00"), "net_volume_usd": Decimal("1.00"),
           "avg_ticket_usd": None, "unique_accounts": 2}
    items = serving.kpi_items(row, date(2025, 3, 10))
    assert [(i["pk"], i["sk"]) for i in items] == [("KPI#D#2025-03-10", "m1#US#web"), ("KPI#M#m1", "2025-03-10#US#web")]
    assert "avg_ticket_usd" not in items[0]
    assert items[0]["txn_count"] == 2
    assert type(items[0]["txn_count"]) is int
    assert items[0]["approval_rate"] == Decimal("0.5000")
    assert items[0]["event_date"] == "2025-03-10"
    total = serving.kpi_items({**row, "merchant_id": "*", "country": "*", "channel": "*"}, date(2025, 3, 10))
    assert [(i["pk"], i["sk"]) for i in total] == [("KPI#D#2025-03-10", "*#*#*"), ("KPI#TOTAL", "2025-03-10")]


def test_backfill_fingerprint_and_cli_helpers() -> None:
    assert backfill.fingerprint([("a", "1")]) != backfill.fingerprint([("a", "2")])
    assert backfill.fingerprint([]) == backfill.fingerprint([])
    assert cli_jobs.date_range(date(2025, 3, 10), date(2025, 3, 12))[-1] == date(2025, 3, 12)
    settings = Settings.from_env({"DATAFORGE_ENV": "prod", "DATAFORGE_NAME_PREFIX": "acme"})
    assert cli_jobs.glue_job_name(settings, "daily_aggregation") == "acme-prod-daily-aggregation"


def test_a_run_without_date_takes_yesterday_in_utc_from_the_clock() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from spark.jobs import daily_aggregation, export_gold

    at = datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
    assert runtime.run_date({}, lambda: at) == date(2025, 2, 28)
    assert runtime.run_date({"date": ""}, lambda: at) == date(2025, 2, 28)
    # 23:30 at UTC-5 on the 1st is 04:30 UTC on the 2nd: yesterday is the 1st, in UTC
    assert runtime.yesterday(lambda: datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))) \
        == date(2025, 3, 1)
    assert runtime.run_date({"date": "2024-02-29"}, lambda: at) == date(2024, 2, 29)
    with pytest.raises(SettingsError, match="naive"):
        runtime.yesterday(lambda: datetime(2025, 3, 1))
    with pytest.raises(SettingsError, match="--date '2025-13-01'"):
        runtime.run_date({"date": "2025-13-01"}, lambda: at)
    for job in (daily_aggregation, export_gold):
        assert job.ARGUMENTS.parse([]) == {"date": ""}
        assert job.ARGUMENTS.parse(["--date", "2025-03-10"])["date"] == "2025-03-10"
    with pytest.raises(SettingsError, match="--date"):
        backfill.ARGUMENTS.parse([])  # a backfill names its date


def test_job_arguments_know_what_the_job_reads() -> None:
    spec = runtime.JobArguments(required=("date",), optional={"late_days": "7"})
    assert all(spec.reads(n) for n in ("date", "late_days", "DATAFORGE_GOLD_BUCKET", "AWS_REGION"))
    assert not any(spec.reads(n) for n in ("dates", "DATAFORGE_NOT_A_SETTING"))


def test_lake_locations_need_only_the_buckets_they_name() -> None:
    settings = Settings.from_env({"DATAFORGE_ENV": "dev", "DATAFORGE_SILVER_BUCKET": "s", "DATAFORGE_GOLD_BUCKET": "g"})
    where = runtime.Lake(settings)
    assert where.silver(date(2025, 3, 10)).startswith("s3://s/")
    assert where.gold().startswith("s3://g/")
    with pytest.raises(SettingsError, match="DATAFORGE_BRONZE_BUCKET"):
        where.bronze()
