"""Spark's validation judges "in the future" as the landing step does: against each record's own ingest
time (issue 19, experiment 8: a producer whose clock is 10 minutes ahead had its records landed in bronze,
then skipped by Spark as ``event_time_in_future``, and so lost)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import pandas as pd
import pytest

from dataforge.contract import Validator
from dataforge.reference import default_fx
from lambdas.common.kafka_landing import land_partition
from spark.transforms.validate import _validate_frame

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
EVENT = {
    "event_id": "3f6d2c8a-91b4-4e57-a0c3-5d7e2b9f1a64", "event_type": "payment", "schema_version": 1,
    "transaction_id": "txn_1", "account_id": "acc_1", "merchant_id": "mrc_0027", "amount": "129.99",
    "currency": "USD", "status": "approved", "decline_reason": None, "channel": "web", "country": "US",
    "payment_method": "card", "risk_score": 0.07,
}


def _landing_quarantines(raw: bytes, ingested: datetime, validator: Validator) -> bool:
    record = {"topic": "t", "partition": 0, "offset": 7, "timestamp": int(ingested.timestamp() * 1000),
              "value": base64.b64encode(raw).decode()}
    return land_partition("t", 0, [record], validator).quarantined == 1


@pytest.mark.parametrize(("event_time", "ingested"), [
    pytest.param(NOW + timedelta(minutes=10), NOW + timedelta(minutes=10), id="producer_clock_ahead"),
    pytest.param(NOW - timedelta(minutes=30), NOW - timedelta(minutes=40), id="replayed_record_ahead_of_its_ingest"),
    pytest.param(NOW - timedelta(days=3), NOW, id="days_late"),
])
def test_streaming_validation_gives_the_landing_verdict(event_time: datetime, ingested: datetime) -> None:
    validator = Validator(default_fx().currencies, clock=lambda: NOW)
    raw = msgspec.json.encode({**EVENT, "event_time": event_time.isoformat()})
    frame = pd.DataFrame({"raw": [raw], "position": ["t-0@7"],
                          "ingested_at": [pd.Timestamp(ingested).tz_convert(None)]})  # naive UTC, as Spark gives
    judged = _validate_frame(frame, validator, bronze=False)
    spark_quarantines = judged["reason"].notna().item()
    assert spark_quarantines == _landing_quarantines(raw, ingested, validator)
    assert spark_quarantines == (event_time > ingested + timedelta(minutes=5))
