"""``dataforge backfill`` and ``dataforge jobs run``: the Spark jobs, from the shell.

Locally (``DATAFORGE_ENV=local``) the jobs run in this process on the local Spark session; on AWS
each date is a Glue job run (boto3 ``start_job_run``, polled to completion). ``backfill`` keeps a
ledger: one marker object per date in the artifacts bucket, recording the fingerprint of the bronze
objects it was built from, so a rerun (or a resume after a crash) skips dates whose input has not
changed, and ``--dry-run`` says which dates would be rebuilt and why.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final

import boto3
import typer
from botocore.exceptions import ClientError

from dataforge.errors import DataForgeError
from dataforge.settings import LOCAL_ENV, Settings

JOBS: Final = ("streaming_enrichment", "batch_enrichment", "daily_aggregation", "backfill", "export_gold")
LEDGER_PREFIX: Final = "jobs/backfill/ledger"
GLUE_POLL_SECONDS: Final = 15.0
_JAVA_EXCEPTION: Final = re.compile(r"^(Caused by: )?[\w.$]+(Exception|Error): ")
_GLUE_DONE: Final = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"})

app = typer.Typer(help="Run the Spark jobs (locally, or as Glue job runs on AWS).", no_args_is_help=True)


class JobError(DataForgeError):
    """A job run failed or could not be started."""


@dataclass(frozen=True, slots=True)
class DatePlan:
    day: date
    fingerprint: str
    bronze_objects: int
    done: bool  # the ledger records this fingerprint: nothing would change


def glue_job_name(settings: Settings, job: str) -> str:
    """Glue job names follow the resource naming of the stack: ``{prefix}-{env}-{job}`` (dashes)."""
    return f"{settings.name_prefix}-{settings.env}-{job.replace('_', '-')}"


def date_range(first: date, last: date) -> list[date]:
    if last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- ledger ----------------------------------------------------------------------------------


class Ledger:
    """One JSON marker per date: ``s3://<artifacts>/jobs/backfill/ledger/<date>.json``."""

    def __init__(self, settings: Settings, session: boto3.Session | None = None) -> None:
        self._bucket = settings.require("artifacts_bucket")
        self._s3 = (session or boto3.Session(region_name=settings.region)).client(
            "s3", endpoint_url=settings.endpoint_url)

    def _key(self, day: date) -> str:
        return f"{LEDGER_PREFIX}/{day.isoformat()}.json"

    def fingerprint(self, day: date) -> str | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=self._key(day))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise JobError(f"cannot read the backfill ledger for {day}: {exc}") from exc
        value = json.loads(body).get("fingerprint")
        return value if isinstance(value, str) else None

    def record(self, day: date, fingerprint: str, metrics: dict[str, Any]) -> None:
        body = {"date": day.isoformat(), "fingerprint": fingerprint, "metrics": metrics,
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self._s3.put_object(Bucket=self._bucket, Key=self._key(day), Body=json.dumps(body, default=str).encode())


def plan(settings: Settings, days: list[date], late_days: int, *, force: bool) -> list[DatePlan]:
    from spark.jobs import backfill

    ledger = Ledger(settings)
    plans = []
    for day in days:
        objects = backfill.bronze_objects(settings, day, late_days)
        fingerprint = backfill.fingerprint(objects)
        done = not force and ledger.fingerprint(day) == fingerprint
        plans.append(DatePlan(day, fingerprint, len(objects), done))
    return plans


# --- runners ---------------------------------------------------------------------------------


def run_local(job: str, args: dict[str, str]) -> dict[str, Any]:
    """Run a job's ``run`` in this process on the local Spark session; a failed Spark action raises
    ``JobError``."""
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    if job not in JOBS:
        raise JobError(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    try:
        return _run_module(job, args)
    except (Py4JError, PySparkException) as exc:  # a failed Spark action: the job failed, as a Glue run would
        raise JobError(f"job {job} failed: {spark_failure(exc)}") from exc


def spark_failure(exc: BaseException) -> str:
    """The one line of a Spark failure that names it (a Py4J error's text is a whole Java stack trace)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if _JAVA_EXCEPTION.match(line)]
    return ((named or lines or [repr(exc)])[-1 if named else 0])[:500]


def _run_module(job: str, args: dict[str, str]) -> dict[str, Any]:
    from devkit.local.spark import build_session
    from spark import runtime

    module = importlib.import_module(f"spark.jobs.{job}")
    settings = runtime.settings_from(args)
    build_session(job, endpoint_url=settings.endpoint_url or "")  # the active session the job's run takes
    spark = runtime.session(job, settings)
    params: dict[str, Any] = {k: v for k, v in args.items() if not k.startswith("DATAFORGE_")}
    if "date" in params:
        day = date.fromisoformat(params.pop("date"))
        if job == "backfill":
            late = int(params.pop("late_days", "7"))
            result: dict[str, Any] = module.run(spark, settings, day, late)
        else:
            result = module.run(spark, settings, day)
        return result
    result = module.run(spark, settings, **params)
    return result


def run_glue(settings: Settings, job: str, args: dict[str, str],
             sleep: Callable[[float], None] = time.sleep, session: boto3.Session | None = None) -> dict[str, Any]:
    """Start a Glue job run and wait for it; raises JobError unless it SUCCEEDED."""
    glue = (session or boto3.Session(region_name=settings.region)).client("glue", endpoint_url=settings.endpoint_url)
    name = glue_job_name(settings, job)
    try:
        run_id: str = glue.start_job_run(JobName=name, Arguments={f"--{k}": v for k, v in args.items()})["JobRunId"]
        while True:
            state = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
            status = str(state.get("JobRunState"))
            if status in _GLUE_DONE:
                break
            sleep(GLUE_POLL_SECONDS)
    except ClientError as exc:
        raise JobError(f"Glue job {name} could not be run: {exc}") from exc
    if status != "SUCCEEDED":
        raise JobError(f"Glue job run {name}/{run_id} ended {status}: {state.get('ErrorMessage', '')}")
    return {"job_run_id": run_id, "state": status}


def _run(settings: Settings, job: str, args: dict[str, str]) -> dict[str, Any]:
    return run_local(job, args) if settings.env == LOCAL_ENV else run_glue(settings, job, args)


# --- commands --------------------------------------------------------------------------------


def _parse_extra(extra: list[str]) -> dict[str, str]:
    from spark.runtime import parse_args

    return parse_args(extra)


Runner = Callable[[Settings, str, dict[str, str]], dict[str, Any]]
"""Runs one job with Glue-style arguments and returns its metrics (``_run``; tests inject their own)."""


def rebuild(settings: Settings, plans: list[DatePlan], late_days: int, *, runner: Runner = _run,
            ledger: Ledger | None = None, echo: Callable[[str], None] = typer.echo) -> int:
    """Rebuild the dates of ``plans`` the ledger does not record, in order, recording each one as soon as it
    is done; stops at the first failure (``JobError``), so a rerun resumes at the failed date. Returns the
    number of dates rebuilt."""
    ledger = ledger or Ledger(settings)
    todo = [p for p in plans if not p.done]
    for index, p in enumerate(todo, start=1):
        started = time.monotonic()
        echo(f"[{index}/{len(todo)}] {p.day}: rebuilding ...")
        try:
            metrics = runner(settings, "backfill", {"date": p.day.isoformat(), "late_days": str(late_days)})
        except DataForgeError as exc:
            raise JobError(f"{p.day}: {exc}") from exc
        ledger.record(p.day, p.fingerprint, metrics)
        echo(f"[{index}/{len(todo)}] {p.day}: done in {time.monotonic() - started:.1f}s {metrics}")
    return len(todo)


def backfill(
    date_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First event date.")],
    date_to: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last event date (inclusive).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say which dates would be rebuilt.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild dates the ledger says are up to date.")] = False,
    late_days: Annotated[int, typer.Option(help="Bronze ingest days after a date to read.", min=0)] = 7,
) -> None:
    """Rebuild silver, gold, the DynamoDB export and the realtime minutes for a date range from bronze (resumable)."""
    settings = Settings.from_env()
    days = date_range(date_from.date(), date_to.date())
    try:
        plans = plan(settings, days, late_days, force=force)
    except (DataForgeError, ClientError) as exc:
        typer.echo(f"backfill: cannot plan: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    todo = [p for p in plans if not p.done]
    for p in plans:
        state = "up to date (ledger)" if p.done else "would rebuild" if dry_run else "pending"
        typer.echo(f"{p.day}  {p.bronze_objects:6d} bronze objects  {state}")
    if dry_run:
        typer.echo(f"{len(todo)} of {len(plans)} date(s) would be rebuilt (silver, gold, DynamoDB export).")
        return
    try:
        rebuilt = rebuild(settings, plans, late_days)
    except DataForgeError as exc:
        typer.echo(f"backfill: FAILED on {exc}; rerun the same command to resume", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"backfill complete: {rebuilt} rebuilt, {len(plans) - rebuilt} already up to date.")


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(JOBS)}.")],
) -> None:
    """Run one job with Glue-style arguments, e.g. `jobs run daily_aggregation --date 2025-03-10`."""
    settings = Settings.from_env()
    if name not in JOBS:
        raise typer.BadParameter(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    try:
        result = _run(settings, name, _parse_extra(list(ctx.args)))
    except DataForgeError as exc:
        typer.echo(f"jobs run {name}: FAILED: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(json.dumps(result, default=str))
