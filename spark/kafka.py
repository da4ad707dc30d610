"""The Kafka source's options for a ``Settings``: where the brokers are, which topic, how to authenticate.

Spark's Kafka source hands every option prefixed ``kafka.`` to its Kafka consumer with the prefix removed
("Structured Streaming + Kafka Integration Guide", Kafka Specific Configurations), so the client
configuration a library documents is set here as ``kafka.<property>``.

With ``kafka_auth = iam`` the consumer authenticates to MSK with IAM access control, configured as the
Amazon MSK Library for AWS IAM documents it (aws/aws-msk-iam-auth, README, "Configuring a Kafka client to
use AWS IAM"): TLS with SASL (``SASL_SSL``), the library's ``AWS_MSK_IAM`` mechanism, its login module
in the JAAS configuration and its client callback handler, which signs with the credentials of the AWS
SDK's default provider chain (on Glue, the job's role). The library's jars reach the job through
``--extra-jars`` (``infra.artifacts.msk_iam_jars``). With ``plaintext`` (the local broker) only the
brokers and the topic are set.
"""

from __future__ import annotations

from typing import Final

from dataforge.settings import KAFKA_AUTH_IAM, KAFKA_AUTH_PLAINTEXT, Settings
from spark.errors import JobError

#: The client properties of ``AWS_MSK_IAM`` (Kafka's names, without Spark's ``kafka.`` prefix).
MSK_IAM_CLIENT: Final = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "AWS_MSK_IAM",
    "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
}
KAFKA_PREFIX: Final = "kafka."


def source_options(settings: Settings) -> dict[str, str]:
    """The ``readStream.format("kafka")`` options that connect to ``settings``' brokers and topic."""
    options = {
        f"{KAFKA_PREFIX}bootstrap.servers": settings.require("kafka_bootstrap_servers"),
        "subscribe": settings.kafka_topic,
    }
    if settings.kafka_auth == KAFKA_AUTH_IAM:
        options.update({f"{KAFKA_PREFIX}{key}": value for key, value in MSK_IAM_CLIENT.items()})
    elif settings.kafka_auth != KAFKA_AUTH_PLAINTEXT:
        raise JobError(f"no Kafka source options for authentication {settings.kafka_auth!r}")
    return options


def client_config(options: dict[str, str]) -> dict[str, str]:
    """The Kafka client configuration Spark derives from source ``options``: the ``kafka.`` ones, unprefixed."""
    return {key.removeprefix(KAFKA_PREFIX): value for key, value in options.items() if key.startswith(KAFKA_PREFIX)}
