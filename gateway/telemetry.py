"""The operator console's numbers: per-minute counters per site for the last 24 hours, and
the newest audit events, kept in the shared store so every instance adds to the same plots.

Requests never wait on the store for this: counts gather in memory and a background thread
adds them to the store every couple of seconds, in one round trip (``Store.add_counts``).
Telemetry is best effort: when the store is down, the pending counts are dropped (with one
warning), never the request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from gateway.store import Store, StoreUnavailable

log = logging.getLogger("gateway.telemetry")

ALL = "*"  # the gateway-wide series, besides one per site
MINUTES = 24 * 60
FLUSH_EVERY = 2.0  # seconds
RECENT_KEEP = 2000  # audit events kept for the console, per stream
RECENT_KEY = "audit:recent"  # the notable stream (older versions kept everything here)
# Audit events go to one of four streams, each bounded on its own, so that junk an outsider
# can cause (failed callbacks, throttled sign-ins) never pushes out a granted session, an
# operator's action or a refusal of a real account, nor does a busy mint API.
STREAM_KEYS = {
    "notable": RECENT_KEY,
    "refused": "audit:refused",
    "minted": "audit:minted",
    "other": "audit:other",
}
# Granted sessions, sign-outs and IdP logouts, entitlement changes, uploads and operators'
# actions: nothing an outsider can cause without an account.
NOTABLE = frozenset(
    {
        "sso_granted",
        "sso_signed_out",
        "sso_backchannel_logout",
        "saml_logout",
        "entitlement_changed",
        "upload",
    }
)
# Refusals and failed passwords: worth seeing, but an outsider can cause them at will.
REFUSED = frozenset({"sso_denied", "access_denied", "paywall_refused", "sign_in_failed"})
MINTED = frozenset({"tokens_minted", "protected_token_given"})
PENDING_NOTABLE_MAX = 100_000  # in memory between flushes; reached only if the store is down
PENDING_OTHER_MAX = RECENT_KEEP  # junk beyond this between two flushes keeps its newest
BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# Audit events -> the counter they add to.
EVENT_COUNTERS = {
    "sso_granted": "granted",
    "sso_denied": "refused",
    "access_denied": "refused",
    "sso_failed": "failed",
    "sign_in_failed": "failed",
    "sign_in_locked": "failed",
    "saml_refused": "failed",
}


def stream_of(event: str, fields: Mapping[str, Any]) -> str:
    """The audit stream an event is kept in (each bounded on its own)."""
    if event in NOTABLE or event.startswith("admin_"):
        return "notable"
    if event in REFUSED:
        return "refused"
    if event in MINTED:
        return "minted"
    return "other"


def _pending_cap(stream: str) -> int:
    """Events of a stream held between two writes to the store."""
    return PENDING_NOTABLE_MAX if stream == "notable" else PENDING_OTHER_MAX


def minute_key(site: str, minute: int) -> str:
    return f"ts:{site}:{minute}"


def bucket_of(ms: float) -> str:
    return next((str(b) for b in BUCKETS_MS if ms <= b), "inf")


class Telemetry:
    def __init__(
        self,
        store: Store,
        *,
        flush_every: float = FLUSH_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self._flush_every = flush_every
        self._pending: dict[str, Counter[str]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {name: [] for name in STREAM_KEYS}
        self._lock = threading.Lock()  # held for a dict update only
        self._thread: threading.Thread | None = None
        self._warned = False

    # ------------------------------------------------------------------ recording

    def count(self, site: str, name: str, n: int = 1) -> None:
        key_site, key_all = self._keys(site)
        with self._lock:
            self._pending.setdefault(key_site, Counter())[name] += n
            if key_all != key_site:
                self._pending.setdefault(key_all, Counter())[name] += n
        self._start()

    def observe_ms(self, site: str, name: str, ms: float) -> None:
        """A duration, into fixed buckets (per minute: enough for p50 and p99)."""
        self.count(site, f"{name}_le_{bucket_of(ms)}")

    def audited(self, event: str, fields: Mapping[str, Any]) -> None:
        """Every audit line: kept for the console's event list, and counted."""
        entry = {"ts": round(self._clock(), 3), "event": event, **fields}
        stream = stream_of(event, fields)
        with self._lock:
            events = self._events[stream]
            events.append(entry)
            del events[: -_pending_cap(stream)]  # only the newest are kept
        site = str(fields.get("site") or ALL)
        if event == "tokens_minted":
            self.count(site, "tokens", len(fields.get("photo_ids") or ()))
        elif event in EVENT_COUNTERS:
            self.count(site, EVENT_COUNTERS[event])
        else:
            self._start()

    def _keys(self, site: str) -> tuple[str, str]:
        minute = int(self._clock() // 60)
        return minute_key(site or ALL, minute), minute_key(ALL, minute)

    # ------------------------------------------------------------------ flushing

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._flush_every)
            self.flush()

    def flush(self) -> None:
        """Add what gathered here to the store (also called before the console reads)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            events = {name: found for name, found in self._events.items() if found}
            self._events = {name: [] for name in STREAM_KEYS}
        if not pending and not events:
            return
        try:
            if pending:
                self._store.add_counts(pending, ttl=(MINUTES + 60) * 60)
            for stream, found in list(events.items()):
                self._store.append(STREAM_KEYS[stream], found, RECENT_KEEP, ttl=7 * 86400)
                del events[stream]
            self._warned = False
        except StoreUnavailable:
            self._keep_for_later(events)
            if not self._warned:
                log.warning("telemetry delayed: the store is unavailable")
                self._warned = True

    def _keep_for_later(self, events: Mapping[str, list[dict[str, Any]]]) -> None:
        """Events not yet written go back in front of newer ones (the counts are dropped:
        they are plots, not records)."""
        with self._lock:
            for stream, found in events.items():
                self._events[stream] = (found + self._events[stream])[-_pending_cap(stream) :]

    # ------------------------------------------------------------------ reading

    def series(self, site: str, minutes: int = MINUTES) -> list[dict[str, int]]:
        """Per-minute counters of ``site`` (or ALL), oldest first, ending with this minute."""
        self.flush()
        now = int(self._clock() // 60)
        keys = [minute_key(site, m) for m in range(now - minutes + 1, now + 1)]
        try:
            return self._store.counts(keys)
        except StoreUnavailable:
            return [{} for _ in keys]

    def recent(self, n: int = RECENT_KEEP) -> list[dict[str, Any]]:
        """The newest events of every stream together, newest first (up to ``n`` of each)."""
        self.flush()
        try:
            found = [
                e for key in STREAM_KEYS.values() for e in self._store.newest(key, n)
                if isinstance(e, dict)
            ]  # fmt: skip
        except StoreUnavailable:
            return []
        return sorted(found, key=lambda e: float(e.get("ts") or 0), reverse=True)


def percentile_ms(counts: Mapping[str, int], name: str, q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (None without samples)."""
    buckets = [(float(b), counts.get(f"{name}_le_{b}", 0)) for b in BUCKETS_MS]
    buckets.append((float("inf"), counts.get(f"{name}_le_inf", 0)))
    total = sum(n for _, n in buckets)
    if total == 0:
        return None
    seen = 0
    for bound, n in buckets:
        seen += n
        if seen >= q * total:
            return bound if bound != float("inf") else float(BUCKETS_MS[-1]) * 2
    return None
