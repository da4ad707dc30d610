"""The Glue part of ``dataforge rehearse``: every declared Glue job, started the way each trigger (and
workflow action) of the rendered stack starts it, run from the script the stack uploads, on local Spark,
with the Python a Glue 5.1 job has.

A Glue run gets the job's default arguments with the trigger action's arguments over them (StartJobRun:
"arguments you pass replace the default arguments set in the job definition"); a job no trigger starts
is started once as an operator would (``OPERATOR_ARGUMENTS``). The script, the ``--extra-py-files`` zip,
the ``--additional-python-modules`` wheels and the ``--extra-jars`` are the files the stack's
``BucketObject``s upload (the built artifacts, checked against their declared hashes), never the
checkout's modules.

Python, as Glue 5.1 has it ("Using Python libraries with AWS Glue"): the standard library, the modules
AWS lists as provided (``infra.glue``: pyspark, py4j and awsglue come with the runtime), the
``--additional-python-modules`` wheels installed with pip and the job's ``--python-modules-installer-option``
(which must keep pip off the network: the jobs' VPC has no route to PyPI), and the ``--extra-py-files``
zip first on the path. The venv here holds more than that, so an import hook (``sys.meta_path``) refuses
any other top-level module, naming it; the checkout's folders are taken off the path.

Jars: Spark itself, S3A standing in for EMRFS, and the Kafka connector Glue provides to streaming jobs
(``devkit.local.spark``'s bundle), plus the declared ``--extra-jars``. One child process (one JVM) runs
every run of the stack in turn, with ``runpy.run_path(script, run_name="__main__")`` and the run's
``sys.argv``; a conditional trigger's run starts only when its predicate jobs' runs succeeded.

Data: the lake and table on the rehearsal's moto server, under the stack's names; bronze holds what the
rehearsed landing functions wrote; the streaming job's topic is seeded with generated events of
yesterday (UTC), which the nightly workflow (no ``--date``: yesterday) then aggregates and exports. What
the rehearsal overrides is only the AWS endpoint and credentials (environment), the Kafka bootstrap
servers (the local broker) and, for the streaming job, ``--trigger availableNow``; each check says so.

Not rehearsed (docs/infra.md): GlueContext and awsglue themselves, EMRFS (S3A here), worker types and
counts, IAM, the VPC connection, Glue's own pip run on Amazon Linux 2023, and the import limit in Spark's
Python workers (the driver enforces it; workers get the same zip and wheels).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from dataforge import envvars
from dataforge.errors import ServiceError
from dataforge.settings import KAFKA_AUTH_PLAINTEXT
from infra import artifacts
from infra.glue import glue51
from infra.plan import Rendered, Resource

JOB: Final = "aws:glue/job:Job"
TRIGGER: Final = "aws:glue/trigger:Trigger"
BUCKET_OBJECT: Final = "aws:s3/bucketObject:BucketObject"
DIRECT_START: Final = "start_job_run"
GLUE_RUN_TIMEOUT_SECONDS: Final = 1200.0
KAFKA_SEED_EVENTS: Final = 100

_KAFKA_ARGUMENT: Final = f"--{envvars.KAFKA_BOOTSTRAP_SERVERS}"
_KAFKA_AUTH_ARGUMENT: Final = f"--{envvars.KAFKA_AUTH}"
_SILVER, _GOLD, _METRICS = (f"--{envvars.SILVER_BUCKET}", f"--{envvars.GOLD_BUCKET}", f"--{envvars.METRICS_TABLE}")

OUTPUTS: Final[Mapping[str, tuple[str, ...]]] = {
    "streaming_enrichment": (_SILVER, _METRICS),
    "batch_enrichment": (_SILVER,),
    "daily_aggregation": (_GOLD,),
    "export_gold": (_METRICS,),
    "backfill": (_SILVER, _GOLD),
}
"""Per job script, the arguments naming what a run must write to: a bucket (new or changed non-empty
objects) or a DynamoDB table (more items)."""


def _yesterday(now: datetime) -> str:
    return (now.astimezone(UTC).date() - timedelta(days=1)).isoformat()


OPERATOR_ARGUMENTS: Final[Mapping[str, Callable[[datetime], dict[str, str]]]] = {
    "backfill": lambda now: {"--date": _yesterday(now)},
}
"""What an operator passes to StartJobRun for a job no trigger starts (docs/runbooks): the backfill of
yesterday."""

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class GlueRun:
    """One start of one job: by which trigger, with which merged arguments, from which files."""

    job: str  # the declared job name
    script_job: str  # the spark/jobs script it runs (from the script artifact's name)
    trigger: str
    script: Path
    arguments: dict[str, str]
    predicate: tuple[str, ...] = ()  # job names whose runs must have succeeded (a conditional trigger)
    overridden: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # what makes the run impossible as declared (it fails without starting)
    py_files: tuple[Path, ...] = ()
    wheels: tuple[Path, ...] = ()
    installer_options: tuple[str, ...] = ()
    jars: tuple[Path, ...] = ()

    @property
    def argv(self) -> list[str]:
        """``sys.argv[1:]`` as Glue gives it to the script: every argument as ``--name value``, plus the
        ``--JOB_NAME`` Glue adds."""
        return [token for name, value in sorted({**self.arguments, "--JOB_NAME": self.job}.items())
                for token in (name, value)]


@dataclass(frozen=True, slots=True)
class GlueResult:
    job: str
    trigger: str
    ok: bool
    detail: str


def uploaded_files(rendered: Rendered, artifacts_dir: Path) -> dict[str, Path]:
    """``s3://bucket/key`` -> the built file each declared ``BucketObject`` uploads, checked against its
    declared content hash."""
    found: dict[str, Path] = {}
    for resource in rendered.of_type(BUCKET_OBJECT):
        inputs = resource.inputs
        source = inputs.get("source") or {}
        if not isinstance(source, dict) or "file" not in source:
            continue
        path = artifacts_dir / str(source["file"])
        declared = inputs.get("sourceHash")
        if path.is_file() and declared and hashlib.sha256(path.read_bytes()).hexdigest() != declared:
            raise ServiceError(f"{path.name} differs from what the stack uploads ({resource.name}): render again")
        found[f"s3://{inputs['bucket']}/{inputs['key']}"] = path
    return found


def _script_job(script: Path) -> str:
    """``daily-aggregation-<hash>.py`` -> ``daily_aggregation``."""
    return script.stem.rsplit("-", 1)[0].replace("-", "_")


def _uris(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _resolve(job: Resource, trigger: str, arguments: dict[str, str], files: Mapping[str, Path],
             kafka_bootstrap_servers: str, predicate: tuple[str, ...] = ()) -> GlueRun:
    inputs, problems, overridden = job.inputs, [], []
    script_uri = inputs["command"]["scriptLocation"]
    script = files.get(script_uri)
    if script is None:
        problems.append(f"its script {script_uri} is not an object the stack uploads")
    arguments = dict(arguments)
    if _KAFKA_ARGUMENT in arguments:
        arguments[_KAFKA_ARGUMENT] = kafka_bootstrap_servers
        overridden.append(_KAFKA_ARGUMENT)
    if _KAFKA_AUTH_ARGUMENT in arguments:  # the local broker has no IAM: devkit.rehearse.msk_iam checks those options
        arguments[_KAFKA_AUTH_ARGUMENT] = KAFKA_AUTH_PLAINTEXT
        overridden.append(_KAFKA_AUTH_ARGUMENT)
    if inputs["command"].get("name") == "gluestreaming":
        arguments["--trigger"] = "availableNow"
        overridden.append("--trigger")

    def stack_files(argument: str) -> tuple[Path, ...]:
        found = []
        for uri in _uris(arguments.get(argument, "")):
            if uri not in files:
                problems.append(f"{argument} names {uri}, which is not an object the stack uploads"
                                + ("" if uri.startswith("s3://") else
                                   " (a package index name: the jobs' VPC has no route to PyPI)"))
            elif not files[uri].is_file():
                problems.append(f"{argument}: {files[uri].name}, which the stack uploads, is not built")
            else:
                found.append(files[uri])
        return tuple(found)

    options = tuple(shlex.split(arguments.get("--python-modules-installer-option", "")))
    wheels = stack_files("--additional-python-modules")
    if wheels and "--no-index" not in options:
        problems.append("--python-modules-installer-option lacks --no-index: pip would look for the wheels' "
                        "requirements on PyPI, which the jobs' VPC cannot reach")
    return GlueRun(job=inputs["name"], script_job=_script_job(script) if script else "?", trigger=trigger,
                   script=script or Path(script_uri), arguments=arguments, predicate=predicate,
                   overridden=tuple(overridden), problems=tuple(problems),
                   py_files=stack_files("--extra-py-files"), wheels=wheels, installer_options=options,
                   jars=stack_files("--extra-jars"))


def glue_runs(rendered: Rendered, artifacts_dir: Path, kafka_bootstrap_servers: str,
              now: datetime | None = None) -> list[GlueRun]:
    """Every start of every declared job, in the order the rehearsal runs them: streaming jobs first
    (they feed silver), then the other triggers' actions in declaration order, conditional triggers
    after the triggers of their predicate jobs, and last the jobs no trigger starts."""
    moment = now or datetime.now(UTC)
    files = uploaded_files(rendered, artifacts_dir)
    jobs = {job.inputs["name"]: job for job in rendered.of_type(JOB)}
    started: set[str] = set()
    first: list[GlueRun] = []
    then: list[GlueRun] = []
    last: list[GlueRun] = []
    for trigger in rendered.of_type(TRIGGER):
        conditions = (trigger.inputs.get("predicate") or {}).get("conditions") or []
        predicate = tuple(c["jobName"] for c in conditions if c.get("jobName"))
        label = f"trigger {trigger.inputs['name']}"
        for action in trigger.inputs.get("actions") or []:
            job = jobs.get(action.get("jobName", ""))
            if job is None:
                continue  # a crawler action, or a job the stack does not declare (the infra tests catch it)
            started.add(job.inputs["name"])
            arguments = {**(job.inputs.get("defaultArguments") or {}), **(action.get("arguments") or {})}
            run = _resolve(job, label, arguments, files, kafka_bootstrap_servers, predicate)
            streaming = job.inputs["command"].get("name") == "gluestreaming"
            (first if streaming else last if predicate else then).append(run)
    direct = []
    for name, job in jobs.items():
        if name in started:
            continue
        script = files.get(job.inputs["command"]["scriptLocation"])
        operator = OPERATOR_ARGUMENTS.get(_script_job(script), lambda _now: {}) if script else lambda _now: {}
        extra = operator(moment)
        direct.append(_resolve(job, " ".join([DIRECT_START, *(f"{k} {v}" for k, v in extra.items())]),
                               {**(job.inputs.get("defaultArguments") or {}), **extra}, files,
                               kafka_bootstrap_servers))
    return [*first, *then, *last, *direct]


def _top_level(folder_or_zip: Path) -> set[str]:
    """The top-level modules a path entry (a folder or a zip) offers."""
    if folder_or_zip.is_file():
        with zipfile.ZipFile(folder_or_zip) as zipped:
            names = {name.split("/")[0] for name in zipped.namelist()}
    else:
        names = {path.name for path in folder_or_zip.iterdir()} if folder_or_zip.is_dir() else set()
    return {name.removesuffix(".py").split(".")[0] for name in names
            if not name.endswith((".dist-info", ".data")) and name.replace(".py", "").isidentifier()}


def install_wheels(wheels: Sequence[Path], options: Sequence[str], into: Path) -> Path:
    """``pip install <options> --target <folder> <wheels>``, as Glue runs pip3 on the job's
    ``--additional-python-modules`` with its ``--python-modules-installer-option`` (which holds
    ``--no-index``), once per wheel set."""
    key = hashlib.sha256("\n".join([*options, *(w.name for w in wheels)]).encode()).hexdigest()[:16]
    target = into / f"site-{key}"
    if not (target / ".complete").is_file():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *options,
                   "--target", str(target), *map(str, wheels)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"pip could not install the job's wheels: {' '.join(command)}\n{done.stderr[-2000:]}")
        (target / ".complete").write_text("\n".join(w.name for w in wheels) + "\n")
    return target


# Runs in the child process: the import limit first, then one Spark session, then every run in turn.
_BOOTSTRAP: Final = r'''
import importlib.abc, importlib.machinery, json, os, runpy, sys, sysconfig, time, traceback
spec = json.load(open(sys.argv[1]))
# what this interpreter loaded before the limit (site's own hooks) stays: it is not the job's doing
BASE = (frozenset(spec["base_modules"]) | frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
        | {name.partition(".")[0] for name in sys.modules})
allowed = set(BASE)
refused = []
STDLIB = tuple(os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib"))


class GlueImportLimit(importlib.abc.MetaPathFinder):
    """Refuses any top-level module that a Glue 5.1 job would not find."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed:
            return None
        if path is None:  # the standard library's private modules (_sysconfigdata_..., lib-dynload)
            found = importlib.machinery.PathFinder.find_spec(name)
            if found is not None and found.origin and os.path.realpath(found.origin).startswith(STDLIB):
                return None
        refused.append(top)
        raise ModuleNotFoundError(
            f"No module named {top!r}: it is not on Glue 5.1 (not provided by Glue 5.1, not in the job's "
            f"--additional-python-modules wheels, not in its --extra-py-files)", name=top)


