"""A bounded, thread-safe, in-process read-through cache with a time-to-live (LRU eviction).

The repositories put it in front of DynamoDB: daily KPIs change only when the gold export runs and a
realtime minute at most once a minute, so a warm Lambda container (or the local server) answers
repeated reads from memory. Keys are the exact query (every parameter, the page cursor included), so
different queries never share an entry. Only values are cached: an exception raised by the loader
propagates and leaves nothing behind. Concurrent misses of one key make one load (the others wait for
it), so an expiry under load costs DynamoDB one query, not one per waiting client; while an expired
entry is being reloaded (and for at most one more TTL), other callers get the expired value instead of
waiting: one request per key and TTL pays the round trip, not everyone queued behind it.

Cached values are shared between callers: treat them as read-only. Every ``get`` is told to the
cache's ``Recorder`` (``chalicelib.recording``: what a response was computed from, recorded only when a
server injects a recorder); ``holds`` tells whether a ``get`` would now return a given value without
loading.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from chalicelib.recording import NO_RECORDING, Recorder

V = TypeVar("V")


@dataclass(slots=True)
class _Flight:
    """A load in progress; waiters read ``value`` once ``done`` is set and ``ok`` is true."""

    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    value: object = None


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    size: int


class TtlCache(Generic[V]):
    """``get(key, load)``: the cached value of ``key`` while younger than ``ttl_seconds``, else ``load()``.

    ``ttl_seconds <= 0`` or ``max_entries <= 0`` disables caching (every call loads). ``clock`` returns
    seconds on a monotonic scale (injectable in tests).
    """

    def __init__(
        self, ttl_seconds: float, max_entries: int, *, clock: Callable[[], float] = time.monotonic,
        recorder: Recorder = NO_RECORDING,
    ) -> None:
        self.ttl_seconds, self.max_entries = ttl_seconds, max_entries
        self._clock, self._recorder = clock, recorder
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._hits = self._misses = 0
        self._generation = 0  # bumped by clear(): a load that started before is not stored

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0 and self.max_entries > 0

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        value = self._get(key, load)
        self._recorder.read(self, key, value)
        return value

    def holds(self, key: Hashable, value: object) -> bool:
        """True while ``get(key, ...)`` would return ``value`` itself without loading: the entry is fresh,
        or stale within one more TTL while its reload is in flight. Always false when disabled."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[1] is not value:
                return False
            now = self._clock()
            return entry[0] > now or (key in self._flights and entry[0] + self.ttl_seconds > now)

    def _get(self, key: Hashable, load: Callable[[], V]) -> V:
        if not self.enabled:
            return load()
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry[1]
            flight = self._flights.get(key)
            if flight is not None and entry is not None and entry[0] + self.ttl_seconds > now:
                self._hits += 1  # stale while the reload in flight finishes
                return entry[1]
            if entry is not None and entry[0] + self.ttl_seconds <= now:
                del self._entries[key]
            self._misses += 1
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            generation = self._generation
        if not leader:
            flight.done.wait()
            if flight.ok:
                return flight.value  # type: ignore[return-value]
            return load()  # the leader failed: errors are never shared or cached, try on our own
        try:
            value = load()
        except BaseException:
            with self._lock:
                self._forget(key, flight)
            flight.done.set()
            raise
        with self._lock:
            if generation == self._generation:
                self._entries[key] = (self._clock() + self.ttl_seconds, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            self._forget(key, flight)
        flight.value, flight.ok = value, True
        flight.done.set()
        return value

    def _forget(self, key: Hashable, flight: _Flight) -> None:
        if self._flights.get(key) is flight:  # a clear() may have let a newer load of the key start
            del self._flights[key]

    def clear(self) -> None:
        """Drop every entry; a load already in flight returns its value to its callers but is not stored."""
        with self._lock:
            self._entries.clear()
            self._flights.clear()
            self._generation += 1

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries))
