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


GLUE_STACKS = ("dev",)
"""The stacks whose shared rehearsal includes the Glue job runs (one Spark process, minutes of CPU): the
suite rehearses dev's; ``dataforge rehearse`` runs every stack's."""


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest, rendered: Rendered) -> Report:
    glue = rendered.stack in GLUE_STACKS
    kafka = request.getfixturevalue("kafka_broker").bootstrap_servers if glue else None
    return rehearse(rendered.stack, rendered=rendered, glue=glue, kafka_bootstrap_servers=kafka)
