"""Is the gateway's own state reachable? The shared store and, when configured, the
entitlement database, each checked with a short deadline so ``/readyz`` answers within a
second even when one of them hangs."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.store import Store

if TYPE_CHECKING:
    from gateway.entitlements import EntitlementStore

log = logging.getLogger("gateway.readiness")

DEADLINE = 0.8  # seconds for all dependency checks together


@dataclass(frozen=True)
class DependencyHealth:
    name: str  # "store" or "database"
    ok: bool
    code: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "ok": self.ok}
        if not self.ok:
            out.update(code=self.code, message=self.message)
        return out


class DependencyProbe:
    def __init__(self, store: Store, database: EntitlementStore | None) -> None:
        self._store = store
        self._database = database
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readiness")

    def status(self) -> list[DependencyHealth]:
        checks = {"store": self._check_store}
        if self._database is not None:
            checks["database"] = self._check_database
        futures = {name: self._pool.submit(check) for name, check in checks.items()}
        results = []
        for name, future in futures.items():
            try:
                result = future.result(timeout=DEADLINE)
            except FutureTimeout:
                result = DependencyHealth(name, False, "timeout", f"The {name} did not answer.")
            if not result.ok:
                log.warning(
                    "dependency check failed",
                    extra={"dependency": name, "code": result.code, "reason": result.message},
                )
            results.append(result)
        return results

    def _check_store(self) -> DependencyHealth:
        if self._store.ping():
            return DependencyHealth("store", True)
        return DependencyHealth(
            "store", False, "store_unavailable", "The shared store (Redis) does not answer."
        )

    def _check_database(self) -> DependencyHealth:
        assert self._database is not None
        reason = self._database.problem()
        if reason is None:
            return DependencyHealth("database", True)
        return DependencyHealth("database", False, "database_unavailable", reason)
