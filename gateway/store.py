"""Shared state: what every worker and instance of one gateway must agree on.

Used-once markers (OIDC state, JWT ids), rate-limit counters and the photo cache go through
one small interface. ``MemoryStore`` serves one process (gunicorn: one worker, many threads);
``RedisStore`` serves any number of workers and instances. Values are JSON-compatible
(dict, list, str, int, float, bool, None) and must be treated as read-only by callers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from gateway.errors import GatewayError


class StoreUnavailable(GatewayError):
    status = 503
    code = "store_unavailable"
    default_message = "The gateway's shared store is unavailable."


class Store(Protocol):
    def get(self, key: str) -> Any: ...

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """The values of several keys in one round trip (None where absent)."""
        ...

    def set(self, key: str, value: Any, ttl: float) -> None: ...

    def add(self, key: str, value: Any, ttl: float) -> bool:
        """Set only if absent; True when this call set it (the basis of single use)."""
        ...

    def delete(self, key: str) -> None: ...

    def incr(self, key: str, ttl: float) -> int:
        """Add one to a counter that lives ``ttl`` seconds from its first increment."""
        ...

    def ping(self) -> bool: ...


class MemoryStore:
    """In-process store: a bounded LRU with per-key expiry, safe across threads."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def _live(self, key: str, now: float) -> tuple[float, Any] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._data[key]
            return None
        return entry

    def _put(self, key: str, value: Any, ttl: float, now: float) -> None:
        self._data[key] = (now + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._live(key, time.monotonic())
            return None if entry is None else entry[1]

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        with self._lock:
            now = time.monotonic()
            return [None if (e := self._live(k, now)) is None else e[1] for k in keys]

    def set(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._put(key, value, ttl, time.monotonic())

    def add(self, key: str, value: Any, ttl: float) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is not None:
                return False
            self._put(key, value, ttl, now)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, ttl: float) -> int:
        with self._lock:
            now = time.monotonic()
            entry = self._live(key, now)
            if entry is None:
                self._put(key, 1, ttl, now)
                return 1
            count = int(entry[1]) + 1
            self._data[key] = (entry[0], count)  # keeps its first expiry: a fixed window
            return count

    def ping(self) -> bool:
        return True

    def clear(self) -> None:
        """Forget everything (rate-limit windows, cached photos, single-use markers)."""
        with self._lock:
            self._data.clear()


class RedisStore:
    """Redis-backed store (redis-py). Short socket timeouts: a slow Redis must not hang logins."""

    def __init__(self, url: str, prefix: str = "gw:") -> None:
        import redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=30
        )
        self._prefix = prefix
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors:
            raise StoreUnavailable() from None

    def get(self, key: str) -> Any:
        raw = self._call(self._redis.get, self._prefix + key)
        return None if raw is None else json.loads(raw)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        raws = self._call(self._redis.mget, [self._prefix + k for k in keys])
        return [None if raw is None else json.loads(raw) for raw in raws]

    def set(self, key: str, value: Any, ttl: float) -> None:
        self._call(self._redis.set, self._prefix + key, json.dumps(value), px=_ms(ttl))

    def add(self, key: str, value: Any, ttl: float) -> bool:
        done = self._call(
            self._redis.set, self._prefix + key, json.dumps(value), px=_ms(ttl), nx=True
        )
        return bool(done)

    def delete(self, key: str) -> None:
        self._call(self._redis.delete, self._prefix + key)

    def incr(self, key: str, ttl: float) -> int:
        full = self._prefix + key

        def run() -> int:
            pipe = self._redis.pipeline()  # MULTI/EXEC: both or neither
            pipe.set(full, 0, px=_ms(ttl), nx=True)  # only the first call opens the window
            pipe.incr(full)
            _, count = pipe.execute()
            return int(count)

        result: int = self._call(run)
        return result

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except self._errors:
            return False


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def open_store(url: str) -> Store:
    """``""`` -> in-process; ``redis://`` / ``rediss://`` / ``unix://`` -> Redis."""
    if not url:
        return MemoryStore()
    return RedisStore(url)
