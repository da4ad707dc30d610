"""What a response was computed from, for a server that sends a response again while its inputs hold.

The API records nothing itself: ``Services`` carries a ``Recorder``, the null one unless a server injects
another. The developer toolkit's local server injects one that keeps, per request thread, every
``TtlCache`` read and every condition a view states (``devkit.local.reuse``); on Lambda nothing is
recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final, Protocol

Check = Callable[[], bool]


class Cache(Protocol):
    def holds(self, key: Hashable, value: object) -> bool:
        """Whether a read of ``key`` would now return ``value`` itself without loading."""


class Recorder(Protocol):
    def start(self) -> None:
        """Record the inputs of the response this thread computes next."""

    def read(self, cache: Cache, key: Hashable, value: object) -> None:
        """``cache`` returned ``value`` for ``key``."""

    def depend(self, check: Check) -> None:
        """The response being computed stays right only while ``check()`` is true."""

    def finish(self, reusable: bool) -> None:
        """Stop recording; ``reusable``: the view answered 200 from what was recorded."""


class NullRecorder:
    """Records nothing (the API on Lambda)."""

    def start(self) -> None:
        pass

    def read(self, cache: Cache, key: Hashable, value: object) -> None:
        pass

    def depend(self, check: Check) -> None:
        pass

    def finish(self, reusable: bool) -> None:
        pass


NO_RECORDING: Final[Recorder] = NullRecorder()
