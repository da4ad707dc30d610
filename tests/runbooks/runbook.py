"""The runbooks read as data: their sections and the commands of their fenced ``bash`` blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

RUNBOOKS: Final = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
ALARMS: Final = RUNBOOKS / "cloudwatch_alarms.md"
INCIDENTS: Final = RUNBOOKS / "incident_response.md"
_ASSIGNMENT: Final = re.compile(r"^[A-Z][A-Z0-9_]*=")


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a runbook: its text (continuation lines joined), where it is, and the variable
    definitions that precede it in its runbook (shell text, in order)."""

    runbook: str
    section: str
    line: int
    text: str
    definitions: tuple[str, ...]

    @property
    def tool(self) -> str:
        return self.text.split(maxsplit=1)[0]

    def __str__(self) -> str:
        return f"{self.runbook}:{self.line} [{self.section}] {self.text}"


def sections(path: Path) -> dict[str, str]:
    """Each ``## `` section's heading (backticks removed) and body."""
    found: dict[str, str] = {}
    parts = re.split(r"^## (.+)$", path.read_text(), flags=re.MULTILINE)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        found[heading.strip().strip("`")] = body
    return found


def commands(path: Path) -> list[Command]:
    """Every command of the runbook's ```bash blocks, in document order."""
    found: list[Command] = []
    definitions: list[str] = []
    section, in_block, pending, start = "", False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("## "):
            section = line[3:].strip().strip("`")
        if line.strip() == "```bash":
            in_block = True
            continue
        if in_block and line.strip() == "```":
            in_block = False
            continue
        if not in_block or not line.strip() or line.lstrip().startswith("#"):
            continue
        if not pending:
            start = number
        pending += line.rstrip().removesuffix("\\") + (" " if line.rstrip().endswith("\\") else "")
        if line.rstrip().endswith("\\"):
            continue
        text, pending = " ".join(pending.split()), ""
        if _ASSIGNMENT.match(text):
            definitions.append(text)
        else:
            found.append(Command(path.name, section, start, text, tuple(definitions)))
    return found
