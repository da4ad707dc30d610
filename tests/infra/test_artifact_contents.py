"""Artifacts ship only what runs: the contents of the Lambda layer, each function zip, the API zip and the
Glue libraries, listed and checked against the layers (no toolkit module, no test file, no package that
nothing shipped imports), and each function and the API imported from its artifacts alone."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import artifacts

ROOT = Path(__file__).resolve().parents[2]
TOOLKIT_OR_TESTS = ("devkit/", "tests/", "bench/", "infra/", "panel_dashboard/")
TEST_FILE = re.compile(r"(^|/)(test_[^/]*\.py|[^/]*_test\.py|conftest\.py)$")


@pytest.fixture(scope="module")
def bundle() -> artifacts.Bundle:
    return artifacts.build_bundle()


def _names(artifact: artifacts.Artifact) -> list[str]:
    with zipfile.ZipFile(artifact.path) as archive:
        return archive.namelist()


def _our_files(role: str, names: list[str]) -> list[str]:
    """The archive's members of this repository (the layer's: under ``python/dataforge``)."""
    if role.startswith("core layer"):
        return [name.removeprefix("python/") for name in names if name.startswith("python/dataforge/")]
    return [name for name in names if not name.startswith("chalice/")]  # Chalice's runtime, vendored


def test_no_artifact_ships_the_toolkit_tests_or_other_deployables(bundle: artifacts.Bundle) -> None:
    for role, artifact in bundle.archives().items():
        names = _names(artifact)
        assert names, role
        assert not [n for n in names if n.startswith(TOOLKIT_OR_TESTS) or n.startswith(
            tuple(f"python/{p}" for p in TOOLKIT_OR_TESTS))], role
        assert not [n for n in names if TEST_FILE.search(n)], role
        assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n], role


def test_each_artifact_holds_exactly_its_deployable(bundle: artifacts.Bundle) -> None:
    tops = {role: {name.split("/")[0] for name in _our_files(role, _names(a))}
            for role, a in bundle.archives().items()}
    assert tops["core layer (Lambda)"] == {"dataforge"}
    assert tops["Glue --extra-py-files"] == {"dataforge", "spark"}
    assert tops["API (Chalice)"] == {"app.py", "chalicelib"}
    for function in artifacts.LAMBDA_FUNCTIONS:
        assert tops[f"Lambda {function}"] == {"lambdas"}


def _function_modules(names: list[str]) -> set[str]:
    return {name for name in names if name.endswith(".py")}


def test_a_function_zip_holds_its_handler_and_only_what_it_imports(bundle: artifacts.Bundle) -> None:
    zips = {f: _function_modules(_names(a)) for f, a in bundle.functions.items()}
    for function, modules in zips.items():
        assert f"lambdas/{function}/handler.py" in modules
        others = [f for f in artifacts.LAMBDA_FUNCTIONS if f != function]
        assert not [m for m in modules if m.startswith(tuple(f"lambdas/{o}/" for o in others))], function
        # every module is the handler or imported by a module of the zip (nothing dead)
        imported: set[str] = set()
        for module in modules:
            tree = ast.parse((ROOT / module).read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lambdas"):
                    imported.add(node.module)
                    imported.update(f"{node.module}.{a.name}" for a in node.names)
                elif isinstance(node, ast.Import):
                    imported.update(a.name for a in node.names)
        for module in modules - {f"lambdas/{function}/handler.py"}:
            dotted = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            assert module.endswith("__init__.py") or dotted in imported, f"{function} ships unused {module}"
    assert "lambdas/common/kafka_landing.py" not in zips["batch_landing"]
    assert "lambdas/common/file_landing.py" not in zips["msk_landing"]


def _distribution_closure(requirements: tuple[str, ...]) -> set[str]:
    """The import names of ``requirements`` and of every distribution they require (installed metadata)."""
    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        name = normal(re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0])
        if name not in seen:
            seen.add(name)
            todo += [r for r in importlib.metadata.distribution(name).requires or [] if "extra ==" not in r]
    return {package for package, dists in importlib.metadata.packages_distributions().items()
            if any(normal(d) in seen for d in dists)}


def _imports_of(folders: list[Path]) -> set[str]:
    """Top-level names imported anywhere in ``folders`` (lazy imports included)."""
    names: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def _layer_packages(names: list[str]) -> set[str]:
    return {n.split("/")[1].removesuffix(".py") for n in names
            if n.startswith("python/") and n.count("/") >= 1 and ".dist-info" not in n.split("/")[1]}


def test_the_layer_ships_only_packages_its_consumers_import(bundle: artifacts.Bundle) -> None:
    shipped = _layer_packages(_names(bundle.core_layer)) - {"dataforge"}
    required = {r.replace("-", "_") for r in artifacts.LAYER_REQUIREMENTS} | {"dataforge_native"}
    allowed = _distribution_closure(artifacts.LAYER_REQUIREMENTS) | {"dataforge_native"}
    assert shipped <= allowed, f"not required by the layer's requirements: {shipped - allowed}"
    consumers = _imports_of([ROOT / "dataforge", ROOT / "lambdas", ROOT / "chalice_api"])
    unused = {r for r in required if r not in consumers}
    assert not unused, f"the layer ships {unused}, which no function, the API or the core imports"


def _extract(artifact: artifacts.Artifact, into: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(artifact.path) as archive:
        for name in archive.namelist():
            if name.startswith(prefix) and name.endswith(".py"):
                archive.extract(name, into)
    return into / prefix if prefix else into


def _import_alone(module: str, path: list[Path]) -> subprocess.CompletedProcess[str]:
    """Import ``module`` in a fresh interpreter whose path is ``path`` and the third-party packages only:
    ``-S`` skips site (and with it the checkout's editable install), ``-I`` the environment and cwd."""
    purelib = sysconfig.get_paths()["purelib"]
    code = (f"import sys; sys.path[:0] = {[str(p) for p in path]!r} + [{purelib!r}]; import {module}; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {{'dataforge', 'lambdas', 'chalicelib', "
            f"'spark', 'devkit', 'infra', 'panel_dashboard', 'tests'}}))")
    return subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, timeout=120,
                          check=False, env={"AWS_DEFAULT_REGION": "us-east-1"})


