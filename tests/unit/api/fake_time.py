"""Test helpers for the API cache: a clock the test moves, and a reload held in flight."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from chalicelib.cache import TtlCache


class Clock:
    """``time.monotonic`` stand-in: the test moves ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def reload_in_flight(cache: TtlCache[str], key: str, value: str) -> Iterator[list[str]]:
    """While the block runs, another thread's ``cache.get(key, ...)`` is loading ``value`` and blocked;
    after it, the load has finished. Yields the list that receives what that thread's get returned."""
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return value

    result: list[str] = []
    leader = threading.Thread(target=lambda: result.append(cache.get(key, slow)))
    leader.start()
    started.wait(5)
    try:
        yield result
    finally:
        release.set()
        leader.join(5)
