"""`dataforge services env`, `dataforge jobs run` and `dataforge backfill` from the shell, on the real
moto server, Kafka broker and local Spark.

- a fresh shell (``env -i``, PATH and HOME only) that evals `services env` can run the jobs and a backfill;
- `backfill --dry-run` writes nothing; `--from/--to` is the range planned and built;
- a backfill that fails on one date (a corrupt bronze object: a real Spark failure, or an injected runner)
  records the dates done before it, and the rerun rebuilds only the remaining dates.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from dataforge import envvars
from dataforge.errors import DataForgeError
from dataforge.settings import Settings
from devkit.cli import app
from devkit.cli import jobs as jobs_cli
from devkit.generator import generate_events
from devkit.local import local_environment
from devkit.local import services as services_module
from devkit.local.bootstrap import bootstrap
from devkit.paths import project_root
from tests.integration.spark.test_jobs import CONFIG, DAYS, write_bronze
from tests.kpi_reference import expected_gold

pytestmark = pytest.mark.integration

D1, D2 = DAYS
CORRUPT_KEY = "transactions/source=file/ingest_date=2025-03-12/ingest_hour=00/corrupt.jsonl.gz"


def _environment(aws_env: dict[str, str], kafka: Any, prefix: str) -> dict[str, str]:
    return local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"], kafka_bootstrap_servers=kafka.bootstrap_servers,
                             prefix=prefix)


@pytest.fixture
def lake(aws_env: dict[str, str], kafka_broker: Any, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A created lake with the generated events in bronze (batch-file source); the environment of this
    process points at it (the CLI commands invoked in-process read it)."""
    env = _environment(aws_env, kafka_broker, unique_name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    bootstrap(settings)
    write_bronze(settings, list(generate_events(CONFIG)), sources=("file",))
    return settings


def gold(settings: Settings) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Gold as the independent computation keys it, read with pyarrow (no Spark)."""
    import pyarrow.parquet as pq

    s3, bucket = boto3.client("s3"), settings.require("gold_bucket")
    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="daily_kpis/").get("Contents", []):
        match = re.search(r"event_date=(\d{4}-\d{2}-\d{2})/.*\.parquet$", obj["Key"])
        if match is None:
            continue
        day = date.fromisoformat(match.group(1))
        for r in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())).to_pylist():
            found[(day, r["merchant_id"], r["country"], r["channel"])] = (
                r["txn_count"], r["approved_count"], r["declined_count"], r["approval_rate"], r["gross_volume_usd"],
                r["refund_count"], r["refund_volume_usd"], r["net_volume_usd"], r["avg_ticket_usd"],
                r["unique_accounts"])
    return found


def ledger(settings: Settings) -> dict[str, dict[str, Any]]:
    s3, bucket = boto3.client("s3"), settings.require("artifacts_bucket")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{jobs_cli.LEDGER_PREFIX}/").get("Contents", [])
    return {Path(o["Key"]).stem: json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            for o in listed}


def snapshot(settings: Settings) -> tuple[dict[str, list[tuple[str, str]]], list[dict[str, Any]]]:
    """Every object (key, ETag) of every bucket of the lake, and every metrics item."""
    s3 = boto3.client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"{settings.name_prefix}-")]
    objects = {b: sorted((o["Key"], o["ETag"]) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b)
                         for o in page.get("Contents", [])) for b in buckets}
    items = boto3.resource("dynamodb").Table(settings.require("metrics_table")).scan()["Items"]
    return objects, sorted(items, key=lambda i: (i["pk"], i["sk"]))


# --- services env, in a fresh shell ------------------------------------------------------------------------


def test_services_env_lets_a_fresh_shell_run_jobs_and_a_backfill(
        lake: Settings, moto_server: Any, kafka_broker: Any, served_api: str, tmp_path: Path) -> None:
    settings = lake
    home = tmp_path / "home"
    # the services of this test session, recorded as `dataforge services up` records its own
    services_module._write_state(services_module._state_of(moto_server, kafka_broker, complete=True),
                                 home / services_module.STATE_FILE_NAME)
    script = (f'eval "$(DATAFORGE_HOME={home} dataforge services env --prefix {settings.name_prefix} '
              f'--api-url {served_api})" && env | grep ^DATAFORGE_ | sort > {tmp_path}/env.txt && '
              "dataforge jobs run batch_enrichment && "
              f"dataforge jobs run daily_aggregation --date {D1} && "
              f"dataforge backfill --from {D1} --to {D2} --late-days 1")
    path = f"{project_root() / '.venv' / 'bin'}:{os.environ['PATH']}"
    done = subprocess.run(["env", "-i", f"PATH={path}", f"HOME={os.environ.get('HOME', str(tmp_path))}",
                           "bash", "-c", script], cwd=project_root(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    exported = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines())
    assert exported[envvars.GOLD_BUCKET] == settings.require("gold_bucket")
    assert exported[envvars.METRICS_TABLE] == settings.require("metrics_table")
    assert exported[envvars.GLUE_DATABASE_PREFIX] == settings.glue_database_prefix
    assert exported[envvars.KAFKA_BOOTSTRAP_SERVERS] == kafka_broker.bootstrap_servers
    assert (exported[envvars.API_URL], exported[envvars.API_KEY]) == (served_api, settings.require("api_key"))
    assert exported[envvars.HOME] == str(home)

    metrics = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert metrics[0]["silver_rows"] > 0  # batch_enrichment
    assert metrics[1]["gold_rows"] > 0  # daily_aggregation of D1
    assert "backfill complete: 2 rebuilt, 0 already up to date." in done.stdout
    assert set(ledger(settings)) == {D1.isoformat(), D2.isoformat()}
    assert gold(settings) == expected_gold(generate_events(CONFIG))


# --- backfill: dry run, range, resume -------------------------------------------------------------------


def test_backfill_dry_run_writes_nothing_and_plans_exactly_the_range(lake: Settings) -> None:
    before = snapshot(lake)
    one = CliRunner().invoke(app, ["backfill", "--from", str(D2), "--to", str(D2), "--dry-run"])
    both = CliRunner().invoke(app, ["backfill", "--from", str(D1), "--to", str(D2), "--dry-run", "--late-days", "1"])
    assert one.exit_code == both.exit_code == 0, one.output + both.output
    assert [line.split()[0] for line in one.stdout.splitlines()[:-1]] == [str(D2)]
    assert [line.split()[0] for line in both.stdout.splitlines()[:-1]] == [str(D1), str(D2)]
    assert "would rebuild" in both.stdout
    assert "2 of 2 date(s) would be rebuilt" in both.stdout
    assert snapshot(lake) == before  # nothing written: no ledger, no silver, no gold, no item
    backwards = CliRunner().invoke(app, ["backfill", "--from", str(D2), "--to", str(D1)])
    assert backwards.exit_code != 0


def test_backfill_resumes_after_an_injected_failure_with_only_the_remaining_dates(lake: Settings) -> None:
    """The runner (dependency injection) fails on the second date: the first is recorded, the rerun runs
    only the second and third; the ledger's record of the first is not rewritten."""
    days = [D1, D2, date(2025, 3, 12)]
    calls: list[str] = []

    def failing(settings: Settings, job: str, args: dict[str, str]) -> dict[str, Any]:
        calls.append(args["date"])
        if args["date"] == str(D2):
            raise jobs_cli.JobError("injected failure")
        return {"job": job}

    with pytest.raises(DataForgeError, match=f"{D2}: injected failure"):
        jobs_cli.rebuild(lake, jobs_cli.plan(lake, days, 1, force=False), 1, runner=failing, echo=lambda _: None)
    assert calls == [str(D1), str(D2)]
    first = ledger(lake)
    assert set(first) == {str(D1)}

    calls.clear()
    plans = jobs_cli.plan(lake, days, 1, force=False)
    assert [p.done for p in plans] == [True, False, False]
    assert jobs_cli.rebuild(lake, plans, 1, runner=lambda s, j, a: calls.append(a["date"]) or {},
                            echo=lambda _: None) == 2
    assert calls == [str(D2), "2025-03-12"]
    after = ledger(lake)
    assert set(after) == {str(D1), str(D2), "2025-03-12"}
    assert after[str(D1)] == first[str(D1)]  # recorded once, not redone


def test_backfill_resumes_after_a_real_spark_failure(lake: Settings, spark: Any) -> None:
    """A corrupt bronze object read only by the second date's rebuild fails that Spark job for real: the
    command exits 1 naming the date, the first date is recorded; once the object is removed, the same
    command rebuilds only the second date, and gold equals the independent computation."""
    from devkit.local.spark import configure_s3a

    configure_s3a(spark, lake.endpoint_url or "")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=lake.require("bronze_bucket"), Key=CORRUPT_KEY, Body=b"this is not gzip")
    command = ["backfill", "--from", str(D1), "--to", str(D2), "--late-days", "1"]

    failed = CliRunner().invoke(app, command)
    assert failed.exit_code == 1, failed.output
    assert f"backfill: FAILED on {D2}: job backfill failed: " in failed.stderr
    assert "rerun the same command to resume" in failed.stderr
    assert set(ledger(lake)) == {str(D1)}
    recorded = ledger(lake)[str(D1)]

    s3.delete_object(Bucket=lake.require("bronze_bucket"), Key=CORRUPT_KEY)
    resumed = CliRunner().invoke(app, command)
    assert resumed.exit_code == 0, resumed.output
    assert re.search(rf"^{D1} .* up to date \(ledger\)$", resumed.stdout, re.MULTILINE)
    assert "[1/1] " + str(D2) in resumed.stdout
    assert "backfill complete: 1 rebuilt, 1 already up to date." in resumed.stdout
    assert ledger(lake)[str(D1)] == recorded
    assert gold(lake) == expected_gold(generate_events(CONFIG))
