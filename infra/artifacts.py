"""Deterministic build artifacts: the shared core, Lambda handlers, the Chalice app, Glue scripts.

Every zip is built from a sorted file list with fixed timestamps and permissions, so the same
sources always give the same bytes and the same SHA-256; the hash is part of the uploaded object
key, so a code change is a new object (and a new Glue/Lambda revision) and an unchanged tree is no
change at all. A source folder that does not exist (yet) gives an empty-but-valid archive: the
render never fails on it, and the hash changes as soon as code appears.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dataforge.paths import project_root

_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".chalice", "vendor", "tests"})
_SKIP_SUFFIXES: Final = (".pyc", ".pyo")


@dataclass(frozen=True, slots=True)
class Artifact:
    """A built file: where it is on disk, its content hash, and the key it is uploaded under."""

    name: str
    path: Path
    sha256: str

    @property
    def short_hash(self) -> str:
        return self.sha256[:16]

    @property
    def base64_sha256(self) -> str:
        """What Lambda's ``source_code_hash`` expects."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()

    def key(self, prefix: str) -> str:
        suffix = "".join(self.path.suffixes[-1:])
        return f"{prefix}/{self.name}-{self.short_hash}{suffix}"


def build_dir() -> Path:
    return project_root() / "build" / "out" / "infra"


def _files(root: Path) -> Iterator[Path]:
    if not root.exists():
        return
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if path.is_file() and not any(part in _SKIP_DIRS for part in rel) and not path.name.endswith(_SKIP_SUFFIXES):
            yield path


def deterministic_zip(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A zip of (archive path, source folder or file) entries, byte-identical for identical sources."""
    members: dict[str, bytes] = {}
    for arc_root, source in entries:
        for path in _files(source):
            rel = path.name if source.is_file() else path.relative_to(source).as_posix()
            members[f"{arc_root.rstrip('/')}/{rel}".lstrip("/")] = path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname in sorted(members):
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[arcname])
    return buffer.getvalue()


def _write(name: str, suffix: str, content: bytes) -> Artifact:
    digest = hashlib.sha256(content).hexdigest()
    out = build_dir() / f"{name}-{digest[:16]}{suffix}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(out)
    return Artifact(name=name, path=out, sha256=digest)


def zip_artifact(name: str, entries: Iterable[tuple[str, Path]], root: Path | None = None) -> Artifact:
    base = project_root() if root is None else root
    return _write(name, ".zip", deterministic_zip((arc, base / src) for arc, src in entries))


def file_artifact(name: str, relative: str, root: Path | None = None) -> Artifact:
    """A single file (a Glue script), copied as is; a missing script becomes a stub that fails loudly."""
    base = project_root() if root is None else root
    source = base / relative
    content = source.read_bytes() if source.is_file() else (
        f'raise SystemExit("{relative} was not present when this stack was rendered")\n'.encode())
    suffix = Path(relative).suffix
    return _write(name, suffix, content)


@dataclass(frozen=True, slots=True)
class Bundle:
    """Every artifact a stack ships, built once per render."""

    core_layer: Artifact  # python/dataforge/... (Lambda layer layout)
    core_zip: Artifact  # dataforge/... + spark/... (Glue --extra-py-files: jobs import spark.runtime, transforms)
    lambdas: Artifact  # lambdas/... (handlers: lambdas.<name>.handler.handler)
    api: Artifact  # the Chalice app with the core vendored
    connectors: Path  # MSK Connect connector configs


GLUE_JOBS: Final = ("streaming_enrichment", "batch_enrichment", "daily_aggregation", "backfill", "export_gold")


def glue_script(job: str, root: Path | None = None) -> Artifact:
    return file_artifact(job.replace("_", "-"), f"spark/jobs/{job}.py", root)


CHALICE_PACKAGE: Final = Path("build/chalice/deployment.zip")


def _api_artifact(base: Path) -> Artifact:
    """``chalice package``'s deployment.zip when it was built (``chalice package build/chalice``),
    else the app sources (the core arrives through the layer)."""
    packaged = base / CHALICE_PACKAGE
    if packaged.is_file():
        return _write("api", ".zip", packaged.read_bytes())
    return zip_artifact("api", [("", Path("chalice_api"))], base)


def build_bundle(root: Path | None = None) -> Bundle:
    base = project_root() if root is None else root
    return Bundle(
        core_layer=zip_artifact("core-layer", [("python/dataforge", Path("dataforge"))], base),
        core_zip=zip_artifact("glue-libs", [("dataforge", Path("dataforge")), ("spark", Path("spark"))], base),
        lambdas=zip_artifact("lambdas", [("lambdas", Path("lambdas"))], base),
        api=_api_artifact(base),
        connectors=Path(__file__).resolve().parent / "connectors",
    )
