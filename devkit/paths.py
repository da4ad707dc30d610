"""Where the developer toolkit keeps its files: caches (downloads) and runtime state (logs, data, pids)."""

from __future__ import annotations

import os
from pathlib import Path

from dataforge import envvars

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout root (the folder holding ``pyproject.toml``), or the current folder outside one."""
    for candidate in (PACKAGE_DIR.parent, *PACKAGE_DIR.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd()


def cache_dir() -> Path:
    """Ignored, project-local cache of downloads (uv, Maven repository, resolved jars)."""
    return Path(os.environ.get(envvars.CACHE_DIR, project_root() / ".cache"))


def state_dir() -> Path:
    """Ignored, project-local runtime state of the embedded platform (logs, broker data, pid files)."""
    return Path(os.environ.get(envvars.HOME, project_root() / ".dataforge"))


def logs_dir() -> Path:
    return state_dir() / "logs"


def samples_dir() -> Path:
    return project_root() / "data" / "samples"
