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
