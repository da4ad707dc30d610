"""The speed path (ADR 0014): item keys, the per-partition fold, id sets, retries, and the read-time merge."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dataforge import serving
from dataforge.contract import Validator
from dataforge.reference import default_fx
from lambdas.common.config import LandingConfig
from lambdas.common.errors import StorageError
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.speed_path import SpeedPath
from tests.unit.ingestion.memory_store import MemoryStore

CONFIG = LandingConfig("bronze", "quarantine", None, False, None, "us-east-1", metrics_table="metrics")
MINUTE = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
TS_MS = int((MINUTE + timedelta(seconds=50)).timestamp() * 1000)


class FakeDynamo:
    """The three calls the speed path makes, with the two conditions it uses; items in plain DynamoDB JSON."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_put_after: int | None = None  # fail the n-th conditional put from now on (0: the next)

    def _key(self, item: dict[str, Any]) -> tuple[str, str]:
        return item["pk"]["S"], item["sk"]["S"]

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("batch_get_item")
        ((table, request),) = RequestItems.items()
        assert request["ConsistentRead"] is True
        assert len(request["Keys"]) <= 100
        found = [copy.deepcopy(self.items[self._key(k)]) for k in request["Keys"] if self._key(k) in self.items]
        return {"Responses": {table: found}}

    def put_item(self, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None,
                 **names: Any) -> dict[str, Any]:
        self.calls.append("put_item")
        if self.fail_put_after is not None:
            if self.fail_put_after == 0:
                self.fail_put_after = None
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "PutItem")
            self.fail_put_after -= 1
        current = self.items.get(self._key(Item))
        if ConditionExpression is None:
            ok = True
        elif ConditionExpression == "attribute_not_exists(#pk)":
            ok = current is None
        else:
            assert ConditionExpression == "through_offset = :seen"
            ok = current is not None and current["through_offset"] == names["ExpressionAttributeValues"][":seen"]
        if not ok:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}, "PutItem")
        self.items[self._key(Item)] = copy.deepcopy(Item)
        return {}

    def speed_items(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        plain = TypeDeserializer().deserialize
        return [{k: plain(v) for k, v in item.items()} for (pk, _), item in sorted(self.items.items())
                if pk.startswith(serving.REALTIME_SPEED_PREFIX)]


def event(n: int, *, status: str = "approved", amount: str = "10.00", event_type: str = "payment",
          second: int = 1, minute: datetime = MINUTE) -> bytes:
    return json.dumps({
        "event_id": f"00000000-0000-4000-8000-{n:012d}", "event_type": event_type, "schema_version": 1,
        "event_time": (minute + timedelta(seconds=second)).isoformat().replace("+00:00", "Z"),
        "transaction_id": f"t{n}", "account_id": f"a{n}", "merchant_id": "mrc_0001", "amount": amount,
        "currency": "USD", "status": status, "decline_reason": "insufficient_funds" if status == "declined" else None,
        "channel": "web", "country": "US", "payment_method": "card", "risk_score": None,
    }).encode()


def records(values: Sequence[bytes], *, first_offset: int = 0, partition: int = 0) -> dict[str, list[dict[str, Any]]]:
    return {f"transactions-{partition}": [
        {"topic": "transactions", "partition": partition, "offset": first_offset + i, "timestamp": TS_MS,
         "timestampType": "CREATE_TIME", "key": "", "value": base64.b64encode(v).decode(), "headers": []}
        for i, v in enumerate(values)]}


def landing(ddb: FakeDynamo, max_ids: int = 40_000) -> KafkaLanding:
    speed = SpeedPath("metrics", default_fx(), endpoint_url=None, region="us-east-1", client=ddb,
                      clock=lambda: 1_714_564_800.0, max_ids=max_ids)
    return KafkaLanding(CONFIG, MemoryStore(), Validator(default_fx().currencies), speed=speed)


def provisional(ddb: FakeDynamo) -> serving.RealtimeMinute:
    (minute,) = serving.merge_realtime([], ddb.speed_items()).minutes
    assert minute.status == serving.PROVISIONAL
    return minute


def test_keys_of_speed_items_and_id_sets() -> None:
    at = datetime(2025, 5, 1, 12, 0, 42, 7, tzinfo=UTC)
    assert serving.realtime_speed_pk(at) == "RTS#2025-05-01"
    assert serving.realtime_speed_sk(at, "transactions", 3) == "2025-05-01T12:00Z#transactions-3"
    assert serving.realtime_ids_pk(at, "transactions", 3) == "RTD#transactions-3#2025-05-01T12:00Z"
    # the API reads a window's speed items with sk BETWEEN <first minute> AND <last minute>#~
    assert serving.realtime_sk(at) < serving.realtime_speed_sk(at, "transactions", 3) < serving.realtime_sk(at) + "#~"
    assert serving.instant(at) == "2025-05-01T12:00:42.000007Z"
    assert serving.parse_instant(serving.instant(at)) == at


def test_a_batch_folds_into_one_item_per_minute_and_partition() -> None:
    ddb = FakeDynamo()
    values = [event(1), event(2, status="declined"), event(3, amount="5.50"),
              event(4, event_type="refund"),  # refunds are not realtime payments
              event(1),  # the same event id again within the batch: counted once
              event(5, minute=MINUTE + timedelta(minutes=1))]
    landing(ddb).land(records(values))
    items = ddb.speed_items()
    assert [i["sk"] for i in items] == ["2025-05-01T12:00Z#transactions-0", "2025-05-01T12:01Z#transactions-0"]
    first = items[0]
    assert (first["txn_count"], first["approved_count"], first["declined_count"]) == (3, 2, 1)
    assert first["volume_usd"] == Decimal("15.50")
    assert first["through_offset"] == 5
    assert first["newest_event_time"] == "2025-05-01T12:00:01.000000Z"
    assert first[serving.TTL_ATTR] > 1_714_564_800
    assert first["ids_len"] == 3
    # one read round trip; per minute, the id set and the guarded speed item
    assert ddb.calls == ["batch_get_item", "put_item", "put_item", "put_item", "put_item"]


def test_a_retried_batch_counts_nothing_twice() -> None:
    ddb = FakeDynamo()
    batch = records([event(n) for n in range(10)])
    landing(ddb).land(batch)
    landing(ddb).land(batch)  # the mapping retries the same batch after a later failure
    assert provisional(ddb).txn_count == 10


@pytest.mark.parametrize("failing_put", [0, 1, 2, 3])
def test_a_batch_that_failed_half_way_counts_each_event_once_on_retry(failing_put: int) -> None:
    """Puts per minute: the id set, then the speed item. Failing the 2nd leaves digests appended to the
    first minute's set that its speed item does not count (past ``ids_len``): the retry must count them."""
    ddb = FakeDynamo()
    values = [event(n) for n in range(5)] + [event(10 + n, minute=MINUTE + timedelta(minutes=1)) for n in range(5)]
    ddb.fail_put_after = failing_put
    with pytest.raises(StorageError):
        landing(ddb).land(records(values))
    landing(ddb).land(records(values))
    assert [m.txn_count for m in serving.merge_realtime([], ddb.speed_items()).minutes] == [5, 5]


def test_a_retry_cut_to_a_longer_offset_range_adds_only_the_new_records() -> None:
    ddb = FakeDynamo()
    values = [event(n) for n in range(15)]
    landing(ddb).land(records(values[:10]))
    landing(ddb).land(records(values))  # re-cut: offsets 0..14
    assert provisional(ddb).txn_count == 15


def test_a_duplicate_resent_in_a_later_batch_is_not_counted_again() -> None:
    ddb = FakeDynamo()
    landing(ddb).land(records([event(n) for n in range(4)]))
    later = records([event(2), event(3), event(7)], first_offset=4)  # two re-sends and one new event
    landing(ddb).land(later)
    landing(ddb).land(later)  # and that batch retried
    assert provisional(ddb).txn_count == 5


def test_a_full_id_set_still_counts_new_events_and_stays_bounded() -> None:
    ddb = FakeDynamo()
    landing(ddb, max_ids=3).land(records([event(n) for n in range(5)]))
    landing(ddb, max_ids=3).land(records([event(10), event(11)], first_offset=5))
    assert provisional(ddb).txn_count == 7  # counted, though only the first 3 ids are recorded
    (id_set,) = [item for (pk, _), item in ddb.items.items() if pk.startswith("RTD#")]
    assert len(id_set["ids"]["B"]) == 3 * 8


def test_partitions_fold_separately_and_add_up_at_read_time() -> None:
    ddb = FakeDynamo()
    landing(ddb).land(records([event(n) for n in range(3)], partition=0))
    landing(ddb).land(records([event(10 + n, status="declined") for n in range(2)], partition=1))
    minute = provisional(ddb)
    assert (minute.txn_count, minute.approved_count, minute.declined_count) == (5, 3, 2)
    assert minute.decline_rate == Decimal("0.4000")
    assert minute.volume_usd == Decimal("30.00")


def _speed(minute: str, ingest: str, n: int = 5, event_time: str = "2025-05-01T12:00:30.000000Z") -> dict[str, Any]:
    return {"pk": "RTS#2025-05-01", "sk": f"{minute}#transactions-0", "minute": minute, "txn_count": n,
            "approved_count": n, "declined_count": 0, "volume_usd": Decimal("1.00") * n,
            "newest_event_time": event_time, "newest_ingest_time": ingest}


def _final(minute: str, as_of: str | None, n: int = 4) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": "RT#2025-05-01", "sk": minute, "minute": minute, "txn_count": n,
                            "approved_count": n, "declined_count": 0, "volume_usd": Decimal("9.99"),
                            "decline_rate": Decimal(0), "newest_event_time": "2025-05-01T12:00:20.000000Z"}
    if as_of is not None:
        item["as_of"] = as_of
    return item


