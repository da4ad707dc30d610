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
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dataforge import envvars
from infra.errors import InfraError
from infra.glue import GlueRuntime, glue51, normalize, requirement_name, zip_imports

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


LAMBDA_FUNCTIONS: Final = ("msk_landing", "batch_landing", "alert_evaluator", "kafka_topics")
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


def _pins(requirements: Iterable[str]) -> list[str]:
    """``name==version`` for each requirement, at the version installed here (uv.lock's)."""
    try:
        return [f"{name}=={importlib.metadata.version(name)}" for name in requirements]
    except importlib.metadata.PackageNotFoundError as exc:
        raise InfraError(f"{exc.name} is not installed: run `make setup` (uv sync)") from exc


def _layer_folder(what: str, platform: Platform, requirements: list[str], *, no_deps: bool = False) -> Path:
    """A layer's third-party ``python/`` folder: ``requirements`` (pins or wheel files) installed for
    ``platform`` once per set into ``.cache/lambda-layer/<hash>`` (reruns reuse it, offline)."""
    flags = ["--no-deps"] if no_deps else []
    layer = "\n".join([what, platform.wheels, LAMBDA_PYTHON, *requirements, *flags, *_INSTALLER_LEFTOVERS])
    folder = cache_dir() / "lambda-layer" / hashlib.sha256(layer.encode()).hexdigest()[:16]
    target = folder / "python"
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        _run([_uv(), "pip", "install", "--quiet", "--target", str(target), "--python-platform", platform.wheels,
              "--python-version", LAMBDA_PYTHON, "--only-binary", ":all:", "--no-compile", *flags,
              "--cache-dir", str(cache_dir() / "uv"), *requirements],
             f"building the {what} layer's dependencies for {platform.name}")
        for leftover in _INSTALLER_LEFTOVERS:
            path = target / leftover
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        (folder / ".complete").write_text("\n".join(Path(r).name for r in requirements) + "\n")
    return target


def layer_dependencies(platform: Platform = ARM64) -> Path:
    """The core layer's third-party ``python/`` folder: wheels for ``platform`` and the validator's
    compiled fast path, built from native/."""
    wheel = native_wheel(platform=platform)
    return _layer_folder("core", platform, [*_pins(LAYER_REQUIREMENTS), str(wheel)])


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


# The kafka-topics function's own layer (infra/components/streaming.py runs that function on MSK Serverless):
# a Kafka admin client and AWS's MSK IAM token signer. kafka-python is pure Python: confluent-kafka's aarch64
# wheels are manylinux_2_28 (librdkafka links C11 threads, GLIBC_2.28) and the python3.11 runtime runs on
# Amazon Linux 2 (glibc 2.26). Installed without their dependencies: the signer's are boto3 and botocore,
# which the runtime provides, and click, which only its command line imports.
TOPICS_LAYER_REQUIREMENTS: Final = ("kafka-python", "aws-msk-iam-sasl-signer-python")


def topics_layer_dependencies(platform: Platform = ARM64) -> Path:
    """The kafka-topics layer's ``python/`` folder: ``TOPICS_LAYER_REQUIREMENTS`` at uv.lock's versions,
    installed for ``platform`` without their dependencies."""
    return _layer_folder("kafka-topics", platform, _pins(TOPICS_LAYER_REQUIREMENTS), no_deps=True)


def topics_layer(platform: Platform = ARM64, root: Path | None = None) -> Artifact:
    """The kafka-topics function's second layer (beside the core layer) for ``platform``."""
    suffix = "" if platform == ARM64 else f"-{platform.name}"
    return zip_artifact(f"kafka-topics-layer{suffix}", [("python", topics_layer_dependencies(platform))], root)


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


# --- Glue: the jobs' third-party Python packages, as wheels for Glue's platform ----------------------

GLUE_WHEEL_PLATFORM: Final = "manylinux2014_x86_64"
"""The wheel platform of the Glue jobs' packages: Glue 5.1 runs x86-64 Amazon Linux 2023 (glibc 2.34) and
lists ``manylinux2014_x86_64`` among the platform tags it installs ("Using Python libraries with AWS
Glue", Appendix B: AWS Glue environment details)."""

GLUE_LEFT_OUT: Final = {
    "dataforge_native": "the validator's compiled fast path: the contract imports it when present and "
                        "otherwise takes the pure path, which gives the same answers (ADR 0006); the jobs "
                        "validate with Validator.validate, which never uses it (only admit, the landing hot path)",
}
"""Modules the jobs' zip imports that the jobs ship without, on purpose, with the reason."""