def _modules_loaded(completed: subprocess.CompletedProcess[str]) -> Iterator[str]:
    assert completed.returncode == 0, completed.stderr[-4000:]
    yield from ast.literal_eval(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("function", artifacts.LAMBDA_FUNCTIONS)
def test_each_function_imports_from_its_zip_and_the_layers_core_alone(
        bundle: artifacts.Bundle, function: str, tmp_path: Path) -> None:
    code = _extract(bundle.functions[function], tmp_path / "function")
    core = _extract(bundle.core_layer, tmp_path / "layer", "python/dataforge/").parent
    loaded = list(_modules_loaded(_import_alone(f"lambdas.{function}.handler", [code, core])))
    assert f"lambdas.{function}.handler" in loaded
    assert not [m for m in loaded if m.split(".")[0] not in {"dataforge", "lambdas"}]


def test_the_api_imports_from_its_zip_and_the_layers_core_alone(bundle: artifacts.Bundle, tmp_path: Path) -> None:
    code = _extract(bundle.api, tmp_path / "api")
    core = _extract(bundle.core_layer, tmp_path / "layer", "python/dataforge/").parent
    loaded = list(_modules_loaded(_import_alone("app", [code, core])))
    assert "chalicelib.http" in loaded
    assert not [m for m in loaded if m.split(".")[0] not in {"dataforge", "chalicelib"}]


def test_the_glue_libraries_import_every_transform_alone(bundle: artifacts.Bundle, tmp_path: Path) -> None:
    libs = _extract(bundle.core_zip, tmp_path / "glue")
    loaded = list(_modules_loaded(_import_alone(
        "spark.runtime, spark.jobs.common, spark.transforms.validate, spark.transforms.enrich, "
        "spark.transforms.kpis, spark.transforms.dedupe", [libs])))
    assert not [m for m in loaded if m.split(".")[0] not in {"dataforge", "spark"}]
