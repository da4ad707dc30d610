"""The rehearsal of every Lambda function of the three stacks (``dataforge rehearse``): each runs from its
zip and layers in a clean process, wired as the stack declares, fed the events of its triggers; and
the rehearsal fails when the wiring is wrong."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from devkit.rehearse.run import Report, rehearse
from infra.plan import Rendered, render

pytestmark = pytest.mark.integration

TRIGGERS = {"msk-landing": "MSK", "batch-landing": "S3", "alert-evaluator": "schedule", "api": "API",
            "kafka-topics": "Invocation"}  # kafka-topics: serverless stacks only



def test_every_function_answers_every_declared_trigger(report: Report) -> None:
    assert report.ok, "\n".join(report.lines())


def test_each_function_is_rehearsed_with_its_own_triggers(rendered: Rendered, report: Report) -> None:
    functions = {f.inputs["name"] for f in rendered.of_type("aws:lambda/function:Function")}
    by_function: dict[str, set[str]] = {}
    for check in report.checks:
        if check.function in functions:
            by_function.setdefault(check.function, set()).add(check.trigger)
    assert set(by_function) == functions
    for function, triggers in by_function.items():
        (role,) = [r for r in TRIGGERS if function.endswith(f"-{r}")]
        assert any(t.startswith(TRIGGERS[role]) for t in triggers), (function, triggers)
        assert "imports" in triggers


def test_the_layer_twin_holds_the_same_packages(report: Report) -> None:
    assert report.layer_differences == []


def _with_function(rendered: Rendered, suffix: str, **changes: object) -> Rendered:
    changed = copy.deepcopy(rendered)
    (function,) = [r for r in changed.of_type("aws:lambda/function:Function") if r.inputs["name"].endswith(suffix)]
    for key, value in changes.items():
        if key == "env":
            function.inputs["environment"]["variables"].update(value)  # type: ignore[arg-type]
        else:
            function.inputs[key] = value
    return changed


@pytest.fixture(scope="module")
def dev() -> Rendered:
    return render("dev")


def _failed(report: Report, suffix: str) -> list[str]:
    return [f"{c.trigger}: {c.detail}" for c in report.checks if c.function.endswith(suffix) and not c.ok]


def test_a_bucket_the_stack_does_not_declare_fails_the_function(dev: Rendered, tmp_path: Path) -> None:
    broken = _with_function(dev, "-msk-landing", env={"DATAFORGE_BRONZE_BUCKET": "a-bucket-nobody-declared"})
    failed = _failed(rehearse("dev", rendered=broken, workdir=tmp_path, glue=False), "-msk-landing")
    assert failed
    assert failed[0].startswith("MSK")


def test_a_handler_string_that_does_not_resolve_fails_at_init(dev: Rendered, tmp_path: Path) -> None:
    broken = _with_function(dev, "-alert-evaluator", handler="lambdas.alert_evaluator.handler.no_such_handler")
    failed = _failed(rehearse("dev", rendered=broken, workdir=tmp_path, glue=False), "-alert-evaluator")
    assert failed
    assert failed[0].startswith("init: AttributeError")


def test_a_function_needing_the_checkout_fails(dev: Rendered, tmp_path: Path) -> None:
    # a handler that exists only in the toolkit: not in the function's zip, so the clean process cannot import it
    broken = _with_function(dev, "-alert-evaluator", handler="devkit.cli.main")
    failed = _failed(rehearse("dev", rendered=broken, workdir=tmp_path, glue=False), "-alert-evaluator")
    assert failed
    assert "ModuleNotFoundError" in failed[0]
