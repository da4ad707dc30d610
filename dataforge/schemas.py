"""Table schemas of the lake, derived from the contract, in every engine's type system.

Logical column types are small strings (``string``, ``int``, ``bigint``, ``double``, ``timestamp``,
``date``, ``decimal(p,s)``); ``spark_schema``, ``glue_columns``, ``arrow_schema`` and
``duckdb_columns`` translate a table into Spark, Glue (Hive DDL types), Arrow and DuckDB. pyspark
and pyarrow are imported only inside the functions that need them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypedDict

from dataforge.contract import FIELDS
from dataforge.errors import ContractError

PLATFORM_TOTAL: Final = "*"  # merchant_id / country / channel of the platform-total gold rows

_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...] = ()

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.partition_keys

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.all_columns)


def _raw_type(silver_type: str) -> str:
    """How the raw event is read before typing: text, except whole numbers and the risk score."""
    return silver_type if silver_type in ("int", "double") else "string"


# The event as received (Kafka value / batch line), read loosely so validation can name each fault.
RAW_EVENT: Final = Table(
    "raw_event",
    tuple(Column(f.name, "bigint" if f.silver_type == "int" else _raw_type(f.silver_type), True, f.description)
          for f in FIELDS),
)

SILVER_TRANSACTIONS: Final = Table(
    "transactions",
    (
        *(Column(f.name, f.silver_type, f.name in ("decline_reason", "risk_score"), f.description) for f in FIELDS),
        Column("usd_rate", "decimal(18,8)", False, "USD per unit of currency on event_date"),
        Column("amount_usd", "decimal(18,2)", False, "amount x usd_rate, half-even to cents"),
        Column("merchant_name", "string", False, "'unknown' for merchants not in the reference data"),
        Column("merchant_category", "string", False),
        Column("merchant_tier", "string", False),
        Column("source", "string", False, "kafka or file"),
        Column("ingested_at", "timestamp", False, "when the record was first landed in bronze"),
    ),
    (Column("event_date", "date", False, "UTC date of event_time"),),
)

class KpiKind(StrEnum):
    """What a gold KPI column holds; its storage type, serving form, API form and display derive from it."""

    KEY = "key"  # a grain column (``PLATFORM_TOTAL`` on platform-total rows)
    COUNT = "count"  # a whole number
    RATE = "rate"  # a ratio, half-even to 4 decimals
    MONEY = "money"  # USD, half-even to cents


@dataclass(frozen=True, slots=True)
class KpiColumn:
    name: str
    kind: KpiKind
    nullable: bool = False
    comment: str = ""


# The gold KPI row, defined once (ARCHITECTURE.md, "KPI definitions"): the gold table, the DynamoDB
# items, the export, the API's rows and OpenAPI schema and the dashboard's columns derive from it.
# A new KPI is one row here plus its computation (``spark/transforms/kpis.py``).
GOLD_KPI_ROW: Final = (
    KpiColumn("merchant_id", KpiKind.KEY, comment=f"'{PLATFORM_TOTAL}' on platform-total rows"),
    KpiColumn("country", KpiKind.KEY, comment=f"'{PLATFORM_TOTAL}' on platform-total rows"),
    KpiColumn("channel", KpiKind.KEY, comment=f"'{PLATFORM_TOTAL}' on platform-total rows"),
    KpiColumn("txn_count", KpiKind.COUNT, comment="payments, approved + declined"),
    KpiColumn("approved_count", KpiKind.COUNT),
    KpiColumn("declined_count", KpiKind.COUNT),
    KpiColumn("approval_rate", KpiKind.RATE, nullable=True, comment="approved/txn_count, half-even; null when 0"),
    KpiColumn("gross_volume_usd", KpiKind.MONEY, comment="sum of amount_usd of approved payments"),
    KpiColumn("refund_count", KpiKind.COUNT, comment="approved refunds"),
    KpiColumn("refund_volume_usd", KpiKind.MONEY),
    KpiColumn("net_volume_usd", KpiKind.MONEY, comment="gross - refunds"),
    KpiColumn("avg_ticket_usd", KpiKind.MONEY, nullable=True, comment="gross/approved_count, half-even; null when 0"),
    KpiColumn("unique_accounts", KpiKind.COUNT, comment="distinct account_id over payments"),
)
KPI_DATE: Final = "event_date"
_KPI_TYPES: Final = {KpiKind.KEY: "string", KpiKind.COUNT: "bigint", KpiKind.RATE: "decimal(5,4)",
                     KpiKind.MONEY: "decimal(18,2)"}


def kpi_columns(*kinds: KpiKind) -> tuple[str, ...]:
    """The names of the gold KPI columns of these kinds, in row order."""
    return tuple(c.name for c in GOLD_KPI_ROW if c.kind in kinds)


GOLD_DAILY_KPIS: Final = Table(
    "daily_kpis",
    tuple(Column(c.name, _KPI_TYPES[c.kind], c.nullable, c.comment) for c in GOLD_KPI_ROW),
    (Column(KPI_DATE, "date", False),),
)

REALTIME_MINUTE: Final = Table(
    "realtime_minute",
    (
        Column("minute", "timestamp", False, "UTC event-time minute"),
        Column("txn_count", "bigint", False),
        Column("approved_count", "bigint", False),
        Column("declined_count", "bigint", False),
        Column("volume_usd", "decimal(18,2)", False, "approved payments"),
        Column("decline_rate", "decimal(5,4)", True),
    ),
)

QUARANTINE: Final = Table(
    "quarantine",
    (
        Column("reason", "string", False, "dataforge.contract.Reason code"),
        Column("field", "string", True),
        Column("detail", "string", False),
        Column("raw", "string", False, "the record as received (base64 when not UTF-8)"),
        Column("source", "string", False, "kafka or file"),
        Column("position", "string", False, "topic-partition@offset or s3://bucket/key#version:line"),
        Column("ingested_at", "timestamp", False),
    ),
)


# --- engine type systems ------------------------------------------------------------------------


def decimal_parts(logical: str) -> tuple[int, int] | None:
    match = _DECIMAL.fullmatch(logical)
    return (int(match.group(1)), int(match.group(2))) if match else None


_HIVE: Final = {"string": "string", "int": "int", "bigint": "bigint", "double": "double",
                "timestamp": "timestamp", "date": "date"}
_DUCKDB: Final = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
                  "timestamp": "TIMESTAMP WITH TIME ZONE", "date": "DATE"}


def check_type(logical: str) -> None:
    if logical not in _HIVE and decimal_parts(logical) is None:
        raise ContractError(f"unknown logical column type {logical!r}")


def glue_type(logical: str) -> str:
    check_type(logical)
    return _HIVE.get(logical, logical)


def duckdb_type(logical: str) -> str:
    check_type(logical)
    dec = decimal_parts(logical)
    return f"DECIMAL({dec[0]},{dec[1]})" if dec else _DUCKDB[logical]


class GlueColumn(TypedDict):
    Name: str
    Type: str
    Comment: str


def glue_columns(columns: tuple[Column, ...]) -> list[GlueColumn]:
    """Glue ``StorageDescriptor.Columns`` / ``PartitionKeys`` entries (boto3 and pulumi-aws shapes)."""
    return [GlueColumn(Name=c.name, Type=glue_type(c.type), Comment=c.comment[:255]) for c in columns]


def duckdb_columns(table: Table) -> dict[str, str]:
    return {c.name: duckdb_type(c.type) for c in table.all_columns}


def describe(table: Table) -> list[dict[str, Any]]:
    """A JSON-friendly description (API catalog endpoint, docs)."""
    return [{"name": c.name, "type": c.type, "nullable": c.nullable, "comment": c.comment} for c in table.all_columns]
