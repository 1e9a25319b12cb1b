"""Is each site's API answering signed calls with super credentials? Cached, one check at a time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from gateway.errors import UpstreamError, UpstreamRejected
from gateway.metrics import UPSTREAM_UP
from gateway.telemetry import Telemetry
from gateway.twentythree.client import TwentyThreeClient

log = logging.getLogger("gateway.readiness")


@dataclass(frozen=True)
class SiteHealth:
    """One site's last readiness check: did 23 answer, with credentials that may sign in?"""

    site: str
    ok: bool
    checked_at: float  # time.time() of the check
    code: str = ""  # why not, when not ok
    message: str = ""
    permission_level: str = ""  # as 23 names the credentials' level

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "site": self.site,
            "ok": self.ok,
            "checked_at": int(self.checked_at),
        }
        if self.permission_level:
            out["permission_level"] = self.permission_level
        if not self.ok:
            out.update(code=self.code, message=self.message)
        return out


class ReadinessProbe:
    """Remembers a success for ``interval`` seconds and a failure for ``retry_after`` seconds."""

    def __init__(
        self,
        clients: Mapping[str, TwentyThreeClient],
        interval: float = 30.0,
        retry_after: float = 5.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._clients = clients
        self._interval = interval
        self._retry_after = retry_after
        self._results: dict[str, SiteHealth] = {}
        self._locks = {name: threading.Lock() for name in clients}
        self._background = ThreadPoolExecutor(
            max_workers=min(8, max(1, len(clients))), thread_name_prefix="site-readiness"
        )

    def close(self) -> None:
        self._background.shutdown(wait=False)

    def status(self, wait_at_most: float | None = None) -> list[SiteHealth]:
        """Each site's health, checking the sites not checked recently. With ``wait_at_most``,
        a check still running after that many seconds goes on in the background and its site's
        last known result is given instead (a probe never waits on a hanging 23)."""
        queue = wait_at_most is None  # strict: wait for every check, however long
        futures = {
            name: self._background.submit(self._refresh, name, queue) for name in self._clients
        }
        done, _ = wait(futures.values(), timeout=wait_at_most)
        known = {health.site: health for health in self.known()}
        return [
            (future.result() if future in done else None) or known[name]
            for name, future in futures.items()
        ]

    def known(self) -> list[SiteHealth]:
        """The last result per site without checking again (sites never checked say so)."""
        unchecked = ("unchecked", "Not checked yet.")
        return [
            self._results.get(name) or SiteHealth(name, False, time.time(), *unchecked)
            for name in self._clients
        ]

    def _fresh(self, name: str, now: float) -> SiteHealth | None:
        result = self._results.get(name)
        if result is None:
            return None
        ttl = self._interval if result.ok else self._retry_after
        return result if now - result.checked_at < ttl else None

    def _refresh(self, name: str, queue: bool) -> SiteHealth | None:
        """A fresh result, checking again when the last one is stale. Without ``queue``, a
        check already running for the site is not waited for (None)."""
        cached = self._fresh(name, time.time())
        if cached:
            return cached
        lock = self._locks[name]
        if not lock.acquire(blocking=queue):
            return None
        try:  # one upstream check per site at a time; others reuse it
            cached = self._fresh(name, time.time())
            if cached:
                return cached
            result = self._check(name)
            if self._telemetry is not None:
                self._telemetry.count(name, "ready_ok" if result.ok else "ready_fail")
            UPSTREAM_UP.labels(site=name).set(1 if result.ok else 0)
            if not result.ok:
                log.warning(
                    "readiness check failed",
                    extra={"site": name, "code": result.code, "reason": result.message},
                )
            self._results[name] = result
            return result
        finally:
            lock.release()

    def _check(self, name: str) -> SiteHealth:
        now = time.time()
        try:
            response = self._clients[name].call("photo/list", {"size": 1})
        except UpstreamRejected as exc:
            return SiteHealth(
                name, False, now, exc.upstream_code, exc.upstream_message or exc.message
            )
        except UpstreamError as exc:
            return SiteHealth(name, False, now, exc.code, exc.message)
        level = response.permission_level
        if level and level != "super":
            return SiteHealth(
                name,
                False,
                now,
                "insufficient_permission",
                f"The credentials have level {level!r}; SSO needs 'super'.",
                level,
            )
        return SiteHealth(name, True, now, permission_level=level)
