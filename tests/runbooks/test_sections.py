"""Every runbook section says what the on-call person sees, where to look, and what to run: symptoms, the
console or dashboard view to open, the diagnosing commands (a fenced ``bash`` block) and the repair.
(Which sections must exist, one per alarm and per alert rule, is tests/infra/test_observability.py's.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runbooks.runbook import ALARMS, INCIDENTS, commands, sections

PARTS = ("**Symptoms.**", "**Open.**", "**Diagnose.**", "**Repair.**")


@pytest.mark.parametrize("runbook", [ALARMS, INCIDENTS], ids=lambda p: p.name)
def test_every_section_has_symptoms_a_view_commands_and_a_repair(runbook: Path) -> None:
    found = {name: body for name, body in sections(runbook).items() if not name.startswith("First steps")}
    assert len(found) >= 4
    missing = {name: [p for p in PARTS if p not in body] for name, body in found.items()}
    assert {name: parts for name, parts in missing.items() if parts} == {}
    without_commands = [name for name in found if not any(c.section == name for c in commands(runbook))]
    assert without_commands == []


@pytest.mark.parametrize("runbook", [ALARMS, INCIDENTS], ids=lambda p: p.name)
def test_no_runbook_command_reads_the_quarantine_zone_through_the_query_runner(runbook: Path) -> None:
    """The query runner refuses the quarantine zone (chalicelib.sqlguard): `dataforge quarantine list` reads it."""
    text = runbook.read_text()
    assert "FROM <quarantine>" not in text
    assert "can be re-ingested" not in text
