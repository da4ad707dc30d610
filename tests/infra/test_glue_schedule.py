"""The Glue jobs as the rendered stacks start and size them: every trigger's (and so every workflow
action's) arguments, merged over the job's default arguments the way Glue merges them, are accepted
by the job's own argument parsing; the log groups Glue writes to under the stack's security
configuration are declared, with retention and key, and are exactly what the job roles may write."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from infra.components.processing import GLUE_PARAMETERS, glue_log_groups
from infra.errors import InfraConfigError
from infra.plan import Rendered, Resource
from infra.settings import StackSettings
from spark import runtime
from tests.infra.test_settings import CERT

TRIGGER, JOB, WORKFLOW = "aws:glue/trigger:Trigger", "aws:glue/job:Job", "aws:glue/workflow:Workflow"
LOG_GROUP, ROLE_POLICY = "aws:cloudwatch/logGroup:LogGroup", "aws:iam/rolePolicy:RolePolicy"
SECURITY = "aws:glue/securityConfiguration:SecurityConfiguration"
NIGHTLY = ("daily_aggregation", "export_gold")


def job_module(job: Resource) -> Any:
    """The ``spark.jobs`` module a rendered job runs (``processing-daily-aggregation`` -> ``daily_aggregation``)."""
    return importlib.import_module(f"spark.jobs.{job.name.removeprefix('processing-').replace('-', '_')}")


def started_jobs(stack: Rendered) -> list[tuple[Resource, Resource, dict[str, str]]]:
    """``(trigger, job, arguments)`` for every action of every trigger: the job's default arguments
    with the action's arguments over them (StartJobRun: "arguments you pass replace the default
    arguments set in the job definition")."""
    jobs = {j.inputs["name"]: j for j in stack.of_type(JOB)}
    found = []
    for trigger in stack.of_type(TRIGGER):
        for action in trigger.inputs["actions"]:
            job = jobs[action["jobName"]]
            found.append((trigger, job, {**job.inputs.get("defaultArguments", {}), **action.get("arguments", {})}))
    return found


def argv(arguments: dict[str, str]) -> list[str]:
    return [token for name, value in sorted(arguments.items()) for token in (name, value)]


def test_every_trigger_action_starts_its_job_with_arguments_the_job_accepts(stack: Rendered) -> None:
    started = started_jobs(stack)
    assert {job_module(job).__name__.rsplit(".", 1)[-1] for _, job, _ in started} >= set(NIGHTLY)
    for trigger, job, arguments in started:
        module = job_module(job)
        spec: runtime.JobArguments = module.ARGUMENTS
        unread = [n for n in arguments if n not in GLUE_PARAMETERS and not spec.reads(n.removeprefix("--"))]
        assert not unread, f"{trigger.name} starts {job.name} with arguments it does not read: {unread}"
        parsed = spec.parse(argv(arguments))  # raises for a required argument nobody passes
        assert set(spec.required) <= set(parsed), trigger.name


def test_every_workflow_is_started_by_a_scheduled_trigger(stack: Rendered) -> None:
    triggers = stack.of_type(TRIGGER)
    for workflow in stack.of_type(WORKFLOW):
        members = [t for t in triggers if t.inputs.get("workflowName") == workflow.inputs["name"]]
        assert [t.inputs["type"] for t in members if t.inputs["type"] == "SCHEDULED"] == ["SCHEDULED"], workflow.name


def test_a_scheduled_nightly_run_computes_yesterday_in_utc(stack: Rendered) -> None:
    """The nightly workflow's jobs get no ``--date``: they take the UTC day before the trigger fires."""
    clock = lambda: datetime(2025, 3, 11, 1, 30, tzinfo=UTC)  # noqa: E731  # the daily schedule's time
    nightly = [(t, j, a) for t, j, a in started_jobs(stack) if job_module(j).__name__.endswith(NIGHTLY)]
    assert len(nightly) == len(NIGHTLY)
    for _, job, arguments in nightly:
        assert "--date" not in arguments
        parsed = job_module(job).ARGUMENTS.parse(argv(arguments))
        assert runtime.run_date(parsed, clock) == date(2025, 3, 10)
        assert runtime.run_date({**parsed, "date": "2024-02-29"}, clock) == date(2024, 2, 29)


def test_glue_writes_only_to_declared_log_groups_and_the_roles_may_write_only_those(stack: Rendered) -> None:
    settings_retention = stack.by_name("api-access-logs").inputs["retentionInDays"]
    security = {s.inputs["name"]: s.inputs["encryptionConfiguration"] for s in stack.of_type(SECURITY)}
    groups = {g.inputs["name"]: g.inputs for g in stack.of_type(LOG_GROUP)}
    for job in stack.of_type(JOB):
        encryption = security[job.inputs["securityConfiguration"]]["cloudwatchEncryption"]
        assert encryption["cloudwatchEncryptionMode"] == "SSE-KMS"
        role_name = job.inputs["roleArn"].rsplit("/", 1)[-1]
        names = glue_log_groups(job.inputs["securityConfiguration"], role_name)
        for name in names:
            assert name in groups, f"{job.name}: Glue writes to {name}, which the stack does not declare"
            assert groups[name]["retentionInDays"] == settings_retention
            assert groups[name]["kmsKeyId"] == encryption["kmsKeyArn"]
        region, account = stack.outputs["region"], job.inputs["roleArn"].split(":")[4]
        arns = {f"arn:aws:logs:{region}:{account}:log-group:{n}{suffix}" for n in names for suffix in ("", ":*")}
        logs = [s for p in stack.of_type(ROLE_POLICY) if p.inputs["role"] == f"{role_name}-id"
                for s in json.loads(p.inputs["policy"])["Statement"]
                if any(str(a).startswith("logs:") for a in s["Action"])]
        assert logs, job.name
        for statement in logs:
            assert set(statement["Resource"]) == arns, f"{job.name}: {statement['Resource']}"
            assert "logs:AssociateKmsKey" in statement["Action"]  # Glue associates the configuration's key
        assert "--continuous-log-logGroup" not in job.inputs["defaultArguments"]


def test_g025x_is_refused_for_the_batch_jobs() -> None:
    with pytest.raises(InfraConfigError, match=r"dataforge:processing: `workerType: G\.025X` is refused.*streaming"):
        StackSettings.from_mapping("dev", {**CERT, "processing": {"workerType": "G.025X"}})
    assert StackSettings.from_mapping("dev", {**CERT, "processing": {"workerType": "G.1X"}}).processing.worker_type \
        == "G.1X"
