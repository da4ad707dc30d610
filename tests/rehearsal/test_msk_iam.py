"""The rehearsal of the streaming job's MSK IAM authentication (``devkit.rehearse.msk_iam``): green for each
stack, and red for a configuration or a classpath the MSK IAM library would not work with."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from devkit.rehearse import msk_iam
from devkit.rehearse.run import Report
from infra import artifacts
from infra.plan import Rendered, render

pytestmark = pytest.mark.skipif(not msk_iam.PROBE.is_file(), reason="the probe's source is missing")


@pytest.fixture(scope="module")
def provided() -> list[Path]:
    return msk_iam.provided_jars()


@pytest.fixture(scope="module")
def dev() -> Rendered:
    """The dev stack, for the broken variants (one stack is enough to show a check fails)."""
    return render("dev")


def _jars(rendered: Rendered) -> list[Path]:
    return msk_iam.declared_jars(rendered, msk_iam.streaming_job(rendered), artifacts.build_dir())


def test_the_stacks_streaming_job_passes_both_checks(rendered: Rendered, provided: list[Path]) -> None:
    found = msk_iam.findings(rendered, provided=provided)
    assert [(f.name, f.ok) for f in found] == [("MSK IAM options", True), ("MSK IAM classpath", True)], found


def test_the_rehearsal_report_holds_the_checks(report: Report) -> None:
    checks = {c.trigger: c for c in report.checks if c.function == msk_iam.JOB}
    assert {name: check.ok for name, check in checks.items()} == {"MSK IAM options": True,
                                                                   "MSK IAM classpath": True}, checks


def test_a_misspelled_callback_handler_fails_both_checks(dev: Rendered, provided: list[Path]) -> None:
    config = msk_iam.client_config(msk_iam.streaming_job(dev))
    config["sasl.client.callback.handler.class"] = "software.amazon.msk.auth.iam.IAMClientCalbackHandler"
    assert not msk_iam.options_finding(config).ok
    found = msk_iam.classpath_finding(config, _jars(dev), provided)
    assert not found.ok
    assert "IAMClientCalbackHandler" in found.detail


def test_the_library_without_the_aws_sdk_it_needs_fails_on_the_classpath(dev: Rendered, provided: list[Path]
                                                                          ) -> None:
    library = [jar for jar in _jars(dev) if jar.name.startswith("aws-msk-iam-auth-")]
    found = msk_iam.classpath_finding(msk_iam.client_config(msk_iam.streaming_job(dev)), library, provided)
    assert not found.ok
    assert "software/amazon/awssdk" in found.detail


def test_plaintext_options_fail_the_documented_configuration(dev: Rendered) -> None:
    job = msk_iam.streaming_job(dev)
    arguments = {k: v for k, v in job.inputs["defaultArguments"].items() if k != "--DATAFORGE_KAFKA_AUTH"}
    plain = replace(job, inputs={**job.inputs, "defaultArguments": arguments})
    found = msk_iam.options_finding(msk_iam.client_config(plain))
    assert not found.ok
    assert "SASL_SSL" not in msk_iam.client_config(plain).values()


def test_extra_jars_the_stack_does_not_upload_fail_the_check(dev: Rendered) -> None:
    job = msk_iam.streaming_job(dev)
    arguments = {**job.inputs["defaultArguments"], "--extra-jars": "s3://elsewhere/glue/jars/x.jar"}
    broken = Rendered(dev.project, dev.stack,
                      [replace(job, inputs={**job.inputs, "defaultArguments": arguments}) if r is job else r
                       for r in dev.resources], dev.outputs)
    found = msk_iam.findings(broken, provided=[])
    assert [f.ok for f in found] == [False]
    assert "does not upload" in found[0].detail
