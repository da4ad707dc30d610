"""What each route does, as plain functions of (services, query params, body) -> JSON-ready dicts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import params, tokens
from chalicelib.config import DEFAULT_PAGE_SIZE, MAX_KPI_RANGE_DAYS, MAX_PAGE_SIZE, MAX_SQL_CHARS
from chalicelib.errors import BadRequestError, DependencyError, NotFoundError
from chalicelib.repositories import ALERT_INDEX_KEY_NAMES, TABLE_KEY_NAMES, Item, Page
from chalicelib.services import Services
from dataforge import serving
from dataforge.schemas import GOLD_KPI_ROW, KPI_DATE, KpiKind, kpi_columns

logger = logging.getLogger(__name__)

Params = Mapping[str, str] | None

# The API's KPI row is the gold row (``schemas.GOLD_KPI_ROW``): counts as integers, rates and money as
# decimal strings.
KPI_METRICS: Final = kpi_columns(KpiKind.COUNT, KpiKind.RATE, KpiKind.MONEY)
_CENT, _RATE, _PCT = Decimal("0.01"), Decimal("0.0001"), Decimal("0.01")
MAX_REALTIME_MINUTES: Final = 1440
ONE_TENTH: Final = timedelta(milliseconds=100)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):  # DynamoDB numbers arrive as Decimal: no str round trip
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(value: Any) -> str | None:
    number = _decimal(value)
    return None if number is None else str(number.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def rate(value: Any) -> str | None:
    number = _decimal(value)
    return None if number is None else str(number.quantize(_RATE, rounding=ROUND_HALF_EVEN))


def count(value: Any) -> int:
    if type(value) is int:
        return value
    number = _decimal(value)
    return 0 if number is None else int(number)


_KPI_FORMATS: Final[dict[KpiKind, Callable[[Any], Any]]] = {
    KpiKind.KEY: lambda value: str(value or ""), KpiKind.COUNT: count, KpiKind.RATE: rate, KpiKind.MONEY: money,
}


def kpi_row(item: Item) -> dict[str, Any]:
    row: dict[str, Any] = {KPI_DATE: str(item.get(KPI_DATE, ""))}
    for column in GOLD_KPI_ROW:
        row[column.name] = _KPI_FORMATS[column.kind](item.get(column.name))
    return row


def kpi_rows(page: Page) -> list[dict[str, Any]]:
    return [kpi_row(i) for i in page.items]


def _limit(query: Params) -> int:
    return params.integer(query, "limit", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)


def _page(page: Page, query_fp: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": rows, "next_token": tokens.encode(page.cursor, query_fp) if page.cursor else None}


def daily_kpis(services: Services, query: Params) -> dict[str, Any]:
    start, end = params.required_date(query, "from"), params.required_date(query, "to")
    if end < start:
        raise BadRequestError("invalid_range", f"from ({start}) must not be after to ({end})")
    if (end - start).days + 1 > MAX_KPI_RANGE_DAYS:
        raise BadRequestError("invalid_range", f"the range spans more than {MAX_KPI_RANGE_DAYS} days; narrow it")
    merchant = params.key_part(query, "merchant_id")
    country, channel = params.key_part(query, "country"), params.key_part(query, "channel")
    limit = _limit(query)
    fp = tokens.fingerprint("daily", start, end, merchant, country, channel)
    cursor = tokens.decode(params.optional_str(query, "next_token"), fp, key_names=TABLE_KEY_NAMES)
    repo = services.kpis()
    if merchant is not None:
        page = repo.merchant_days(merchant, start, end, country=country, channel=channel, limit=limit, cursor=cursor)
    elif country is not None or channel is not None:
        page = repo.breakdown_days(start, end, country=country, channel=channel, limit=limit, cursor=cursor)
    else:
        page = repo.platform_totals(start, end, limit=limit, cursor=cursor)
    return _page(page, fp, page.derive("kpi_rows", kpi_rows))


def pct_change(current: Any, previous: Any) -> str | None:
    """(current - previous) / previous in percent, half-even 2 decimals; null without a base."""
    cur, prev = _decimal(current), _decimal(previous)
    if cur is None or prev is None or prev == 0:
        return None
    return str(((cur - prev) / prev * 100).quantize(_PCT, rounding=ROUND_HALF_EVEN))


def summary(services: Services, query: Params) -> dict[str, Any]:
    day = params.required_date(query, "date")
    previous_day = day - timedelta(days=1)
    page = services.kpis().platform_totals(previous_day, day, limit=2, cursor=None)
    body: dict[str, Any] | None = page.derive("summary", lambda p: _summary(day, p))
    if body is None:
        raise NotFoundError("kpis_not_found", f"no platform KPIs for {day}; the daily job may not have run yet")
    return body


def _summary(day: date, page: Page) -> dict[str, Any] | None:
    """The summary of ``day`` from the platform totals of the day before and ``day``; None without ``day``."""
    totals = {str(item["event_date"]): item for item in page.items}
    current = totals.get(day.isoformat())
    if current is None:
        return None
    previous = totals.get((day - timedelta(days=1)).isoformat())
    return {
        "date": day.isoformat(),
        "current": kpi_row(current),
        "previous": kpi_row(previous) if previous else None,
        "change": {m: pct_change(current.get(m), previous.get(m)) if previous else None for m in KPI_METRICS},
    }


def merchants(services: Services, query: Params) -> dict[str, Any]:
    day = params.required_date(query, "date")
    limit = _limit(query)
    fp = tokens.fingerprint("merchants", day)
    cursor = tokens.decode(params.optional_str(query, "next_token"), fp, key_names=TABLE_KEY_NAMES)
    page = services.kpis().merchants_on(day, limit=limit, cursor=cursor)
    return _page(page, fp, page.derive("kpi_rows", kpi_rows))


def realtime(services: Services, query: Params) -> dict[str, Any]:
    minutes = params.integer(query, "minutes", default=60, low=1, high=MAX_REALTIME_MINUTES)
    now = services.clock()
    # the ages are reported to a tenth of a second: the answer is the same until the clock leaves this tenth
    tenth = now.replace(microsecond=now.microsecond - now.microsecond % 100_000)
    services.recorder.depend(lambda: tenth <= services.clock() < tenth + ONE_TENTH)
    first = now - timedelta(minutes=minutes - 1)
    rows, view = services.realtime().window(first, now).derive("realtime", realtime_rows)
    return {
        "items": rows,
        "newest_event_time": None if view.newest_event_time is None else _rfc3339(view.newest_event_time),
        "freshness_seconds": _age(now, view.newest_event_time),
        "pipeline_lag_seconds": _age(now, view.newest_ingest_time),
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _age(now: datetime, moment: datetime | None) -> float | None:
    """Seconds from ``moment`` to ``now`` (0.1 s resolution, never negative); None without a moment."""
    return None if moment is None else max(0.0, round((now - moment).total_seconds(), 1))


def realtime_rows(page: Page) -> tuple[list[dict[str, Any]], serving.RealtimeView]:
    """The JSON rows of the minutes, final (Spark) or provisional (speed path), and the newest times counted.

    Freshness is the age of the newest *event time* counted (ARCHITECTURE: KPI definitions), and the
    pipeline lag the age of the newest Kafka timestamp counted; neither is a bucket's start."""
    final: list[Item] = []
    speed: list[Item] = []
    for item in page.items:
        (speed if str(item.get(serving.PK, "")).startswith(serving.REALTIME_SPEED_PREFIX) else final).append(item)
    view = serving.merge_realtime(final, speed)
    rows = [{
        "minute": m.minute,
        "status": m.status,
        "txn_count": m.txn_count,
        "approved_count": m.approved_count,
        "declined_count": m.declined_count,
        "volume_usd": money(m.volume_usd) or "0.00",
        "decline_rate": rate(m.decline_rate),
    } for m in view.minutes]
    return rows, view


