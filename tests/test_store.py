"""Both stores keep the same promises: expiry, set-if-absent, fixed-window counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from gateway.store import MemoryStore, RedisStore, Store, StoreUnavailable, open_store


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    yield open_store(url)


def test_get_set_delete_and_expiry(store: Store) -> None:
    assert store.get("k") is None
    store.set("k", {"a": [1, "x"]}, ttl=0.3)
    assert store.get("k") == {"a": [1, "x"]}
    store.delete("k")
    assert store.get("k") is None
    store.set("k", "v", ttl=0.1)
    time.sleep(0.15)
    assert store.get("k") is None


def test_add_is_single_use_even_under_contention(store: Store) -> None:
    wins: list[bool] = []
    barrier = threading.Barrier(16)

    def attempt() -> None:
        barrier.wait()
        wins.append(store.add("state:abc", 1, ttl=5))

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    assert store.add("state:abc", 1, ttl=5) is False


def test_incr_is_a_fixed_window(store: Store) -> None:
    assert [store.incr("rl", ttl=0.3) for _ in range(3)] == [1, 2, 3]
    time.sleep(0.35)
    assert store.incr("rl", ttl=0.3) == 1


def test_ping(store: Store) -> None:
    assert store.ping()


def test_memory_store_is_bounded() -> None:
    small = MemoryStore(max_entries=3)
    for i in range(5):
        small.set(str(i), i, ttl=60)
    assert [small.get(str(i)) for i in range(5)] == [None, None, 2, 3, 4]


def test_unreachable_redis_is_a_clear_error() -> None:
    dead = RedisStore("redis://127.0.0.1:9/0")
    with pytest.raises(StoreUnavailable):
        dead.get("k")
    assert dead.ping() is False
