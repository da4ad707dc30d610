"""Validation of raw events with the core's ``dataforge.contract.Validator`` (the same code as landing).

Spark never re-implements the contract: :func:`validate_events` runs ``Validator.validate`` on each raw
value inside ``mapInPandas`` and returns the typed event columns plus ``reason`` / ``reject_field`` /
``detail`` (all null for a valid record). :func:`validate_bronze` does the same for bronze lines
(``{"event": {...}, "ingest": {...}}``), reading the event's original bytes untouched (``msgspec.Raw``).

Judging one record never fails the batch: should it raise (the contract gives every input a verdict,
so it should not), that record gets reason ``validation_error`` with the exception text, and the
executor logs it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from dataforge.contract import (
    MAX_FUTURE_SKEW,
    Reason,
    Rejection,
    TransactionEvent,
    Validator,
    epoch_us,
    from_epoch_us,
    validation_error,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

logger = logging.getLogger(__name__)

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


# How ``dataforge.bronze`` joins a bronze line: ``{"event":<the event bytes>,"ingest":{...}}``.
_EVENT_OPEN = b'{"event":'
_INGEST_OPEN = b',"ingest":'
_decode_ingest = msgspec.json.Decoder(_Ingest).decode


def _read_line(decode_line: Callable[[bytes | str], _BronzeLine], raw: bytes | str) -> tuple[bytes, _Ingest]:
    """The event bytes and ingest metadata of one bronze line. An event nested too deep for the
    decoder's stack (it recurses even to skip a value) is cut out where the encoder joined it, so that
    the contract judges it (``invalid_json``) and its position is kept."""
    try:
        line = decode_line(raw)
    except RecursionError:
        data = (raw.encode() if isinstance(raw, str) else raw).rstrip()
        cut = data.rfind(_INGEST_OPEN)
        if not data.startswith(_EVENT_OPEN) or cut < 0:
            raise
        return data[len(_EVENT_OPEN):cut], _decode_ingest(data[cut + len(_INGEST_OPEN):-1])
    return bytes(line.event), line.ingest


def raw_text(raw: bytes | str) -> str:
    """A raw record as text for quarantine: UTF-8 when it decodes, else base64 (QUARANTINE.raw)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


def _row(result: TransactionEvent | Rejection) -> list[Any]:
    """The added columns for one validation result."""
    if isinstance(result, Rejection):
        return [None] * 15 + [result.reason.value, result.field, result.detail]
    return [
        result.canonical_event_id, result.event_type, result.schema_version, epoch_us(result.event_time),
        result.transaction_id, result.account_id, result.merchant_id, str(result.amount_decimal),
        result.currency, result.status, result.decline_reason, result.channel, result.country,
        result.payment_method, result.risk_score, None, None, None,
    ]


def _judge(validator: Validator, raw: bytes | str, horizon: datetime, position: str) -> list[Any]:
    """The added columns for one record; the per-record backstop: if judging it raises, the record is
    rejected with ``validation_error`` (and logged) instead of failing the batch."""
    try:
        return _row(validator.validate(raw, horizon))
    except Exception as exc:
        logger.exception("judging a record raised; it is rejected as validation_error",
                         extra={"position": position})
        return _row(validation_error(exc))


def _ingest_horizon(ingested_at: Any, default: datetime) -> datetime:
    """The latest acceptable event time of a record ingested at ``ingested_at`` (a pandas timestamp of the
    Kafka record's time, naive in the session's time zone, UTC: ``spark.runtime``), else ``default``."""
    import pandas as pd

    if ingested_at is None or pd.isna(ingested_at):
        return default
    stamp = pd.Timestamp(ingested_at)
    moment: datetime = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()
    return moment + MAX_FUTURE_SKEW


