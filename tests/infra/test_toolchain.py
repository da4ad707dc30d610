"""The deploying machine builds the environment the repository installs: Pulumi runs the program through
its uv toolchain (``pulumi install`` / ``pulumi up`` run a plain ``uv sync`` into ``.venv``), and a plain
``uv sync`` from the lock installs exactly what ``make setup`` installed, the infra group included."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".cache" / "bootstrap" / "bin" / "uv"


def test_pulumi_runs_the_program_with_uv_in_the_projects_venv() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"] == {"toolchain": "uv", "virtualenv": ".venv"}


def test_a_plain_uv_sync_installs_every_group() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["default-groups"] == "all"
    assert {"infra", "lambdas", "api", "spark", "dashboard", "devkit", "dev"} <= set(pyproject["dependency-groups"])
    assert "optional-dependencies" not in pyproject["project"]  # extras a plain sync would leave out


def _dry_sync(*extra: str) -> str:
    completed = subprocess.run([str(UV), "sync", "--frozen", "--dry-run", *extra], cwd=ROOT, capture_output=True,
                               text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stderr + completed.stdout


def test_what_pulumi_runs_changes_nothing_in_the_installed_environment() -> None:
    assert "Would make no changes" in _dry_sync()


def test_the_dry_run_sees_a_missing_group() -> None:
    assert "Would make no changes" not in _dry_sync("--no-group", "infra")
