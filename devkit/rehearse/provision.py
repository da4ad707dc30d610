"""The rendered stack's stateful resources, created on the moto server under the names the stack declares.

What a function reads and writes on AWS is named by the stack (bucket, table, topic, queue, Glue
database and table, Athena workgroup); the rehearsal creates exactly those, from the rendered
resources' inputs (keys, indexes, partition keys and storage descriptors included), so a function that
reaches for anything the stack does not declare fails as it would on AWS. Encryption, policies and
lifecycle rules are not rehearsed (moto does not enforce them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra.plan import Rendered, Resource


@dataclass(slots=True)
class Provisioned:
    """What was created, by kind, under its declared name."""

    created: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, name: str) -> None:
        self.created.setdefault(kind, []).append(name)


def _table(resource: Resource) -> dict[str, Any]:
    inputs = resource.inputs
    keys = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        keys.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": inputs["name"], "KeySchema": keys, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]}
                                 for a in inputs.get("attributes", [])],
    }
    indexes = []
    for index in inputs.get("globalSecondaryIndexes") or []:
        index_keys = [{"AttributeName": index["hashKey"], "KeyType": "HASH"}]
        if index.get("rangeKey"):
            index_keys.append({"AttributeName": index["rangeKey"], "KeyType": "RANGE"})
        indexes.append({"IndexName": index["name"], "KeySchema": index_keys,
                        "Projection": {"ProjectionType": index.get("projectionType", "ALL")}})
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    return request


def _columns(columns: Any) -> list[dict[str, str]]:
    return [{"Name": c["name"], "Type": c["type"], **({"Comment": c["comment"]} if c.get("comment") else {})}
            for c in columns or []]


def _glue_table(resource: Resource) -> tuple[str, dict[str, Any]]:
    inputs = resource.inputs
    descriptor = inputs.get("storageDescriptor") or {}
    serde = descriptor.get("serDeInfo") or {}
    table: dict[str, Any] = {
        "Name": inputs["name"],
        "TableType": inputs.get("tableType", "EXTERNAL_TABLE"),
        "Parameters": dict(inputs.get("parameters") or {}),
        "PartitionKeys": _columns(inputs.get("partitionKeys")),
        "StorageDescriptor": {
            "Columns": _columns(descriptor.get("columns")),
            "Location": descriptor.get("location", ""),
            "InputFormat": descriptor.get("inputFormat", ""),
            "OutputFormat": descriptor.get("outputFormat", ""),
            "SerdeInfo": {"SerializationLibrary": serde.get("serializationLibrary", ""),
                          "Parameters": dict(serde.get("parameters") or {})},
        },
    }
    return inputs["databaseName"], table


def provision(rendered: Rendered, session: boto3.Session, endpoint_url: str) -> Provisioned:
    """Create every bucket, table, topic, queue, Glue database and table and Athena workgroup of
    ``rendered`` on the AWS endpoint ``endpoint_url`` (the moto server)."""
    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]

    s3, dynamodb, sns, sqs, glue, athena = (client(s) for s in ("s3", "dynamodb", "sns", "sqs", "glue", "athena"))
    done = Provisioned()
    creators: Mapping[str, tuple[str, Callable[[Resource], str]]] = {
        "aws:s3/bucket:Bucket": ("bucket", lambda r: _created(s3.create_bucket(Bucket=r.inputs["bucket"]),
                                                                r.inputs["bucket"])),
        "aws:dynamodb/table:Table": ("table", lambda r: _created(dynamodb.create_table(**_table(r)),
                                                                   r.inputs["name"])),
        "aws:sns/topic:Topic": ("topic", lambda r: _created(sns.create_topic(Name=r.inputs["name"]), r.inputs["name"])),
        "aws:sqs/queue:Queue": ("queue", lambda r: _created(sqs.create_queue(QueueName=r.inputs["name"]),
                                                            r.inputs["name"])),
        "aws:glue/catalogDatabase:CatalogDatabase": ("glue database", lambda r: _created(
            glue.create_database(DatabaseInput={"Name": r.inputs["name"]}), r.inputs["name"])),
        "aws:athena/workgroup:Workgroup": ("athena workgroup", lambda r: _created(athena.create_work_group(
            Name=r.inputs["name"], Configuration={"ResultConfiguration": {"OutputLocation": (
                r.inputs.get("configuration") or {}).get("resultConfiguration", {}).get("outputLocation", "")}}),
            r.inputs["name"])),
    }
    for resource in rendered.resources:  # databases before tables: the rendered order is registration order
        creator = creators.get(resource.type)
        if creator is not None:
            kind, create = creator
            done.add(kind, create(resource))
    for resource in rendered.of_type("aws:glue/catalogTable:CatalogTable"):
        database, table = _glue_table(resource)
        glue.create_table(DatabaseName=database, TableInput=table)
        done.add("glue table", f"{database}.{table['Name']}")
    return done


def _created(_response: object, name: str) -> str:
    return name


def _zip() -> bytes:
    """A Lambda deployment package holding one empty module: the function's configuration is what the
    runbook commands read (the rehearsal runs each function from its real artifact instead)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