def _validate_frame(pdf: pd.DataFrame, validator: Validator, bronze: bool) -> pd.DataFrame:
    """Judge each record of ``pdf``. "In the future" is judged as the landing step judges it, against the
    record's own ingest time (the Kafka record's timestamp, a file's S3 time, the bronze line's
    ``ingested_at``) plus ``MAX_FUTURE_SKEW``, so a record gets the same verdict here as at landing and on
    every replay; only a record without an ingest time is judged against the clock."""
    import pandas as pd

    horizon = validator.horizon()
    rows: list[list[Any]] = []
    raws: list[str] = []
    extra: dict[str, list[Any]] = {"source": [], "position": [], "ingested_at_us": []} if bronze else {}
    decode_line = msgspec.json.Decoder(_BronzeLine).decode
    positions = pdf["position"].tolist() if not bronze and "position" in pdf.columns else None
    ingest_times = pdf["ingested_at"].tolist() if not bronze and "ingested_at" in pdf.columns else None
    for index, value in enumerate(pdf["raw"].tolist()):
        raw: bytes | str = value if isinstance(value, str | bytes) else bytes(value)
        if bronze:
            try:
                event_bytes, ingest = _read_line(decode_line, raw)
                ingested_at_us = epoch_us(datetime.fromisoformat(ingest.ingested_at))
            except (msgspec.DecodeError, RecursionError, ValueError) as exc:  # (ValueError: the ingest time)
                rows.append([None] * 15 + [Reason.INVALID_JSON.value, None, f"not a bronze line: {exc}"])
                raws.append(raw_text(raw))
                extra["source"].append("file")
                extra["position"].append("")
                extra["ingested_at_us"].append(0)
                continue
            extra["source"].append(ingest.source)
            extra["position"].append(ingest.position)
            extra["ingested_at_us"].append(ingested_at_us)
            rows.append(_judge(validator, event_bytes, from_epoch_us(ingested_at_us) + MAX_FUTURE_SKEW,
                               ingest.position))
            raws.append(raw_text(event_bytes))
        else:
            position = str(positions[index]) if positions is not None else f"row {index} of its partition"
            record_horizon = horizon if ingest_times is None else _ingest_horizon(ingest_times[index], horizon)
            rows.append(_judge(validator, raw, record_horizon, position))
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


ValidatorFactory = Callable[[frozenset[str], Callable[[], datetime] | None], Validator]


def _default_validator(currencies: frozenset[str], clock: Callable[[], datetime] | None) -> Validator:
    return Validator(currencies) if clock is None else Validator(currencies, clock=clock)


def _mapper(currencies: Collection[str], bronze: bool, clock: Callable[[], datetime] | None,
            make_validator: ValidatorFactory) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    codes = frozenset(currencies)

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        validator = make_validator(codes, clock)
        for pdf in frames:
            yield _validate_frame(pdf, validator, bronze)

    return run


def _output_schema(df: DataFrame, bronze: bool) -> StructType:
    from pyspark.sql import types as t

    from spark.schemas import spark_type

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


def validate_events(df: DataFrame, currencies: Collection[str], *, clock: Callable[[], datetime] | None = None,
                    make_validator: ValidatorFactory = _default_validator) -> DataFrame:
    """``df`` has a ``raw`` column (binary or string: one event each) and any pass-through columns.

    Returns the pass-through columns, ``raw`` as text, and :data:`VALIDATION_COLUMNS` (typed event
    fields; ``reason`` is null exactly when the record is valid). ``make_validator(currencies, clock)``
    builds the validator on each executor (tests inject theirs). With an ``ingested_at`` column (the Kafka
    source's record timestamp), "in the future" is judged against it; ``clock`` serves rows without one.
    """
    mapper = _mapper(currencies, False, clock, make_validator)
    return _finish(df.mapInPandas(mapper, _output_schema(df, False)))  # type: ignore[arg-type]


def validate_bronze(df: DataFrame, currencies: Collection[str], *, clock: Callable[[], datetime] | None = None,
                    make_validator: ValidatorFactory = _default_validator) -> DataFrame:
    """``df`` has one bronze line per row in ``raw`` (``spark.read.text`` renamed). Returns ``raw`` (the
    original event JSON), ``source``, ``position``, ``ingested_at`` and :data:`VALIDATION_COLUMNS`. "In the
    future" is judged against each line's ``ingested_at``, as the landing step judged it."""
    from pyspark.sql import functions as F

    out = df.mapInPandas(_mapper(currencies, True, clock, make_validator), _output_schema(df, True))  # type: ignore[arg-type]
    return _finish(out).withColumn("ingested_at", F.timestamp_micros(F.col("ingested_at_us"))).drop("ingested_at_us")


def valid(df: DataFrame) -> DataFrame:
    """The records that passed validation."""
    return df.filter(df["reason"].isNull())


def invalid(df: DataFrame) -> DataFrame:
    return df.filter(df["reason"].isNotNull())
