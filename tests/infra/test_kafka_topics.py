"""Topics on every stack: ``aws.msk.Topic`` (MSK's topic API, documented for provisioned clusters only) on
``provisioned`` alone; on ``serverless`` the kafka-topics function, run by an ``aws.lambda_.Invocation``
whose input declares only configs MSK Serverless accepts; and the event source mapping created after
whichever resource creates its topic."""

from __future__ import annotations

import importlib.metadata
import json
import zipfile

from dataforge import envvars
from infra import artifacts
from infra.components.network import KAFKA_IAM_PORT
from infra.components.streaming import TOPICS_HANDLER
from infra.plan import Rendered, Resource
from lambdas.common.kafka_topics import SERVERLESS_TOPIC_CONFIGS, parse_payload

TOPIC = "aws:msk/topic:Topic"
INVOCATION = "aws:lambda/invocation:Invocation"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"


def _serverless(stack: Rendered) -> bool:
    return bool(stack.of_type("aws:msk/serverlessCluster:ServerlessCluster"))


def _topics_function(stack: Rendered) -> Resource:
    (function,) = [f for f in stack.of_type(FUNCTION) if f.inputs["handler"] == TOPICS_HANDLER]
    return function


def test_dev_and_staging_are_serverless_and_prod_provisioned(stacks: dict[str, Rendered]) -> None:
    assert [name for name, stack in stacks.items() if _serverless(stack)] == ["dev", "staging"]


def test_serverless_declares_no_msk_topic_and_no_min_insync_replicas(stacks: dict[str, Rendered]) -> None:
    for name in ("dev", "staging"):
        stack = stacks[name]
        assert stack.of_type(TOPIC) == [], name
        assert "min.insync.replicas" not in json.dumps([r.inputs for r in stack.resources]), name


def test_serverless_runs_the_topics_function_with_the_declared_topic(stacks: dict[str, Rendered]) -> None:
    for name in ("dev", "staging"):
        stack = stacks[name]
        function = _topics_function(stack)
        (invocation,) = stack.of_type(INVOCATION)
        assert invocation.inputs["functionName"] == function.inputs["name"]
        assert invocation.inputs["lifecycleScope"] == "CREATE_ONLY"
        assert set(invocation.inputs["triggers"]) == {"spec", "code", "layer"}
        (spec,) = parse_payload(json.loads(invocation.inputs["input"]))  # the function's own parser accepts it
        assert spec.name == "transactions"
        assert set(spec.configs) <= SERVERLESS_TOPIC_CONFIGS
        assert "retention.ms" in spec.configs
        assert f"aws:lambda/function:Function::{function.name}" in invocation.dependencies
        environment = function.inputs["environment"]["variables"]
        assert environment[envvars.KAFKA_AUTH] == "iam"
        assert environment[envvars.KAFKA_BOOTSTRAP_SERVERS]
        # in the VPC, with a second layer beside the core layer
        assert function.inputs["vpcConfig"]["subnetIds"]
        assert function.inputs["vpcConfig"]["securityGroupIds"]
        assert len(function.inputs["layers"]) == 2


def test_the_topics_function_may_manage_only_the_declared_topic(stacks: dict[str, Rendered]) -> None:
    stack = stacks["dev"]
    function = _topics_function(stack)
    role_id = f"{function.inputs['role'].rsplit('/', 1)[-1]}-id"
    (policy,) = [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role_id]
    statements = {s.get("Sid"): s for s in json.loads(policy.inputs["policy"])["Statement"]}
    topic = statements["KafkaTopics"]
    assert set(topic["Action"]) == {"kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic",
                                    "kafka-cluster:AlterTopic", "kafka-cluster:DescribeTopicDynamicConfiguration",
                                    "kafka-cluster:AlterTopicDynamicConfiguration"}
    resources = topic["Resource"] if isinstance(topic["Resource"], list) else [topic["Resource"]]
    assert [r.rsplit("/", 1)[-1] for r in resources] == ["transactions"]
    assert all(":topic/" in r for r in resources)
    assert set(statements["KafkaCluster"]["Action"]) == {"kafka-cluster:Connect", "kafka-cluster:DescribeCluster"}


def test_provisioned_keeps_the_msk_topic(stacks: dict[str, Rendered]) -> None:
    stack = stacks["prod"]
    (topic,) = stack.of_type(TOPIC)
    assert topic.inputs["name"] == "transactions"
    assert "min.insync.replicas" in json.loads(topic.inputs["configs"])
    assert stack.of_type(INVOCATION) == []
    assert not [f for f in stack.of_type(FUNCTION) if f.inputs["handler"] == TOPICS_HANDLER]


def test_the_mapping_is_created_after_its_topic(stacks: dict[str, Rendered]) -> None:
    for name, stack in stacks.items():
        creator = stack.of_type(INVOCATION if _serverless(stack) else TOPIC)
        (address,) = [f"{r.type}::{r.name}" for r in creator]
        for mapping in stack.of_type(MAPPING):
            assert address in mapping.dependencies, (name, mapping.name)


def test_the_topics_function_reaches_the_brokers_on_the_iam_port(stacks: dict[str, Rendered]) -> None:
    """The reachability check (tests/infra/test_reachability.py) counts this consumer -> MSK pair."""
    from tests.infra.test_reachability import paths

    for name in ("dev", "staging"):
        _, found = paths(stacks[name])
        pair = f"{_topics_function(stacks[name]).name} -> MSK:{KAFKA_IAM_PORT}"
        assert found.get(pair) == [], (name, pair, found.get(pair))


def test_the_topics_layer_is_pure_python_at_the_locked_versions() -> None:
    """The python3.11 runtime runs on Amazon Linux 2 (glibc 2.26): the layer ships no compiled module (nothing
    bound to a newer glibc), and only the admin client and the signer (boto3 comes with the runtime)."""
    with zipfile.ZipFile(artifacts.topics_layer(artifacts.ARM64).path) as layer:
        names = layer.namelist()
    distributions = {n.split("/")[1].removesuffix(".dist-info") for n in names if n.endswith(".dist-info/METADATA")}
    assert distributions == {f"{name.replace('-', '_')}-{importlib.metadata.version(name)}"
                             for name in artifacts.TOPICS_LAYER_REQUIREMENTS}
    assert [n for n in names if n.endswith(".so") or ".so." in n] == []
    assert all(n.startswith("python/") for n in names)
