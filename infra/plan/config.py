"""A stack's configuration as ``pulumi up`` sees it: project defaults overlaid with the stack file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped, unused-ignore]

from infra.errors import RenderError

PROJECT_FALLBACK: Final = "dataforge"
SECRET_PLACEHOLDER: Final = "[secret]"  # noqa: S105 - a placeholder, not a secret


@dataclass(frozen=True, slots=True)
class StackConfig:
    project: str
    stack: str
    values: dict[str, Any]  # full keys ("dataforge:lake"), decoded YAML values
    secret_keys: tuple[str, ...]


def load_stack_config(stack: str, root: Path, overrides: Mapping[str, Any] | None = None) -> StackConfig:
    """Project defaults from ``Pulumi.yaml`` overlaid with ``Pulumi.<stack>.yaml`` (and ``overrides``)."""
    project_file = root / "Pulumi.yaml"
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise RenderError(f"no stack file {stack_file.name} in {root}")
    project = yaml.safe_load(project_file.read_text()) if project_file.is_file() else {}
    name = str(project.get("name", PROJECT_FALLBACK))
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(spec, Mapping) and ("default" in spec or "value" in spec):
            values[full] = spec.get("default", spec.get("value"))
        elif not isinstance(spec, Mapping):
            values[full] = spec
    secrets: list[str] = []
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            value = SECRET_PLACEHOLDER
            secrets.append(full)
        values[full] = value
    for key, value in (overrides or {}).items():
        values[key] = value
    return StackConfig(project=name, stack=stack, values=values, secret_keys=tuple(sorted(secrets)))


def _wire(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
