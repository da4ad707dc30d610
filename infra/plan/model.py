"""The rendered stack: the resources the program registered, and its outputs, as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Resource:
    """One registered resource: what ``dataforge plan`` prints and the policy checks read."""

    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.type}::{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "parent": self.parent, "custom": self.custom,
                "protect": self.protect, "dependencies": self.dependencies, "inputs": self.inputs}


@dataclass(slots=True)
class Rendered:
    project: str
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def by_name(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack,
                "resources": [r.to_json() for r in self.resources], "outputs": self.outputs}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rendered:
        return cls(project=data["project"], stack=data["stack"], outputs=data["outputs"],
                   resources=[Resource(type=r["type"], name=r["name"], parent=r["parent"], custom=r["custom"],
                                       protect=r["protect"], inputs=r["inputs"], dependencies=r["dependencies"])
                              for r in data["resources"]])


def _normalize(value: Any) -> Any:
    """Make a deserialized property JSON-able and independent of the checkout's location."""
    import pulumi

    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in sorted(value.items()) if not str(k).startswith("__")}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return {"asset": type(value).__name__, "file": Path(str(value.path)).name}
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return {"asset": type(value).__name__}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
