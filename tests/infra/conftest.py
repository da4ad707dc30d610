"""Render every stack once per session under Pulumi's mock engine (with each stack's real config)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pulumi_aws")

from infra import plan as engine

engine.enable_bytecode_cache()

STACKS = ("dev", "staging", "prod")
ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_PATHS = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml", "dataforge", "lambdas",
                  "spark", "chalice_api",
                  "chalice_api/.chalice/config.json",  # the API's Chalice config (the copy skips .chalice's builds)
                  "build/maven/msk-iam/pom.xml",  # the streaming job's --extra-jars (infra.artifacts.msk_iam_jars)
                  "data/reference")  # the merchants and FX rates the core layer and the Glue zip package


@pytest.fixture(scope="session")
def source_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen copy of the sources the stacks package: other work in the tree cannot change it mid-run."""
    target = tmp_path_factory.mktemp("snapshot")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".chalice", "vendor")
    for rel in SNAPSHOT_PATHS:
        source = ROOT / rel
        if source.is_dir():
            shutil.copytree(source, target / rel, ignore=ignore)
        elif source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


@pytest.fixture(scope="session")
def stacks(source_snapshot: Path) -> dict[str, engine.Rendered]:
    return {stack: engine.render(stack, source_snapshot) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, stacks: dict[str, engine.Rendered]) -> Iterator[engine.Rendered]:
    return stacks[request.param]


def pytest_configure(config: pytest.Config) -> None:
    # pulumi-aws warns about its own deprecated (*V2) classes when its modules are imported.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
