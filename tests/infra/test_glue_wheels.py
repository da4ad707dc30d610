"""The Glue jobs' Python dependencies as the rendered stacks ship them: every job installs the wheels the
stack uploads, with pip kept off the network; every wheel installs on Glue 5.1 (CPython 3.11, x86-64
manylinux); together they cover every third-party import of the ``--extra-py-files`` zip that Glue 5.1
does not provide; and the zip's core reads its reference data from inside the zip, where Glue imports it."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from infra.artifacts import GLUE_LEFT_OUT
from infra.components.processing import WHEELS_PREFIX
from infra.glue import glue51
from infra.plan import Rendered

JOB, OBJECT = "aws:glue/job:Job", "aws:s3/bucketObject:BucketObject"
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "out" / "infra"


def _uploaded(stack: Rendered) -> dict[str, Path]:
    return {f"s3://{o.inputs['bucket']}/{o.inputs['key']}": ARTIFACTS / o.inputs["source"]["file"]
            for o in stack.of_type(OBJECT) if isinstance(o.inputs.get("source"), dict)}


def _wheels(stack: Rendered) -> list[Path]:
    uploaded = _uploaded(stack)
    return [uploaded[uri] for uri in uploaded if uri.split("/", 3)[3].startswith(f"{WHEELS_PREFIX}/")]


def test_every_job_installs_uploaded_wheels_without_an_index(stack: Rendered) -> None:
    uploaded = _uploaded(stack)
    for job in stack.of_type(JOB):
        arguments = job.inputs["defaultArguments"]
        modules = arguments.get("--additional-python-modules", "").split(",")
        assert modules != [""], f"{job.inputs['name']}: no --additional-python-modules"
        for uri in modules:
            assert uri in uploaded, f"{job.inputs['name']}: {uri} is not an object the stack uploads"
            assert uri.endswith(".whl")
            assert uploaded[uri].name == uri.rsplit("/", 1)[1]  # pip reads the wheel's tags from its file name
        assert "--no-index" in shlex.split(arguments.get("--python-modules-installer-option", ""))


def test_every_wheel_installs_on_glue_51(stack: Rendered) -> None:
    wheels = _wheels(stack)
    assert wheels
    for wheel in wheels:
        _, _, _, tags = parse_wheel_filename(wheel.name)
        pythons = {tag.interpreter for tag in tags}
        abis = {tag.abi for tag in tags}
        platforms = {tag.platform for tag in tags}
        assert pythons & {"cp311", "py3"} or ("abi3" in abis and any(p.startswith("cp3") for p in pythons)), wheel.name
        assert {"cp311", "abi3", "none"} & abis, wheel.name
        assert platforms & {*glue51().platform_tags, "manylinux_2_17_x86_64", "any"}, wheel.name
        assert all(p == "any" or p.endswith("_x86_64") for p in platforms), wheel.name


def _third_party_imports(archive: Path) -> set[str]:
    with zipfile.ZipFile(archive) as zipped:
        own = {name.split("/")[0] for name in zipped.namelist()}
        found: set[str] = set()
        for name in (n for n in zipped.namelist() if n.endswith(".py")):
            for node in ast.walk(ast.parse(zipped.read(name))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - own - set(sys.stdlib_module_names)


def _wheel_modules(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zipped:
        return {name.split("/")[0].removesuffix(".py") for name in zipped.namelist()
                if not name.split("/")[0].endswith((".dist-info", ".data"))}


def test_the_wheels_cover_every_import_glue_does_not_provide(stack: Rendered) -> None:
    uploaded = _uploaded(stack)
    (zips,) = {job.inputs["defaultArguments"]["--extra-py-files"] for job in stack.of_type(JOB)}
    imports = set().union(*(_third_party_imports(uploaded[uri]) for uri in zips.split(",")))
    shipped = set().union(*(_wheel_modules(wheel) for wheel in _wheels(stack)))
    missing = imports - glue51().modules() - shipped - set(GLUE_LEFT_OUT)
    assert not missing, f"imported by the jobs' zip, on neither Glue 5.1 nor a shipped wheel: {sorted(missing)}"
    assert {"msgspec", "isal"} <= shipped


def test_the_provided_modules_are_aws_list_for_glue_51() -> None:
    glue = glue51()
    assert (glue.glue_version, glue.python_version) == ("5.1", "3.11")
    assert glue.distributions["pandas"] == "2.3.3"
    assert glue.distributions["boto3"] == "1.40.61"
    assert {"pyspark", "py4j", "awsglue", "pandas", "pyarrow", "boto3", "dateutil"} <= glue.modules()
    assert not {"msgspec", "isal", "duckdb", "sqlglot"} & glue.modules()


def test_the_core_reads_its_reference_data_from_inside_the_zip(stack: Rendered) -> None:
    uploaded = _uploaded(stack)
    (zips,) = {job.inputs["defaultArguments"]["--extra-py-files"] for job in stack.of_type(JOB)}
    # the zip alone on the path, as Glue's Python imports --extra-py-files (zipimport), no checkout, no site
    # (-S: no site-packages; -P: no working directory on the path; PYTHONPATH: the zip only)
    probe = ("from dataforge import reference; "
             "print(len(reference.default_merchants()), len(reference.default_fx().currencies))")
    done = subprocess.run([sys.executable, "-S", "-P", "-c", probe], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(uploaded[zips])})
    assert done.returncode == 0, done.stderr[-2000:]
    merchants, currencies = map(int, done.stdout.split())
    assert merchants > 0
    assert currencies > 0


@pytest.mark.parametrize("name", ["msgspec", "isal"])
def test_the_wheels_are_at_the_locked_versions(stack: Rendered, name: str) -> None:
    import importlib.metadata

    versions = {parse_wheel_filename(w.name)[0]: str(parse_wheel_filename(w.name)[1]) for w in _wheels(stack)}
    assert versions[name] == importlib.metadata.version(name)