def glue_requirements(core_zip: Artifact, runtime: GlueRuntime | None = None) -> tuple[str, ...]:
    """``name==version`` of every distribution the Glue jobs need that Glue does not provide: the
    owners of the third-party modules the ``--extra-py-files`` zip imports (``zip_imports``), less what
    ``runtime`` (Glue 5.1) provides and ``GLUE_LEFT_OUT``, with their own requirements, at the versions
    installed here (uv.lock's)."""
    glue = runtime or glue51()
    provided = glue.modules()
    owners = importlib.metadata.packages_distributions()
    todo: list[str] = []
    for module in sorted(zip_imports(core_zip.path) - provided - set(GLUE_LEFT_OUT)):
        if module not in owners:
            raise InfraError(f"the Glue jobs import {module!r}, which no installed distribution provides: run "
                             "`make setup` (uv sync), or add it to GLUE_LEFT_OUT if the jobs do without it")
        todo.extend(owners[module])
    pins: dict[str, str] = {}
    while todo:
        name = normalize(todo.pop())
        if name in pins or glue.provides(name):
            continue
        try:
            pins[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise InfraError(f"{name} (needed by the Glue jobs) is not installed: run `make setup` (uv sync)") from exc
        # a requirement under an extra (``; extra == "yaml"``) is not installed with the package
        todo.extend(requirement_name(line) for line in importlib.metadata.requires(name) or ()
                    if "extra" not in line.partition(";")[2])
    return tuple(f"{name}=={version}" for name, version in sorted(pins.items()))


def glue_wheels(pins: tuple[str, ...], runtime: GlueRuntime | None = None) -> list[Artifact]:
    """One wheel per pin for Glue's platform (``GLUE_WHEEL_PLATFORM``, CPython ``runtime``'s version), the
    exact files PyPI publishes (``pip download --only-binary :all:``, no source build), fetched once per
    pin set into ``.cache/glue-wheels/<hash>`` (reruns reuse them, offline). ``--no-deps``: the pins
    already hold every requirement Glue does not provide (``glue_requirements``)."""
    glue = runtime or glue51()
    key = hashlib.sha256("\n".join([GLUE_WHEEL_PLATFORM, glue.python_version, *pins]).encode()).hexdigest()[:16]
    folder = cache_dir() / "glue-wheels" / key
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
              "--only-binary", ":all:", "--platform", GLUE_WHEEL_PLATFORM, "--python-version", glue.python_version,
              "--dest", str(folder), *pins], "downloading the Glue jobs' wheels for x86-64 (pip download)")
        wheels = sorted(folder.glob("*.whl"))
        if len(wheels) != len(pins):
            raise InfraError(f"pip left {len(wheels)} wheels in {folder} for {len(pins)} pins ({', '.join(pins)})")
        (folder / ".complete").write_text("\n".join(w.name for w in wheels) + "\n")
    built = []
    for wheel in sorted(folder.glob("*.whl")):
        # beside the other built artifacts (the rendered stack names a file asset by its file name)
        content = wheel.read_bytes()
        out = build_dir() / wheel.name
        if not out.is_file() or out.read_bytes() != content:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wheel, out)
        built.append(Artifact(name=normalize(wheel.name.split("-")[0]), path=out,
                              sha256=hashlib.sha256(content).hexdigest()))
    return built



# --- Glue: the MSK IAM authentication jars of the streaming job ------------------------------------

MSK_IAM_POM: Final = Path("build/maven/msk-iam/pom.xml")
"""What the streaming job's ``--extra-jars`` hold: aws-msk-iam-auth and the runtime jars it needs that Glue
5.1 does not provide (the POM says which and why)."""
_MAVEN_TIMEOUT_SECONDS: Final = 20 * 60


def msk_iam_jars(root: Path | None = None) -> list[Artifact]:
    """The jars of ``MSK_IAM_POM``, one artifact each (``<artifact>-<version>``), in name order.

    Maven resolves them (``dependency:copy-dependencies``, runtime scope) from Maven Central into Maven's
    repository under the cache (``.cache/m2``) once per POM: the copied jars are kept in
    ``.cache/msk-iam-jars/<POM hash>``, so reruns read them offline. The jars are copied beside the other
    built artifacts (the rendered stack names a file asset by its file name)."""
    pom = (project_root() if root is None else root) / MSK_IAM_POM
    if not pom.is_file():
        raise InfraError(f"{pom} is missing: the streaming job's MSK IAM jars are declared there")
    folder = cache_dir() / "msk-iam-jars" / hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    if not (folder / ".complete").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
        try:
            _maven_copy(pom, cache_dir() / "m2", staging)
            jars = sorted(staging.glob("*.jar"))
            if not jars:
                raise InfraError(f"Maven copied no jar for {pom}")
            (staging / ".complete").write_text("\n".join(jar.name for jar in jars) + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            try:
                staging.rename(folder)
            except OSError:
                if not (folder / ".complete").is_file():  # not another render that finished first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [_write(jar.stem, ".jar", jar.read_bytes()) for jar in sorted(folder.glob("*.jar"))]


def _maven_copy(pom: Path, repository: Path, output: Path) -> None:
    """``mvn dependency:copy-dependencies`` of ``pom`` into ``output``; ``InfraError`` with Maven's words."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("building the streaming job's MSK IAM jars needs Maven ('mvn'): install Maven 3.8+ and "
                         "Java 17 (e.g. `apt-get install maven openjdk-17-jdk-headless`), then rerun")
    command = [mvn, "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={repository}", "-f", str(pom),
               "dependency:copy-dependencies", f"-DoutputDirectory={output}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                              timeout=_MAVEN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"Maven did not finish within {_MAVEN_TIMEOUT_SECONDS} s: {' '.join(command)}") from exc
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip()[-2000:]
        raise InfraError(f"Maven failed resolving {pom} (check the network access to Maven Central): "
                         f"{' '.join(command)}\n{said}")