sys.meta_path.insert(0, GlueImportLimit())
checkout = os.path.realpath(spec["checkout"])
venv = os.path.realpath(sys.prefix)
# the checkout's own folders (the editable install's .pth) leave the path; the venv's site-packages stay
sys.path[:] = [p for p in sys.path if p and (not os.path.realpath(p).startswith(checkout)
                                              or os.path.realpath(p).startswith(venv))]
base_path = list(sys.path)


def say(message):
    print(f"glue: {message}", flush=True)


from pyspark.sql import SparkSession  # noqa: E402  (after the limit: pyspark's own imports go through it)

builder = SparkSession.builder.master("local[2]").appName("glue-rehearsal")
for key, value in spec["spark_conf"].items():
    builder = builder.config(key, value)
session = builder.getOrCreate()
session.sparkContext.setLogLevel("WARN")


def snapshot(outputs):
    """What each watched bucket holds (key -> etag, size) and each watched table counts; a bucket or table
    the endpoint does not have counts as empty (the job's own access then fails, naming it)."""
    import boto3
    from botocore.exceptions import ClientError

    found = {}
    for argument, value in outputs:
        try:
            if argument.endswith("_BUCKET"):
                keys = {}
                for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=value):
                    keys.update({o["Key"]: (o["ETag"], o["Size"]) for o in page.get("Contents", [])})
                found[argument] = keys
            else:
                found[argument] = boto3.client("dynamodb").scan(TableName=value, Select="COUNT")["Count"]
        except ClientError:
            found[argument] = {} if argument.endswith("_BUCKET") else 0
    return found


