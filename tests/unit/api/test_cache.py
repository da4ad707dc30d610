"""The read-through TTL cache and the repositories' use of it (no I/O: a fake DynamoDB client)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalicelib.cache import TtlCache
from chalicelib.config import CACHE_KPI_TTL_ENV, CACHE_MAX_ENTRIES_ENV, CACHE_REALTIME_TTL_ENV, CacheConfig
from chalicelib.errors import DependencyError
from chalicelib.repositories import AlertRepository, KpiRepository, RealtimeRepository
from chalicelib.tokens import Cursor

from dataforge.errors import SettingsError
from tests.unit.api.fake_time import Clock, reload_in_flight


class Loads:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: Any = "v") -> Any:
        self.calls += 1
        return f"{value}{self.calls}"


def test_hit_returns_the_cached_value_without_loading_again() -> None:
    cache: TtlCache[str] = TtlCache(30, 10, clock=Clock())
    load = Loads()
    assert cache.get("k", load) == "v1"
    assert cache.get("k", load) == "v1"
    assert load.calls == 1
    assert (cache.stats().hits, cache.stats().misses) == (1, 1)


def test_entry_expires_after_ttl_with_injected_clock() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(30, 10, clock=clock)
    load = Loads()
    cache.get("k", load)
    clock.now += 29.9
    assert cache.get("k", load) == "v1"
    clock.now += 0.2
    assert cache.get("k", load) == "v2"
    assert load.calls == 2


def test_lru_bound_evicts_the_least_recently_used() -> None:
    cache: TtlCache[str] = TtlCache(30, 2, clock=Clock())
    load = Loads()
    cache.get("a", load)
    cache.get("b", load)
    cache.get("a", load)  # a is now the most recent
    cache.get("c", load)  # evicts b
    assert cache.stats().size == 2
    calls = load.calls
    cache.get("a", load)
    cache.get("c", load)
    assert load.calls == calls
    cache.get("b", load)
    assert load.calls == calls + 1


def test_errors_are_never_cached() -> None:
    cache: TtlCache[str] = TtlCache(30, 10, clock=Clock())

    def failing() -> str:
        raise DependencyError("DynamoDB query failed")

    with pytest.raises(DependencyError):
        cache.get("k", failing)
    assert cache.stats().size == 0
    assert cache.get("k", lambda: "ok") == "ok"


def test_zero_ttl_disables_caching() -> None:
    cache: TtlCache[str] = TtlCache(0, 10, clock=Clock())
    load = Loads()
    cache.get("k", load)
    cache.get("k", load)
    assert load.calls == 2


def test_clear_drops_entries_and_a_load_in_flight_is_not_stored() -> None:
    cache: TtlCache[str] = TtlCache(30, 10, clock=Clock())

    def load_then_clear() -> str:
        cache.clear()  # e.g. an acknowledge while the list was being read
        return "stale"

    assert cache.get("k", load_then_clear) == "stale"
    assert cache.get("k", lambda: "fresh") == "fresh"


def test_concurrent_misses_of_one_key_load_once() -> None:
    cache: TtlCache[str] = TtlCache(30, 10, clock=Clock())
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "v"

    results: list[str] = []
    leader = threading.Thread(target=lambda: results.append(cache.get("k", slow)))
    leader.start()
    started.wait(5)
    followers = [threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)]
    for t in followers:
        t.start()
    release.set()
    for t in [leader, *followers]:
        t.join(5)
    assert results == ["v"] * 6
    assert len(calls) == 1


def test_expired_entry_is_served_while_its_reload_is_in_flight() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(2, 10, clock=clock)
    cache.get("k", lambda: "old")
    clock.now += 2.5
    with reload_in_flight(cache, "k", "new") as leader_result:
        assert cache.get("k", lambda: "unexpected") == "old"
    assert leader_result == ["new"]
    assert cache.get("k", lambda: "unexpected") == "new"


# --- settings ----------------------------------------------------------------------------------


def test_cache_settings_default_and_from_env() -> None:
    assert CacheConfig.from_env({}) == CacheConfig()
    assert CacheConfig().kpi_ttl_seconds == 30
    # shorter than the dashboard's one-second poll, so a speed-path batch shows on the next poll (ADR 0014)
    assert 0 < CacheConfig().realtime_ttl_seconds < 1
    assert CacheConfig().alerts_ttl_seconds == 0
    config = CacheConfig.from_env({CACHE_KPI_TTL_ENV: "5", CACHE_REALTIME_TTL_ENV: "0.5", CACHE_MAX_ENTRIES_ENV: "7"})
    assert (config.kpi_ttl_seconds, config.realtime_ttl_seconds, config.max_entries) == (5.0, 0.5, 7)


@pytest.mark.parametrize("env", [{CACHE_KPI_TTL_ENV: "soon"}, {CACHE_KPI_TTL_ENV: "-1"},
                                 {CACHE_REALTIME_TTL_ENV: "inf"}, {CACHE_MAX_ENTRIES_ENV: "1.5"}])
def test_bad_cache_settings_fail_fast(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        CacheConfig.from_env(env)


# --- repositories ------------------------------------------------------------------------------


class FakeDynamo:
    """Answers every query with one item naming the query's key values; counts calls."""

    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []
        self.fail_next = False
        self.updates = 0

    def query(self, **request: Any) -> dict[str, Any]:
        if self.fail_next:
            self.fail_next = False
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "Query")
        self.queries.append(request)
        values = {k: v["S"] for k, v in request["ExpressionAttributeValues"].items()}
        return {"Items": [{"q": {"S": repr(sorted(values.items()))}, "n": {"N": str(len(self.queries))}}]}

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.updates += 1
        return {"Attributes": {"alert_id": {"S": "a1"}, "status": {"S": "acknowledged"}}}


