"""The core's logical column types and tables as Spark types and schemas (``dataforge.schemas``).

pyspark is imported on first use: the jobs' helpers (``spark.runtime``) stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataforge import schemas
from dataforge.schemas import Table

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType


def spark_type(logical: str) -> DataType:
    from pyspark.sql import types as t

    schemas.check_type(logical)
    dec = schemas.decimal_parts(logical)
    if dec:
        return t.DecimalType(*dec)
    simple: dict[str, DataType] = {
        "string": t.StringType(), "int": t.IntegerType(), "bigint": t.LongType(), "double": t.DoubleType(),
        "timestamp": t.TimestampType(), "date": t.DateType(),
    }
    return simple[logical]


def spark_schema(table: Table, *, include_partitions: bool = True) -> StructType:
    from pyspark.sql import types as t

    cols = table.all_columns if include_partitions else table.columns
    return t.StructType([t.StructField(c.name, spark_type(c.type), c.nullable) for c in cols])
