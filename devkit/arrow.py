"""The core's logical column types and tables as Arrow types and schemas: how the tests and benches
write lake Parquet the way the Spark jobs type it."""

from __future__ import annotations

import pyarrow as pa

from dataforge import schemas
from dataforge.schemas import Table


def arrow_type(logical: str) -> pa.DataType:
    schemas.check_type(logical)
    dec = schemas.decimal_parts(logical)
    if dec:
        return pa.decimal128(*dec)
    simple = {"string": pa.string(), "int": pa.int32(), "bigint": pa.int64(), "double": pa.float64(),
              "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}
    return simple[logical]


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c.type), c.nullable) for c in table.all_columns])
