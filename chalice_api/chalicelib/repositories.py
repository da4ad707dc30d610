"""Reads and the one write (alert acknowledgement) of the API over DynamoDB: key queries only.

Keys come from the shared core (``dataforge.serving``, ADR 0001). The DynamoDB client is injected
(``services.Services`` creates it lazily), so unit tests can pass a Stubber-backed client and
integration tests the moto server's.

Each repository reads through an optional ``TtlCache`` (``chalicelib.cache``) keyed by the exact query
(method, every argument, the page cursor): daily KPIs and realtime minutes are served from memory
while fresh; alerts are cached only when configured and their cache is dropped on acknowledge.
A cached ``Page`` also keeps what the handlers derive from its items (``Page.derive``: the JSON-ready
rows), so a cache hit formats nothing again and the derived values expire with the page.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.cache import TtlCache
from chalicelib.errors import BadRequestError, ConflictError, DependencyError, NotFoundError
from chalicelib.tokens import Cursor
from dataforge import serving
from dataforge.schemas import PLATFORM_TOTAL

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryOutputTypeDef

TABLE_KEY_NAMES: Final = frozenset({serving.PK, serving.SK})
ALERT_INDEX_KEY_NAMES: Final = frozenset(
    {serving.PK, serving.SK, serving.ALERT_STATUS_ATTR, serving.ALERT_RAISED_AT_ATTR}
)
_DESERIALIZER: Final = TypeDeserializer()

Item = dict[str, Any]
T = TypeVar("T")


def _plain(item: dict[str, Any]) -> Item:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def _dependency(exc: Exception, what: str) -> DependencyError:
    return DependencyError(f"DynamoDB {what} failed: {exc}")


@dataclass(frozen=True, slots=True)
class Partition:
    """One key query: a partition key and an optional sort-key range (inclusive)."""

    pk: str
    sk_low: str | None = None
    sk_high: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Item]
    cursor: Cursor | None
    _derived: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def derive(self, name: str, make: Callable[[Page], T]) -> T:
        """``make(self)``, computed once per page under ``name`` (a pure function of the items: two threads
        racing compute the same value). A cached page is shared: the result must be treated as read-only."""
        try:
            value: T = self._derived[name]
        except KeyError:
            value = self._derived[name] = make(self)
        return value


@dataclass(frozen=True, slots=True)
class Filter:
    """Equality / inequality conditions on plain string attributes (a FilterExpression)."""

    equal: dict[str, str] = field(default_factory=dict)
    not_equal: dict[str, str] = field(default_factory=dict)

    def expression(self) -> tuple[str, dict[str, str], dict[str, Any]] | None:
        parts, names, values = [], {}, {}
        for i, (attr, value) in enumerate(self.equal.items()):
            names[f"#f{i}"], values[f":f{i}"] = attr, {"S": value}
            parts.append(f"#f{i} = :f{i}")
        for i, (attr, value) in enumerate(self.not_equal.items()):
            names[f"#n{i}"], values[f":n{i}"] = attr, {"S": value}
            parts.append(f"#n{i} <> :n{i}")
        return (" AND ".join(parts), names, values) if parts else None


@dataclass(frozen=True, slots=True)
class KeySchema:
    """The key a query's partitions name: the table's own, or a global secondary index's (``index``)."""

    index: str | None
    pk: str
    sk: str


TABLE_KEYS: Final = KeySchema(None, serving.PK, serving.SK)
ALERT_STATUS_KEYS: Final = KeySchema(serving.ALERTS_STATUS_INDEX, serving.ALERT_STATUS_ATTR,
                                     serving.ALERT_RAISED_AT_ATTR)


def _key_condition(part: Partition, keys: KeySchema) -> tuple[str, dict[str, str], dict[str, Any]]:
    """One partition's KeyConditionExpression, with its attribute names and values."""
    names: dict[str, str] = {"#pk": keys.pk}
    values: dict[str, Any] = {":pk": {"S": part.pk}}
    condition = "#pk = :pk"
    if part.sk_low is not None or part.sk_high is not None:
        names["#sk"] = keys.sk
    if part.sk_low is not None and part.sk_high is not None:
        condition += " AND #sk BETWEEN :lo AND :hi"
        values[":lo"], values[":hi"] = {"S": part.sk_low}, {"S": part.sk_high}
    elif part.sk_low is not None:
        condition += " AND #sk >= :lo"
        values[":lo"] = {"S": part.sk_low}
    elif part.sk_high is not None:
        condition += " AND #sk <= :hi"
        values[":hi"] = {"S": part.sk_high}
    return condition, names, values


