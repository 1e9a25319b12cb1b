"""Fixed-window rate limits kept in the shared store, so all workers count together."""

from __future__ import annotations

import math
import time

from gateway.errors import TooManyRequests
from gateway.store import Store


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self._store = store

    def check(self, name: str, per_second: float, now: float | None = None) -> None:
        """Raise TooManyRequests (with Retry-After) past ``per_second``; 0 means unlimited.

        Rates below one a second get a window of 1/rate seconds allowing one call.
        """
        if per_second <= 0:
            return
        now = time.time() if now is None else now
        window = max(1.0, 1.0 / per_second)
        budget = max(1, int(per_second * window))
        slot = int(now // window)
        if self._store.incr(f"rl:{name}:{slot}", ttl=window + 1) > budget:
            retry_after = max(1, math.ceil((slot + 1) * window - now))
            raise TooManyRequests(headers={"Retry-After": str(retry_after)})
