"""The stack's Kafka topics, made to match their declaration through the Kafka admin API.

MSK Serverless offers no control-plane API for topics (``aws.msk.Topic`` calls MSK's CreateTopic,
which AWS documents for provisioned clusters only); a client with IAM access creates and alters them
with the Kafka admin protocol instead. ``reconcile`` does that idempotently for one ``TopicSpec``:

- a missing topic is created with the declared partitions and configs;
- a declared partition count higher than the topic's adds partitions (CreatePartitions); a lower
  one is refused (Kafka cannot remove partitions: the topic would have to be recreated, losing data);
- declared configs whose current value differs are set (IncrementalAlterConfigs); configs the spec
  does not name are left alone; a differing create-only config is refused;
- anything else is a no-op, and the outcome says which of these happened.

Only the topic-level configs MSK Serverless lets a client set are accepted (``SERVERLESS_TOPIC_CONFIGS``,
Amazon MSK developer guide, "Configuration properties for MSK Serverless clusters"): every other
topic-level property "is not configurable" there, ``min.insync.replicas`` included.

The admin client is kafka-python's ``KafkaAdminClient`` (pure Python: confluent-kafka's aarch64
wheels link librdkafka against glibc 2.28, and the python3.11 Lambda runtime runs on Amazon Linux 2,
glibc 2.26). On MSK it authenticates with IAM over SASL/OAUTHBEARER with the token of AWS's
``aws-msk-iam-sasl-signer-python``, configured as that library's README shows for kafka-python
(``security_protocol="SASL_SSL"``, ``sasl_mechanism="OAUTHBEARER"``, a token provider whose ``token()``
returns ``MSKAuthTokenProvider.generate_auth_token(region)``); against a local PLAINTEXT broker (the
rehearsal, the tests) it connects without authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypedDict

from dataforge import envvars
from dataforge.settings import KAFKA_AUTH_IAM, KAFKA_AUTH_MODES, KAFKA_AUTH_PLAINTEXT
from lambdas.common.errors import TopicSpecError, TopicUpdateError

logger = logging.getLogger(__name__)

SERVERLESS_TOPIC_CONFIGS: Final = frozenset({
    "cleanup.policy", "compression.type", "max.message.bytes", "message.timestamp.difference.max.ms",
    "message.timestamp.type", "retention.bytes", "retention.ms",
})
"""The topic-level configs MSK Serverless lets a client set or modify (all others are not configurable)."""
CREATE_ONLY_CONFIGS: Final = frozenset({"cleanup.policy"})
"""Editable on MSK Serverless "only at topic creation time"."""
REQUEST_TIMEOUT_MS: Final = 30_000


class TopicPayload(TypedDict, total=False):
    """One topic of the invocation payload (``{"topics": [TopicPayload, ...]}``)."""

    name: str
    partitions: int
    configs: dict[str, str]
    replicationFactor: int  # omitted: the cluster's default (-1), which is what MSK Serverless applies


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the stack declares it."""

    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int = -1  # -1: the broker's default

    def to_payload(self) -> TopicPayload:
        payload: TopicPayload = {"name": self.name, "partitions": self.partitions,
                                 "configs": dict(sorted(self.configs.items()))}
        if self.replication_factor != -1:
            payload["replicationFactor"] = self.replication_factor
        return payload


@dataclass(frozen=True, slots=True)
class TopicState:
    """What the cluster holds for a topic: its partition count and the current values of the configs asked."""

    partitions: int
    configs: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    """What ``reconcile`` did to one topic; ``actions`` is empty when the topic already matched."""

    name: str
    actions: tuple[str, ...]
    partitions: int
    configs: Mapping[str, str]

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "changed": self.changed, "actions": list(self.actions),
                "partitions": self.partitions, "configs": dict(sorted(self.configs.items()))}


