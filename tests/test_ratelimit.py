"""The sliding-window rate limiter, on the in-process store and on Redis."""

from __future__ import annotations

import pytest

from gateway.errors import TooManyRequests
from gateway.ratelimit import RateLimiter
from gateway.store import MemoryStore, Store, open_store


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return open_store(url)


def allowed(limiter: RateLimiter, name: str, count: int, window: float, now: float) -> bool:
    try:
        limiter.limit(name, count, window, now)
        return True
    except TooManyRequests:
        return False


def test_a_window_allows_its_count(store: Store) -> None:
    limiter = RateLimiter(store)
    results = [allowed(limiter, "a", 5, 60, 1000.0 + i) for i in range(7)]
    assert results == [True] * 5 + [False] * 2


def test_a_burst_across_a_window_boundary_gets_no_double_share(store: Store) -> None:
    """Five guesses at the end of one minute and five at the start of the next are ten."""
    limiter = RateLimiter(store)
    assert all(allowed(limiter, "b", 5, 60, 1079.0) for _ in range(5))  # 1020-1080 window
    assert not allowed(limiter, "b", 5, 60, 1081.0)  # a fixed window would reset here


def test_the_previous_window_slides_out(store: Store) -> None:
    limiter = RateLimiter(store)
    assert all(allowed(limiter, "c", 4, 60, 1021.0) for _ in range(4))
    assert not allowed(limiter, "c", 4, 60, 1085.0)  # still overlapping most of it
    assert allowed(limiter, "c", 4, 60, 1135.0)  # 55 s into the next window: mostly gone
    assert all(allowed(limiter, "c", 4, 60, 1300.0) for _ in range(4))  # long after


def test_retry_after_says_when_to_come_back(store: Store) -> None:
    limiter = RateLimiter(store)
    for _ in range(3):
        limiter.limit("d", 3, 60, 1030.0)
    with pytest.raises(TooManyRequests) as caught:
        limiter.limit("d", 3, 60, 1030.0)
    assert caught.value.retry_after == 50  # the rest of this window
    assert caught.value.response_headers() == {"Retry-After": "50"}


def test_per_second_rates(store: Store) -> None:
    limiter = RateLimiter(store)
    limiter.per_second("off", 0, 1000.0)  # 0 = unlimited: never even counted
    assert [allowed_rate(limiter, "e", 2, 1000.1 + i / 10) for i in range(3)] == [True, True, False]
    assert [
        allowed_rate(limiter, "slow", 0.5, 1000.0),
        allowed_rate(limiter, "slow", 0.5, 1000.5),
    ] == [
        True,
        False,
    ]


def allowed_rate(limiter: RateLimiter, name: str, rate: float, now: float) -> bool:
    try:
        limiter.per_second(name, rate, now)
        return True
    except TooManyRequests:
        return False


def test_counted_is_the_sliding_estimate(store: Store) -> None:
    limiter = RateLimiter(store)
    for _ in range(4):
        limiter.record("x", 60, now=119.0)  # the window 60..120
    for _ in range(2):
        limiter.record("x", 60, now=130.0)  # the window 120..180, a sixth into it
    assert limiter.counted("x", 60, now=130.0) == pytest.approx(2 + 4 * (1 - 10 / 60))
    assert limiter.counted("y", 60, now=130.0) == 0
