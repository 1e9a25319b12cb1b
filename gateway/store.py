"""Shared state: what every worker and instance of one gateway must agree on.

Used-once markers (OIDC/SAML states, JWT ids, logout tokens), session revocations,
rate-limit windows, the photo cache and its invalidations go through one small interface.
``MemoryStore`` serves one process (one worker, many threads); ``RedisStore`` serves any
number of workers and instances. Values are JSON-compatible and read-only for callers.

Security state is never forgotten before it expires. Keys are grouped by *kind* (the part
before the first ``:``): caches (``CACHE_KINDS``) may be evicted, oldest first, when full;
every other kind (revocations, used-once markers, pending sign-ins, rate-limit windows) is
bounded on its own and, when full, refuses *new* entries (``StateFull``, a 503) instead of
dropping a live one, so no amount of junk can flush a revocation. In Redis every key has a
TTL and the server must run with ``maxmemory-policy noeviction`` (checked at start): a full
Redis then refuses new state the same way.

Redis outages degrade rather than hang: after a failure the store answers
``StoreUnavailable`` at once for ``RETRY_AFTER`` seconds (no caller waits on a dead socket),
then tries again by itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from gateway.errors import ServiceUnavailable

log = logging.getLogger("gateway.store")

RETRY_AFTER = 2.0  # seconds a failed Redis is not asked again
SENTINEL_SCHEME = "redis+sentinel://"
Listener = Callable[[str], None]


class StoreUnavailable(ServiceUnavailable, code="store_unavailable"):
    """The gateway's shared store is unavailable."""


class StateFull(ServiceUnavailable, code="state_full"):
    """Too many sign-ins are in progress right now. Please try again in a minute."""

    # A kind of security state reached its bound: new entries wait until old ones expire.
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._headers["Retry-After"] = "60"


# Kinds that are caches: losing an entry early costs a lookup, never a security decision.
# pingback-seen/-again only coalesce repeated pingbacks: losing one costs a re-read.
# session-seen: when a session was last used (the console's "last seen"), nothing more.
CACHE_KINDS = frozenset(
    {"photo", "ts", "audit", "catalogue", "pingback-seen", "pingback-again", "session-seen"}
)
# Revocations are never refused (a sign-out must always work): instead, new sessions are
# refused while their revocation kind is full (``has_room``), which bounds it all the same.
REVOCATION_KINDS = frozenset({"session-revoked", "admin-revoked", "idp-revoked", "person-revoked"})
DEFAULT_MAX_ENTRIES = 200_000  # per kind
_FULL_SCAN_EVERY = 5.0  # seconds between full scans for expired entries of a full kind


def kind_of(key: str) -> str:
    return key.partition(":")[0]


def refused(kind: str) -> StateFull:
    """The error for new state of ``kind`` that has no room (audited, counted)."""
    from gateway.logs import audit
    from gateway.metrics import STATE_REFUSED

    STATE_REFUSED.labels(kind=kind).inc()
    audit("state_refused", kind=kind, reason="bound_reached")
    log.error("security state full: new entries refused", extra={"kind": kind})
    return StateFull(kind)


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

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        """Add ``amount`` to a counter that lives ``ttl`` seconds from its first increment."""
        ...

    def put_fields(self, key: str, fields: Mapping[str, Any], ttl: float) -> None:
        """Set fields of the hash ``key`` and make the whole hash live ``ttl`` seconds."""
        ...

    def get_fields(self, key: str, names: Sequence[str]) -> list[Any]:
        """Fields of the hash ``key`` in one round trip (None where absent)."""
        ...

    def expire(self, key: str, ttl: float) -> None:
        """Let ``key`` (a value or a hash) live ``ttl`` seconds from now."""
        ...

    def add_counts(self, counts: Mapping[str, Mapping[str, int]], ttl: float) -> None:
        """Add to named counters in hashes (``{hash key: {field: n}}``), in one round trip."""
        ...

    def counts(self, keys: Sequence[str]) -> list[dict[str, int]]:
        """The counter hashes of several keys in one round trip ({} where absent)."""
        ...

    def append(self, key: str, items: Sequence[Any], keep: int, ttl: float) -> None:
        """Add items to a capped list (newest first), keeping the newest ``keep``."""
        ...

    def newest(self, key: str, n: int) -> list[Any]:
        """Up to ``n`` items of a capped list, newest first."""
        ...

    def lock(self, name: str, ttl: float, wait: float) -> contextlib.AbstractContextManager[bool]:
        """Hold ``name`` for at most ``ttl`` seconds, waiting up to ``wait`` for it; the
        context value says whether this caller got it (it may go on without)."""
        ...

    def publish(self, channel: str, message: str) -> None:
        """Tell every subscriber of ``channel``, in every worker and instance."""
        ...

    def subscribe(self, channel: str, listener: Listener, on_gap: Callable[[], None]) -> None:
        """Call ``listener`` with every message; ``on_gap`` whenever messages may have been
        missed: on every (re)connection to the store."""
        ...

    def unsubscribe(self, channel: str, listener: Listener) -> None:
        """Stop calling ``listener`` (a runtime replaced by a reload)."""
        ...

    def ping(self) -> bool: ...

    def has_room(self, kind: str) -> bool:
        """Whether new entries of ``kind`` would be taken now."""
        ...