def _int(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TopicSpecError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_spec(item: object) -> TopicSpec:
    """A ``TopicSpec`` from one payload entry, refusing configs MSK Serverless does not accept."""
    if not isinstance(item, dict):
        raise TopicSpecError(f"each topic must be an object with name, partitions and configs, got {item!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise TopicSpecError(f"a topic needs a non-empty string name, got {name!r}")
    partitions = _int(item.get("partitions"), f"topic {name}: partitions", 1)
    raw_configs = item.get("configs") or {}
    if not isinstance(raw_configs, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in raw_configs.items()):
        raise TopicSpecError(f"topic {name}: configs must map names to string values, got {raw_configs!r}")
    unsupported = sorted(set(raw_configs) - SERVERLESS_TOPIC_CONFIGS)
    if unsupported:
        raise TopicSpecError(
            f"topic {name}: {', '.join(unsupported)} cannot be set on MSK Serverless; the settable topic configs "
            f"are {', '.join(sorted(SERVERLESS_TOPIC_CONFIGS))}")
    replication = item.get("replicationFactor", -1)
    if replication != -1:
        replication = _int(replication, f"topic {name}: replicationFactor", 1)
    return TopicSpec(name=name, partitions=partitions, configs=dict(raw_configs), replication_factor=replication)


def parse_payload(event: object) -> list[TopicSpec]:
    """The topics of an invocation payload ``{"topics": [...]}`` (what ``aws.lambda_.Invocation`` sends)."""
    topics = event.get("topics") if isinstance(event, dict) else None
    if not isinstance(topics, list) or not topics:
        raise TopicSpecError(f'the payload must be {{"topics": [{{name, partitions, configs}}, ...]}}, got {event!r}')
    specs = [parse_spec(item) for item in topics]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise TopicSpecError(f"a topic is declared twice: {names}")
    return specs


class TopicAdmin(Protocol):
    """The four admin operations ``reconcile`` needs."""

    def describe(self, name: str, config_names: frozenset[str]) -> TopicState | None:
        """The topic's partition count and the current values of ``config_names``; None when it does not exist."""

    def create(self, spec: TopicSpec) -> None: ...

    def add_partitions(self, name: str, total: int) -> None: ...

    def set_configs(self, name: str, configs: Mapping[str, str]) -> None: ...


def reconcile(admin: TopicAdmin, spec: TopicSpec) -> TopicOutcome:
    """Make the topic match ``spec`` (see the module docstring) and say what was done."""
    names = frozenset(spec.configs)
    current = admin.describe(spec.name, names)
    if current is None:
        admin.create(spec)
        logger.info("created topic %s", spec.name)
        return TopicOutcome(spec.name, (f"created with {spec.partitions} partitions",), spec.partitions,
                            dict(spec.configs))
    if spec.partitions < current.partitions:
        raise TopicUpdateError(
            f"topic {spec.name} has {current.partitions} partitions and the stack declares {spec.partitions}: "
            "Kafka cannot remove partitions. Declare at least the current count, or move the data to a new topic "
            "and declare that one")
    differing = {key: value for key, value in sorted(spec.configs.items()) if current.configs.get(key) != value}
    frozen = sorted(set(differing) & CREATE_ONLY_CONFIGS)
    if frozen:
        raise TopicUpdateError(
            f"topic {spec.name}: {', '.join(frozen)} can only be set when the topic is created (MSK Serverless): "
            f"it is {current.configs.get(frozen[0])!r}, the stack declares {spec.configs[frozen[0]]!r}")
    actions: list[str] = []
    if spec.partitions > current.partitions:
        admin.add_partitions(spec.name, spec.partitions)
        actions.append(f"partitions {current.partitions} -> {spec.partitions}")
    if differing:
        admin.set_configs(spec.name, differing)
        actions += [f"{key}: {current.configs.get(key)!r} -> {value!r}" for key, value in differing.items()]
    logger.info("topic %s: %s", spec.name, "; ".join(actions) or "unchanged")
    return TopicOutcome(spec.name, tuple(actions), spec.partitions, {**current.configs, **differing})


# --- the admin client -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicsConfig:
    """The function's settings, from the environment the stack sets."""

    bootstrap_servers: str
    auth: str  # KAFKA_AUTH_MODES
    region: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TopicsConfig:
        servers = environ.get(envvars.KAFKA_BOOTSTRAP_SERVERS, "").strip()
        if not servers:
            raise TopicSpecError(f"set {envvars.KAFKA_BOOTSTRAP_SERVERS} to the cluster's bootstrap brokers")
        auth = environ.get(envvars.KAFKA_AUTH, "").strip().lower() or KAFKA_AUTH_IAM
        if auth not in KAFKA_AUTH_MODES:
            raise TopicSpecError(f"{envvars.KAFKA_AUTH} must be one of {', '.join(KAFKA_AUTH_MODES)}, got {auth!r}: "
                                 f"{KAFKA_AUTH_IAM} for MSK, {KAFKA_AUTH_PLAINTEXT} for a local broker")
        region = environ.get(envvars.AWS_REGION) or environ.get("AWS_DEFAULT_REGION") or ""
        if auth == KAFKA_AUTH_IAM and not region:
            raise TopicSpecError(f"IAM authentication signs for a region: set {envvars.AWS_REGION}")
        return cls(servers, auth, region)


class MskTokenProvider:
    """kafka-python's OAUTHBEARER token provider (``token()``) over AWS's MSK IAM signer, as its README shows."""

    def __init__(self, region: str) -> None:
        self.region = region

    def token(self) -> str:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, _expiry_ms = MSKAuthTokenProvider.generate_auth_token(self.region)
        return str(token)

    def extensions(self) -> dict[str, str]:
        return {}


def client_config(config: TopicsConfig) -> dict[str, Any]:
    """The admin client's connection settings: IAM (SASL_SSL + OAUTHBEARER with the MSK signer) or PLAINTEXT."""
    base: dict[str, Any] = {"bootstrap_servers": config.bootstrap_servers.split(","),
                            "client_id": "dataforge-kafka-topics", "request_timeout_ms": REQUEST_TIMEOUT_MS}
    if config.auth == KAFKA_AUTH_PLAINTEXT:
        return {**base, "security_protocol": "PLAINTEXT"}
    return {**base, "security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": MskTokenProvider(config.region)}


class KafkaPythonAdmin:
    """``TopicAdmin`` over kafka-python's ``KafkaAdminClient``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def describe(self, name: str, config_names: frozenset[str]) -> TopicState | None:
        from kafka.errors import KafkaError, UnknownTopicOrPartitionError

        if name not in self._client.list_topics():
            return None
        try:
            (topic,) = self._client.describe_topics([name])
            values: dict[str, str] = {}
            if config_names:
                from kafka.admin import ConfigResource, ConfigResourceType

                found = self._client.describe_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, name, configs={key: None for key in config_names})],
                    config_filter="all")
                entries = found.get("topic", {}).get(name, {})
                values = {key: str(entry.get("value")) for key, entry in entries.items()
                          if key in config_names and entry.get("value") is not None}
        except UnknownTopicOrPartitionError:
            return None
        except KafkaError as exc:
            raise TopicUpdateError(f"describing topic {name} failed: {exc}") from exc
        return TopicState(len(topic["partitions"]), values)

    def create(self, spec: TopicSpec) -> None:
        from kafka.errors import KafkaError

        try:
            self._client.create_topics(
                {spec.name: {"num_partitions": spec.partitions, "replication_factor": spec.replication_factor,
                             "configs": dict(spec.configs)}}, wait_for_metadata=True)
        except KafkaError as exc:
            raise TopicUpdateError(f"creating topic {spec.name} failed: {exc}") from exc

    def add_partitions(self, name: str, total: int) -> None:
        from kafka.errors import KafkaError

        try:
            self._client.create_partitions({name: total})
        except KafkaError as exc:
            raise TopicUpdateError(f"adding partitions to topic {name} failed: {exc}") from exc

    def set_configs(self, name: str, configs: Mapping[str, str]) -> None:
        from kafka.admin import ConfigResource, ConfigResourceType
        from kafka.errors import KafkaError

        # IncrementalAlterConfigs: only the named configs change (AlterConfigs would reset every other one).
        # The client reports a refusal in its result, not as an exception.
        try:
            answer = self._client.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name, configs=dict(configs))], incremental=True)
        except (KafkaError, ValueError) as exc:
            raise TopicUpdateError(f"setting configs of topic {name} failed: {exc}") from exc
        result = answer.get("topic", {}).get(name)
        if result != "OK":
            raise TopicUpdateError(f"setting configs {sorted(configs)} of topic {name} was refused: {result}")


@contextmanager
def kafka_admin(config: TopicsConfig) -> Iterator[KafkaPythonAdmin]:
    """A connected admin client for ``config``, closed on exit."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        client = KafkaAdminClient(**client_config(config))
    except KafkaError as exc:
        raise TopicUpdateError(f"cannot reach the Kafka cluster at {config.bootstrap_servers} "
                               f"({config.auth}): {exc}") from exc
    try:
        yield KafkaPythonAdmin(client)
    finally:
        client.close()
