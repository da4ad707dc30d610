"""The local API's per-key token bucket, on an injected clock (no I/O, no sleeping)."""

from __future__ import annotations

import pytest

from devkit.local.ratelimit import KeyRateLimiter, RateLimit, SubmissionLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate_per_key() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(RateLimit(rate=0.5, burst=2), clock=clock)
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(2.0)  # one token every 2 s
    assert limiter.take("b") == 0.0  # another key has its own bucket
    clock.now += 1.0
    assert limiter.take("a") == pytest.approx(1.0)  # refused takes do not spend tokens
    clock.now += 1.0
    assert limiter.take("a") == 0.0
    clock.now += 1000.0
    assert [limiter.take("a"), limiter.take("a"), limiter.take("a") > 0] == [0.0, 0.0, True]  # capped at the burst


def test_keys_are_bounded_least_recently_used_first() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(RateLimit(rate=0.001, burst=1), clock=clock, max_keys=2)
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    assert limiter.take("a") > 0  # a is the most recent now
    assert limiter.take("c") == 0.0  # b is forgotten
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_only_posts_of_the_route_with_a_key_are_limited() -> None:
    limit = SubmissionLimit(KeyRateLimiter(RateLimit(rate=0.001, burst=1), clock=Clock()), path="/v1/queries",
                            key_header="x-api-key")
    key = [(b"x-api-key", b"k")]
    assert limit.retry_after("POST", "/v1/queries", key) is None
    assert limit.retry_after("POST", "/v1/queries/", key) == 1000
    assert limit.retry_after("GET", "/v1/queries", key) is None
    assert limit.retry_after("POST", "/v1/alerts/x/ack", key) is None
    assert limit.retry_after("POST", "/v1/queries", []) is None  # no key: the app answers 401
    assert limit.retry_after("POST", "/v1/queries", [(b"X-Api-Key", b"other")]) is None


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0)])
def test_invalid_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(rate, burst)