class _Table:
    """One kind's entries, oldest first, with their expiry."""

    def __init__(self, bound: int, evicts: bool) -> None:
        self.entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.bound = bound
        self.evicts = evicts
        self.scanned_at = 0.0

    def make_room(self, kind: str, now: float) -> None:
        entries = self.entries
        while entries and next(iter(entries.values()))[0] <= now:
            entries.popitem(last=False)  # expired, oldest first
        if len(entries) < self.bound:
            return
        if self.evicts:
            while len(entries) >= self.bound:
                entries.popitem(last=False)
            return
        if now - self.scanned_at >= _FULL_SCAN_EVERY:  # lifetimes differ: look at them all
            self.scanned_at = now
            for key in [k for k, (expiry, _) in entries.items() if expiry <= now]:
                del entries[key]
        if len(entries) >= self.bound and kind not in REVOCATION_KINDS:
            raise refused(kind)


class MemoryStore:
    """In-process store, safe across threads: one bounded table per kind of key, with
    per-key expiry; caches evict their oldest entries, security state refuses new ones."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # name -> (lock, users)
        self._listeners: dict[str, list[Listener]] = {}
        # Hashes (the catalogue) live beside the tables; their size is bounded by their writer.
        self._hashes: dict[str, tuple[float, dict[str, Any]]] = {}

    def _table(self, key: str) -> _Table:
        kind = kind_of(key)
        table = self._tables.get(kind)
        if table is None:
            table = self._tables[kind] = _Table(self._max, kind in CACHE_KINDS)
        return table

    def _live(self, key: str, now: float) -> tuple[float, Any] | None:
        entries = self._table(key).entries
        entry = entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del entries[key]
            return None
        return entry

    def _put(self, key: str, value: Any, ttl: float, now: float) -> None:
        table = self._table(key)
        if key not in table.entries:
            table.make_room(kind_of(key), now)
        table.entries[key] = (now + ttl, value)
        table.entries.move_to_end(key)

    def _replace(self, key: str, expiry: float, value: Any) -> None:
        """A new value for a live entry, keeping its place and its expiry."""
        self._table(key).entries[key] = (expiry, value)

    def has_room(self, kind: str) -> bool:
        with self._lock:
            table = self._tables.get(kind)
            if table is None or len(table.entries) < table.bound:
                return True
            now = time.monotonic()
            with contextlib.suppress(StateFull):
                table.make_room(kind, now)
            return len(table.entries) < table.bound

    def sizes(self) -> dict[str, int]:
        """Entries held per kind (expired ones not yet dropped included)."""
        with self._lock:
            return {kind: len(table.entries) for kind, table in self._tables.items()}

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
            self._table(key).entries.pop(key, None)
            self._hashes.pop(key, None)

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        with self._lock:
            now = time.monotonic()
            entry = self._live(key, now)
            if entry is None:
                self._put(key, amount, ttl, now)
                return amount
            count = int(entry[1]) + amount
            self._replace(key, entry[0], count)  # keeps its first expiry: a fixed window
            return count

    def _hash(self, key: str, now: float) -> dict[str, Any] | None:
        entry = self._hashes.get(key)
        if entry is None or entry[0] <= now:
            self._hashes.pop(key, None)
            return None
        return entry[1]

    def put_fields(self, key: str, fields: Mapping[str, Any], ttl: float) -> None:
        with self._lock:
            now = time.monotonic()
            table = self._hash(key, now) or {}
            table.update(fields)
            self._hashes[key] = (now + ttl, table)

    def get_fields(self, key: str, names: Sequence[str]) -> list[Any]:
        with self._lock:
            table = self._hash(key, time.monotonic()) or {}
            return [table.get(name) for name in names]

    def expire(self, key: str, ttl: float) -> None:
        with self._lock:
            now = time.monotonic()
            table = self._hash(key, now)
            if table is not None:
                self._hashes[key] = (now + ttl, table)
            entry = self._live(key, now)
            if entry is not None:
                self._replace(key, now + ttl, entry[1])

    def add_counts(self, counts: Mapping[str, Mapping[str, int]], ttl: float) -> None:
        with self._lock:
            now = time.monotonic()
            for key, fields in counts.items():
                entry = self._live(key, now)
                table: dict[str, int] = dict(entry[1]) if entry is not None else {}
                for field, n in fields.items():
                    table[field] = table.get(field, 0) + n
                self._put(key, table, ttl, now)

    def counts(self, keys: Sequence[str]) -> list[dict[str, int]]:
        with self._lock:
            now = time.monotonic()
            return [dict(e[1]) if (e := self._live(k, now)) is not None else {} for k in keys]

    def append(self, key: str, items: Sequence[Any], keep: int, ttl: float) -> None:
        with self._lock:
            now = time.monotonic()
            entry = self._live(key, now)
            kept = [*reversed(items), *(entry[1] if entry is not None else ())][:keep]
            self._put(key, kept, ttl, now)

    def newest(self, key: str, n: int) -> list[Any]:
        with self._lock:
            entry = self._live(key, time.monotonic())
            return list(entry[1][:n]) if entry is not None else []

    @contextlib.contextmanager
    def lock(self, name: str, ttl: float, wait: float) -> Iterator[bool]:
        with self._lock:  # counted, so the lock is forgotten when its last user is done
            held, users = self._locks.get(name) or (threading.Lock(), 0)
            self._locks[name] = (held, users + 1)
        got = held.acquire(timeout=wait)
        try:
            yield got
        finally:
            if got:
                held.release()
            with self._lock:
                held, users = self._locks[name]
                if users <= 1:
                    del self._locks[name]
                else:
                    self._locks[name] = (held, users - 1)

    def publish(self, channel: str, message: str) -> None:
        for listener in list(self._listeners.get(channel, ())):
            listener(message)

    def subscribe(self, channel: str, listener: Listener, on_gap: Callable[[], None]) -> None:
        self._listeners.setdefault(channel, []).append(listener)  # one process: no gaps

    def unsubscribe(self, channel: str, listener: Listener) -> None:
        self._listeners[channel] = [f for f in self._listeners.get(channel, []) if f != listener]

    def ping(self) -> bool:
        return True

    def clear(self) -> None:
        """Forget everything (rate-limit windows, cached photos, single-use markers)."""
        with self._lock:
            self._tables.clear()
            self._hashes.clear()


class RedisStore:
    """Redis-backed store (redis-py). Short socket timeouts: a slow Redis must not hang logins."""

    def __init__(self, url: str, prefix: str = "gw:", ca_file: str = "") -> None:
        import redis

        self._url = url
        self._ca_file = ca_file
        self._redis = self.connect(socket_timeout=1.0, health_check_interval=30)
        self._health = self.connect(socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._full: type[Exception] = redis.exceptions.OutOfMemoryError
        self._down_until = 0.0
        self._subscribers: dict[str, list[tuple[Listener, Callable[[], None]]]] = {}
        self._subscribers_lock = threading.Lock()
        self._subscriber_thread: threading.Thread | None = None
        self._resubscribe = threading.Event()

    def connect(self, **options: Any) -> Any:
        """A client for the store's URL (``redis_client``)."""
        return redis_client(self._url, self._ca_file, **options)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable()
        try:
            return fn(*args, **kwargs)
        except self._full:
            # maxmemory reached under noeviction: reads (revocations) still work; new state
            # is refused, as the in-process store does when a kind is full.
            raise refused(kind_of(_unprefixed(args, self._prefix))) from None
        except self._errors as exc:
            self._down_until = time.monotonic() + RETRY_AFTER
            log.warning("redis unavailable", extra={"cause": type(exc).__name__})
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

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        full = self._prefix + key

        def run() -> int:
            pipe = self._redis.pipeline()  # MULTI/EXEC: both or neither
            pipe.set(full, 0, px=_ms(ttl), nx=True)  # only the first call opens the window
            pipe.incrby(full, amount)
            _, count = pipe.execute()
            return int(count)

        result: int = self._call(run)
        return result

    def put_fields(self, key: str, fields: Mapping[str, Any], ttl: float) -> None:
        full = self._prefix + key

        def run() -> None:
            pipe = self._redis.pipeline(transaction=False)
            if fields:
                pipe.hset(full, mapping={k: json.dumps(v) for k, v in fields.items()})
            pipe.pexpire(full, _ms(ttl))
            pipe.execute()

        self._call(run)

    def get_fields(self, key: str, names: Sequence[str]) -> list[Any]:
        if not names:
            return []
        raws = self._call(self._redis.hmget, self._prefix + key, list(names))
        return [None if raw is None else json.loads(raw) for raw in raws]

    def expire(self, key: str, ttl: float) -> None:
        self._call(self._redis.pexpire, self._prefix + key, _ms(ttl))

    def add_counts(self, counts: Mapping[str, Mapping[str, int]], ttl: float) -> None:
        def run() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for key, fields in counts.items():
                for field, n in fields.items():
                    pipe.hincrby(self._prefix + key, field, n)
                pipe.pexpire(self._prefix + key, _ms(ttl))
            pipe.execute()

        self._call(run)

    def counts(self, keys: Sequence[str]) -> list[dict[str, int]]:
        def run() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self._prefix + key)
            return list(pipe.execute())

        tables = self._call(run) if keys else []
        return [{k.decode(): int(v) for k, v in table.items()} for table in tables]

    def append(self, key: str, items: Sequence[Any], keep: int, ttl: float) -> None:
        if not items:
            return
        full = self._prefix + key

        def run() -> None:
            pipe = self._redis.pipeline()  # MULTI/EXEC: the list never grows past keep
            pipe.lpush(full, *(json.dumps(item) for item in items))
            pipe.ltrim(full, 0, keep - 1)
            pipe.pexpire(full, _ms(ttl))
            pipe.execute()

        self._call(run)

    def newest(self, key: str, n: int) -> list[Any]:
        raws = self._call(self._redis.lrange, self._prefix + key, 0, n - 1)
        return [json.loads(raw) for raw in raws]

    @contextlib.contextmanager
    def lock(self, name: str, ttl: float, wait: float) -> Iterator[bool]:
        """redis-py's Lock: a random owner token, released by a script that deletes the key
        only while it still holds that token (never someone else's lock after a timeout)."""
        import redis.exceptions

        held = self._redis.lock(self._prefix + name, timeout=ttl, sleep=0.02, blocking_timeout=wait)
        got = bool(self._call(held.acquire))
        try:
            yield got
        finally:
            if got:
                with contextlib.suppress(redis.exceptions.LockError, *self._errors):
                    held.release()

    def publish(self, channel: str, message: str) -> None:
        self._call(self._redis.publish, self._prefix + channel, message)

    def subscribe(self, channel: str, listener: Listener, on_gap: Callable[[], None]) -> None:
        with self._subscribers_lock:
            self._subscribers.setdefault(self._prefix + channel, []).append((listener, on_gap))
            if self._subscriber_thread is None:  # one connection per process, all channels
                self._subscriber_thread = threading.Thread(
                    target=self._listen, name="store-subscriber", daemon=True
                )
                self._subscriber_thread.start()
            else:
                self._resubscribe.set()

    def unsubscribe(self, channel: str, listener: Listener) -> None:
        with self._subscribers_lock:
            entries = self._subscribers.get(self._prefix + channel, [])
            entries[:] = [(f, gap) for f, gap in entries if f != listener]

    def _gap(self) -> None:
        with self._subscribers_lock:
            handlers = [on_gap for entries in self._subscribers.values() for _, on_gap in entries]
        for on_gap in handlers:
            on_gap()

    def _listen(self) -> None:
        """Follow the channels for the life of the process, reconnecting after failures.
        Every (re)connection is a possible gap, so subscribers forget what they cached."""

        backoff, warned = 0.2, False
        while True:
            try:
                client = self.connect(socket_timeout=None, health_check_interval=10)
                # health checks: a half-open connection shows up as an error
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                while True:
                    self._resubscribe.clear()
                    with self._subscribers_lock:
                        channels = list(self._subscribers)
                    pubsub.subscribe(*channels)
                    self._gap()
                    backoff, warned = 0.2, False
                    while not self._resubscribe.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message is not None:
                            self._deliver(message)
            except self._errors as exc:
                # No gap yet: while Redis is away nobody can publish an invalidation, so the
                # first levels keep serving; the gap is declared on reconnecting.
                if not warned:  # once per outage, not once per retry
                    log.warning("redis subscription lost", extra={"cause": type(exc).__name__})
                    warned = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel, data = message.get("channel"), message.get("data")
        if not isinstance(channel, bytes) or not isinstance(data, bytes):
            return
        with self._subscribers_lock:
            listeners = [listener for listener, _ in self._subscribers.get(channel.decode(), ())]
        text = data.decode()
        for listener in listeners:
            try:
                listener(text)
            except Exception:  # one bad listener must not stop the others' invalidations
                log.exception("store listener failed")

    def has_room(self, kind: str) -> bool:
        return True  # bounded by maxmemory: a full Redis refuses the write itself

    def ping(self) -> bool:
        """For readiness: answers within half a second whatever Redis does."""
        if time.monotonic() < self._down_until:
            return False
        try:
            return bool(self._health.ping())
        except self._errors:
            return False


