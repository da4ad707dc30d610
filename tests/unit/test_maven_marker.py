"""The Maven marker logic of ``resolve_jars``: Maven runs once per POM version, never on a cache hit.

No network and no real Maven: a fake runner stands in for ``mvn`` and writes into tmp folders only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from dataforge.errors import DependencyResolutionError
from devkit.local import maven
from devkit.local.maven import MARKER_NAME, jars_dir, maven_command, resolve_jars, run_maven

POM = "<project><modelVersion>4.0.0</modelVersion><artifactId>{name}</artifactId></project>\n"


class FakeMaven:
    """Records each call and copies ``jars`` into the ``-DoutputDirectory`` of the command."""

    def __init__(self, *jars: str) -> None:
        self.jars = list(jars)
        self.calls: list[list[str]] = []
        self.fail_with: DependencyResolutionError | None = None

    def __call__(self, command: Sequence[str], cwd: Path) -> None:
        self.calls.append(list(command))
        if self.fail_with is not None:
            raise self.fail_with
        output = Path(next(arg for arg in command if arg.startswith("-DoutputDirectory=")).split("=", 1)[1])
        for jar in self.jars:
            (output / jar).write_bytes(b"PK")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    pom = tmp_path / "project" / "build" / "maven" / "demo" / "pom.xml"
    pom.parent.mkdir(parents=True)
    pom.write_text(POM.format(name="demo"))
    return tmp_path / "project"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_first_call_runs_maven_then_the_marker_skips_it(root: Path, cache: Path) -> None:
    fake = FakeMaven("a-1.0.jar", "b-2.0.jar")

    first = resolve_jars("demo", root=root, cache=cache, runner=fake)
    second = resolve_jars("demo", root=root, cache=cache, runner=fake)

    assert len(fake.calls) == 1
    assert [jar.name for jar in first] == ["a-1.0.jar", "b-2.0.jar"]
    assert second == first
    assert all(jar.parent == jars_dir("demo", cache) for jar in first)
    assert (jars_dir("demo", cache) / MARKER_NAME).read_text().strip() == maven.fingerprint(
        root / "build/maven/demo/pom.xml"
    )


def test_a_changed_pom_resolves_again_and_drops_stale_jars(root: Path, cache: Path) -> None:
    resolve_jars("demo", root=root, cache=cache, runner=FakeMaven("old-1.0.jar"))
    (root / "build/maven/demo/pom.xml").write_text(POM.format(name="demo-v2"))
    fake = FakeMaven("new-2.0.jar")

    jars = resolve_jars("demo", root=root, cache=cache, runner=fake)

    assert len(fake.calls) == 1
    assert [jar.name for jar in jars] == ["new-2.0.jar"]


def test_a_failed_run_keeps_the_previous_jars_and_retries_next_time(root: Path, cache: Path) -> None:
    resolve_jars("demo", root=root, cache=cache, runner=FakeMaven("old-1.0.jar"))
    (root / "build/maven/demo/pom.xml").write_text(POM.format(name="demo-v2"))
    failing = FakeMaven("new-2.0.jar")
    failing.fail_with = DependencyResolutionError("boom")

    with pytest.raises(DependencyResolutionError, match="boom"):
        resolve_jars("demo", root=root, cache=cache, runner=failing)

    assert [jar.name for jar in maven.list_jars(jars_dir("demo", cache))] == ["old-1.0.jar"]
    assert not list(cache.glob("jars/.demo.staging"))
    retry = FakeMaven("new-2.0.jar")
    assert [jar.name for jar in resolve_jars("demo", root=root, cache=cache, runner=retry)] == ["new-2.0.jar"]
    assert len(retry.calls) == 1


def test_a_marker_without_jars_is_not_trusted(root: Path, cache: Path) -> None:
    resolve_jars("demo", root=root, cache=cache, runner=FakeMaven("a-1.0.jar"))
    (jars_dir("demo", cache) / "a-1.0.jar").unlink()
    fake = FakeMaven("a-1.0.jar")

    resolve_jars("demo", root=root, cache=cache, runner=fake)

    assert len(fake.calls) == 1


def test_maven_copying_nothing_is_an_error(root: Path, cache: Path) -> None:
    with pytest.raises(DependencyResolutionError, match="no jar"):
        resolve_jars("demo", root=root, cache=cache, runner=FakeMaven())


def test_missing_pom_and_bad_bundle_names_are_clear_errors(root: Path, cache: Path) -> None:
    with pytest.raises(DependencyResolutionError, match="does not exist"):
        resolve_jars("absent", root=root, cache=cache, runner=FakeMaven("a.jar"))
    with pytest.raises(DependencyResolutionError, match="invalid jar bundle name"):
        resolve_jars("../demo", root=root, cache=cache, runner=FakeMaven("a.jar"))


def test_maven_command_shape(tmp_path: Path) -> None:
    command = maven_command(tmp_path / "pom.xml", tmp_path / "m2", tmp_path / "out")

    assert command[:3] == ["mvn", "-q", "-B"]
    assert f"-Dmaven.repo.local={tmp_path / 'm2'}" in command
    assert "dependency:copy-dependencies" in command
    assert f"-DoutputDirectory={tmp_path / 'out'}" in command
    assert command[command.index("-f") + 1] == str(tmp_path / "pom.xml")


def test_missing_mvn_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DependencyResolutionError, match=r"not on PATH.*Install Maven"):
        run_maven([str(tmp_path / "no-such-mvn"), "-q"], tmp_path)


def test_maven_failure_includes_its_output_tail(tmp_path: Path) -> None:
    fake_mvn = tmp_path / "mvn"
    fake_mvn.write_text(
        "#!/bin/sh\nfor i in $(seq 1 100); do echo line-$i; done\necho 'Could not resolve' >&2\nexit 1\n"
    )
    fake_mvn.chmod(0o755)

    with pytest.raises(DependencyResolutionError) as caught:
        run_maven([str(fake_mvn), "-q"], tmp_path)

    message = str(caught.value)
    assert "exit 1" in message
    assert "Could not resolve" in message
    assert "line-100" in message
    assert "line-1\n" not in message  # only the tail
