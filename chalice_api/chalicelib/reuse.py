"""Which responses may be sent again as they are, and for how long: what a response was computed from.

A reusable view (``http.endpoint(..., reusable=True)``) runs while the calling thread records its inputs
beyond the request itself: every ``TtlCache`` read (the cache and key, and the value it returned) and any
other condition the view states (``depend``, e.g. "until the clock reaches the next second"). When the view
answers 200, ``finish`` leaves a check behind for the thread's caller (``take``): true while every
recorded read would return the very same value without loading and every stated condition holds, i.e.
while computing the response again would give the same bytes for the same request.

The local server (``dataforge.local.chalice_asgi``) uses it to answer a repeated GET from memory; it
keys what it keeps by everything of the request a response depends on (target, API key, the headers
Chalice reads), so the API-key check still decides every answer. On Lambda nothing calls ``take``:
the record is replaced by the next request of the thread and costs a list per cached read.

Only the standard library: a check runs on the server's event loop and takes no lock for long.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Protocol

Check = Callable[[], bool]


class _Cache(Protocol):
    def holds(self, key: Hashable, value: object) -> bool: ...


class _State(threading.local):
    def __init__(self) -> None:
        self.reads: list[tuple[_Cache, Hashable, object]] | None = None  # None: not recording
        self.checks: list[Check] = []
        self.result: Check | None = None


_state = _State()


def start() -> None:
    """Record the inputs of the response this thread computes next (forgets an earlier record)."""
    _state.reads, _state.checks, _state.result = [], [], None


def read(cache: _Cache, key: Hashable, value: object) -> None:
    """``cache`` returned ``value`` for ``key`` (a no-op unless recording)."""
    reads = _state.reads
    if reads is not None:
        reads.append((cache, key, value))


def depend(check: Check) -> None:
    """The response being computed stays right only while ``check()`` is true (a no-op unless recording)."""
    if _state.reads is not None:
        _state.checks.append(check)


def finish(reusable: bool) -> None:
    """Stop recording; when ``reusable`` (the view answered 200 from what was recorded), leave the check
    of the recorded inputs for ``take``. A view that read no cache is never reusable (it did I/O or
    computed from nothing cached: nothing would tell when its answer changes)."""
    reads, checks = _state.reads, _state.checks
    _state.reads, _state.checks, _state.result = None, [], None
    if reusable and reads:
        _state.result = _all(tuple(reads), tuple(checks))


def take() -> Check | None:
    """The check left by the last response this thread computed (None: not reusable); clears it."""
    result, _state.result = _state.result, None
    return result


def _all(reads: tuple[tuple[_Cache, Hashable, object], ...], checks: tuple[Check, ...]) -> Check:
    def valid() -> bool:
        return all(cache.holds(key, value) for cache, key, value in reads) and all(check() for check in checks)

    return valid