def test_final_replaces_provisional_once_spark_has_seen_what_the_speed_path_counted() -> None:
    late, early = "2025-05-01T12:00:40.000000Z", "2025-05-01T12:00:35.000000Z"
    seen = serving.merge_realtime([_final("2025-05-01T12:00Z", late)], [_speed("2025-05-01T12:00Z", early)])
    assert [(m.status, m.txn_count, m.volume_usd) for m in seen.minutes] == [(serving.FINAL, 4, Decimal("9.99"))]
    behind = serving.merge_realtime([_final("2025-05-01T12:00Z", early)], [_speed("2025-05-01T12:00Z", late)])
    assert [(m.status, m.txn_count) for m in behind.minutes] == [(serving.PROVISIONAL, 5)]
    legacy = serving.merge_realtime([_final("2025-05-01T12:00Z", None)], [_speed("2025-05-01T12:00Z", late)])
    assert legacy.minutes[0].status == serving.FINAL


def test_the_view_reports_the_newest_event_and_ingest_times_counted() -> None:
    view = serving.merge_realtime(
        [_final("2025-05-01T12:00Z", "2025-05-01T12:00:40.000000Z")],
        [_speed("2025-05-01T12:01Z", "2025-05-01T12:01:09.500000Z", event_time="2025-05-01T12:01:09.000000Z")])
    assert [m.minute for m in view.minutes] == ["2025-05-01T12:00Z", "2025-05-01T12:01Z"]
    assert view.newest_event_time == datetime(2025, 5, 1, 12, 1, 9, tzinfo=UTC)
    assert view.newest_ingest_time == datetime(2025, 5, 1, 12, 1, 9, 500000, tzinfo=UTC)
    assert serving.merge_realtime([], []).newest_event_time is None
