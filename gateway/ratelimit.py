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
        self.reserve(name, count, window, now)

    def reserve(self, name: str, count: int, window: float, now: float | None = None) -> str:
        """Count one call as ``limit`` does and return the counter it went to, so that a call
        which turns out not to count (a successful sign-in) can be given back with ``release``.
        Counting first keeps concurrent calls from all slipping under the limit together."""
        now = time.time() if now is None else now
        slot = int(now // window)
        key = f"{_family(name, 'rl')}:{slot}"
        current = self._store.incr(key, ttl=2 * window + 1)
        retry_after = self._retry_after(name, current, count, window, now)
        if retry_after is not None:
            raise TooManyRequests(retry_after=retry_after)
        return key

    def release(self, key: str, window: float) -> None:
        """Give back one call counted by ``reserve``."""
        self._store.incr(key, ttl=2 * window + 1, amount=-1)

    def check_open(self, name: str, count: int, window: float, now: float | None = None) -> None:
        """TooManyRequests while ``count`` calls were ``record``ed in the last ``window``
        seconds; counts nothing itself."""
        now = time.time() if now is None else now
        current = self._store.get(f"{_family(name, 'rl')}:{int(now // window)}")
        current = current if isinstance(current, int) else 0
        retry_after = self._retry_after(name, current + 1, count, window, now)
        if retry_after is not None:
            raise TooManyRequests(retry_after=retry_after)

    def record(self, name: str, window: float, now: float | None = None) -> None:
        """Count one call for ``check_open``."""
        now = time.time() if now is None else now
        self._store.incr(f"{_family(name, 'rl')}:{int(now // window)}", ttl=2 * window + 1)

    def _retry_after(
        self, name: str, current: int, count: int, window: float, now: float
    ) -> int | None:
        """Seconds to wait when ``current`` calls in this window are over the sliding limit."""
        slot = int(now // window)
        if current > count:
            return math.ceil((slot + 1) * window - now)
        previous = self._store.get(f"{_family(name, 'rl')}:{slot - 1}")
        if not isinstance(previous, int) or previous <= 0:
            return None
        overlap = 1.0 - (now - slot * window) / window
        if current + previous * overlap > count:
            # Waiting until the previous window has slid out far enough.
            excess = current + previous * overlap - count
            return max(1, math.ceil(excess / previous * window))
        return None

    def counted(self, name: str, window: float, now: float | None = None) -> float:
        """What ``name`` has counted over the last ``window`` seconds (the sliding estimate
        the limits compare with)."""
        now = time.time() if now is None else now
        slot = int(now // window)
        current, previous = self._store.get_many(
            [f"{_family(name, 'rl')}:{slot}", f"{_family(name, 'rl')}:{slot - 1}"]
        )
        overlap = 1.0 - (now - slot * window) / window
        return sum(
            float(value) * weight
            for value, weight in ((current, 1.0), (previous, overlap))
            if isinstance(value, int) and value > 0
        )

    def lift(self, name: str, window: float, now: float | None = None) -> None:
        """Forget what ``name`` counted (an operator lifting a lockout)."""
        now = time.time() if now is None else now
        slot = int(now // window)
        for key in (f"{_family(name, 'rl')}:{slot}", f"{_family(name, 'rl')}:{slot - 1}"):
            self._store.delete(key)

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
        key = f"{_family(name, 'budget')}:{minute}"
        if self._store.incr(key, ttl=120, amount=amount) > per_minute:
            self._store.incr(key, ttl=120, amount=-amount)
            raise TooManyRequests(
                message, code=code, retry_after=math.ceil((minute + 1) * 60 - now)
            )


def _family(name: str, kind: str) -> str:
    """The store key of a limit: each family of limits (the part of ``name`` before its first
    ``:``) is a kind of its own in the store, bounded on its own, so a flood that fills one
    (say, sign-in links) never refuses another (password sign-ins)."""
    family, _, rest = name.partition(":")
    return f"{kind}-{family}:{rest}"