results, succeeded, shipped, loaded_from = [], set(), set(), None
for run in spec["runs"]:
    started = time.monotonic()
    result = {"job": run["job"], "trigger": run["trigger"], "ok": False, "refused": [], "wrote": {}}
    results.append(result)
    waiting = [job for job in run["predicate"] if job not in succeeded]
    if run["problems"]:
        result["error"] = "; ".join(run["problems"])
        continue
    if waiting:
        result["error"] = f"not started: its trigger waits for {', '.join(waiting)} to succeed"
        continue
    say(f"{run['job']} ({run['trigger']})")
    if loaded_from != (run["py_files"], run["site"]):  # other files: none of the previous run's modules
        for name in [m for m in sys.modules if m.partition(".")[0] not in BASE]:
            del sys.modules[name]
        loaded_from = (run["py_files"], run["site"])
    sys.path[:] = [*run["py_files"], *run["site"], *base_path]
    allowed.clear()
    allowed.update(BASE, run["extra_modules"])
    del refused[:]
    for py_file in run["py_files"]:
        if py_file not in shipped:
            session.sparkContext.addPyFile(py_file)  # what Glue does with --extra-py-files: executors too
            shipped.add(py_file)
    outputs = [(a, run["arguments"][a]) for a in run["outputs"] if a in run["arguments"]]
    try:
        before = snapshot(outputs)
        sys.argv = [run["script"], *run["argv"]]
        try:
            runpy.run_path(run["script"], run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
        after = snapshot(outputs)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()[-3000:]
    else:
        for argument, value in outputs:
            if isinstance(after[argument], dict):
                result["wrote"][argument] = sum(1 for key, (etag, size) in after[argument].items()
                                                if size > 0 and before[argument].get(key, (None,))[0] != etag)
            else:
                result["wrote"][argument] = after[argument] - before[argument]
        result["ok"] = True
        succeeded.add(run["job"])
    finally:
        result["refused"] = sorted(set(refused))
        result["seconds"] = round(time.monotonic() - started, 1)
        for stream in session.streams.active:
            stream.stop()
with open(spec["out"], "w") as f:
    json.dump(results, f)
session.stop()
'''


def _judge(run: GlueRun, result: Mapping[str, Any]) -> GlueResult:
    overrides = ", ".join(["AWS endpoint/credentials (environment)", *run.overridden])
    if not result.get("ok"):
        refused = result.get("refused") or []
        detail = str(result.get("error", "no result"))
        if refused:
            detail += f" (refused imports: {', '.join(refused)})"
        return GlueResult(run.job, run.trigger, False, detail[:600])
    wrote: Mapping[str, int] = result.get("wrote") or {}
    missing = [argument for argument in OUTPUTS.get(run.script_job, ()) if wrote.get(argument, 0) <= 0]
    written = ", ".join(f"{argument.removeprefix('--DATAFORGE_').lower()} +{count}"
                        for argument, count in wrote.items())
    detail = f"{result.get('seconds')} s, wrote {written or 'nothing watched'}; overrode {overrides}"
    if missing:
        return GlueResult(run.job, run.trigger, False, f"wrote nothing to {', '.join(missing)}: {detail}")
    return GlueResult(run.job, run.trigger, True, detail)


def seed_topic(runs: Sequence[GlueRun], kafka_bootstrap_servers: str, now: datetime) -> int:
    """Produce generated events of yesterday (UTC) to the topic of each streaming run (created if
    missing), so the streaming job has input and the nightly workflow has yesterday's silver."""
    from devkit.generator import GeneratorConfig, generate_events
    from devkit.generator_sinks import send_to_kafka
    from devkit.local.kafka import create_topics

    day = datetime.combine(now.astimezone(UTC).date() - timedelta(days=1), datetime.min.time(), UTC)
    topics = {run.arguments[f"--{envvars.KAFKA_TOPIC}"] for run in runs
              if run.arguments.get("--trigger") == "availableNow" and f"--{envvars.KAFKA_TOPIC}" in run.arguments}
    sent = 0
    for topic in sorted(topics):
        create_topics(kafka_bootstrap_servers, {topic: 3})
        events = generate_events(GeneratorConfig(count=KAFKA_SEED_EVENTS, seed=23, start=day + timedelta(hours=1),
                                                 end=day + timedelta(hours=22)))
        sent += send_to_kafka(events, bootstrap_servers=kafka_bootstrap_servers, topic=topic).sent
    return sent


@dataclass(slots=True)
class GlueRehearsal:
    """What the Glue part of a rehearsal ran and answered."""

    runs: list[GlueRun] = field(default_factory=list)
    results: list[GlueResult] = field(default_factory=list)
    log: Path | None = None


@dataclass(frozen=True, slots=True)
class GluePlatform:
    """Where the rehearsed jobs run: the AWS endpoint (the moto server), the environment that reaches it
    (credentials, region), and the Kafka broker standing in for MSK."""

    endpoint_url: str
    env: Mapping[str, str]
    kafka_bootstrap_servers: str


def rehearse_glue(rendered: Rendered, platform: GluePlatform, workdir: Path, *, progress: Progress = lambda _m: None,
                  artifacts_dir: Path | None = None, now: datetime | None = None,
                  jars: Sequence[Path] | None = None) -> GlueRehearsal:
    """Run every Glue job start of ``rendered`` (``glue_runs``) in one child process on ``platform``;
    ``jars`` replaces the Glue-provided jars (default: the local Spark bundle)."""
    from devkit.local.maven import resolve_jars
    from devkit.local.spark import JAR_BUNDLE, session_conf

    glue, moment = glue51(), now or datetime.now(UTC)
    endpoint_url, kafka_bootstrap_servers = platform.endpoint_url, platform.kafka_bootstrap_servers
    runs = glue_runs(rendered, artifacts_dir or artifacts.build_dir(), kafka_bootstrap_servers, moment)
    done = GlueRehearsal(runs=runs)
    if not runs:
        return done
    workdir.mkdir(parents=True, exist_ok=True)
    if any(run.arguments.get("--trigger") == "availableNow" for run in runs):
        progress(f"glue: seeding the streaming topic with {KAFKA_SEED_EVENTS} events of yesterday")
        seed_topic(runs, kafka_bootstrap_servers, moment)
    child_runs, sites = [], set()
    for run in runs:
        site = install_wheels(run.wheels, run.installer_options, workdir) if run.wheels and not run.problems else None
        if site is not None:
            sites.add(str(site))
        extra = set().union(*(_top_level(p) for p in run.py_files)) if run.py_files else set()
        extra |= _top_level(site) if site else set()
        child_runs.append({"job": run.job, "trigger": run.trigger, "script": str(run.script), "argv": run.argv,
                           "arguments": run.arguments, "predicate": list(run.predicate),
                           "problems": list(run.problems), "py_files": [str(p) for p in run.py_files],
                           "site": [str(site)] if site else [], "extra_modules": sorted(extra),
                           "outputs": list(OUTPUTS.get(run.script_job, ()))})
    declared_jars = sorted({jar for run in runs for jar in run.jars})
    conf = session_conf(endpoint_url=endpoint_url,
                        jars=[*(resolve_jars(JAR_BUNDLE) if jars is None else jars), *declared_jars])
    out = workdir / "glue-results.json"
    spec = {"base_modules": sorted(glue.modules()), "checkout": str(artifacts.project_root()), "spark_conf": conf,
            "runs": child_runs, "out": str(out)}
    (workdir / "glue-spec.json").write_text(json.dumps(spec))
    (workdir / "glue_bootstrap.py").write_text(_BOOTSTRAP)
    done.log = workdir / "glue-child.log"
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("DATAFORGE_", "AWS_", "PYSPARK_", "SPARK_")) and k != "PYTHONPATH"}
    child_env.update(platform.env)
    child_env.update({envvars.AWS_ENDPOINT_URL: endpoint_url, "PYSPARK_PYTHON": sys.executable,
                      "PYSPARK_DRIVER_PYTHON": sys.executable, "TZ": "UTC",
                      # Spark's Python workers (started by the JVM) find the wheels through PYTHONPATH;
                      # the driver ignores it (-E) and builds its own path.
                      "PYTHONPATH": os.pathsep.join(sorted(sites))})
    command = [sys.executable, "-E", "-s", str(workdir / "glue_bootstrap.py"), str(workdir / "glue-spec.json")]
    progress(f"glue: {len(runs)} job run(s) in one Spark process")
    with done.log.open("w") as log:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=child_env,
                                 cwd=workdir)
        deadline = time.monotonic() + GLUE_RUN_TIMEOUT_SECONDS
        try:
            for line in _lines(child):
                if line.startswith("glue: "):
                    progress(line.rstrip())
                if time.monotonic() > deadline:
                    raise ServiceError(f"the Glue rehearsal took longer than {GLUE_RUN_TIMEOUT_SECONDS:.0f} s")
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if not out.is_file():
        tail = done.log.read_text()[-3000:]
        raise ServiceError(f"the Glue rehearsal process failed (exit {child.returncode}): {tail}")
    answered = json.loads(out.read_text())
    done.results = [_judge(run, result) for run, result in zip(runs, answered, strict=True)]
    return done


def _lines(child: subprocess.Popen[str]) -> Iterator[str]:
    if child.stdout is None:
        raise ServiceError("the Glue rehearsal process has no output pipe")
    yield from child.stdout