def provision_operations(rendered: Rendered, session: boto3.Session, endpoint_url: str) -> Provisioned:
    """What the runbooks' ``aws`` commands read, created under the declared names: the CloudWatch alarms
    (every declared input), dashboards and log groups, the Lambda functions' configurations (handler,
    runtime, memory, timeout, environment, reserved concurrency; their roles by the ARN's name), the Glue
    jobs and the REST API. Not the MSK event source mapping: moto refuses a Kafka ``EventSourceArn``.
    Call after :func:`provision` (the alarms' topic exists then)."""
    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]

    cloudwatch, logs, lambda_, iam, apigateway, glue = (
        client(s) for s in ("cloudwatch", "logs", "lambda", "iam", "apigateway", "glue"))
    done = Provisioned()
    for resource in rendered.of_type("aws:cloudwatch/logGroup:LogGroup"):
        logs.create_log_group(logGroupName=resource.inputs["name"])
        done.add("log group", resource.inputs["name"])
    for resource in rendered.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        cloudwatch.put_metric_alarm(**_alarm(resource.inputs))
        done.add("alarm", resource.inputs["name"])
    for resource in rendered.of_type("aws:cloudwatch/dashboard:Dashboard"):
        cloudwatch.put_dashboard(DashboardName=resource.inputs["dashboardName"],
                                 DashboardBody=resource.inputs["dashboardBody"])
        done.add("dashboard", resource.inputs["dashboardName"])
    roles: set[str] = set()
    for resource in rendered.of_type("aws:lambda/function:Function"):
        inputs = resource.inputs
        role = str(inputs["role"])
        if role not in roles:
            iam.create_role(RoleName=role.rsplit("/", 1)[-1], AssumeRolePolicyDocument=_LAMBDA_TRUST)
            roles.add(role)
        lambda_.create_function(
            FunctionName=inputs["name"], Runtime=inputs["runtime"], Role=role, Handler=inputs["handler"],
            Code={"ZipFile": _zip()}, Description=inputs.get("description", ""),
            Timeout=int(inputs.get("timeout", 3)), MemorySize=int(inputs.get("memorySize", 128)),
            Environment={"Variables": dict((inputs.get("environment") or {}).get("variables") or {})},
            Architectures=list(inputs.get("architectures") or ["x86_64"]))
        reserved = int(inputs.get("reservedConcurrentExecutions", -1))
        if reserved >= 0:
            lambda_.put_function_concurrency(FunctionName=inputs["name"], ReservedConcurrentExecutions=reserved)
        done.add("function", inputs["name"])
    for resource in rendered.of_type("aws:glue/job:Job"):
        inputs = resource.inputs
        command = inputs.get("command") or {}
        glue.create_job(Name=inputs["name"], Role=inputs["roleArn"], GlueVersion=inputs.get("glueVersion", ""),
                        Command={"Name": command.get("name", "glueetl"),
                                 "ScriptLocation": command.get("scriptLocation", ""),
                                 "PythonVersion": command.get("pythonVersion", "3")})
        done.add("glue job", inputs["name"])
    for resource in rendered.of_type("aws:apigateway/restApi:RestApi"):
        apigateway.create_rest_api(name=resource.inputs["name"])
        done.add("rest api", resource.inputs["name"])
    return done


_LAMBDA_TRUST = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", '
                 '"Principal": {"Service": "lambda.amazonaws.com"}}]}')


def _alarm(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``PutMetricAlarm`` arguments of a rendered ``aws.cloudwatch.MetricAlarm``."""
    request: dict[str, Any] = {
        "AlarmName": inputs["name"], "AlarmDescription": inputs.get("alarmDescription", ""),
        "Namespace": inputs["namespace"], "MetricName": inputs["metricName"],
        "Dimensions": [{"Name": k, "Value": str(v)} for k, v in (inputs.get("dimensions") or {}).items()],
        "Period": int(inputs["period"]), "EvaluationPeriods": int(inputs["evaluationPeriods"]),
        "Threshold": float(inputs["threshold"]), "ComparisonOperator": inputs["comparisonOperator"],
        "TreatMissingData": inputs.get("treatMissingData", "missing"),
        "AlarmActions": list(inputs.get("alarmActions") or []), "OKActions": list(inputs.get("okActions") or []),
    }
    if inputs.get("extendedStatistic"):
        request["ExtendedStatistic"] = inputs["extendedStatistic"]
    else:
        request["Statistic"] = inputs["statistic"]
    return request
