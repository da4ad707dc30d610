"""Every command of the runbooks runs, as written, and shows what it is there to show.

- ``aws ...``: the AWS CLI v1 (``awscli``, dev dependency group) in bash, against a moto server of its own
  on which the dev stack's resources are created from the rendered stack (``provision`` and
  ``provision_operations``), with the runbook's own variable definitions (``STACK``, ``REGION``) and a few
  symptoms planted first (an alarm in ALARM, log lines, a freshness datapoint, an open alert). The
  commands about a Lambda function run once per function the alarms watch.
- ``dataforge ...``: the CLI in this process (typer's runner; a real backfill takes the test session's
  Spark) on the embedded platform of the session's moto server: a batch file of yesterday's events landed
  by the file landing core with an FX table lacking one currency, so the quarantine holds
  ``unknown_currency`` records the runbook's replay then lands. Bash expands each command's words, with
  the runbook's definitions, ``DATE`` set to the sample's date.

Each command must exit 0; one that diagnoses something must name it in its output (``EXPECTED``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from typer.testing import CliRunner

from dataforge.contract import Validator
from dataforge.reference import default_fx
from dataforge.settings import Settings
from devkit.cli import app
from devkit.generator import GeneratorConfig, generate_events
from devkit.local import FAKE_AWS_ENV, LOCAL_AWS_REGION, local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.moto_server import MotoServer
from devkit.local.spark import configure_s3a
from devkit.rehearse.lambdas import stack_account
from devkit.rehearse.provision import provision, provision_operations
from infra.plan import Rendered, render
from lambdas.common.config import LandingConfig
from lambdas.common.file_landing import FileLanding
from lambdas.common.storage import S3ObjectStore
from tests.runbooks.runbook import ALARMS, INCIDENTS, Command, commands

pytestmark = pytest.mark.integration

STACK = "dataforge-dev"
SAMPLE_DAY = (datetime.now(UTC) - timedelta(days=1)).date()  # ingested today: within backfill's late days
FRESHNESS_SECONDS = 900.0
EXPECTED: dict[str, tuple[str, ...]] = {
    # a fragment of the command -> what its output must name (``{function}``: the function it ran for)
    'describe-alarms --alarm-names "$STACK-$ALARM"': ("dataforge-dev-data-freshness", "ALARM", "planted"),
    "get-dashboard": ("dataforge-dev-overview",),
    '--log-group-name "/aws/lambda/$STACK-$FUNCTION" --filter-pattern ERROR': ("StorageError in {function}",),
    "get-function-configuration": ("dataforge-dev-{function}", "Active"),
    'describe-table --table-name "$STACK-metrics"': ("dataforge-dev-metrics", "PAY_PER_REQUEST"),
    'describe-table --table-name "$STACK-alerts"': ("dataforge-dev-alerts", "PAY_PER_REQUEST"),
    "GlobalSecondaryIndexes[].IndexName": ("by_status",),
    "get-rest-apis": ("dataforge-dev-api",),
    "--metric-name FreshnessLagSeconds": (str(FRESHNESS_SECONDS),),
    'describe-alarms --alarm-names "$STACK-msk-consumer-lag" --region': ("dataforge-dev-msk-consumer-lag",),
    '"$STACK-msk-consumer-lag" "$STACK-data-freshness"': ("dataforge-dev-msk-consumer-lag", "ALARM"),
    "--filter-pattern '\"batch landed\"'": ("batch landed",),
    "--filter-pattern Throttl": ("ThrottlingException",),
    "dynamodb query --table-name \"$STACK-alerts\"": ("freshness_lag", "newest data is 12 min old"),
    "glue start-job-run": ("JobRunId",),
    "quarantine list --date \"$DATE\"": ("unknown_currency",),
    "quarantine replay --reason \"$REASON\" --date \"$DATE\" --dry-run": ("would land in bronze",),
    "quarantine replay --reason \"$REASON\" --date \"$DATE\"": ("landed in bronze",),
    "dataforge backfill --from \"$DATE\" --to \"$DATE\" --dry-run": ("would be rebuilt",),
    "dataforge backfill --from \"$DATE\" --to \"$DATE\"": ("backfill complete",),
}


@dataclass(frozen=True)
class Ran:
    command: Command
    function: str | None
    code: int
    output: str
    seconds: float


def _expected(command: Command, function: str | None) -> tuple[str, ...]:
    best = max((k for k in EXPECTED if k in command.text), key=len, default=None)
    return tuple(e.format(function=function) for e in EXPECTED[best]) if best else ()


def _per_function(command: Command) -> bool:
    """Whether the command names a resource of the alarm's function, so it runs once per function."""
    return "$FUNCTION" in command.text and any("{function}" in e for e in _expected(command, "{function}"))


