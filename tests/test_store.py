"""Both stores keep the same promises: expiry, set-if-absent, fixed-window counters."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from gateway.store import (
    MemoryStore,
    RedisStore,
    StateFull,
    Store,
    StoreUnavailable,
    open_store,
    warn_if_redis_evicts,
)


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


def test_memory_store_caches_are_bounded_by_evicting_the_oldest() -> None:
    small = MemoryStore(max_entries=3)
    for i in range(5):
        small.set(f"photo:demo:{i}", i, ttl=60)
    assert [small.get(f"photo:demo:{i}") for i in range(5)] == [None, None, 2, 3, 4]


def test_memory_store_never_forgets_security_state_to_make_room() -> None:
    """Red-team round 3: one shared LRU let junk flush revocations. Each kind is bounded on
    its own, and a full security kind refuses new entries instead of dropping live ones."""
    small = MemoryStore(max_entries=3)
    small.set("session-revoked:copied", 1, ttl=60)
    for i in range(50):  # junk of other kinds, caches included, changes nothing
        small.set(f"photo:demo:{i}", i, ttl=60)
        with contextlib.suppress(StateFull):
            small.add(f"oidc-state:{i}", 1, ttl=60)
    assert small.get("session-revoked:copied") == 1
    assert [small.get(f"oidc-state:{i}") for i in range(4)] == [1, 1, 1, None]
    with pytest.raises(StateFull) as refused:
        small.add("oidc-state:new", 1, ttl=60)
    assert refused.value.status == 503 and refused.value.kind == "oidc-state"
    small.set("oidc-state:0", 2, ttl=60)  # a live entry may still change
    assert small.get("oidc-state:0") == 2


def test_a_full_kind_takes_new_entries_once_old_ones_expire() -> None:
    small = MemoryStore(max_entries=2)
    small.add("jwt-jti:a", 1, ttl=0.05)
    small.add("jwt-jti:b", 1, ttl=0.05)
    time.sleep(0.06)
    assert small.add("jwt-jti:c", 1, ttl=60)


def test_single_flight_locks_are_forgotten_when_done() -> None:
    store = MemoryStore()
    for i in range(1000):
        with store.lock(f"lock:photo:demo:{i}", ttl=5, wait=1) as got:
            assert got
    assert store._locks == {}


def test_unreachable_redis_is_a_clear_error() -> None:
    dead = RedisStore("redis://127.0.0.1:9/0")
    with pytest.raises(StoreUnavailable):
        dead.get("k")
    assert dead.ping() is False


@pytest.fixture()
def small_redis() -> Iterator[str]:
    """A redis-server of its own with 4 MB of memory and the policy the README requires."""
    import shutil
    import socket

    from tests.processes import end, spawn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server") or "redis-server"
    proc = spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield url
    end(proc)


def test_a_full_redis_refuses_new_state_and_keeps_reading(small_redis: str) -> None:
    """noeviction: at maxmemory, Redis refuses writes; the gateway answers 503 state_full for
    new state, while a revocation written before is still read (and nothing was evicted)."""
    store = RedisStore(small_redis)
    store.set("session-revoked:copied", 1, ttl=600)
    filler = redis.Redis.from_url(small_redis)
    blob = "x" * 65536
    with contextlib.suppress(redis.exceptions.OutOfMemoryError):
        for i in range(1000):
            filler.set(f"filler:{i}", blob)
    with pytest.raises(StateFull):  # the last few bytes below maxmemory go first
        for i in range(100_000):
            store.add(f"oidc-state:{i}", 1, ttl=600)
    assert store.get("session-revoked:copied") == 1  # reads go on; the store is not "down"


def test_an_evicting_redis_is_named_at_start(small_redis: str, caplog: Any) -> None:
    redis.Redis.from_url(small_redis).config_set("maxmemory-policy", "allkeys-lru")
    with caplog.at_level(logging.ERROR, logger="gateway.store"):
        assert warn_if_redis_evicts(small_redis) == "allkeys-lru"
    assert any("noeviction" in r.getMessage() for r in caplog.records)


def test_revocations_are_never_refused_new_sessions_are() -> None:
    """Review of round 3: a full revocation table refused sign-outs (and a copied cookie kept
    working). Revocations always go in; new sessions are refused while there is no room."""
    from gateway.identity.base import Identity
    from gateway.sessions import SessionCodec, Sessions

    store = MemoryStore(max_entries=3)
    sessions = Sessions(SessionCodec(["k" * 32], 1800, 3600), store)
    made = [sessions.new(Identity("a@example.com")) for _ in range(3)]
    for session in made:
        sessions.revoke(session)
    assert not store.has_room("session-revoked")
    late = sessions.codec.new(Identity("b@example.com"))  # signed in before the table filled
    sessions.revoke(late)  # never refused
    assert sessions.load(sessions.dump(late)) is None
    with pytest.raises(StateFull):
        sessions.new(Identity("c@example.com"))
