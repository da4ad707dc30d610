"""Which responses the local API server may send again as they are, and for how long.

``ThreadRecorder`` is the ``chalicelib.recording.Recorder`` the toolkit injects into the API's services.
A reusable view (``http.endpoint(..., reusable=True)``) runs while the calling thread records its inputs
beyond the request itself: every ``TtlCache`` read (the cache and key, and the value it returned) and any
other condition the view states (``depend``, e.g. "until the clock reaches the next second"). When the view
answers 200, ``finish`` leaves a check behind for the thread's caller (``take``): true while every
recorded read would return the very same value without loading and every stated condition holds, i.e.
while computing the response again would give the same bytes for the same request.

The local server (``devkit.local.chalice_asgi``) uses it to answer a repeated GET from memory; it keys
what it keeps by everything of the request a response depends on (target, API key, the headers Chalice
reads), so the API-key check still decides every answer. Only the standard library: a check runs on the
server's event loop and takes no lock for long.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from chalicelib.recording import Cache, Check


class _State(threading.local):
    def __init__(self) -> None:
        self.reads: list[tuple[Cache, Hashable, object]] | None = None  # None: not recording
        self.checks: list[Check] = []
        self.result: Check | None = None


class ThreadRecorder:
    """Records, per thread, what the response being computed was computed from."""

    def __init__(self) -> None:
        self._state = _State()

    def start(self) -> None:
        """Record the inputs of the response this thread computes next (forgets an earlier record)."""
        state = self._state
        state.reads, state.checks, state.result = [], [], None

    def read(self, cache: Cache, key: Hashable, value: object) -> None:
        """``cache`` returned ``value`` for ``key`` (a no-op unless recording)."""
        reads = self._state.reads
        if reads is not None:
            reads.append((cache, key, value))

    def depend(self, check: Check) -> None:
        """The response being computed stays right only while ``check()`` is true (a no-op unless recording)."""
        if self._state.reads is not None:
            self._state.checks.append(check)

    def finish(self, reusable: bool) -> None:
        """Stop recording; when ``reusable`` (the view answered 200 from what was recorded), leave the check
        of the recorded inputs for ``take``. A view that read no cache is never reusable (it did I/O or
        computed from nothing cached: nothing would tell when its answer changes)."""
        state = self._state
        reads, checks = state.reads, state.checks
        state.reads, state.checks, state.result = None, [], None
        if reusable and reads:
            state.result = _all(tuple(reads), tuple(checks))

    def take(self) -> Check | None:
        """The check left by the last response this thread computed (None: not reusable); clears it."""
        result, self._state.result = self._state.result, None
        return result


def _all(reads: tuple[tuple[Cache, Hashable, object], ...], checks: tuple[Check, ...]) -> Check:
    def valid() -> bool:
        return all(cache.holds(key, value) for cache, key, value in reads) and all(check() for check in checks)

    return valid