# --- the AWS side ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_stack() -> Rendered:
    return render("dev")


@pytest.fixture(scope="module")
def aws_stack(dev_stack: Rendered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto server holding the dev stack's resources and the planted symptoms; yields the CLI's env."""
    logs = tmp_path_factory.mktemp("runbook-moto")
    with MotoServer(logs_dir=logs, env={"MOTO_ACCOUNT_ID": stack_account(dev_stack)}) as moto:
        session = boto3.Session(aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                                region_name=LOCAL_AWS_REGION)
        provision(dev_stack, session, moto.endpoint_url)
        provision_operations(dev_stack, session, moto.endpoint_url)
        _plant(session, moto.endpoint_url, lambda_roles(dev_stack))
        yield {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(logs),
               "AWS_ENDPOINT_URL": moto.endpoint_url, "AWS_DEFAULT_REGION": LOCAL_AWS_REGION,
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX", ""), **FAKE_AWS_ENV}


def lambda_roles(rendered: Rendered) -> list[str]:
    """The function roles the Lambda alarms are named after (``lambda-<function>-errors``)."""
    names = [str(r.inputs["name"]) for r in rendered.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    return sorted(n.removeprefix(f"{STACK}-lambda-").removesuffix("-errors") for n in names if n.endswith("-errors")
                  and "-lambda-" in n)


def _plant(session: boto3.Session, endpoint_url: str, roles: list[str]) -> None:
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url)
    for alarm in ("data-freshness", "msk-consumer-lag"):
        cloudwatch.set_alarm_state(AlarmName=f"{STACK}-{alarm}", StateValue="ALARM", StateReason="planted by the test")
    cloudwatch.put_metric_data(Namespace="DataForge", MetricData=[{
        "MetricName": "FreshnessLagSeconds", "Value": FRESHNESS_SECONDS, "Unit": "Seconds",
        "Timestamp": datetime.now(UTC) - timedelta(minutes=5),
        "Dimensions": [{"Name": "service", "Value": "msk-landing"},
                       {"Name": "FunctionName", "Value": f"{STACK}-msk-landing"}]}])
    logs = session.client("logs", endpoint_url=endpoint_url)
    now = int(time.time() * 1000)
    for role in roles:
        group = f"/aws/lambda/{STACK}-{role}"
        logs.create_log_stream(logGroupName=group, logStreamName="planted")
        messages = [f'{{"level": "ERROR", "message": "StorageError in {role}"}}']
        if role == "msk-landing":
            messages += ['{"level": "INFO", "message": "batch landed", "records": 100}',
                         '{"level": "WARNING", "message": "retrying after ThrottlingException"}']
        logs.put_log_events(logGroupName=group, logStreamName="planted",
                            logEvents=[{"timestamp": now - 60_000, "message": m} for m in messages])
    session.resource("dynamodb", endpoint_url=endpoint_url).Table(f"{STACK}-alerts").put_item(Item={
        "pk": "ALERT#freshness_lag-planted", "sk": "ALERT", "alert_id": "freshness_lag-planted",
        "rule": "freshness_lag", "severity": "critical", "status": "open", "raised_at": datetime.now(UTC).isoformat(),
        "message": "newest data is 12 min old (threshold 10 min)", "value": 12, "threshold": 10})


def _run_aws(command: Command, function: str | None, env: dict[str, str]) -> Ran:
    overrides = [f"FUNCTION={function}"] if function else []
    script = "\n".join(["set -euo pipefail", *command.definitions, *overrides, command.text])
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    return Ran(command, function, done.returncode, done.stdout + done.stderr, time.monotonic() - started)


# --- the embedded side -------------------------------------------------------------------------------


@pytest.fixture
def embedded(aws_env: dict[str, str], kafka_broker: Any, boto3_session: boto3.Session, unique_name: str,
             spark: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The embedded platform with yesterday's batch file landed by an FX table lacking one currency."""
    env = {**local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                               kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name),
           "DATAFORGE_KAFKA_TOPIC": f"{unique_name}-none"}  # no topic: reconcile counts the lake only
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    bootstrap(settings, boto3_session)
    configure_s3a(spark, aws_env["AWS_ENDPOINT_URL"])
    start = datetime.combine(SAMPLE_DAY, datetime.min.time(), UTC) + timedelta(hours=10)
    events = list(generate_events(GeneratorConfig(count=300, seed=5, start=start, end=start + timedelta(hours=2))))
    currency = Counter(str(msgspec.json.decode(e.value)["currency"]) for e in events).most_common(1)[0][0]
    # only that currency's records: before the fix the date's bronze is empty and reconcile exact
    sample = [e for e in events if msgspec.json.decode(e.value)["currency"] == currency]
    landing = settings.require("landing_bucket")
    boto3_session.client("s3").put_object(Bucket=landing, Key="files/runbook/sample.jsonl",
                                          Body=b"".join(e.value + b"\n" for e in sample))
    store = S3ObjectStore(boto3_session, endpoint_url=aws_env["AWS_ENDPOINT_URL"], region=settings.region)
    result = FileLanding(LandingConfig.from_settings(settings), store,
                         Validator(default_fx().currencies - {currency})).land(landing, "files/runbook/sample.jsonl")
    assert result.quarantined == len(sample) > 0
    return settings