def _query(client: DynamoDBClient, request: dict[str, Any], *, resuming: bool) -> QueryOutputTypeDef:
    """``client.query``; a start key DynamoDB refuses while ``resuming`` is the caller's bad token."""
    try:
        return client.query(**request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationException" and resuming:
            raise BadRequestError("invalid_token", "next_token is not valid for this query; start again") from exc
        raise _dependency(exc, "query") from exc
    except BotoCoreError as exc:
        raise _dependency(exc, "query") from exc


def paged_query(
    client: DynamoDBClient,
    table: str,
    partitions: Sequence[Partition],
    *,
    limit: int,
    cursor: Cursor | None,
    item_filter: Filter | None = None,
    keys: KeySchema = TABLE_KEYS,
    forward: bool = True,
) -> Page:
    """Up to ``limit`` items from consecutive key queries, resumable exactly at the returned cursor.

    Each call asks DynamoDB for at most the items still missing, so the cursor never skips an item a
    filter kept; a page may hold fewer than ``limit`` items only when the data ends.
    """
    items: list[Item] = []
    position = cursor.partition if cursor else 0
    start_key = cursor.key if cursor else None
    if cursor is not None and position >= len(partitions):
        return Page([], None)
    filt = item_filter.expression() if item_filter else None
    while position < len(partitions) and len(items) < limit:
        part = partitions[position]
        condition, names, values = _key_condition(part, keys)
        request: dict[str, Any] = {
            "TableName": table, "KeyConditionExpression": condition, "Limit": limit - len(items),
            "ScanIndexForward": forward,
        }
        if filt is not None:
            condition_f, f_names, f_values = filt
            request["FilterExpression"] = condition_f
            names.update(f_names)
            values.update(f_values)
        request["ExpressionAttributeNames"], request["ExpressionAttributeValues"] = names, values
        if keys.index is not None:
            request["IndexName"] = keys.index
        if start_key is not None:
            if start_key.get(keys.pk) != part.pk:
                raise BadRequestError("invalid_token", "next_token does not belong to this query; start again")
            request["ExclusiveStartKey"] = {k: {"S": v} for k, v in start_key.items()}
        response = _query(client, request, resuming=start_key is not None)
        items.extend(_plain(i) for i in response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        start_key = {k: str(_DESERIALIZER.deserialize(v)) for k, v in last.items()} if last else None
        if start_key is None:
            position += 1
    more = position < len(partitions)
    return Page(items, Cursor(position, start_key) if more else None)


def _cursor_key(cursor: Cursor | None) -> Hashable:
    if cursor is None:
        return None
    return cursor.partition, tuple(sorted(cursor.key.items())) if cursor.key is not None else None


def _no_cache() -> TtlCache[Any]:
    return TtlCache(0, 0)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class KpiRepository:
    """Daily KPI reads (gold export items)."""

    def __init__(self, client: DynamoDBClient, table: str, cache: TtlCache[Page] | None = None) -> None:
        self._client, self._table = client, table
        self._cache: TtlCache[Page] = cache or _no_cache()

    def _query(
        self, key: tuple[Hashable, ...], partitions: Sequence[Partition], *, limit: int, cursor: Cursor | None,
        item_filter: Filter | None = None,
    ) -> Page:
        return self._cache.get((*key, limit, _cursor_key(cursor)), lambda: paged_query(
            self._client, self._table, partitions, limit=limit, cursor=cursor, item_filter=item_filter))

    def platform_totals(self, start: date, end: date, *, limit: int, cursor: Cursor | None) -> Page:
        part = Partition(serving.KPI_TOTAL_PK, serving.kpi_total_sk(start), serving.kpi_total_sk(end))
        return self._query(("totals", start, end), [part], limit=limit, cursor=cursor)

    def merchant_days(
        self, merchant_id: str, start: date, end: date, *, country: str | None, channel: str | None,
        limit: int, cursor: Cursor | None,
    ) -> Page:
        # sk = <date>#<country>#<channel>: every sk of day d sorts after "d" and before "d+1".
        part = Partition(serving.kpi_merchant_pk(merchant_id), start.isoformat(), (end + timedelta(days=1)).isoformat())
        filt = Filter(equal=_dims(country, channel))
        return self._query(("merchant", merchant_id, start, end, country, channel), [part], limit=limit,
                           cursor=cursor, item_filter=filt)

    def breakdown_days(
        self, start: date, end: date, *, country: str | None, channel: str | None, limit: int, cursor: Cursor | None,
    ) -> Page:
        """Per-merchant rows of each day in the range, filtered by country/channel (one query per day)."""
        parts = [Partition(serving.kpi_date_pk(day)) for day in _days(start, end)]
        filt = Filter(equal=_dims(country, channel), not_equal={"merchant_id": PLATFORM_TOTAL})
        return self._query(("breakdown", start, end, country, channel), parts, limit=limit, cursor=cursor,
                           item_filter=filt)

    def merchants_on(self, day: date, *, limit: int, cursor: Cursor | None) -> Page:
        filt = Filter(not_equal={"merchant_id": PLATFORM_TOTAL})
        return self._query(("merchants_on", day), [Partition(serving.kpi_date_pk(day))], limit=limit, cursor=cursor,
                           item_filter=filt)

    def totals_by_date(self, start: date, end: date) -> dict[str, Item]:
        page = self.platform_totals(start, end, limit=(end - start).days + 1, cursor=None)
        return {str(item["event_date"]): item for item in page.items}


def _dims(country: str | None, channel: str | None) -> dict[str, str]:
    dims = {}
    if country is not None:
        dims["country"] = country
    if channel is not None:
        dims["channel"] = channel
    return dims


class RealtimeRepository:
    def __init__(self, client: DynamoDBClient, table: str, cache: TtlCache[Page] | None = None) -> None:
        self._client, self._table = client, table
        self._cache: TtlCache[Page] = cache or _no_cache()

    def minutes(self, first: datetime, last: datetime) -> list[Item]:
        """Minute items from ``first`` to ``last`` (aware, inclusive): per UTC day touched, one query for the
        final (Spark) items and one for the speed-path items (ADR 0014), told apart by their ``pk``."""
        return self.window(first, last).items

    def window(self, first: datetime, last: datetime) -> Page:
        """``minutes`` as one cursor-less ``Page`` (the cached value, with its derived renderings)."""
        first, last = serving.minute_floor(first), serving.minute_floor(last)
        return self._cache.get(("minutes", first, last), lambda: Page(self._minutes(first, last), None))

    def _minutes(self, first: datetime, last: datetime) -> list[Item]:
        parts = []
        for day in _days(first.date(), last.date()):
            low = serving.realtime_sk(first) if day == first.date() else None
            high = serving.realtime_sk(last) if day == last.date() else None
            moment = datetime.combine(day, datetime.min.time(), tzinfo=first.tzinfo)
            parts.append(Partition(serving.realtime_pk(moment), low, high))
            # speed sk = <minute>#<topic>-<partition>: "#~" sorts after every topic name of the minute
            parts.append(Partition(serving.realtime_speed_pk(moment), low, None if high is None else f"{high}#~"))
        items: list[Item] = []
        cursor: Cursor | None = None
        while True:
            page = paged_query(self._client, self._table, parts, limit=1000, cursor=cursor)
            items.extend(page.items)
            if page.cursor is None:
                return items
            cursor = page.cursor


class AlertRepository:
    def __init__(self, client: DynamoDBClient, table: str, cache: TtlCache[Page] | None = None) -> None:
        self._client, self._table = client, table
        self._cache: TtlCache[Page] = cache or _no_cache()

    def by_status(self, status: str, *, limit: int, cursor: Cursor | None) -> Page:
        """Newest first, through the ``by_status`` GSI."""
        return self._cache.get(("by_status", status, limit, _cursor_key(cursor)), lambda: paged_query(
            self._client, self._table, [Partition(status)], limit=limit, cursor=cursor, keys=ALERT_STATUS_KEYS,
            forward=False,
        ))

    def get(self, alert_id: str) -> Item | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={serving.PK: {"S": serving.alert_pk(alert_id)}, serving.SK: {"S": serving.ALERT_SK}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _dependency(exc, "get_item") from exc
        item = response.get("Item")
        return _plain(item) if item else None

    def acknowledge(self, alert_id: str, by: str, at: datetime) -> Item:
        """open -> acknowledged; ``NotFoundError`` for an unknown id, ``ConflictError`` when not open.

        Drops the cached alert lists whatever the outcome: this process then lists what DynamoDB holds."""
        try:
            return self._acknowledge(alert_id, by, at)
        finally:
            self._cache.clear()

    def _acknowledge(self, alert_id: str, by: str, at: datetime) -> Item:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={serving.PK: {"S": serving.alert_pk(alert_id)}, serving.SK: {"S": serving.ALERT_SK}},
                UpdateExpression="SET #s = :ack, acknowledged_by = :by, acknowledged_at = :at",
                ConditionExpression="attribute_exists(#pk) AND #s = :open",
                ExpressionAttributeNames={"#s": serving.ALERT_STATUS_ATTR, "#pk": serving.PK},
                ExpressionAttributeValues={
                    ":ack": {"S": "acknowledged"}, ":open": {"S": "open"}, ":by": {"S": by},
                    ":at": {"S": at.isoformat().replace("+00:00", "Z")},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise _dependency(exc, "update_item") from exc
            current = self.get(alert_id)
            if current is None:
                raise NotFoundError("alert_not_found", f"no alert with id {alert_id!r}") from None
            raise ConflictError(
                "alert_not_open", f"alert {alert_id!r} is {current.get('status')}; only open alerts can be acknowledged"
            ) from None
        except BotoCoreError as exc:
            raise _dependency(exc, "update_item") from exc
        return _plain(response["Attributes"])
