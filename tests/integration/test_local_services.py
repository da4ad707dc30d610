"""The embedded services for real: boto3 against a moto server, confluent-kafka against a KRaft broker,
and the ``services up|status|down`` cycle, which must leave no process behind."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import boto3
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from dataforge import envvars
from dataforge.lake import TRANSACTIONS_TOPIC
from devkit.local import pid_alive, process_cmdline
from devkit.local import services as services_module
from devkit.local.kafka import KafkaBroker, create_topics, probe
from devkit.local.moto_server import MotoServer
from devkit.local.moto_server import probe as moto_probe

pytestmark = pytest.mark.integration


# -- helpers ----------------------------------------------------------------------------------------


def _pids_with_cmdline(needle: str) -> list[int]:
    """Live processes whose command line contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmdline = process_cmdline(int(entry.name))
            if cmdline is not None and needle in " ".join(cmdline):
                found.append(int(entry.name))
    return found


def _listen_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses listening on TCP ``port`` (from /proc/net/tcp and tcp6)."""
    addresses: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address_hex, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A = LISTEN
                continue
            # the kernel prints each 32-bit word of the address in host (little-endian) order
            raw = b"".join(bytes.fromhex(address_hex[i : i + 8])[::-1] for i in range(0, len(address_hex), 8))
            address = ipaddress.ip_address(raw)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # Java listens on ::ffff:127.0.0.1 for 127.0.0.1
            addresses.add(address)
    return addresses


LOOPBACK = {ipaddress.ip_address("127.0.0.1")}


def _gone_within(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _topic_partitions(bootstrap_servers: str, topic: str) -> int:
    metadata = AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(topic, timeout=10)
    return len(metadata.topics[topic].partitions)


# -- moto server ------------------------------------------------------------------------------------


def test_moto_listens_on_loopback_only(moto_server: MotoServer) -> None:
    assert moto_server.endpoint_url == f"http://127.0.0.1:{moto_server.port}"
    assert _listen_addresses(moto_server.port) == LOOPBACK


def test_boto3_clients_reach_moto_through_aws_endpoint_url(
    boto3_session: boto3.Session, moto_server: MotoServer
) -> None:
    assert os.environ[envvars.AWS_ENDPOINT_URL] == moto_server.endpoint_url
    assert boto3_session.client("s3").meta.endpoint_url == moto_server.endpoint_url


def test_s3_put_get_round_trip(boto3_session: boto3.Session, unique_name: str) -> None:
    s3 = boto3_session.client("s3")
    s3.create_bucket(Bucket=unique_name)
    body = b'{"event_id": "e-1"}\n' * 1000
    s3.put_object(Bucket=unique_name, Key="bronze/part-0.jsonl", Body=body)

    fetched = s3.get_object(Bucket=unique_name, Key="bronze/part-0.jsonl")

    assert fetched["Body"].read() == body
    listed = s3.list_objects_v2(Bucket=unique_name, Prefix="bronze/")
    assert [item["Key"] for item in listed["Contents"]] == ["bronze/part-0.jsonl"]


def test_dynamodb_put_get_query(boto3_session: boto3.Session, unique_name: str) -> None:
    dynamodb = boto3_session.client("dynamodb")
    dynamodb.create_table(
        TableName=unique_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for minute in ("12:00", "12:01", "12:02"):
        dynamodb.put_item(
            TableName=unique_name,
            Item={"pk": {"S": "2026-01-01"}, "sk": {"S": minute}, "count": {"N": "7"}},
        )
    dynamodb.put_item(TableName=unique_name, Item={"pk": {"S": "2026-01-02"}, "sk": {"S": "00:00"}})

    item = dynamodb.get_item(TableName=unique_name, Key={"pk": {"S": "2026-01-01"}, "sk": {"S": "12:01"}})
    queried = dynamodb.query(
        TableName=unique_name,
        KeyConditionExpression="pk = :day AND sk >= :from",
        ExpressionAttributeValues={":day": {"S": "2026-01-01"}, ":from": {"S": "12:01"}},
    )

    assert item["Item"]["count"] == {"N": "7"}
    assert [row["sk"]["S"] for row in queried["Items"]] == ["12:01", "12:02"]


def test_glue_database_and_table(boto3_session: boto3.Session, unique_name: str) -> None:
    glue = boto3_session.client("glue")
    glue.create_database(DatabaseInput={"Name": unique_name})
    glue.create_table(
        DatabaseName=unique_name,
        TableInput={
            "Name": "silver_transactions",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": "event_date", "Type": "date"}],
            "StorageDescriptor": {
                "Columns": [
                    {"Name": "event_id", "Type": "string"},
                    {"Name": "amount", "Type": "decimal(18,2)"},
                ],
                "Location": f"s3://{unique_name}/silver/transactions/",
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
            },
        },
    )

    table = glue.get_table(DatabaseName=unique_name, Name="silver_transactions")["Table"]

    assert glue.get_database(Name=unique_name)["Database"]["Name"] == unique_name
    assert [column["Name"] for column in table["StorageDescriptor"]["Columns"]] == ["event_id", "amount"]
    assert table["PartitionKeys"] == [{"Name": "event_date", "Type": "date"}]


def test_sns_publish_reaches_an_sqs_subscriber(boto3_session: boto3.Session, unique_name: str) -> None:
    sns = boto3_session.client("sns")
    sqs = boto3_session.client("sqs")
    topic_arn = sns.create_topic(Name=unique_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    published = sns.publish(TopicArn=topic_arn, Subject="alert", Message='{"rule": "decline_rate"}')
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5)

    assert published["MessageId"]
    envelope = json.loads(received["Messages"][0]["Body"])
    assert envelope["MessageId"] == published["MessageId"]
    assert json.loads(envelope["Message"]) == {"rule": "decline_rate"}


def test_cloudwatch_put_metric_data(boto3_session: boto3.Session, unique_name: str) -> None:
    cloudwatch = boto3_session.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace=unique_name,
        MetricData=[
            {
                "MetricName": "QuarantinedRecords",
                "Dimensions": [{"Name": "Env", "Value": "local"}],
                "Value": 3.0,
                "Unit": "Count",
            }
        ],
    )

    metrics = cloudwatch.list_metrics(Namespace=unique_name)["Metrics"]

    assert [(m["MetricName"], m["Dimensions"]) for m in metrics] == [
        ("QuarantinedRecords", [{"Name": "Env", "Value": "local"}])
    ]


def test_athena_api_is_served(boto3_session: boto3.Session, unique_name: str) -> None:
    athena = boto3_session.client("athena")
    athena.create_work_group(
        Name=unique_name,
        Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{unique_name}/athena/"}},
    )
    query_id = athena.start_query_execution(QueryString="SELECT 1", WorkGroup=unique_name)["QueryExecutionId"]

    execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]

    assert execution["QueryExecutionId"] == query_id
    assert execution["WorkGroup"] == unique_name


# -- Kafka ------------------------------------------------------------------------------------------


def test_broker_listens_on_loopback_only(kafka_broker: KafkaBroker) -> None:
    assert kafka_broker.bootstrap_servers == f"127.0.0.1:{kafka_broker.port}"
    assert _listen_addresses(kafka_broker.port) == LOOPBACK
    assert _listen_addresses(kafka_broker.controller_port) == LOOPBACK


def test_transactions_topic_exists_with_three_partitions(kafka_broker: KafkaBroker) -> None:
    assert _topic_partitions(kafka_broker.bootstrap_servers, TRANSACTIONS_TOPIC) == 3


def test_create_topics_is_idempotent(kafka_broker: KafkaBroker, unique_name: str) -> None:
    first = create_topics(kafka_broker.bootstrap_servers, {unique_name: 2})
    second = create_topics(kafka_broker.bootstrap_servers, {unique_name: 2, TRANSACTIONS_TOPIC: 3})

    assert first == [unique_name]
    assert second == []
    assert _topic_partitions(kafka_broker.bootstrap_servers, unique_name) == 2


def test_auto_topic_creation_is_off(kafka_broker: KafkaBroker, unique_name: str) -> None:
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "message.timeout.ms": 3000})
    errors: list[KafkaError] = []
    producer.produce(unique_name, b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)

    assert errors
    assert errors[0] is not None
    assert (
        unique_name
        not in AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}).list_topics(timeout=10).topics
    )


def test_produce_consume_round_trip(kafka_broker: KafkaBroker, unique_name: str) -> None:
    create_topics(kafka_broker.bootstrap_servers, {unique_name: 3})
    producer = Producer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    delivered: list[tuple[bytes, bytes, int, int]] = []
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(err)
        else:
            delivered.append((msg.key(), msg.value(), msg.partition(), msg.offset()))

    sent = [(f"account-{i % 7}".encode(), json.dumps({"seq": i}).encode()) for i in range(60)]
    for key, value in sent:
        producer.produce(unique_name, value=value, key=key, on_delivery=on_delivery)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": unique_name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumed: list[tuple[bytes, bytes, int, int]] = []
    try:
        consumer.subscribe([unique_name])
        deadline = time.monotonic() + 60
        while len(consumed) < len(sent) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=100, timeout=1.0):
                assert message.error() is None, message.error()
                consumed.append((message.key(), message.value(), message.partition(), message.offset()))
    finally:
        consumer.close()

    assert failures == []
    assert sorted((key, value) for key, value, _, _ in delivered) == sorted(sent)
    assert sorted(consumed) == sorted(delivered)  # same keys, values, partitions and offsets
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    for key, _, partition, _ in consumed:
        partitions_by_key[key].add(partition)
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())  # keyed: one partition
    assert len({partition for _, _, partition, _ in consumed}) > 1  # and the keys do spread
    for partition in {partition for _, _, partition, _ in consumed}:  # order kept within a partition
        in_partition = [(offset, json.loads(value)["seq"]) for _, value, p, offset in consumed if p == partition]
        seqs = [seq for _, seq in sorted(in_partition)]
        assert seqs == sorted(seqs)


def test_broker_stop_leaves_no_process_and_restart_keeps_data(tmp_path: Path, unique_name: str) -> None:
    broker = KafkaBroker(tmp_path / "kafka", logs_dir=tmp_path / "logs")
    try:
        broker.start()
        broker.wait_ready()
        first_pid, first_port = broker.pid, broker.port
        assert first_pid is not None
        create_topics(broker.bootstrap_servers, {unique_name: 2})

        broker.stop()

        assert not pid_alive(first_pid)
        assert _pids_with_cmdline(str(broker.config_file)) == []
        assert not probe(f"127.0.0.1:{first_port}", timeout=1.0)

        broker.start()  # same storage, fresh ports: formatted once, the static quorum follows the config
        broker.wait_ready()
        second_pid = broker.pid
        assert _topic_partitions(broker.bootstrap_servers, unique_name) == 2
    finally:
        broker.stop()
    assert second_pid is not None
    assert not pid_alive(second_pid)
    assert _pids_with_cmdline(str(broker.config_file)) == []
    assert "Kafka Server started" in broker.log_file.read_text()


def test_moto_stop_leaves_no_process(tmp_path: Path) -> None:
    server = MotoServer(logs_dir=tmp_path / "logs")
    try:
        server.start()
        server.wait_ready()
        pid, endpoint = server.pid, server.endpoint_url
        assert pid is not None
    finally:
        server.stop()
    assert not pid_alive(pid)
    assert not moto_probe(endpoint, timeout=1.0)


# -- services up / status / down -----------------------------------------------------------------------


def test_services_up_status_down_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(envvars.HOME, str(home))
    steps: list[str] = []
    try:
        result = services_module.up(steps.append)
        state = result.state
        assert not result.already_running
        assert result.created_topics == (TRANSACTIONS_TOPIC,)
        assert steps  # progress was reported
        assert json.loads((home / "services.json").read_text()) == state
        statuses = {item.name: item for item in services_module.status()}
        assert {name: item.state for name, item in statuses.items()} == {"moto": "running", "kafka": "running"}
        assert statuses["moto"].endpoint == state["moto"]["endpoint_url"]
        assert statuses["kafka"].pid == state["kafka"]["pid"]
        assert Path(state["kafka"]["log_file"]).parent == home / "logs"

        env = services_module.service_env(state)
        assert env[envvars.AWS_ENDPOINT_URL] == state["moto"]["endpoint_url"]
        assert env[envvars.KAFKA_BOOTSTRAP_SERVERS] == state["kafka"]["bootstrap_servers"]
        assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
        assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
        s3 = boto3.client(
            "s3",
            endpoint_url=env[envvars.AWS_ENDPOINT_URL],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        assert s3.list_buckets()["Buckets"] == []
        assert _topic_partitions(env[envvars.KAFKA_BOOTSTRAP_SERVERS], TRANSACTIONS_TOPIC) == 3

        again = services_module.up()
        assert again.already_running
        assert again.state == state

        assert sorted(services_module.down()) == ["kafka", "moto"]
    finally:
        services_module.down()

    assert not pid_alive(state["moto"]["pid"])
    assert not pid_alive(state["kafka"]["pid"])
    assert _pids_with_cmdline(str(home)) == []
    assert not (home / "services.json").exists()
    assert {item.state for item in services_module.status()} == {"stopped"}
    assert services_module.down() == []


def test_services_up_restarts_after_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(envvars.HOME, str(tmp_path / "home"))
    try:
        first = services_module.up().state
        os.kill(first["moto"]["pid"], signal.SIGKILL)  # moto dies behind our back
        assert _gone_within(first["moto"]["pid"], 10.0)
        assert {item.name: item.state for item in services_module.status()}["moto"] == "stopped"

        second = services_module.up()

        assert not second.already_running
        assert second.state["moto"]["pid"] != first["moto"]["pid"]
        assert not pid_alive(first["kafka"]["pid"])  # the survivor was stopped, not leaked
        assert {item.state for item in services_module.status()} == {"running"}
    finally:
        services_module.down()
    assert _pids_with_cmdline(str(tmp_path / "home")) == []


def test_services_of_a_killed_up_are_recorded_and_stopped_by_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up` killed with SIGKILL mid-start (no cleanup possible): its services are still found."""
    home = tmp_path / "home"
    monkeypatch.setenv(envvars.HOME, str(home))
    state_path = home / "services.json"
    starter = subprocess.Popen(
        [sys.executable, "-c", "from devkit.local import services; services.up()"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, envvars.HOME: str(home)},
    )
    try:
        deadline = time.monotonic() + 120
        while not state_path.exists() and starter.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state_path.exists(), "up() never recorded its services"
        starter.kill()
        starter.wait(10)
        recorded = services_module.read_state()
        assert recorded is not None
        assert {item.name: item.running for item in services_module.status()} == {"moto": True, "kafka": True}
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait(10)
        stopped = services_module.down()

    assert sorted(stopped) == ["kafka", "moto"]
    assert _gone_within(recorded["moto"]["pid"], 10.0)
    assert _gone_within(recorded["kafka"]["pid"], 10.0)
    assert _pids_with_cmdline(str(home)) == []
    assert not state_path.exists()