def _words(command: Command) -> list[str]:
    """The command's words as bash expands them, after the runbook's definitions and ``DATE``."""
    script = "\n".join(["set -euo pipefail", *command.definitions, f"DATE={SAMPLE_DAY.isoformat()}",
                        f"set -- {command.text}", "printf '%s\\0' \"$@\""])
    done = subprocess.run(["bash", "-c", script], capture_output=True, check=True)
    return done.stdout.decode().split("\0")[:-1]


def _run_dataforge(command: Command) -> Ran:
    words = _words(command)
    assert words[0] == "dataforge", command
    started = time.monotonic()
    result = CliRunner().invoke(app, words[1:])
    return Ran(command, None, result.exit_code, result.output, time.monotonic() - started)


# --- the test ----------------------------------------------------------------------------------------


def test_every_runbook_command_runs_and_shows_what_it_is_for(aws_stack: dict[str, str], dev_stack: Rendered,
                                                            embedded: Settings) -> None:
    every = [*commands(INCIDENTS), *commands(ALARMS)]  # the incident runbook's replay comes first
    neither = [str(c) for c in every if c.tool not in ("aws", "dataforge")]
    assert neither == [], "a runbook command must be an aws or a dataforge command (move other steps to prose)"
    roles = lambda_roles(dev_stack)
    assert roles, "the stack declares Lambda alarms"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        aws = [pool.submit(_run_aws, c, role, aws_stack) for c in every if c.tool == "aws"
               for role in (roles if _per_function(c) else [None])]
        local = [_run_dataforge(c) for c in every if c.tool == "dataforge"]
        ran = [*local, *(future.result() for future in aws)]
    elapsed = time.monotonic() - started
    failures = [f"{r.command} (FUNCTION={r.function}) exited {r.code}:\n{r.output[-1500:]}" for r in ran if r.code != 0]
    assert failures == []
    silent = [f"{r.command} (FUNCTION={r.function}) does not name {missing}:\n{r.output[-1500:]}" for r in ran
              if (missing := [e for e in _expected(r.command, r.function) if e not in r.output])]
    assert silent == []
    assert {k for k in EXPECTED if not any(k in c.text for c in every)} == set(), "EXPECTED names no command"
    slowest = max(ran, key=lambda r: r.seconds)
    print(f"{len(ran)} runbook commands ({len(aws)} aws, {len(local)} dataforge) in {elapsed:.1f}s; "
          f"slowest {slowest.seconds:.1f}s: {slowest.command.text[:80]}")  # a figure for the report