def _once() -> Any:
    """One immediate retry (a pooled connection Redis closed when it restarted), no more:
    redis-py's default of ten with backoff would hold a request for seconds."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 1)


def _unprefixed(args: Sequence[Any], prefix: str) -> str:
    """The key a Redis call was about (its first argument), for the refusal's kind."""
    first = args[0] if args else ""
    if isinstance(first, str) and first.startswith(prefix):
        return first[len(prefix) :]
    return "unknown"  # a pipeline


def redis_client(url: str, ca_file: str = "", **options: Any) -> Any:
    """A redis-py client for ``[store] url``: ``redis://`` (``user:password@`` for an ACL
    user), ``rediss://`` (TLS, verified against ``ca_file`` when given, else the system's
    CAs), ``unix://``, or ``redis+sentinel://host:port,host:port/<master>/<db>``: the primary
    is found through the sentinels, asked again after every failed connection, so a failover
    is followed without a restart."""
    import redis
    from redis.sentinel import Sentinel

    options = {"socket_connect_timeout": 1.0, "retry": _once(), **options}
    if not url.startswith(SENTINEL_SCHEME):
        if url.startswith("rediss://") and ca_file:
            options["ssl_ca_certs"] = ca_file
        return redis.Redis.from_url(url, **options)
    where = urlsplit(url)
    hosts = [_host_port(part) for part in where.netloc.rpartition("@")[2].split(",")]
    master, _, db = where.path.strip("/").partition("/")
    auth = {
        "username": unquote(where.username or "") or None,
        "password": unquote(where.password or "") or None,
    }
    sentinel = Sentinel(
        hosts,
        sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5} | auth,
    )
    return sentinel.master_for(master or "mymaster", db=int(db or 0), **(options | auth))


