"""What a response was computed from (``devkit.local.reuse``) and ``TtlCache.holds``: no I/O, injected clocks."""

from __future__ import annotations

import threading

from chalicelib.cache import TtlCache

from devkit.local.reuse import ThreadRecorder
from tests.unit.api.fake_time import Clock, reload_in_flight


def test_holds_while_fresh_and_not_after_expiry() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(2, 10, clock=clock)
    value = cache.get("k", lambda: "v")
    assert cache.holds("k", value)
    assert not cache.holds("k", "another object")
    assert not cache.holds("other", value)
    clock.now += 2.5
    assert not cache.holds("k", value)  # expired, no reload in flight: a get would load


def test_holds_the_stale_value_only_while_its_reload_is_in_flight() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(2, 10, clock=clock)
    old = cache.get("k", lambda: "old")
    clock.now += 2.5
    with reload_in_flight(cache, "k", "new"):
        assert cache.holds("k", old)  # what a get returns now without loading
    assert not cache.holds("k", old)
    assert cache.holds("k", cache.get("k", lambda: "unexpected"))


def test_disabled_cache_holds_nothing() -> None:
    cache: TtlCache[str] = TtlCache(0, 10)
    value = cache.get("k", lambda: "v")
    assert not cache.holds("k", value)


def test_holds_nothing_after_clear_or_eviction() -> None:
    cache: TtlCache[str] = TtlCache(30, 1, clock=Clock())
    first = cache.get("a", lambda: "a")
    cache.get("b", lambda: "b")
    assert not cache.holds("a", first)
    second = cache.get("b", lambda: "unexpected")
    cache.clear()
    assert not cache.holds("b", second)


def test_a_reusable_answer_is_checked_against_every_read_and_condition() -> None:
    clock, reuse = Clock(), ThreadRecorder()
    kpis: TtlCache[str] = TtlCache(30, 10, clock=clock, recorder=reuse)
    minutes: TtlCache[str] = TtlCache(2, 10, clock=clock, recorder=reuse)
    same = [True]
    reuse.start()
    kpis.get("day", lambda: "rows")
    minutes.get("window", lambda: "minutes")
    reuse.depend(lambda: same[0])
    reuse.finish(True)
    check = reuse.take()
    assert check is not None
    assert check()
    assert reuse.take() is None  # taken once
    same[0] = False
    assert not check()
    same[0] = True
    clock.now += 2.5  # one of the two reads expired
    assert not check()


def test_no_check_without_reads_or_for_a_failed_answer_or_outside_a_recording() -> None:
    reuse = ThreadRecorder()
    reuse.start()
    reuse.finish(True)  # read nothing cached: it did its own I/O, nothing tells when its answer changes
    assert reuse.take() is None
    cache: TtlCache[str] = TtlCache(30, 10, clock=Clock(), recorder=reuse)
    reuse.start()
    cache.get("k", lambda: "v")
    reuse.finish(False)  # not a 200
    assert reuse.take() is None
    cache.get("k", lambda: "v")  # not recording: noted nowhere
    reuse.depend(lambda: False)
    assert reuse.take() is None


def test_records_are_per_thread() -> None:
    reuse = ThreadRecorder()
    cache: TtlCache[str] = TtlCache(30, 10, clock=Clock(), recorder=reuse)
    reuse.start()
    other = threading.Thread(target=lambda: (reuse.start(), reuse.finish(True)))
    other.start()
    other.join(5)
    cache.get("k", lambda: "v")
    reuse.finish(True)
    check = reuse.take()
    assert check is not None
    assert check()