def alert_row(item: Item) -> dict[str, Any]:
    return {
        "alert_id": str(item.get("alert_id", "")),
        "rule": str(item.get("rule", "")),
        "severity": str(item.get("severity", "")),
        "status": str(item.get("status", "")),
        "raised_at": str(item.get("raised_at", "")),
        "message": str(item.get("message", "")),
        "value": None if item.get("value") is None else str(item["value"]),
        "threshold": None if item.get("threshold") is None else str(item["threshold"]),
        "acknowledged_by": item.get("acknowledged_by"),
        "acknowledged_at": item.get("acknowledged_at"),
        "runbook_url": item.get("runbook_url"),
    }


def alerts(services: Services, query: Params) -> dict[str, Any]:
    status = params.choice(query, "status", serving.ALERT_STATUSES, "open")
    limit = _limit(query)
    fp = tokens.fingerprint("alerts", status)
    cursor = tokens.decode(params.optional_str(query, "next_token"), fp, key_names=ALERT_INDEX_KEY_NAMES)
    page = services.alerts().by_status(status, limit=limit, cursor=cursor)
    return _page(page, fp, [alert_row(i) for i in page.items])


def _alert_id(alert_id: str) -> str:
    if not params.KEY_ID.fullmatch(alert_id):
        raise NotFoundError("alert_not_found", f"no alert with id {alert_id[:80]!r}")
    return alert_id


