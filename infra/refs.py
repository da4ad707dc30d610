"""What one component hands the next: a typed record of references per component.

Each component exports its references as one of these records (``Lake.refs``, ``Network.refs``,
...); a component that needs another's resources takes that record whole in its ``Args`` instead of
a dozen loose names and ARNs, so ``program.build`` wires components, not fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from dataforge.lake import SupportBucket, Zone
from infra.artifacts import Artifact
from infra.errors import InfraError


@dataclass(frozen=True, slots=True)
class Named:
    """A resource's physical name and ARN (a bucket, a table, ...)."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]


@dataclass(frozen=True, slots=True)
class NetworkRefs:
    vpc_id: pulumi.Output[str]
    private_subnet_ids: Sequence[pulumi.Output[str]]
    public_subnet_ids: Sequence[pulumi.Output[str]]
    compute_sg_id: pulumi.Output[str]  # Lambdas, Glue jobs and tasks
    kafka_sg_id: pulumi.Output[str]  # the MSK brokers


@dataclass(frozen=True, slots=True)
class LakeRefs:
    kms_key_arn: pulumi.Output[str]
    buckets: Mapping[Zone | SupportBucket, Named]

    def __getitem__(self, which: Zone | SupportBucket) -> Named:
        return self.buckets[which]


@dataclass(frozen=True, slots=True)
class CatalogRefs:
    catalog_arns: Sequence[pulumi.Output[str]]
    databases: Mapping[Zone, pulumi.Output[str]]
    database_arns: Mapping[Zone, pulumi.Output[str]]
    table_arns: Mapping[Zone, pulumi.Output[str]]  # every table of the zone's database

    def resource_arns(self, *zones: Zone) -> list[pulumi.Output[str]]:
        """The catalog, and the databases and tables of ``zones``: what reading those zones needs."""
        return [*self.catalog_arns, *(self.database_arns[z] for z in zones), *(self.table_arns[z] for z in zones)]


@dataclass(frozen=True, slots=True)
class StreamingRefs:
    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    bootstrap_brokers: pulumi.Output[str]
    topic: str  # the configured topic name
    topic_name: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    group_arn_prefix: pulumi.Output[str]  # + "/<consumer group>" is a group's ARN


@dataclass(frozen=True, slots=True)
class ServingRefs:
    metrics: Named
    alerts: Named
    workgroup: Named


@dataclass(frozen=True, slots=True)
class FunctionRuntime:
    """What the Lambdas of a component share: the code of each function by name (``code_of``), the core
    layer, the platform's environment (``dataforge.envvars`` names), the key their logs and environment
    are encrypted with, and the log retention."""

    code: Mapping[str, Artifact]
    core_layer_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int

    def code_of(self, function: str) -> Artifact:
        try:
            return self.code[function]
        except KeyError:
            raise InfraError(f"no code built for the function {function!r}; built: {', '.join(self.code)}") from None
