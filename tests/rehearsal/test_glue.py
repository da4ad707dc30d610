"""The Glue part of the rehearsal (``devkit.rehearse.glue``): every job run the stack's triggers start,
from the uploaded script, zip and wheels, on local Spark with only what Glue 5.1 gives a job's Python;
and the rehearsal fails a job whose imports Glue 5.1 cannot satisfy."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from devkit.local import FAKE_AWS_ENV
from devkit.local.moto_server import MotoServer
from devkit.rehearse.glue import BUCKET_OBJECT, JOB, TRIGGER, GluePlatform, glue_runs, rehearse_glue
from devkit.rehearse.run import Report
from infra import artifacts
from infra.plan import Rendered, Resource, render
from tests.rehearsal.conftest import GLUE_STACKS

pytestmark = pytest.mark.integration

NO_BROKER = "127.0.0.1:9"  # runs without a streaming job never reach it


@pytest.fixture(scope="module")
def dev() -> Rendered:
    return render("dev")


def test_every_glue_job_run_the_triggers_start_is_green(rendered: Rendered, request: pytest.FixtureRequest) -> None:
    if rendered.stack not in GLUE_STACKS:
        pytest.skip("the suite rehearses dev's Glue jobs; `dataforge rehearse` every stack's")
    report: Report = request.getfixturevalue("report")  # the shared rehearsal, once the stack is known
    runs = {(c.function, c.trigger): c for c in report.checks if c.kind == "glue"}
    failed = [f"{job} / {trigger}: {c.detail}" for (job, trigger), c in runs.items() if not c.ok]
    assert not failed, "\n".join(failed)
    jobs = {job.inputs["name"] for job in rendered.of_type(JOB)}
    assert {job for job, _ in runs} == jobs
    for trigger in rendered.of_type(TRIGGER):
        for action in trigger.inputs["actions"]:
            assert (action["jobName"], f"trigger {trigger.inputs['name']}") in runs


def test_trigger_arguments_replace_the_defaults_and_undeclared_modules_fail(dev: Rendered) -> None:
    changed = copy.deepcopy(dev)
    (start,) = [t for t in changed.of_type(TRIGGER) if t.inputs["name"].endswith("-daily-start")]
    start.inputs["actions"][0]["arguments"] = {"--date": "2026-01-02", "--DATAFORGE_LOG_LEVEL": "DEBUG"}
    (export,) = [j for j in changed.of_type(JOB) if j.inputs["name"].endswith("-export-gold")]
    export.inputs["defaultArguments"]["--additional-python-modules"] = "msgspec==0.22.0"
    (batch,) = [j for j in changed.of_type(JOB) if j.inputs["name"].endswith("-batch-enrichment")]
    batch.inputs["defaultArguments"]["--python-modules-installer-option"] = "--upgrade"
    runs = {run.job: run for run in glue_runs(changed, artifacts.build_dir(), NO_BROKER)}

    daily = runs[next(name for name in runs if name.endswith("-daily-aggregation"))]
    assert daily.arguments["--date"] == "2026-01-02"
    assert daily.arguments["--DATAFORGE_LOG_LEVEL"] == "DEBUG"
    assert daily.arguments["--extra-py-files"].startswith("s3://")  # the job's defaults stay under the action's
    assert not daily.problems
    assert daily.wheels
    assert daily.py_files
    assert any("PyPI" in problem for problem in runs[export.inputs["name"]].problems)
    assert any("--no-index" in problem for problem in runs[batch.inputs["name"]].problems)


def _with_script(stack: Rendered, job: Resource, source: str, artifacts_dir: Path) -> None:
    """Point ``job`` at a script the stack uploads with ``source`` as its content."""
    content = source.encode()
    digest = hashlib.sha256(content).hexdigest()
    name = f"{job.inputs['name'].removeprefix('dataforge-dev-')}-{digest[:16]}.py"
    (artifacts_dir / name).write_bytes(content)
    bucket = job.inputs["command"]["scriptLocation"].removeprefix("s3://").split("/")[0]
    stack.resources.append(Resource(type=BUCKET_OBJECT, name=f"rehearsal-{name}", parent=None, custom=True,
                                    protect=False, inputs={"bucket": bucket, "key": f"glue/scripts/{name}",
                                                           "source": {"asset": "FileAsset", "file": name},
                                                           "sourceHash": digest}))
    job.inputs["command"]["scriptLocation"] = f"s3://{bucket}/glue/scripts/{name}"


def test_the_import_limit_refuses_what_glue_51_does_not_provide(dev: Rendered, moto_server: MotoServer,
                                                                tmp_path: Path) -> None:
    # The jobs as they were declared with the core zip alone (no --additional-python-modules), and a job
    # whose script imports duckdb (installed here, not on Glue 5.1); started directly (no trigger).
    broken = copy.deepcopy(dev)
    broken.resources = [r for r in broken.resources if r.type != TRIGGER
                        and not (r.type == JOB and not r.inputs["name"].endswith(("-daily-aggregation",
                                                                                    "-export-gold")))]
    artifacts_dir = tmp_path / "artifacts"
    artifacts_dir.mkdir()
    for built in artifacts.build_dir().iterdir():
        (artifacts_dir / built.name).symlink_to(built)
    jobs = {job.inputs["name"].removeprefix("dataforge-dev-"): job for job in broken.of_type(JOB)}
    for argument in ("--additional-python-modules", "--python-modules-installer-option"):
        del jobs["daily-aggregation"].inputs["defaultArguments"][argument]
    _with_script(broken, jobs["export-gold"], "import duckdb\n", artifacts_dir)

    done = rehearse_glue(broken, GluePlatform(moto_server.endpoint_url, dict(FAKE_AWS_ENV), NO_BROKER),
                         tmp_path / "glue", artifacts_dir=artifacts_dir)
    results = {result.job.removeprefix("dataforge-dev-"): result for result in done.results}

    assert set(results) == {"daily-aggregation", "export-gold"}
    core = results["daily-aggregation"]
    assert not core.ok
    assert "not on Glue 5.1" in core.detail, core.detail
    assert "'msgspec'" in core.detail or "'isal'" in core.detail, core.detail
    duckdb = results["export-gold"]
    assert not duckdb.ok
    assert "No module named 'duckdb': it is not on Glue 5.1" in duckdb.detail, duckdb.detail
