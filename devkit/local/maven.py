"""Resolve the jars an embedded service needs, with Maven, into the project-local cache.

A *bundle* is a folder ``build/maven/<bundle>/`` holding a ``pom.xml`` that only declares
dependencies. ``resolve_jars(bundle)`` copies every runtime jar of that POM into
``<cache_dir>/jars/<bundle>/`` (Maven's own repository lives in ``<cache_dir>/m2``) and records the
POM's fingerprint in a marker file there: while the POM is unchanged, later calls skip Maven entirely
and answer in milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from dataforge.errors import DependencyResolutionError
from devkit.local import file_lock
from devkit.paths import cache_dir, project_root

logger = logging.getLogger(__name__)

POMS_DIR: Final = Path("build") / "maven"
MARKER_NAME: Final = ".resolved"
_MARKER_FORMAT: Final = "dataforge-jars-v1"  # change to invalidate every cached resolution
_BUNDLE_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_MAVEN_TIMEOUT_SECONDS: Final = 30 * 60
_OUTPUT_TAIL_LINES: Final = 40

MavenRunner = Callable[[Sequence[str], Path], None]
"""Runs a Maven command line in a working directory; raises DependencyResolutionError on failure."""


def pom_path(bundle: str, root: Path | None = None) -> Path:
    """``build/maven/<bundle>/pom.xml`` under the project root."""
    if not _BUNDLE_NAME.match(bundle):
        raise DependencyResolutionError(f"invalid jar bundle name {bundle!r}")
    return (root or project_root()) / POMS_DIR / bundle / "pom.xml"


def jars_dir(bundle: str, cache: Path | None = None) -> Path:
    """Where the jars of ``bundle`` are copied: ``<cache_dir>/jars/<bundle>``."""
    return (cache or cache_dir()) / "jars" / bundle


def fingerprint(pom: Path) -> str:
    """What the marker records: a hash of the POM's bytes (and of the marker format)."""
    digest = hashlib.sha256(_MARKER_FORMAT.encode())
    digest.update(pom.read_bytes())
    return digest.hexdigest()


def list_jars(directory: Path) -> list[Path]:
    """The ``*.jar`` files directly in ``directory``, sorted by name."""
    return sorted(path for path in directory.glob("*.jar") if path.is_file())


def is_resolved(directory: Path, expected: str) -> bool:
    """Whether ``directory`` holds a complete resolution of the POM whose fingerprint is ``expected``."""
    try:
        recorded = (directory / MARKER_NAME).read_text().strip()
    except OSError:
        return False
    return recorded == expected and bool(list_jars(directory))


def maven_command(pom: Path, repository: Path, output: Path) -> list[str]:
    """The ``mvn`` command line that copies the runtime jars of ``pom`` into ``output``."""
    return [
        "mvn",
        "-q",
        "-B",
        "-Dstyle.color=never",
        f"-Dmaven.repo.local={repository}",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output}",
    ]


def run_maven(command: Sequence[str], cwd: Path) -> None:
    """The default :data:`MavenRunner`: runs ``mvn`` and turns every failure into a clear error."""
    executable = shutil.which(command[0])
    if executable is None:
        raise DependencyResolutionError(
            "Maven ('mvn') is not on PATH, so the jars of the embedded services cannot be resolved. "
            "Install Maven 3.8+ and Java 17 (e.g. `apt-get install maven openjdk-17-jdk-headless`), "
            "then rerun; the first run downloads from Maven Central into .cache/m2."
        )
    started = time.monotonic()
    try:
        completed = subprocess.run(
            [executable, *command[1:]],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_MAVEN_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DependencyResolutionError(
            f"Maven did not finish within {_MAVEN_TIMEOUT_SECONDS}s: {' '.join(command)}"
        ) from exc
    except OSError as exc:
        raise DependencyResolutionError(f"could not run Maven ({executable}): {exc}") from exc
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        tail = "\n".join(output[-_OUTPUT_TAIL_LINES:]) or "(no output)"
        raise DependencyResolutionError(
            f"Maven failed (exit {completed.returncode}) running: {' '.join(command)}\n"
            "Check the network access to Maven Central and the POM, then rerun. Maven said:\n"
            f"{tail}"
        )
    logger.info("maven resolved %s in %.1fs", cwd.name, time.monotonic() - started)


def resolve_jars(
    bundle: str,
    *,
    root: Path | None = None,
    cache: Path | None = None,
    runner: MavenRunner = run_maven,
) -> list[Path]:
    """The jars of ``build/maven/<bundle>/pom.xml``, resolved by Maven unless already cached.

    Maven runs only when the marker in ``<cache>/jars/<bundle>`` does not record the current POM's
    fingerprint. It writes into a staging folder that replaces the previous jars only on success, so
    a failed or interrupted run never leaves a half-filled (or stale-plus-new) classpath behind.

    Raises:
        DependencyResolutionError: the POM is missing, ``mvn`` is missing, or Maven fails.
    """
    pom = pom_path(bundle, root)
    if not pom.is_file():
        raise DependencyResolutionError(f"no POM for jar bundle {bundle!r}: {pom} does not exist")
    cache = cache or cache_dir()
    output = jars_dir(bundle, cache)
    expected = fingerprint(pom)
    if is_resolved(output, expected):
        return list_jars(output)

    # concurrent processes (a CLI and a test run) never resolve the same bundle twice
    with file_lock(output.parent / f".{bundle}.lock"):
        if is_resolved(output, expected):  # another process resolved it while we waited
            return list_jars(output)
        staging = output.parent / f".{bundle}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        logger.info("resolving jars of %s with Maven into %s", bundle, output)
        try:
            runner(maven_command(pom, cache / "m2", staging), pom.parent)
            if not list_jars(staging):
                raise DependencyResolutionError(f"Maven copied no jar for bundle {bundle!r} ({pom})")
            (staging / MARKER_NAME).write_text(expected + "\n")
            previous = output.parent / f".{bundle}.previous"
            shutil.rmtree(previous, ignore_errors=True)
            if output.exists():
                output.rename(previous)
            staging.rename(output)
            shutil.rmtree(previous, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return list_jars(output)


def bundles(root: Path | None = None) -> list[str]:
    """Every bundle: the folders of ``build/maven`` that hold a ``pom.xml``."""
    folder = (root or project_root()) / POMS_DIR
    return sorted(pom.parent.name for pom in folder.glob("*/pom.xml"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devkit.local.maven [bundle ...]``: resolve the given bundles (default: all)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = list(argv if argv is not None else sys.argv[1:]) or bundles()
    try:
        for name in names:
            jars = resolve_jars(name)
            print(f"{name}: {len(jars)} jars in {jars_dir(name)}")
    except DependencyResolutionError as exc:
        logger.error("%s", exc)  # the outermost boundary of this command
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
