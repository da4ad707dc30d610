"""Query submissions limited per API key on the locally served API (on AWS the usage plan does it).

``KeyRateLimiter`` is a token bucket per key: ``burst`` submissions at once, then ``rate`` per second.
Keys are kept as SHA-256 digests, at most ``max_keys`` of them; the least recently used is forgotten
first (a bucket unused for ``burst / rate`` seconds is full, so forgetting it changes nothing).
``SubmissionLimit`` applies it to one route's POSTs, keyed by the API key header, for the ASGI adapter
(``devkit.local.chalice_asgi``), which answers 429 with ``Retry-After`` in the API's error shape.
Requests without a key are not counted (the app answers them 401). Standard library only.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

MAX_KEYS: Final = 4096


@dataclass(frozen=True, slots=True)
class RateLimit:
    rate: float  # tokens added per second
    burst: int  # bucket size: submissions allowed at once

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)) or self.burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got {self.rate} and {self.burst}")


class KeyRateLimiter:
    """A token bucket per key; ``clock``: monotonic seconds."""

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self._clock, self._max_keys = clock, max_keys
        self._lock = threading.Lock()
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # digest -> (tokens, at)

    def take(self, key: str) -> float:
        """Take one token of ``key``'s bucket: 0.0 when there was one, else the seconds until there is."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(digest, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + max(0.0, now - at) * self.limit.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.limit.rate
            self._buckets[digest] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait


class SubmissionLimit:
    """``limiter`` applied to the POSTs of ``path`` (trailing slash ignored), per value of ``key_header``."""

    def __init__(self, limiter: KeyRateLimiter, *, path: str, key_header: str) -> None:
        self.limiter = limiter
        self.path = path.rstrip("/")
        self._header = key_header.lower().encode("latin-1")

    def retry_after(self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
        """None when the request may go on; else the whole seconds to wait (the ``Retry-After`` value)."""
        if method != "POST" or path.rstrip("/") != self.path:
            return None
        key = next((value for name, value in headers if name.lower() == self._header), None)
        if not key:
            return None
        wait = self.limiter.take(key.decode("latin-1"))
        return max(1, math.ceil(wait)) if wait > 0 else None
