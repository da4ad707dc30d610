"""The dashboard container of the three stacks, rehearsed (``devkit.rehearse.dashboard``): the Dockerfile's
command and environment with the task definition's environment, secrets and port, pointed at the real API
served locally; the target group's health check answers its matcher on the target's port, the Bokeh
WebSocket opens with the browser's Origin for the public hostname and is refused for a foreign one, and the
server reads the API. The rehearsal fails when the wiring is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dataforge import envvars
from devkit.dashboard_image import DOCKERFILE, Dockerfile
from devkit.paths import project_root
from devkit.rehearse.dashboard import DashboardRehearsal, rehearse, static_problems
from infra.components.dashboard import ORIGIN_VARIABLE
from infra.plan import Rendered, render
from tests.fixtures.dashboard import DashboardApi, RequestCounter

pytestmark = pytest.mark.integration

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def api_requests(api_app: object, dashboard_api: DashboardApi) -> RequestCounter:
    """Counts the requests the served API answers (a middleware on the session's Chalice app)."""
    counter = RequestCounter()
    api_app.register_middleware(counter, "http")  # type: ignore[attr-defined]
    return counter


@pytest.fixture(scope="module", params=STACKS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param)


def _rehearse(stack: Rendered, api: DashboardApi, workdir: Path) -> DashboardRehearsal:
    return rehearse(stack, api_url=api.base_url, secrets={envvars.API_KEY: api.api_key}, workdir=workdir)


@pytest.fixture(scope="module")
def rehearsal(rendered: Rendered, dashboard_api: DashboardApi, api_requests: RequestCounter,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[DashboardRehearsal, int]:
    """The rehearsal of the stack, and how many API requests the dashboard made meanwhile."""
    before = api_requests.requests
    report = _rehearse(rendered, dashboard_api, tmp_path_factory.mktemp(f"dashboard-{rendered.stack}"))
    return report, api_requests.requests - before


def test_the_container_serves_as_the_stack_declares(rehearsal: tuple[DashboardRehearsal, int]) -> None:
    report, _ = rehearsal
    assert report.ok, report.describe()


def test_the_target_group_health_check_passes_on_the_targets_port(rehearsal: tuple[DashboardRehearsal, int]) -> None:
    report, _ = rehearsal
    assert report.health_ok
    assert report.health_status == 200


def test_the_browser_origin_is_accepted_and_a_foreign_one_refused(rehearsal: tuple[DashboardRehearsal, int],
                                                                  rendered: Rendered) -> None:
    report, _ = rehearsal
    assert report.origin == rendered.outputs["dashboard_url"]  # https on 443: no port in the Origin
    assert report.origin_accepted, report.origin_detail
    assert report.foreign_refused, report.foreign_detail
    assert report.foreign_detail == "refused (403)"
    assert report.allowlisted, report.allowlist_detail  # Bokeh's own rule names the public host


def test_the_server_reads_the_api_it_is_pointed_at(rehearsal: tuple[DashboardRehearsal, int]) -> None:
    report, requests = rehearsal
    assert requests > 0
    assert report.api_errors == []
    assert report.imported_from_copy


def _with_environment(stack: Rendered, name: str, value: str) -> Rendered:
    changed = copy.deepcopy(stack)
    task = changed.by_name("dashboard-task")
    containers = json.loads(task.inputs["containerDefinitions"])
    for variable in containers[0]["environment"]:
        if variable["name"] == name:
            variable["value"] = value
    task.inputs["containerDefinitions"] = json.dumps(containers)
    return changed


def test_a_wrong_allowed_origin_fails_the_rehearsal(dashboard_api: DashboardApi, tmp_path: Path) -> None:
    stack = _with_environment(render("dev"), ORIGIN_VARIABLE, "localhost:8080")
    report = _rehearse(stack, dashboard_api, tmp_path)
    assert not report.ok
    assert not report.allowlisted
    assert report.allowlist_detail == "refused (403)"
    assert any(p.startswith(f"task environment {ORIGIN_VARIABLE}='localhost:8080'") for p in report.problems)
    # Tornado (6.6+) accepts a handshake it can tell is same-origin before Bokeh's allowlist is asked: a
    # browser behind the ALB still gets in; a foreign page does not.
    assert report.origin_accepted
    assert report.foreign_refused


def test_a_port_that_differs_anywhere_is_found_before_anything_runs() -> None:
    stack = copy.deepcopy(render("dev"))
    stack.by_name("dashboard-targets").inputs["port"] = 8080
    problems = static_problems(stack, Dockerfile.parse(project_root() / DOCKERFILE))
    assert len(problems) == 1
    assert problems[0].startswith("the container's port differs")