def _host_port(part: str) -> tuple[str, int]:
    host, _, port = part.rpartition(":")
    return (host or part).strip("[]"), int(port) if port.isdigit() else 26379


def warn_if_redis_evicts(url: str, ca_file: str = "") -> str | None:
    """The eviction policy when it is not ``noeviction`` (logged as an error), else None.
    Managed Redis often refuses CONFIG: then nothing is known and nothing is said."""
    import redis

    try:
        with redis_client(url, ca_file, socket_timeout=1.0) as client:
            policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    except (redis.RedisError, OSError):
        return None
    if policy in ("", "noeviction"):
        return None
    log.error(
        "redis may evict keys: revocations and used-once markers could be forgotten; "
        "set maxmemory-policy noeviction",
        extra={"maxmemory_policy": policy},
    )
    return policy


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def open_store(url: str, max_entries: int = DEFAULT_MAX_ENTRIES, ca_file: str = "") -> Store:
    """``""`` -> in-process (``max_entries`` per kind); ``redis://`` / ``rediss://`` /
    ``unix://`` / ``redis+sentinel://`` -> Redis, whose memory is bounded by its own
    maxmemory."""
    if not url:
        return MemoryStore(max_entries)
    warn_if_redis_evicts(url, ca_file)
    return RedisStore(url, ca_file=ca_file)
