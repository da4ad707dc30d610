"""Shared fixtures: the embedded services (real moto server and Kafka broker), started lazily.

A service starts at most once per test run, the first time a test asks for it, in a temporary folder
of this run (the Maven jar cache under ``.cache/`` is shared, so jars are downloaded only once), and
is stopped at the end of the session whatever happened, failures included.

    def test_something(boto3_session, kafka_broker):
        s3 = boto3_session.client("s3")           # AWS_ENDPOINT_URL points it at moto
        bootstrap = kafka_broker.bootstrap_servers  # "127.0.0.1:<port>"; topic `transactions` exists
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from dataforge import envvars
from dataforge.lake import TRANSACTIONS_TOPIC
from devkit.local import AWS_ENV_TO_CLEAR, FAKE_AWS_ENV, LOCAL_AWS_REGION, TRANSACTIONS_PARTITIONS

if TYPE_CHECKING:  # imported lazily below: the unit tier needs neither boto3 sessions nor confluent-kafka
    import boto3

    from devkit.local.kafka import KafkaBroker
    from devkit.local.moto_server import MotoServer


# Fixture modules of the other tiers (one Spark session, the served API, the dashboard) live in
# tests/fixtures/ and are registered once here, so every tier shares the same session-scoped services.
pytest_plugins = ["tests.fixtures.spark", "tests.fixtures.api", "tests.fixtures.dashboard"]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A started moto server (all AWS APIs) on a free port of 127.0.0.1, for the whole session."""
    from devkit.local.moto_server import MotoServer

    server = MotoServer(logs_dir=tmp_path_factory.mktemp("moto") / "logs")
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A started Kafka broker (KRaft, single node) with the ``transactions`` topic (3 partitions)."""
    from devkit.local.kafka import KafkaBroker, create_topics

    base = tmp_path_factory.mktemp("kafka")
    broker = KafkaBroker(base, logs_dir=base / "logs")
    try:
        broker.start()
        broker.wait_ready()
        create_topics(broker.bootstrap_servers, {TRANSACTIONS_TOPIC: TRANSACTIONS_PARTITIONS})
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def aws_env(moto_server: MotoServer) -> Iterator[dict[str, str]]:
    """For the session: ``AWS_ENDPOINT_URL`` -> moto, fake credentials, us-east-1 (restored after).

    Yields the variables it set. boto3 honours ``AWS_ENDPOINT_URL``, so any client created while this
    is active talks to moto; profiles and session tokens of the developer's shell are hidden.
    """
    env = {envvars.AWS_ENDPOINT_URL: moto_server.endpoint_url, **FAKE_AWS_ENV}
    with pytest.MonkeyPatch.context() as patch:
        for name in AWS_ENV_TO_CLEAR:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="session")
def boto3_session(aws_env: dict[str, str]) -> boto3.Session:
    """A boto3 session with the fake credentials; its clients reach moto through ``AWS_ENDPOINT_URL``
    (or pass ``endpoint_url=moto_server.endpoint_url`` explicitly)."""
    import boto3

    return boto3.Session(
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region_name=LOCAL_AWS_REGION,
    )


@pytest.fixture
def unique_name() -> str:
    """A short unique lowercase name, valid as an S3 bucket, Kafka topic, Glue or DynamoDB name."""
    return f"df{uuid.uuid4().hex[:12]}"
