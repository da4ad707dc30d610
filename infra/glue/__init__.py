"""What an AWS Glue 5.1 job's Python process has before the job adds anything: the Python modules AWS
documents as provided, kept as data (``glue51_python_modules.json``, with its source) so that the
artifacts (``infra.artifacts.glue_requirements``: what the jobs must ship) and the rehearsal
(``devkit.rehearse.glue``: what a job may import) read one list."""

from __future__ import annotations

import ast
import functools
import json
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DATA_FILE: Final = Path(__file__).with_name("glue51_python_modules.json")


def normalize(distribution: str) -> str:
    """A distribution name as packaging compares it (PEP 503): lower case, runs of ``-_.`` as ``-``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


@dataclass(frozen=True, slots=True)
class GlueRuntime:
    """One Glue version's Python: its version, the wheel platform tags it installs, the distributions
    AWS lists as provided (name -> version), and what the Spark/Glue runtime adds (pyspark, py4j,
    awsglue)."""

    glue_version: str
    python_version: str
    platform_tags: tuple[str, ...]
    distributions: Mapping[str, str]
    runtime: Mapping[str, str]
    import_names: Mapping[str, tuple[str, ...]]

    def provides(self, distribution: str) -> bool:
        """Whether ``distribution`` is provided (by AWS's list or the Spark/Glue runtime)."""
        wanted = normalize(distribution)
        return any(normalize(name) == wanted for name in (*self.distributions, *self.runtime))

    def modules(self) -> frozenset[str]:
        """The top-level modules the provided distributions install: a distribution's own name (as an
        identifier) unless ``import_names`` says otherwise."""
        found: set[str] = set()
        for name in (*self.distributions, *self.runtime):
            found.update(self.import_names.get(name, (name.replace("-", "_").lower(),)))
        return frozenset(found)


@functools.cache
def glue51() -> GlueRuntime:
    """Glue 5.1's Python, from ``glue51_python_modules.json``."""
    data = json.loads(DATA_FILE.read_text())
    return GlueRuntime(
        glue_version=data["glue_version"], python_version=data["python_version"],
        platform_tags=tuple(data["platform_tags"]), distributions=dict(data["distributions"]),
        runtime=dict(data["runtime"]),
        import_names={name: tuple(modules) for name, modules in data["import_names"].items()})


def requirement_name(requirement: str) -> str:
    """The distribution a ``Requires-Dist`` line names (``msgspec[yaml]>=0.19; extra == "x"`` -> ``msgspec``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(1)


def zip_imports(archive: Path) -> frozenset[str]:
    """The top-level modules the ``.py`` files of the zip ``archive`` import, at any depth (lazy and
    guarded imports count), other than the standard library's and the zip's own top-level packages:
    the third-party modules a Glue job that gets ``archive`` as ``--extra-py-files`` can reach."""
    found: set[str] = set()
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        own = {name.split("/")[0].removesuffix(".py") for name in names}
        for name in names:
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(zipped.read(name), name)):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return frozenset(found - own - set(sys.stdlib_module_names))