def acknowledge(services: Services, alert_id: str, body: Any) -> dict[str, Any]:
    alert_id = _alert_id(alert_id)
    by = params.body_str(params.json_object(body), "by", required=True, max_len=128)
    assert by is not None
    return alert_row(services.alerts().acknowledge(alert_id, by.strip(), services.clock()))


def start_query(services: Services, body: Any) -> dict[str, Any]:
    doc = params.json_object(body)
    sql = params.body_str(doc, "sql", required=True, max_len=MAX_SQL_CHARS)
    database = params.body_str(doc, "database", required=False, max_len=255)
    assert sql is not None
    return services.runner().start(sql, database)


def query_status(services: Services, query_id: str) -> dict[str, Any]:
    return services.runner().status(query_id)


def query_results(services: Services, query_id: str, query: Params) -> dict[str, Any]:
    max_results = params.integer(query, "max_results", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    token = params.optional_str(query, "next_token")
    return services.runner().results(query_id, max_results=max_results, next_token=token)


def cancel_query(services: Services, query_id: str) -> dict[str, Any]:
    return services.runner().cancel(query_id)


def catalog(services: Services) -> dict[str, Any]:
    tables = services.catalog().tables()
    return {"databases": [
        {"name": db, "tables": [t.describe() for t in tables.get(db, ())]} for db in services.catalog().databases
    ]}


def health(services: Services) -> dict[str, Any]:
    checks: dict[str, str] = {}

    def run(name: str, check: Any) -> None:
        try:
            check()
            checks[name] = "ok"
        except DependencyError as exc:
            logger.warning("health check %s failed: %s", name, exc)
            checks[name] = "error"
        except Exception:  # health reports, never fails: the outermost boundary of each check
            logger.exception("health check %s failed", name)
            checks[name] = "error"

    def dynamodb() -> None:
        try:
            for table in (services.config.metrics_table, services.config.alerts_table):
                services.dynamodb().describe_table(TableName=table)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(str(exc)) from exc

    def engine() -> None:
        if services.config.query_engine == "athena":
            try:
                services.athena().get_work_group(WorkGroup=services.config.athena_workgroup or "primary")
            except (ClientError, BotoCoreError) as exc:
                raise DependencyError(str(exc)) from exc
        else:
            services.local_engine().check()

    run("dynamodb", dynamodb)
    run("catalog", services.catalog().check)
    run("query_engine", engine)
    return {"status": "ok" if all(v == "ok" for v in checks.values()) else "degraded", "checks": checks}