def test_services_cli_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from devkit.cli.services import app

    monkeypatch.setenv(envvars.HOME, str(tmp_path / "home"))
    runner = CliRunner()
    try:
        stopped = runner.invoke(app, ["status"])
        assert stopped.exit_code == 1
        assert "stopped" in stopped.output

        started = runner.invoke(app, ["up"])
        assert started.exit_code == 0, started.output
        assert "Services are up" in started.output
        state = services_module.read_state()
        assert state is not None
        assert f"export AWS_ENDPOINT_URL={state['moto']['endpoint_url']}" in started.output
        assert f"export DATAFORGE_KAFKA_BOOTSTRAP_SERVERS={state['kafka']['bootstrap_servers']}" in started.output

        again = runner.invoke(app, ["up"])
        assert again.exit_code == 0
        assert "already running" in again.output

        shown = runner.invoke(app, ["status"])
        assert shown.exit_code == 0, shown.output
        assert shown.output.count("running") == 2

        exported = runner.invoke(app, ["env"])
        assert exported.exit_code == 0
        assert "export AWS_SECRET_ACCESS_KEY=testing" in exported.output

        down = runner.invoke(app, ["down"])
        assert down.exit_code == 0
        assert "Stopped: kafka, moto." in down.output
    finally:
        services_module.down()
    assert not pid_alive(state["kafka"]["pid"])
    assert not pid_alive(state["moto"]["pid"])
    assert "Nothing was running." in runner.invoke(app, ["down"]).output
