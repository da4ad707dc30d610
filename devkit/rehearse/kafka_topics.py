"""The rehearsal of an ``aws.lambda_.Invocation`` of the kafka-topics function, judged on the broker.

The Invocation's declared ``input`` is sent to the function twice (as ``pulumi up`` sends it once at
creation, and again after a ``triggers`` change that leaves the spec as it is), with the stack's
environment except two overrides: the bootstrap brokers (a local broker instead of the cluster's) and
the auth mode (``plaintext``: the local broker has no SASL listener). The judge then describes each
declared topic on the broker itself: its partition count and the configs set on the topic must equal
the declared ones, and the second invocation must have changed nothing.

Not proven here: the IAM handshake with MSK (SASL_SSL, OAUTHBEARER with the signer's token, which the
unit tests check against the library's documented client configuration), the role's ``kafka-cluster``
permissions, MSK Serverless's own limits beyond the documented topic configs, and the Lambda service's
Invocation semantics (pulumi-aws runs the function with the RequestResponse invocation type and fails
the update on a function error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dataforge import envvars
from dataforge.errors import ServiceError
from dataforge.settings import KAFKA_AUTH_PLAINTEXT
from lambdas.common.errors import TopicSpecError
from lambdas.common.kafka_topics import TopicSpec, parse_payload

INVOCATION: Final = "aws:lambda/invocation:Invocation"
RUNS: Final = 2
"""Each Invocation's input is sent this many times: the first run makes the topic, the next ones must be no-ops."""
DESCRIBE_TIMEOUT_SECONDS: Final = 15.0


@dataclass(frozen=True, slots=True)
class Described:
    partitions: int
    configs: Mapping[str, str]  # the configs set on the topic itself (not broker or default values)


def overrides(bootstrap_servers: str) -> dict[str, str]:
    """What the rehearsal changes in the function's declared environment: the brokers and the auth mode."""
    return {envvars.KAFKA_BOOTSTRAP_SERVERS: bootstrap_servers, envvars.KAFKA_AUTH: KAFKA_AUTH_PLAINTEXT}


def declared_topics(invocation_input: str) -> list[TopicSpec]:
    """The topics an Invocation's ``input`` declares, read by the function's own parser."""
    try:
        return parse_payload(json.loads(invocation_input))
    except (json.JSONDecodeError, TopicSpecError) as exc:
        raise ServiceError(f"the Invocation's input is not a topics payload: {exc}") from exc


def describe(bootstrap_servers: str, names: Sequence[str]) -> dict[str, Described]:
    """The topics of ``names`` that exist on the broker, as the broker describes them."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin._config import ConfigResource, ConfigSource  # where they are defined

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    try:
        metadata = admin.list_topics(timeout=DESCRIBE_TIMEOUT_SECONDS)
        found: dict[str, Described] = {}
        for name in names:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                continue
            (future,) = admin.describe_configs([ConfigResource("topic", name)]).values()
            entries = future.result(timeout=DESCRIBE_TIMEOUT_SECONDS)
            found[name] = Described(len(topic.partitions), {
                key: entry.value for key, entry in entries.items()
                if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value})
    except KafkaException as exc:
        raise ServiceError(f"describing topics {list(names)} on {bootstrap_servers} failed: {exc}") from exc
    return found


def judge(declared: Sequence[TopicSpec], results: Sequence[dict[str, Any]], bootstrap_servers: str
          ) -> tuple[bool, str]:
    """Whether every run answered, the last ``RUNS - 1`` changed nothing, and the broker holds the declared
    topics exactly."""
    failed = [r for r in results if not r.get("ok")]
    if failed:
        return False, f"{failed[0].get('error')}: {str(failed[0].get('message'))[:200]}"
    if len(results) != RUNS:
        return False, f"{len(results)} answers to {RUNS} invocations"
    repeated = [r["result"] for r in results[1:] if r["result"].get("changed")]
    if repeated:
        return False, f"a repeated invocation changed the topics: {repeated[0]}"
    on_broker = describe(bootstrap_servers, [spec.name for spec in declared])
    problems = []
    for spec in declared:
        got = on_broker.get(spec.name)
        want = Described(spec.partitions, dict(spec.configs))
        if got != want:
            problems.append(f"{spec.name}: broker has {got}, declared {want}")
    if problems:
        return False, "; ".join(problems)
    first = {t["name"]: t["actions"] for t in results[0]["result"]["topics"]}
    return True, "; ".join(f"{spec.name}: {spec.partitions} partitions, {dict(spec.configs)} "
                           f"({', '.join(first.get(spec.name) or ['unchanged'])}; then a no-op)" for spec in declared)