def kpis(client: FakeDynamo, ttl: float = 30, clock: Clock | None = None) -> KpiRepository:
    return KpiRepository(client, "metrics", TtlCache(ttl, 100, clock=clock or Clock()))  # type: ignore[arg-type]


def test_kpi_repository_reads_through_the_cache() -> None:
    client = FakeDynamo()
    repo = kpis(client)
    first = repo.platform_totals(date(2024, 1, 1), date(2024, 1, 7), limit=100, cursor=None)
    again = repo.platform_totals(date(2024, 1, 1), date(2024, 1, 7), limit=100, cursor=None)
    assert again == first
    assert len(client.queries) == 1


def test_kpi_cache_expires_with_the_clock() -> None:
    client, clock = FakeDynamo(), Clock()
    repo = kpis(client, ttl=30, clock=clock)
    repo.merchants_on(date(2024, 1, 1), limit=10, cursor=None)
    clock.now += 31
    repo.merchants_on(date(2024, 1, 1), limit=10, cursor=None)
    assert len(client.queries) == 2


def test_no_cross_talk_between_query_parameters() -> None:
    client = FakeDynamo()
    repo = kpis(client)
    d1, d7 = date(2024, 1, 1), date(2024, 1, 7)
    pages = [
        repo.platform_totals(d1, d7, limit=100, cursor=None),
        repo.platform_totals(d1, d7, limit=5, cursor=None),
        repo.platform_totals(d1, date(2024, 1, 6), limit=100, cursor=None),
        repo.platform_totals(d1, d7, limit=100, cursor=Cursor(0, {"pk": "KPI#TOTAL", "sk": "2024-01-03"})),
        repo.merchant_days("m_001", d1, d7, country=None, channel=None, limit=100, cursor=None),
        repo.merchant_days("m_002", d1, d7, country=None, channel=None, limit=100, cursor=None),
        repo.merchant_days("m_001", d1, d7, country="US", channel=None, limit=100, cursor=None),
        repo.merchant_days("m_001", d1, d7, country=None, channel="US", limit=100, cursor=None),
        repo.breakdown_days(d1, d1, country="US", channel=None, limit=100, cursor=None),
        repo.breakdown_days(d1, d1, country="DE", channel=None, limit=100, cursor=None),
        repo.merchants_on(d1, limit=100, cursor=None),
        repo.merchants_on(d7, limit=100, cursor=None),
    ]
    assert len(client.queries) == len(pages)  # every distinct query went to DynamoDB
    assert len({p.items[0]["n"] for p in pages}) == len(pages)
    repo.merchant_days("m_001", d1, d7, country="US", channel=None, limit=100, cursor=None)
    assert len(client.queries) == len(pages)  # the same query again: a hit


def test_failed_query_is_not_cached() -> None:
    client = FakeDynamo()
    repo = kpis(client)
    client.fail_next = True
    with pytest.raises(DependencyError):
        repo.merchants_on(date(2024, 1, 1), limit=10, cursor=None)
    page = repo.merchants_on(date(2024, 1, 1), limit=10, cursor=None)
    assert page.items
    assert len(client.queries) == 1


def test_realtime_is_keyed_by_the_minute_window() -> None:
    client, clock = FakeDynamo(), Clock()
    repo = RealtimeRepository(client, "metrics", TtlCache(2, 100, clock=clock))  # type: ignore[arg-type]
    now = datetime(2024, 1, 3, 12, 30, 15, tzinfo=UTC)
    repo.minutes(now.replace(minute=0), now)
    repo.minutes(now.replace(minute=0), now.replace(second=40))  # same minutes: a hit
    assert len(client.queries) == 2  # the day's final items and its speed-path items
    repo.minutes(now.replace(minute=15), now)  # another window
    assert len(client.queries) == 4
    clock.now += 2.1
    repo.minutes(now.replace(minute=0), now)
    assert len(client.queries) == 6


def test_acknowledge_invalidates_cached_alert_lists() -> None:
    client = FakeDynamo()
    repo = AlertRepository(client, "alerts", TtlCache(60, 100, clock=Clock()))  # type: ignore[arg-type]
    repo.by_status("open", limit=10, cursor=None)
    repo.by_status("open", limit=10, cursor=None)
    assert len(client.queries) == 1
    repo.acknowledge("a1", "ops", datetime(2024, 1, 3, tzinfo=UTC))
    repo.by_status("open", limit=10, cursor=None)
    assert len(client.queries) == 2
