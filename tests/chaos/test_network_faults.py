"""Network and AWS service faults (issue 19, experiments 3 and 4; ``devkit.chaos.experiments_network``),
and the fault tools they use against the real moto server: Toxiproxy in front of it, error answers
injected at the botocore level.

The experiments end with zero lost and zero duplicated records in silver, ``dataforge reconcile`` exact
for every touched date, gold equal to the independent KPI computation, and freshness back under its goal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from dataforge import aws
from devkit.chaos import experiments_network
from devkit.chaos.botocore_faults import (
    DYNAMODB_THROTTLING,
    DYNAMODB_THROUGHPUT_EXCEEDED,
    S3_INTERNAL_ERROR,
    S3_SLOW_DOWN,
    Fault,
    FaultInjector,
)
from devkit.chaos.harness import Outcome
from devkit.chaos.toxiproxy import ToxiproxyServer
from devkit.local import LOCAL_AWS_REGION
from tests.chaos.conftest import assert_exact

if TYPE_CHECKING:
    from devkit.local.kafka import KafkaBroker
    from devkit.local.moto_server import MotoServer

pytestmark = [pytest.mark.integration]

Run = Callable[[str], Outcome]


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    with ToxiproxyServer(logs_dir=tmp_path_factory.mktemp("toxiproxy")) as server:
        yield server


def _bucket(session: boto3.Session, endpoint_url: str, name: str) -> Any:
    s3 = aws.client("s3", session=session, endpoint_url=endpoint_url, region=LOCAL_AWS_REGION)
    s3.create_bucket(Bucket=name)
    return s3


# --- the tools ---------------------------------------------------------------------------------------


def _single_attempt(service: str, session: boto3.Session, endpoint_url: str) -> Any:
    """A client that never retries: the injected answer itself reaches the caller."""
    return session.client(service, endpoint_url=endpoint_url, region_name=LOCAL_AWS_REGION,  # type: ignore[call-overload]
                          config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


@pytest.mark.parametrize("fault", [S3_INTERNAL_ERROR, S3_SLOW_DOWN], ids=lambda f: f.code)
def test_s3_error_answers_are_the_documented_errors(boto3_session: boto3.Session, moto_server: MotoServer,
                                                    unique_name: str, fault: Fault) -> None:
    _bucket(boto3_session, moto_server.endpoint_url, unique_name)
    s3 = _single_attempt("s3", boto3_session, moto_server.endpoint_url)
    injector = FaultInjector(fault, count=1, skip=1, operations=frozenset({"PutObject"}))
    injector.attach(s3)
    s3.head_bucket(Bucket=unique_name)  # not a PutObject: not even seen
    s3.put_object(Bucket=unique_name, Key="first", Body=b"x")  # skipped: reaches moto
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=unique_name, Key="second", Body=b"x")
    assert refused.value.response["Error"]["Code"] == fault.code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == fault.status
    s3.put_object(Bucket=unique_name, Key="third", Body=b"x")  # count exhausted: reaches moto again
    assert (injector.seen, injector.injected, injector.remaining) == (3, 1, 0)
    listed = s3.list_objects_v2(Bucket=unique_name)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["first", "third"]


def test_s3_errors_are_absorbed_by_the_adaptive_retries(boto3_session: boto3.Session, moto_server: MotoServer,
                                                        unique_name: str) -> None:
    s3 = _bucket(boto3_session, moto_server.endpoint_url, unique_name)
    internal = FaultInjector(S3_INTERNAL_ERROR, count=aws.MAX_ATTEMPTS - 1, operations=frozenset({"PutObject"}))
    internal.attach(s3)
    answer = s3.put_object(Bucket=unique_name, Key="k", Body=b"x")
    assert answer["ResponseMetadata"]["RetryAttempts"] == aws.MAX_ATTEMPTS - 1
    internal.detach(s3)
    slow_down = FaultInjector(S3_SLOW_DOWN, count=1)
    slow_down.attach(s3)
    assert s3.get_object(Bucket=unique_name, Key="k")["Body"].read() == b"x"
    assert (internal.injected, slow_down.injected) == (aws.MAX_ATTEMPTS - 1, 1)


def test_dynamodb_throttling_is_the_documented_error_and_retried(aws_env: dict[str, str], moto_server: MotoServer,
                                                                 unique_name: str) -> None:
    session = boto3.Session(region_name=LOCAL_AWS_REGION)
    ddb = aws.client("dynamodb", session=session, endpoint_url=moto_server.endpoint_url, region=LOCAL_AWS_REGION)
    ddb.create_table(TableName=unique_name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    once = _single_attempt("dynamodb", session, moto_server.endpoint_url)
    for fault, error in ((DYNAMODB_THROUGHPUT_EXCEEDED, once.exceptions.ProvisionedThroughputExceededException),
                         (DYNAMODB_THROTTLING, ClientError)):
        injector = FaultInjector(fault, count=1)
        injector.attach(session)  # on the session: every client made from it afterwards
        with pytest.raises(error) as refused:
            _single_attempt("dynamodb", session, moto_server.endpoint_url).put_item(
                TableName=unique_name, Item={"pk": {"S": "a"}})
        assert refused.value.response["Error"]["Code"] == fault.code
        injector.detach(session)
    throttled = FaultInjector(DYNAMODB_THROTTLING, count=1, operations=frozenset({"PutItem"}))
    throttled.attach(ddb)
    answer = ddb.put_item(TableName=unique_name, Item={"pk": {"S": "a"}})
    assert (answer["ResponseMetadata"]["RetryAttempts"], throttled.injected) == (1, 1)
    assert ddb.get_item(TableName=unique_name, Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}


def test_toxiproxy_in_front_of_moto_delays_resets_and_recovers(toxiproxy: ToxiproxyServer, moto_server: MotoServer,
                                                             boto3_session: boto3.Session, unique_name: str) -> None:
    api = toxiproxy.api
    proxy = api.create_proxy(unique_name, moto_server.endpoint_url.split("://", 1)[1])
    try:
        s3 = _bucket(boto3_session, proxy.url, unique_name)
        with api.toxic(proxy.name, "slow", "latency", {"latency": 300}):
            started = time.monotonic()
            s3.head_bucket(Bucket=unique_name)
            assert time.monotonic() - started >= 0.3
        with (api.toxic(proxy.name, "reset", "reset_peer", {"timeout": 0}),
              pytest.raises((ConnectionClosedError, EndpointConnectionError))):  # after every attempt
            s3.head_bucket(Bucket=unique_name)
        assert api.toxics(proxy.name) == []
        s3.put_object(Bucket=unique_name, Key="after", Body=b"ok")  # the proxy carries traffic again
    finally:
        api.delete_proxy(proxy.name)


# --- the experiments ---------------------------------------------------------------------------------


@pytest.fixture
def network_run(moto_server: MotoServer, kafka_broker: KafkaBroker, aws_env: dict[str, str], spark: Any,
                tmp_path: Path) -> Run:
    def run(name: str) -> Outcome:
        outcome = experiments_network.run_experiment(name, tmp_path / name, spark=spark,
                                                     endpoint_url=moto_server.endpoint_url,
                                                     bootstrap_servers=kafka_broker.bootstrap_servers)
        print(f"{name}: fault {outcome.fault_seconds:.1f} s, recovery {outcome.recovery_seconds} s, "
              f"in flight {outcome.in_flight}, {outcome.verdict.detail}")  # figures for the report
        return outcome

    return run


@pytest.mark.chaos
@pytest.mark.chaos_ci
def test_network_faults_between_landing_and_s3(network_run: Run) -> None:
    assert_exact(network_run("s3_network"))


@pytest.mark.chaos
def test_s3_internal_errors_and_slow_down_at_the_botocore_level(network_run: Run) -> None:
    assert_exact(network_run("s3_errors"))


@pytest.mark.chaos
@pytest.mark.chaos_ci
def test_dynamodb_throttling_on_realtime_writes_and_the_gold_export(network_run: Run) -> None:
    assert_exact(network_run("dynamodb_throttling"))
