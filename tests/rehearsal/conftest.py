"""The rehearsal of each committed stack, rendered and rehearsed once per test session and shared by the
tests that read its report (``rendered`` and ``report``, parametrized over the three stacks)."""

from __future__ import annotations

import pytest

from devkit.rehearse.run import Report, rehearse
from infra.plan import Rendered, render

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session", params=STACKS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param)


@pytest.fixture(scope="session")
def report(rendered: Rendered) -> Report:
    return rehearse(rendered.stack, rendered=rendered)
