"""Deterministic build artifacts: the shared core, Lambda handlers, the Chalice app, Glue scripts.

Every zip is built from a sorted file list with fixed timestamps and permissions, so the same
sources always give the same bytes and the same SHA-256; the hash is part of the uploaded object
key, so a code change is a new object (and a new Glue/Lambda revision) and an unchanged tree is no
change at all. A source folder that does not exist (yet) gives an empty-but-valid archive: the
render never fails on it, and the hash changes as soon as code appears.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dataforge import envvars
from infra.errors import InfraError

_ROOT: Final = Path(__file__).resolve().parents[1]
# the merchants and FX rates ship inside the core package (dataforge.reference reads them there)
REFERENCE_FILES: Final = (Path("data/reference/merchants.csv"), Path("data/reference/fx_rates.csv"))
# what `uv pip install --target` leaves beside the packages that nothing imports: its lock, scripts
_INSTALLER_LEFTOVERS: Final = (".lock", "bin")
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


def project_root() -> Path:
    """The checkout whose sources the artifacts are built from (infra reads the deployables' folders)."""
    return _ROOT


def cache_dir() -> Path:
    """The ignored download cache (built wheels, the layer's dependencies, uv's cache)."""
    return Path(os.environ.get(envvars.CACHE_DIR, _ROOT / ".cache"))


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


LAMBDA_FUNCTIONS: Final = ("msk_landing", "batch_landing", "alert_evaluator")
"""The Lambda functions of ``lambdas/``: each ships ``lambdas/<name>/handler.py`` and what it imports."""


def _module_file(base: Path, module: str) -> Path | None:
    path = base.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Modules of ``package`` an AST imports (at any depth: lazy imports count), by absolute name."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == package:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # submodules, when they are
    return found


def import_closure(base: Path, module: str) -> list[Path]:
    """The source files of ``module`` and of every module of its top-level package it imports,
    transitively, with their packages' ``__init__.py``: what the module can run."""
    package = module.split(".")[0]
    todo, seen, files = [module], set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(base, name)
        if path is None:
            continue  # an attribute imported from a module, not a module
        files.add(path)
        parts = name.split(".")
        todo.extend(".".join(parts[:n]) for n in range(1, len(parts)))
        todo.extend(_imported(ast.parse(path.read_bytes(), str(path)), package))
    return sorted(files)


def function_artifact(function: str, root: Path | None = None) -> Artifact:
    """One Lambda function's zip: its handler and the modules of ``lambdas`` it imports (the core and the
    third-party packages come with the layer)."""
    base = project_root() if root is None else root
    files = import_closure(base, f"lambdas.{function}.handler")
    return zip_artifact(f"lambda-{function.replace('_', '-')}",
                        [(path.parent.relative_to(base).as_posix(), path.relative_to(base)) for path in files], base)


@dataclass(frozen=True, slots=True)
class Bundle:
    """Every artifact a stack ships, built once per render."""

    core_layer: Artifact  # python/dataforge/... + its third-party deps (Lambda layer layout, arm64)
    core_zip: Artifact  # dataforge/... + spark/... (Glue --extra-py-files: jobs import spark.runtime, transforms)
    functions: dict[str, Artifact]  # per Lambda function: lambdas/<name>/handler.py and what it imports
    api: Artifact  # the Chalice app and Chalice's runtime (the core comes with the layer)

    def archives(self) -> dict[str, Artifact]:
        """The built archives by role (what ``dataforge plan --summary`` lists with their sizes)."""
        return {"core layer (Lambda)": self.core_layer, "Glue --extra-py-files": self.core_zip,
                **{f"Lambda {name}": artifact for name, artifact in self.functions.items()},
                "API (Chalice)": self.api}


GLUE_JOBS: Final = ("streaming_enrichment", "batch_enrichment", "daily_aggregation", "backfill", "export_gold")


def sizes(named: dict[str, Artifact]) -> str:
    """A table of artifacts: role, size, content hash, file."""
    rows = [(role, f"{a.path.stat().st_size / 1024:,.0f} KiB", a.short_hash, a.path.name) for role, a in named.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["artifacts:"] + ["  " + "  ".join(c.rjust(widths[i]) if i == 1 else c.ljust(widths[i])
                                                for i, c in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def glue_script(job: str, root: Path | None = None) -> Artifact:
    return file_artifact(job.replace("_", "-"), f"spark/jobs/{job}.py", root)


CHALICE_PROJECT: Final = Path("chalice_api")
"""The API's Chalice project (``app.py``, ``chalicelib/``, ``.chalice/config.json``)."""

# Third-party packages the Lambda runtimes import (boto3 ships with the Lambda Python runtime), at
# the versions of uv.lock (the ones installed here), for the functions' platform: arm64.
LAYER_REQUIREMENTS: Final = ("msgspec", "isal", "aws-lambda-powertools", "sqlglot")
LAMBDA_PYTHON: Final = "3.11"


@dataclass(frozen=True, slots=True)
class Platform:
    """A Lambda instruction set: the wheel platform the layer's packages are installed for, and the Rust
    target of the validator's compiled fast path."""

    name: str
    wheels: str
    rust_target: str


ARM64: Final = Platform("arm64", "aarch64-manylinux2014", "aarch64-unknown-linux-gnu")
"""What the functions run on."""
X86_64: Final = Platform("x86_64", "x86_64-manylinux2014", "x86_64-unknown-linux-gnu")
"""The rehearsal's twin of the layer (same lock, same sources), for a machine that runs x86-64."""
LAMBDA_PLATFORM: Final = ARM64.wheels


def _uv() -> str:
    found = shutil.which("uv") or str(project_root() / ".cache" / "bootstrap" / "bin" / "uv")
    if not Path(found).is_file():
        raise InfraError("building the Lambda layer needs uv: run `make setup` first (it bootstraps uv)")
    return found


# The validator's compiled fast path (native/, Rust) for the functions' platform: cross-built here with
# maturin, zig as the linker (so the wheel is manylinux2014: glibc 2.17, what Lambda's arm64 runtime has).
NATIVE_SOURCE: Final = Path("native")
MATURIN: Final = "maturin[zig]==1.16.0"


def _native_sources(root: Path) -> list[Path]:
    return [p for p in _files(root) if "target" not in p.relative_to(root).parts[:1]]


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError as exc:
        raise InfraError(f"{what} needs {command[0]!r}, which is not installed") from exc
    if done.returncode != 0:
        raise InfraError(f"{what} failed: {' '.join(command)}\n{done.stderr[-2000:]}")


def native_wheel(root: Path | None = None, platform: Platform = ARM64) -> Path:
    """The ``dataforge_native`` wheel for ``platform``, built once per source tree into
    ``.cache/native-wheels/<hash>`` (reruns reuse it). Needs rustup (it adds the target) and uv."""
    source = (project_root() if root is None else root) / NATIVE_SOURCE
    target = platform.rust_target
    digest = hashlib.sha256("\n".join([target, MATURIN]).encode())
    for path in _native_sources(source):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    folder = cache_dir() / "native-wheels" / digest.hexdigest()[:16]
    wheels = sorted(folder.glob("*.whl"))
    if (folder / ".complete").is_file() and len(wheels) == 1:
        return wheels[0]
    shutil.rmtree(folder, ignore_errors=True)
    cargo_bin = Path.home() / ".cargo" / "bin"
    env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}{os.pathsep}{cargo_bin}",
           "CARGO_TARGET_DIR": str(cache_dir() / "cargo-target" / target)}
    rustup = shutil.which("rustup", path=env["PATH"]) or "rustup"
    _run([rustup, "target", "add", target], f"adding Rust's {platform.name} target (rustup)", env)
    _run([_uv(), "tool", "run", "--cache-dir", str(cache_dir() / "uv"), "--from", MATURIN, "maturin", "build",
          "--release", "--quiet", "--manifest-path", str(source / "Cargo.toml"), "--target", target, "--zig",
          "--compatibility", "manylinux2014", "--interpreter", f"python{LAMBDA_PYTHON}", "--out", str(folder)],
         f"building the validator's compiled fast path for {platform.name} (maturin + zig)", env)
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise InfraError(f"maturin left {len(wheels)} wheels in {folder}, expected one")
    (folder / ".complete").write_text(wheels[0].name + "\n")
    return wheels[0]


def layer_dependencies(platform: Platform = ARM64) -> Path:
    """The layer's third-party ``python/`` folder: wheels for ``platform`` (and the validator's compiled
    fast path, built from native/), installed once per pinned requirement set into
    ``.cache/lambda-layer/<hash>`` (reruns reuse it, offline)."""
    try:
        pins = [f"{name}=={importlib.metadata.version(name)}" for name in LAYER_REQUIREMENTS]
    except importlib.metadata.PackageNotFoundError as exc:
        raise InfraError(f"{exc.name} is not installed: run `make setup` (uv sync)") from exc
    wheel = native_wheel(platform=platform)
    layer = "\n".join([platform.wheels, LAMBDA_PYTHON, *pins, wheel.name, wheel.parent.name, *_INSTALLER_LEFTOVERS])
    key = hashlib.sha256(layer.encode()).hexdigest()[:16]
    folder = cache_dir() / "lambda-layer" / key
    target = folder / "python"
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        command = [_uv(), "pip", "install", "--quiet", "--target", str(target), "--python-platform",
                   platform.wheels, "--python-version", LAMBDA_PYTHON, "--only-binary", ":all:", "--no-compile",
                   "--cache-dir", str(cache_dir() / "uv"), *pins, str(wheel)]
        _run(command, f"building the Lambda layer's dependencies for {platform.name}")
        for leftover in _INSTALLER_LEFTOVERS:
            path = target / leftover
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        (folder / ".complete").write_text("\n".join([*pins, wheel.name]) + "\n")
    return target


def installed_distributions(folder: Path) -> dict[str, str]:
    """The distributions a ``--target`` folder holds, by normalised name, with their versions."""
    found: dict[str, str] = {}
    for info in sorted(folder.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found[name.lower().replace("_", "-")] = version
    return found


def core_layer(platform: Platform = ARM64, root: Path | None = None) -> Artifact:
    """The core layer for ``platform``: the core package, its reference data, and its third-party
    packages (``layer_dependencies``) under ``python/``."""
    suffix = "" if platform == ARM64 else f"-{platform.name}"
    return zip_artifact(f"core-layer{suffix}", [("python/dataforge", Path("dataforge")),
                                                 *[("python/dataforge/_data/reference", f) for f in REFERENCE_FILES],
                                                 ("python", layer_dependencies(platform))], root)


def _chalice_runtime() -> list[tuple[str, Path]]:
    """Chalice's runtime (``chalice/__init__.py`` + ``chalice/app.py``, stdlib only), as ``chalice
    package`` vendors it into every deployment."""
    spec = importlib.util.find_spec("chalice")
    if spec is None or spec.origin is None:
        raise InfraError("the chalice package is not installed: run `make setup` (uv sync)")
    package = Path(spec.origin).parent
    return [("chalice", package / "__init__.py"), ("chalice", package / "app.py")]


def chalice_project(root: Path | None = None) -> Path:
    """The Chalice project of the checkout at ``root`` (default: this one)."""
    return (project_root() if root is None else root) / CHALICE_PROJECT


def _api_artifact(base: Path) -> Artifact:
    """The API's zip: what Chalice's app-only packager ships (``AppOnlyDeploymentPackager``: ``app.py``,
    ``chalicelib/``, Chalice's runtime ``chalice/__init__.py`` + ``chalice/app.py``), built
    deterministically. No third-party package goes in: the core, msgspec and sqlglot come from the core
    layer, built for the functions' architecture. (A ``chalice package`` zip would put its own wheels at
    the zip's root, first on Lambda's import path, shadowing the layer's: for Chalice's default x86_64,
    a msgspec that cannot load on arm64.)"""
    return zip_artifact("api", [("", CHALICE_PROJECT / "app.py"), ("chalicelib", CHALICE_PROJECT / "chalicelib"),
                                *_chalice_runtime()], base)


def build_bundle(root: Path | None = None) -> Bundle:
    base = project_root() if root is None else root
    return Bundle(
        core_layer=core_layer(ARM64, base),
        core_zip=zip_artifact("glue-libs", [("dataforge", Path("dataforge")),
                                            *[("dataforge/_data/reference", f) for f in REFERENCE_FILES],
                                            ("spark", Path("spark"))], base),
        functions={function: function_artifact(function, base) for function in LAMBDA_FUNCTIONS},
        api=_api_artifact(base),
    )
