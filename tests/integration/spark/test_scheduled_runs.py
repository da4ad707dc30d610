"""The scheduled Glue runs, started the way the rendered stack's triggers start them.

Each scheduled job's ``main()`` gets exactly the arguments Glue would give it: the job's default
arguments from the rendered dev stack with the trigger action's arguments over them, and no
``--date``. Only the ``--DATAFORGE_*`` values are swapped for the embedded platform's (the same
names, so a setting the stack does not pass is missing here too; a setting that names no resource,
like the log level, keeps the stack's value). The nightly workflow runs in its
declared order (the scheduled start, then each conditional trigger whose predicate job succeeded),
with the job clock at the schedule's hour on the day after each test date, so "yesterday" is that
date. Gold must equal the independent KPI computation, and the export must hold every date.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataforge import serving
from dataforge.settings import Settings
from devkit.generator import GeneratedEvent, generate_events
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.spark import configure_s3a
from infra.plan import Rendered, Resource
from tests.integration.spark import test_jobs as reference
from tests.kpi_reference import expected_gold

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TRIGGER, JOB = "aws:glue/trigger:Trigger", "aws:glue/job:Job"
SCHEDULE_HOUR = time(1, 30, tzinfo=UTC)  # processing.dailySchedule: cron(30 1 * * ? *)


@pytest.fixture(scope="module")
def dev() -> Rendered:
    pytest.importorskip("pulumi_aws")
    from infra import plan

    return plan.render("dev", ROOT)


@pytest.fixture(scope="module")
def events() -> list[GeneratedEvent]:
    return list(generate_events(reference.CONFIG))


@pytest.fixture
def platform(spark, aws_env, kafka_broker, unique_name) -> dict[str, str]:
    env = local_environment(endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                            kafka_bootstrap_servers=kafka_broker.bootstrap_servers, prefix=unique_name)
    bootstrap(Settings.from_env(env))
    configure_s3a(spark, aws_env["AWS_ENDPOINT_URL"])
    return env


def job_of(job: Resource) -> str:
    return job.name.removeprefix("processing-").replace("-", "_")


def as_started(dev: Rendered, trigger: Resource, platform: dict[str, str]) -> list[tuple[str, list[str]]]:
    """``(job, argv)`` per action of ``trigger``: Glue's merge of default and action arguments, with
    the platform's value for each ``--DATAFORGE_*`` argument the stack passes."""
    jobs = {j.inputs["name"]: j for j in dev.of_type(JOB)}
    started = []
    for action in trigger.inputs["actions"]:
        job = jobs[action["jobName"]]
        arguments: dict[str, str] = {**job.inputs["defaultArguments"], **action.get("arguments", {})}
        for name in [n for n in arguments if n.removeprefix("--") in platform]:
            arguments[name] = platform[name.removeprefix("--")]  # the stack's names, the platform's values
        started.append((job_of(job), [t for n, v in sorted(arguments.items()) for t in (n, v)]))
    return started


def run_main(job: str, argv: list[str], clock: Callable[[], datetime] | None = None) -> None:
    module: Any = importlib.import_module(f"spark.jobs.{job}")
    if clock is None:
        module.main(argv)
    else:
        module.main(argv, clock=clock)


def nightly_workflow(dev: Rendered) -> list[Resource]:
    """The daily workflow's triggers in the order Glue fires them."""
    workflow = dev.outputs["glue_workflow"]
    members = [t for t in dev.of_type(TRIGGER) if t.inputs.get("workflowName") == workflow]
    ordered = [t for t in members if t.inputs["type"] == "SCHEDULED"]
    jobs = {j.inputs["name"]: job_of(j) for j in dev.of_type(JOB)}
    done = {jobs[a["jobName"]] for t in ordered for a in t.inputs["actions"]}
    pending = [t for t in members if t.inputs["type"] == "CONDITIONAL"]
    while pending:
        ready = [t for t in pending if all(jobs[c["jobName"]] in done and c["state"] == "SUCCEEDED"
                                           for c in t.inputs["predicate"]["conditions"])]
        assert ready, f"conditional triggers that never fire: {[t.name for t in pending]}"
        for trigger in ready:
            ordered.append(trigger)
            pending.remove(trigger)
            done |= {jobs[a["jobName"]] for a in trigger.inputs["actions"]}
    return ordered


def test_scheduled_runs_started_as_the_triggers_start_them_produce_the_independent_gold(
        spark, dev: Rendered, platform: dict[str, str], events: list[GeneratedEvent]) -> None:
    settings = Settings.from_env(platform)
    reference.write_bronze(settings, events, sources=("file",))  # the batch job reads the file source
    batch = dev.by_name("processing-batch-enrichment-schedule")
    for job, argv in as_started(dev, batch, platform):
        assert "--date" not in argv
        run_main(job, argv)

    workflow = nightly_workflow(dev)
    started = [(job, argv) for trigger in workflow for job, argv in as_started(dev, trigger, platform)]
    assert [job for job, _ in started] == ["daily_aggregation", "export_gold"]
    for day in reference.DAYS:
        fired = datetime.combine(day + timedelta(days=1), SCHEDULE_HOUR)
        for job, argv in started:
            assert "--date" not in argv
            run_main(job, argv, clock=lambda fired=fired: fired)

    expected = expected_gold(events)
    assert reference.actual_gold(spark, settings) == expected
    items = reference.dynamo_items(settings)
    totals = {i["sk"]: i for i in items if i["pk"] == serving.KPI_TOTAL_PK}
    assert set(totals) == {d.isoformat() for d in reference.DAYS}
    for day in reference.DAYS:
        assert int(totals[day.isoformat()]["txn_count"]) == expected[(day, "*", "*", "*")][0]


def test_an_explicit_date_still_selects_the_day(spark, dev: Rendered, platform: dict[str, str],
                                                events: list[GeneratedEvent]) -> None:
    """An operator's ``--date`` overrides the clock (a rerun of one day)."""
    settings = Settings.from_env(platform)
    reference.write_bronze(settings, events, sources=("file",))
    for job, argv in as_started(dev, dev.by_name("processing-batch-enrichment-schedule"), platform):
        run_main(job, argv)
    day: date = reference.DAYS[0]
    (job, argv), = as_started(dev, dev.by_name("processing-daily-start"), platform)
    run_main(job, [*argv, "--date", day.isoformat()], clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    gold = reference.actual_gold(spark, settings)
    assert {key[0] for key in gold} == {day}
    assert gold == {k: v for k, v in expected_gold(events).items() if k[0] == day}
