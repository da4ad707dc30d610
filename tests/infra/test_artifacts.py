"""What `pulumi up` ships: the Lambda layer carries the core and its third-party runtime deps for the
functions' platform, the API zip carries Chalice's runtime, and builds are byte-identical."""

from __future__ import annotations

import zipfile

from infra import artifacts


def _names(artifact: artifacts.Artifact) -> set[str]:
    with zipfile.ZipFile(artifact.path) as archive:
        return set(archive.namelist())


def test_core_layer_has_the_core_and_its_dependencies_for_arm64() -> None:
    names = _names(artifacts.build_bundle().core_layer)
    assert "python/dataforge/contract.py" in names
    assert "python/aws_lambda_powertools/__init__.py" in names
    assert "python/sqlglot/__init__.py" in names
    native = [n for n in names if n.startswith("python/msgspec/_core") and n.endswith(".so")]
    assert native, "msgspec's compiled core is missing from the layer"
    assert all("aarch64" in n for n in native)  # the functions run on arm64
    # the validator's compiled fast path, cross-built from native/ for arm64 (manylinux2014)
    (fast_path,) = [n for n in names if n.startswith("python/dataforge_native/") and n.endswith(".so")]
    with zipfile.ZipFile(artifacts.build_bundle().core_layer.path) as archive:
        elf = archive.read(fast_path)
    assert elf[:4] == b"\x7fELF"
    assert int.from_bytes(elf[18:20], "little") == 183  # e_machine: EM_AARCH64
    assert not [n for n in names if n.endswith(".pyc")]


def test_api_zip_has_the_app_and_chalice_runtime() -> None:
    names = _names(artifacts.build_bundle().api)
    assert {"app.py", "chalice/__init__.py", "chalice/app.py"} <= names
    assert any(n.startswith("chalicelib/") for n in names)


def test_bundles_are_byte_identical_across_builds() -> None:
    first, second = artifacts.build_bundle(), artifacts.build_bundle()
    assert first.archives() == second.archives()
