"""Table schemas derive from the contract and translate to every engine consistently."""

from __future__ import annotations

import pytest

from dataforge import schemas
from dataforge.contract import FIELD_NAMES
from dataforge.errors import ContractError
from devkit.arrow import arrow_schema, arrow_type


def test_silver_and_raw_follow_the_contract_order() -> None:
    assert schemas.RAW_EVENT.column_names == FIELD_NAMES
    assert schemas.SILVER_TRANSACTIONS.column_names[: len(FIELD_NAMES)] == FIELD_NAMES
    assert schemas.SILVER_TRANSACTIONS.partition_keys[0].name == "event_date"


def test_money_is_decimal_in_every_engine() -> None:
    silver = {c.name: c for c in schemas.SILVER_TRANSACTIONS.all_columns}
    assert silver["amount"].type == "decimal(18,2)"
    assert schemas.glue_type("decimal(18,2)") == "decimal(18,2)"
    assert schemas.duckdb_type("decimal(18,2)") == "DECIMAL(18,2)"
    assert str(arrow_type("decimal(18,2)")) == "decimal128(18, 2)"


def test_glue_columns_shape() -> None:
    cols = schemas.glue_columns(schemas.GOLD_DAILY_KPIS.columns)
    assert cols[0] == {"Name": "merchant_id", "Type": "string", "Comment": "'*' on platform-total rows"}
    assert {c["Type"] for c in cols} <= {"string", "bigint", "decimal(5,4)", "decimal(18,2)"}


def test_arrow_and_duckdb_cover_every_column() -> None:
    for table in (schemas.SILVER_TRANSACTIONS, schemas.GOLD_DAILY_KPIS, schemas.QUARANTINE, schemas.REALTIME_MINUTE):
        assert arrow_schema(table).names == list(table.column_names)
        assert list(schemas.duckdb_columns(table)) == list(table.column_names)


def test_unknown_logical_type_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        schemas.glue_type("varchar(10)")


def test_the_gold_table_derives_from_the_one_kpi_row() -> None:
    gold = {c.name: c for c in schemas.GOLD_DAILY_KPIS.columns}
    assert tuple(gold) == tuple(c.name for c in schemas.GOLD_KPI_ROW)
    kinds = {c.name: c.kind for c in schemas.GOLD_KPI_ROW}
    assert {gold[name].type for name in schemas.kpi_columns(schemas.KpiKind.MONEY)} == {"decimal(18,2)"}
    assert {gold[name].type for name in schemas.kpi_columns(schemas.KpiKind.COUNT)} == {"bigint"}
    assert kinds["approval_rate"] is schemas.KpiKind.RATE
    assert gold["approval_rate"].nullable
    assert schemas.kpi_columns(schemas.KpiKind.KEY) == ("merchant_id", "country", "channel")
    assert schemas.GOLD_DAILY_KPIS.partition_keys[0].name == schemas.KPI_DATE
