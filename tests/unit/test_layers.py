"""The layers hold: import-linter's contracts (pyproject.toml) are kept, and no module edits ``sys.path``
(every layer is an installed package) except the Pulumi entry points, which the language and policy
hosts run as scripts from their own folders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dataforge", "devkit", "lambdas", "spark", "chalice_api", "panel_dashboard", "infra", "tests", "bench")
PULUMI_ENTRY_POINTS = {Path("infra/__main__.py"), Path("infra/policy/__main__.py")}
_SYS_PATH_EDIT = re.compile(r"sys\.path\.(insert|append|extend)\(|sys\.path\s*[+]?=|site\.addsitedir\(")


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    completed = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                               check=False)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "0 broken" in completed.stdout


def test_no_module_edits_sys_path() -> None:
    editing = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT) not in PULUMI_ENTRY_POINTS and path != Path(__file__).resolve()
        and _SYS_PATH_EDIT.search(path.read_text())
    ]
    assert editing == []


def test_the_sys_path_check_sees_an_edit() -> None:
    assert _SYS_PATH_EDIT.search("sys.path.insert(0, folder)")
    assert _SYS_PATH_EDIT.search("sys.path += [folder]")
    assert not _SYS_PATH_EDIT.search("print(sys.path)")
