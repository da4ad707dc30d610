"""Validation of raw events with the core's ``dataforge.contract.Validator`` (the same code as landing).

Spark never re-implements the contract: :func:`validate_events` runs ``Validator.validate`` on each raw
value inside ``mapInPandas`` and returns the typed event columns plus ``reason`` / ``reject_field`` /
``detail`` (all null for a valid record). :func:`validate_bronze` does the same for bronze lines
(``{"event": {...}, "ingest": {...}}``), reading the event's original bytes untouched (``msgspec.Raw``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from dataforge.contract import Reason, Rejection, Validator, epoch_us

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

# Columns the validator adds (helper columns ending in _us/_text are converted, then dropped).
_ADDED: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("event_type", "string"),
    ("schema_version", "int"),
    ("event_time_us", "bigint"),
    ("transaction_id", "string"),
    ("account_id", "string"),
    ("merchant_id", "string"),
    ("amount_text", "string"),
    ("currency", "string"),
    ("status", "string"),
    ("decline_reason", "string"),
    ("channel", "string"),
    ("country", "string"),
    ("payment_method", "string"),
    ("risk_score", "double"),
    ("reason", "string"),
    ("reject_field", "string"),
    ("detail", "string"),
)
_EVENT_COLUMNS = tuple(name for name, _ in _ADDED[:15])
VALIDATION_COLUMNS: tuple[str, ...] = (
    "event_id", "event_type", "schema_version", "event_time", "transaction_id", "account_id", "merchant_id",
    "amount", "currency", "status", "decline_reason", "channel", "country", "payment_method", "risk_score",
    "reason", "reject_field", "detail",
)


class _Ingest(msgspec.Struct):
    event_id: str
    source: str
    position: str
    ingested_at: str


class _BronzeLine(msgspec.Struct):
    event: msgspec.Raw
    ingest: _Ingest


def raw_text(raw: bytes | str) -> str:
    """A raw record as text for quarantine: UTF-8 when it decodes, else base64 (QUARANTINE.raw)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


def _row(result: Any) -> list[Any]:
    """The added columns for one validation result."""
    if isinstance(result, Rejection):
        return [None] * 15 + [result.reason.value, result.field, result.detail]
    return [
        result.canonical_event_id, result.event_type, result.schema_version, epoch_us(result.event_time),
        result.transaction_id, result.account_id, result.merchant_id, str(result.amount_decimal),
        result.currency, result.status, result.decline_reason, result.channel, result.country,
        result.payment_method, result.risk_score, None, None, None,
    ]


def _validate_frame(pdf: pd.DataFrame, validator: Validator, bronze: bool) -> pd.DataFrame:
    import pandas as pd

    horizon = validator.horizon()
    rows: list[list[Any]] = []
    raws: list[str] = []
    extra: dict[str, list[Any]] = {"source": [], "position": [], "ingested_at_us": []} if bronze else {}
    line_decoder = msgspec.json.Decoder(_BronzeLine)
    for value in pdf["raw"].tolist():
        raw: bytes | str = value if isinstance(value, str | bytes) else bytes(value)
        if bronze:
            try:
                line = line_decoder.decode(raw)
            except msgspec.DecodeError as exc:
                rows.append([None] * 15 + [Reason.INVALID_JSON.value, None, f"not a bronze line: {exc}"])
                raws.append(raw_text(raw))
                extra["source"].append("file")
                extra["position"].append("")
                extra["ingested_at_us"].append(0)
                continue
            event_bytes = bytes(line.event)
            extra["source"].append(line.ingest.source)
            extra["position"].append(line.ingest.position)
            extra["ingested_at_us"].append(epoch_us(datetime.fromisoformat(line.ingest.ingested_at)))
            rows.append(_row(validator.validate(event_bytes, horizon)))
            raws.append(raw_text(event_bytes))
        else:
            rows.append(_row(validator.validate(raw, horizon)))
            raws.append(raw_text(raw))
    added = pd.DataFrame(rows, columns=[name for name, _ in _ADDED])
    added["schema_version"] = added["schema_version"].astype("Int32")
    added["event_time_us"] = added["event_time_us"].astype("Int64")
    added["risk_score"] = added["risk_score"].astype("float64")
    out = pdf.drop(columns=["raw"]).reset_index(drop=True)
    out["raw"] = raws
    for name in extra:
        out[name] = extra[name]
    return pd.concat([out, added], axis=1)


def _mapper(currencies: Collection[str], bronze: bool,
            clock: Callable[[], datetime] | None) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    codes = frozenset(currencies)

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        validator = Validator(codes) if clock is None else Validator(codes, clock=clock)
        for pdf in frames:
            yield _validate_frame(pdf, validator, bronze)

    return run


def _output_schema(df: DataFrame, bronze: bool) -> StructType:
    from pyspark.sql import types as t

    from dataforge.schemas import spark_type

    fields = [f for f in df.schema.fields if f.name != "raw"]
    fields.append(t.StructField("raw", t.StringType(), True))
    if bronze:
        fields += [t.StructField("source", t.StringType(), True), t.StructField("position", t.StringType(), True),
                   t.StructField("ingested_at_us", t.LongType(), True)]
    fields += [t.StructField(name, spark_type(kind), True) for name, kind in _ADDED]
    return t.StructType(fields)


def _finish(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return (
        df.withColumn("event_time", F.timestamp_micros(F.col("event_time_us")))
        .withColumn("amount", F.col("amount_text").cast("decimal(18,2)"))
        .drop("event_time_us", "amount_text")
    )


def validate_events(df: DataFrame, currencies: Collection[str], *,
                    clock: Callable[[], datetime] | None = None) -> DataFrame:
    """``df`` has a ``raw`` column (binary or string: one event each) and any pass-through columns.

    Returns the pass-through columns, ``raw`` as text, and :data:`VALIDATION_COLUMNS` (typed event
    fields; ``reason`` is null exactly when the record is valid).
    """
    out = df.mapInPandas(_mapper(currencies, False, clock), _output_schema(df, False))  # type: ignore[arg-type]
    return _finish(out)


def validate_bronze(df: DataFrame, currencies: Collection[str], *,
                    clock: Callable[[], datetime] | None = None) -> DataFrame:
    """``df`` has one bronze line per row in ``raw`` (``spark.read.text`` renamed). Returns ``raw`` (the
    original event JSON), ``source``, ``position``, ``ingested_at`` and :data:`VALIDATION_COLUMNS`."""
    from pyspark.sql import functions as F

    out = df.mapInPandas(_mapper(currencies, True, clock), _output_schema(df, True))  # type: ignore[arg-type]
    return _finish(out).withColumn("ingested_at", F.timestamp_micros(F.col("ingested_at_us"))).drop("ingested_at_us")


def valid(df: DataFrame) -> DataFrame:
    """The records that passed validation."""
    return df.filter(df["reason"].isNull())


def invalid(df: DataFrame) -> DataFrame:
    return df.filter(df["reason"].isNotNull())
