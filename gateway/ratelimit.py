"""Fixed-window rate limits kept in the shared store, so all workers count together."""

from __future__ import annotations

import math
import time

from gateway.errors import TooManyRequests
from gateway.store import Store


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self._store = store

    def limit(self, name: str, count: int, window: float, now: float | None = None) -> None:
        """At most ``count`` calls per ``window`` seconds, else TooManyRequests (Retry-After)."""
        now = time.time() if now is None else now
        slot = int(now // window)
        if self._store.incr(f"rl:{name}:{slot}", ttl=window + 1) > count:
            raise TooManyRequests(retry_after=math.ceil((slot + 1) * window - now))

    def per_second(self, name: str, rate: float, now: float | None = None) -> None:
        """A configured rate (calls per second; 0 = unlimited). Rates below one a second get a
        window of 1/rate seconds allowing one call."""
        if rate <= 0:
            return
        window = max(1.0, 1.0 / rate)
        self.limit(name, max(1, int(rate * window)), window, now)
