"""The rehearsal of the kafka-topics function's Invocation: judged on the broker, it fails when the broker
does not hold the declared topic, when a repeated run changes something, and when the declared input is one
the function refuses (a config MSK Serverless does not accept)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from devkit.local.kafka import KafkaBroker, create_topics
from devkit.rehearse import kafka_topics
from devkit.rehearse.run import Report, rehearse
from infra.plan import Rendered, render
from lambdas.common.kafka_topics import TopicSpec

pytestmark = pytest.mark.integration


def _answer(name: str, changed: bool) -> dict[str, object]:
    return {"ok": True, "result": {"changed": changed, "topics": [{"name": name, "actions": [] if not changed else
                                                                    ["created with 2 partitions"]}]}}


def test_the_judge_reads_the_broker(kafka_broker: KafkaBroker, unique_name: str) -> None:
    servers = kafka_broker.bootstrap_servers
    spec = TopicSpec(unique_name, 2, {"retention.ms": "3600000"})
    answers = [_answer(unique_name, True), _answer(unique_name, False)]
    ok, detail = kafka_topics.judge([spec], answers, servers)
    assert not ok, "a topic the broker does not have was judged present"
    assert "broker has None" in detail
    create_topics(servers, {unique_name: 2})  # the partitions, but not the declared retention
    ok, detail = kafka_topics.judge([spec], answers, servers)
    assert not ok
    assert "retention.ms" in detail


def test_a_repeated_run_that_changes_something_fails(kafka_broker: KafkaBroker, unique_name: str) -> None:
    ok, detail = kafka_topics.judge([TopicSpec(unique_name, 1)], [_answer(unique_name, True)] * 2,
                                    kafka_broker.bootstrap_servers)
    assert not ok
    assert "repeated invocation changed" in detail


def test_dev_rehearses_the_invocation(dev_report: Report) -> None:
    (check,) = [c for c in dev_report.checks if c.trigger.startswith("Invocation")]
    assert check.ok, check.detail
    assert check.function.endswith("-kafka-topics")


@pytest.fixture(scope="module")
def dev_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return rehearse("dev", workdir=tmp_path_factory.mktemp("rehearse-dev"), glue=False)


def test_an_input_the_function_refuses_fails_the_rehearsal(tmp_path: Path) -> None:
    broken: Rendered = copy.deepcopy(render("dev"))
    (invocation,) = broken.of_type(kafka_topics.INVOCATION)
    payload = json.loads(invocation.inputs["input"])
    payload["topics"][0]["configs"]["min.insync.replicas"] = "2"
    invocation.inputs["input"] = json.dumps(payload)
    report = rehearse("dev", rendered=broken, workdir=tmp_path, glue=False)
    (check,) = [c for c in report.checks if c.trigger.startswith("Invocation")]
    assert not check.ok
    assert "min.insync.replicas" in check.detail
    assert "TopicSpecError" in check.detail  # the function itself refused it
