"""Rate limits kept in the shared store, so all workers and instances count together.

A sliding window, approximated from two fixed ones: the count of the current window plus the
previous window's count weighted by how much of it still overlaps the last ``window``
seconds. Unlike a plain fixed window, a burst straddling a window boundary cannot get twice
the limit through (five guesses at 12:00:59 and five more at 12:01:00 count as ten).
"""

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
        current = self._store.incr(f"rl:{name}:{slot}", ttl=2 * window + 1)
        if current > count:
            raise TooManyRequests(retry_after=math.ceil((slot + 1) * window - now))
        previous = self._store.get(f"rl:{name}:{slot - 1}")
        if not isinstance(previous, int) or previous <= 0:
            return
        overlap = 1.0 - (now - slot * window) / window
        if current + previous * overlap > count:
            # Waiting until the previous window has slid out far enough.
            excess = current + previous * overlap - count
            raise TooManyRequests(retry_after=math.ceil(excess / previous * window))

    def per_second(self, name: str, rate: float, now: float | None = None) -> None:
        """A configured rate (calls per second; 0 = unlimited). Rates below one a second get a
        window of 1/rate seconds allowing one call."""
        if rate <= 0:
            return
        window = max(1.0, 1.0 / rate)
        self.limit(name, max(1, int(rate * window)), window, now)

    def spend(
        self,
        name: str,
        amount: int,
        per_minute: int,
        message: str,
        code: str,
        now: float | None = None,
    ) -> None:
        """Take ``amount`` from a budget of ``per_minute`` (0 = unlimited) that refills at each
        minute, else TooManyRequests until the next minute. A refused amount is given back,
        so a caller that waits is not punished for asking."""
        if per_minute <= 0 or amount <= 0:
            return
        now = time.time() if now is None else now
        minute = int(now // 60)
        key = f"budget:{name}:{minute}"
        if self._store.incr(key, ttl=120, amount=amount) > per_minute:
            self._store.incr(key, ttl=120, amount=-amount)
            raise TooManyRequests(
                message, code=code, retry_after=math.ceil((minute + 1) * 60 - now)
            )
