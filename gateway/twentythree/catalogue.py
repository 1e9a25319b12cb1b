"""A site's catalogue: the facts of every video, read by paging through ``photo/list``, kept in
the shared store so that minting a video nobody asked for yet needs no call to 23, and an id
the site does not have is answered at once.

Layout in the store: ``catalogue:<site>`` holds the state (which version is complete, when,
how big, failures); ``catalogue:<site>:v<N>`` is a hash of photo id -> facts. A sync builds a
new version beside the current one and switches the state to it when the last page is in,
so readers never see half a catalogue, and a video 23 dropped disappears with the switch.
Between syncs, pingbacks re-read single videos into the current (and any building) version.

One worker of one instance syncs at a time (a store lock); every process runs the same loop
and finds the work done. A failed sync keeps the last good version and is retried with a
backoff shared through the state. A catalogue older than ``catalogue_max_age`` is not used:
lookups go to 23 one by one again, and ``/readyz`` says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway import metrics, tracing
from gateway.errors import (
    GatewayError,
    TooManyRequests,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
)
from gateway.ratelimit import RateLimiter
from gateway.settings import SiteSettings
from gateway.store import Store, StoreUnavailable
from gateway.twentythree.cache import PHOTO_FIELDS, Found, Missing, PhotoInfo, decode, encode
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.coerce import as_int

log = logging.getLogger("gateway.catalogue")

PAGE_SIZE = 100  # what a sync asks for; 23 may serve fewer (pagination_max): its echo counts
# A stable order: new uploads land on the last page, so a listing read while videos arrive
# loses nothing; only what the gateway reads, so a 100,000-video sync is tens of MB, not 600.
LISTING: dict[str, str | int] = {"orderby": "uploaded", "order": "asc", "include_unpublished_p": 1}
MAX_VIDEOS = 200_000  # a bound on the store's memory; a bigger site stays on demand
VERSIONS = "catalogue-versions"  # pub/sub channel: "<site>:<version>" when a sync completes
STATE_TTL = 7 * 86400.0
STATE_CACHE = 2.0  # seconds a process trusts its copy of the state
OLD_VERSION_GRACE = 120.0  # a replaced version stays readable this long for slow readers
UNSETTLED_RETRY = 60.0  # seconds until a sync that saw the listing move is done again
RELOAD = {"reload": 1}  # written by older versions when a re-read failed: ask 23 on use
PINGBACK_REREADS_PER_MINUTE = 30  # per site, listed and new ids each: pingbacks are unsigned
FAILING_FOR = 60.0  # seconds after a failed re-read during which 23 counts as failing
_JITTER = random.Random()  # noqa: S311 (timing jitter; its own, the global one is left alone)


@dataclass
class _Listing:
    """What one sync has read so far. It trusts only what 23 says: the page size and the
    total it echoes. A listing that moved while it was read (the total changed, an id came
    twice, fewer distinct ids than the total, a video it could not read) is *unsettled*: no
    absence from it is believed until a clean re-read."""

    page: int = 0
    seen: set[int] = dataclasses.field(default_factory=set)
    moved: bool = False
    total: int | None = None  # total_count as 23 last said it
    page_size: int = 0  # the most items a page has held (23's pagination_max, in effect)

    def note_page(self, listed: int | None, items: int) -> None:
        self.page_size = max(self.page_size, items)
        if listed is None:
            return
        self.moved |= self.total is not None and listed != self.total
        self.total = listed

    def most_pages(self) -> int:
        """Pages a listing of MAX_VIDEOS needs at the page size 23 serves, and a few more."""
        return MAX_VIDEOS // max(self.page_size, 20) + 10

    def ended(self, items: int, size: int) -> bool:
        """Whether the listing is over after this page: empty; every page the total needs at
        the size 23 serves is read (the size it says, unless its pages are smaller); or, with
        no total, a page shorter than that size."""
        if items == 0:
            return True
        per_page = min(size, self.page_size)
        if self.total is not None:
            return len(self.seen) >= self.total or self.page * per_page >= self.total
        return items < size

    def finish(self) -> None:
        if self.total is None or len(self.seen) != self.total:
            self.moved = True  # no total, or 23 said it has more (or fewer) than we read

    def take(self, items: list[Any], read: Callable[[Any], PhotoInfo | None]) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        for obj in items:
            info = read(obj)
            if info is None:
                self.moved = True  # a video we could not read: absences are not proof
                continue
            self.moved |= info.photo_id in self.seen  # the listing shifted under the paging
            self.seen.add(info.photo_id)
            entries[str(info.photo_id)] = info.to_json()
        return entries


class CatalogueTooLarge(GatewayError):
    status = 502
    code = "catalogue_too_large"
    default_message = f"The site lists more than {MAX_VIDEOS} videos; it is looked up on demand."


@dataclass(frozen=True)
class CatalogueState:
    """What every process knows about a site's catalogue (kept in the store)."""

    version: int = 0  # the complete version readers use; 0 = none yet
    synced_at: float = 0.0  # when it was completed (Unix seconds)
    videos: int = 0
    duration: float = 0.0  # seconds the last complete sync took
    settled: bool = True  # false: the listing moved during the sync (ids may be missing)
    building: int = 0  # the version a sync is writing now, 0 when none
    failures: int = 0  # failed syncs in a row
    next_try: float = 0.0  # no sync before this (Unix seconds), after failures
    first_try: float = 0.0  # when the first sync was started
    error: str = ""  # the last failure's code
    previous: int = 0  # the version before, kept readable: an id it listed is not yet "missing"

    def age(self, now: float) -> float | None:
        return now - self.synced_at if self.version else None


class Catalogue:
    """One site's catalogue, as one process sees and maintains it."""

    def __init__(
        self,
        site: SiteSettings,
        client: TwentyThreeClient,
        store: Store,
        fetch: Callable[[int], Found],
    ) -> None:
        self.site = site
        self._client = client
        self._store = store
        self._fetch = fetch  # one video from 23 (a pingback's re-read)
        self._rereads = RateLimiter(store)  # the per-minute budget of those re-reads
        self._state_key = f"catalogue:{site.name}"
        self._state = CatalogueState()
        self._state_read = -STATE_CACHE  # monotonic time of the last read
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.subscribe(VERSIONS, self._on_version, self._on_gap)

    def _version_key(self, version: int) -> str:
        return f"{self._state_key}:v{version}"

    # ------------------------------------------------------------------ state

    def state(self, fresh: bool = False) -> CatalogueState:
        """The shared state, re-read at most every STATE_CACHE seconds (the last known one
        while the store is down)."""
        now = time.monotonic()
        if not fresh and now - self._state_read < STATE_CACHE:
            return self._state
        try:
            raw = self._store.get(self._state_key)
        except StoreUnavailable:
            return self._state
        self._state = CatalogueState(**raw) if isinstance(raw, dict) else CatalogueState()
        self._state_read = now
        return self._state

    def _save(self, state: CatalogueState) -> None:
        self._store.set(self._state_key, dataclasses.asdict(state), ttl=STATE_TTL)
        self._state, self._state_read = state, time.monotonic()

    def usable(self, state: CatalogueState, now: float | None = None) -> bool:
        age = state.age(time.time() if now is None else now)
        return age is not None and age < self.site.catalogue_max_age

    def health(self, now: float | None = None) -> dict[str, Any]:
        """For ``/readyz``: ok while a usable catalogue exists, or while the first sync has
        not been failing for longer than catalogue_max_age (until then 23 answers per id)."""
        now = time.time() if now is None else now
        state = self.state()
        age = state.age(now)
        if state.version:
            ok = self.usable(state, now)
        else:
            ok = not state.first_try or now - state.first_try < self.site.catalogue_max_age
        out: dict[str, Any] = {
            "site": self.site.name,
            "ok": ok,
            "videos": state.videos,
            "age_seconds": None if age is None else int(age),
            "syncing": bool(state.building),
        }
        if not ok:
            out.update(
                code="catalogue_stale",
                message=f"No catalogue synced within catalogue_max_age "
                f"({self.site.catalogue_max_age} s); last error: {state.error or 'none'}.",
            )
        return out

    # ------------------------------------------------------------------ reading

    def lookup(self, photo_ids: Sequence[int]) -> tuple[dict[int, Found], list[int]] | None:
        """Facts for the ids from the catalogue (one store round trip), and the ids only 23
        can answer (a pingback could not re-read them). None when there is no usable
        catalogue. An id the catalogue does not list is 23's "no such photo", unless the
        listing moved during the sync (then 23 is asked)."""
        state = self.state()
        if not self.usable(state):
            return None
        try:
            raws = self._store.get_fields(
                self._version_key(state.version), [str(i) for i in photo_ids]
            )
        except StoreUnavailable:
            return None
        found: dict[int, Found] = {}
        unresolved: list[int] = []
        absent: list[int] = []
        for photo_id, raw in zip(photo_ids, raws, strict=True):
            if isinstance(raw, dict) and "reload" not in raw:
                found[photo_id] = decode(photo_id, raw)
            elif raw is None and state.settled:
                absent.append(photo_id)
            else:
                unresolved.append(photo_id)
        for photo_id, before in zip(absent, self._listed_before(state, absent), strict=True):
            if before:
                unresolved.append(photo_id)  # gone since the last sync: 23 says whether it is
            else:
                found[photo_id] = Missing(photo_id)
        return found, unresolved

    def _listed_before(self, state: CatalogueState, photo_ids: list[int]) -> list[bool]:
        """Whether the previous version listed each id. A listing can lose a video without
        its total changing (one deleted, one uploaded while it is read), so an id that was
        there last time is asked of 23 before it is called missing."""
        if not photo_ids or not state.previous:
            return [False] * len(photo_ids)
        try:
            raws = self._store.get_fields(
                self._version_key(state.previous), [str(i) for i in photo_ids]
            )
        except StoreUnavailable:
            return [True] * len(photo_ids)
        return [isinstance(raw, dict) for raw in raws]

    def on_new_version(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a new version becomes current (in any process)."""
        self._listeners.append(listener)

    def _on_version(self, message: str) -> None:
        site, _, _version = message.rpartition(":")
        if site == self.site.name:
            self._new_version()

    def _on_gap(self) -> None:
        self._new_version()  # a switch may have been missed

    def _new_version(self) -> None:
        self._state_read = -STATE_CACHE
        for listener in self._listeners:
            listener()

    # ------------------------------------------------------------------ pingbacks

    def refresh(self, photo_id: int) -> None:
        """A pingback: re-read the video from 23 (one call) into the current and any building
        version. Pingbacks are unsigned, so what they can cost is bounded, and junk cannot
        crowd out 23's real ones: videos the catalogue lists and ids it does not have each
        get PINGBACK_REREADS_PER_MINUTE re-reads a minute per site. A listed video over that
        budget is marked "ask 23 on use" (no call now; visitors' lookups are budgeted), unless
        23 is failing; an id 23 does not have adds nothing; and when 23 fails the entry is kept
        as it is (the next sync corrects it), so a burst of pingbacks during an outage cannot
        turn the catalogue into lookups."""
        where = self._where_listed(photo_id)
        if where is None:
            return
        state, targets, known = where
        if not self._reread_allowed("listed" if known else "new", photo_id):
            if known and not self._failing():
                self._write(state, targets, photo_id, RELOAD)
            return
        try:
            found = self._fetch(photo_id)
        except UpstreamError as exc:
            if not isinstance(exc, UpstreamRejected):  # an outage, not 23 refusing one id
                self._note_failure()
            elif known:
                self._write(state, targets, photo_id, RELOAD)  # 23 will say on use
            log.warning(
                "catalogue re-read failed; the entry is kept until the next sync",
                extra={"site": self.site.name, "photo_id": photo_id, "cause": exc.code},
            )
            return
        if isinstance(found, Missing) and not known:
            return  # not listed, and 23 has no such video: nothing to add
        self._write(state, targets, photo_id, encode(found))

    def put(self, info: PhotoInfo) -> None:
        """A video 23 just confirmed (an upload) into the current and any building version."""
        where = self._where_listed(info.photo_id)
        if where is not None:
            self._write(where[0], where[1], info.photo_id, encode(info))

    def mark_stale(self, photo_id: int) -> None:
        """A change is announced but its re-read waits (a pingback repeated within a second):
        until then a listed video is "ask 23 on use", so a rule change applies at once. No
        call to 23 now; while 23 is failing the entry is kept instead."""
        where = self._where_listed(photo_id)
        if where is not None and where[2] and not self._failing():
            self._write(where[0], where[1], photo_id, RELOAD)

    def _where_listed(self, photo_id: int) -> tuple[CatalogueState, list[int], bool] | None:
        """(the state, the versions a change is written to, whether the current one lists
        the id); None without a catalogue, or while the store is down (lookups then fall
        back to 23)."""
        state = self.state(fresh=True)  # the last known one while the store is down
        targets = [v for v in {state.version, state.building} if v]
        if not targets:
            return None
        try:
            listed = self._store.get_fields(self._version_key(state.version), [str(photo_id)])
        except StoreUnavailable:
            return None
        return state, targets, listed[0] is not None

    def _write(
        self, state: CatalogueState, targets: list[int], photo_id: int, value: dict[str, Any]
    ) -> None:
        now = time.time()
        try:
            for version in targets:
                if version == state.version:  # the current one keeps its expiry
                    ttl = state.synced_at + self.site.catalogue_max_age + 60 - now
                else:
                    ttl = self._building_ttl()
                if ttl > 0:
                    key = self._version_key(version)
                    self._store.put_fields(key, {str(photo_id): value}, ttl)
        except StoreUnavailable:
            pass  # lookups fall back to 23 while the store is down

    def _reread_allowed(self, kind: str, photo_id: int) -> bool:
        try:
            self._rereads.spend(
                f"reread:{self.site.name}:{kind}",
                1,
                PINGBACK_REREADS_PER_MINUTE,
                "Pingback re-reads are over budget this minute.",
                "reread_budget",
            )
        except StoreUnavailable:
            return True  # single re-reads, bounded by the pingback rate per sender
        except TooManyRequests:
            log.warning(
                "pingback re-reads over budget this minute",
                extra={"site": self.site.name, "photo_id": photo_id, "ids": kind},
            )
            return False
        return True

    def _failing_key(self) -> str:
        return f"budget-reread:{self.site.name}:failing"

    def _note_failure(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            self._store.set(self._failing_key(), 1, ttl=FAILING_FOR)

    def _failing(self) -> bool:
        try:
            return self._store.get(self._failing_key()) is not None
        except StoreUnavailable:
            return True

    # ------------------------------------------------------------------ syncing

    def _building_ttl(self) -> float:
        return self.site.catalogue_max_age + 600.0

    def due_at(self, state: CatalogueState) -> float:
        """When the next sync should start (Unix seconds)."""
        if state.failures:
            return state.next_try
        if not state.version:
            return 0.0
        wait = self.site.catalogue_refresh if state.settled else UNSETTLED_RETRY
        return state.synced_at + wait

    def sync(self, force: bool = False) -> bool:
        """One full sync, unless another process holds the lock or it is not due (``force``:
        due now). True when this call completed one."""
        lock = self._store.lock(f"lock:{self._state_key}", ttl=self.site.catalogue_refresh, wait=0)
        with lock as got:
            if not got:
                return False
            state = self.state(fresh=True)
            if not force and time.time() < self.due_at(state):
                return False  # another process finished one meanwhile
            with tracing.span("catalogue sync", client=False, **{"gateway.site": self.site.name}):
                return self._sync(state)

    def _sync(self, state: CatalogueState) -> bool:
        """Read every page into a new version, then make it the current one."""
        started, now = time.monotonic(), time.time()
        version = max(state.version, state.building) + 1
        first_try = state.first_try or now
        self._save(dataclasses.replace(state, building=version, first_try=first_try))
        listing = _Listing()
        try:
            self._read_pages(self._version_key(version), listing)
        except (GatewayError, StoreUnavailable) as exc:
            self._failed(state, version, listing.page, exc)
            return False
        done = CatalogueState(
            version=version,
            synced_at=time.time(),
            videos=len(listing.seen),
            duration=round(time.monotonic() - started, 3),
            settled=not listing.moved,
            first_try=first_try,
            previous=state.version,
        )
        return self._publish(state, done, listing.page)

    def _read_pages(self, key: str, listing: _Listing) -> None:
        """photo/list page by page into the version's hash, noting in ``listing`` whether the
        listing moved under the paging (then absences are no proof). It ends on an empty page,
        when the total 23 gave is read, or (no total given) on a page shorter than the size 23
        says it serves."""
        while True:
            listing.page += 1
            items, listed, size = self._page(listing.page)
            listing.note_page(listed, len(items))
            known = len(listing.seen)
            entries = listing.take(items, self._info)
            if len(listing.seen) > MAX_VIDEOS or listing.page > listing.most_pages():
                raise CatalogueTooLarge()
            if entries:
                self._store.put_fields(key, entries, self._building_ttl())
            if listing.ended(len(items), size):
                break
            if len(listing.seen) == known:  # a page of nothing new: 23 ignores the paging
                listing.moved = True
                break
        listing.finish()

    def _publish(self, state: CatalogueState, done: CatalogueState, pages: int) -> bool:
        """Make the complete version current, everywhere; the one it replaces stays as the
        previous one (absences are checked against it), the one before that lingers briefly."""
        try:
            keep = self.site.catalogue_max_age + 60
            self._store.expire(self._version_key(done.version), keep)
            self._save(done)
            if state.version:
                self._store.expire(self._version_key(state.version), keep)
            if state.previous and state.previous != state.version:
                self._store.expire(self._version_key(state.previous), OLD_VERSION_GRACE)
            self._store.publish(VERSIONS, f"{self.site.name}:{done.version}")
        except StoreUnavailable as exc:
            self._failed(state, done.version, pages, exc)
            return False
        metrics.CATALOGUE_SYNCS.labels(self.site.name, "ok").inc()
        log.info(
            "catalogue synced",
            extra={
                "site": self.site.name,
                "videos": done.videos,
                "pages": pages,
                "seconds": done.duration,
                "settled": done.settled,
            },
        )
        return True

    def _page(self, page: int) -> tuple[list[Any], int | None, int]:
        """One page of the full listing, the total 23 says it has and the page size it
        serves (which may be less than asked: pagination_max)."""
        params: dict[str, str | int] = {**LISTING, "size": PAGE_SIZE, "p": page}
        response = self._client.call("photo/list", params | {"fields": PHOTO_FIELDS})
        envelope = response.envelope
        size = as_int(envelope.get("size")) or PAGE_SIZE
        return response.items("photos"), as_int(envelope.get("total_count")), size

    def _info(self, obj: Any) -> PhotoInfo | None:
        try:
            return PhotoInfo.from_api(obj)
        except UpstreamBadResponse as exc:
            log.warning(
                "catalogue skips a video", extra={"site": self.site.name, "cause": exc.code}
            )
            return None

    def _failed(self, state: CatalogueState, version: int, page: int, exc: Exception) -> None:
        failures = state.failures + 1
        backoff = min(float(self.site.catalogue_refresh), 10.0 * 2 ** (failures - 1))
        code = getattr(exc, "code", type(exc).__name__)
        metrics.CATALOGUE_SYNCS.labels(self.site.name, "failed").inc()
        log.warning(
            "catalogue sync failed",
            extra={
                "site": self.site.name,
                "api_method": "photo/list",
                "page": page,
                "cause": getattr(exc, "cause", "") or code,
                "code": code,
                "retry_in": backoff,
                "keeps_version": state.version,
            },
        )
        failed = dataclasses.replace(
            state,
            building=0,
            failures=failures,
            next_try=time.time() + backoff,
            first_try=state.first_try or time.time(),
            error=code,
        )
        try:
            self._store.delete(self._version_key(version))  # the half-built one
            self._save(failed)
        except StoreUnavailable:
            self._state = failed  # at least this process backs off

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        """Run the sync loop in a daemon thread (a greenlet under gevent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"catalogue-{self.site.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._store.unsubscribe(VERSIONS, self._on_version)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.time() >= self.due_at(self.state(fresh=True)):
                    self.sync()
            except StoreUnavailable:
                pass  # the lock or state could not be read; try again shortly
            except Exception:
                log.exception("catalogue loop failed", extra={"site": self.site.name})
            # Wake for the next due time, but look at least every 30 s (another process may
            # have failed, or the state may be gone); a little jitter spreads the workers.
            pause = min(max(self.due_at(self._state) - time.time(), 1.0), 30.0)
            self._stop.wait(pause + _JITTER.uniform(0, 1))


class CatalogueCollector(Collector):
    """The catalogues' size, age and last sync duration for ``/metrics``, read from the shared
    state at scrape time (every instance reports the same figures)."""

    def __init__(self, catalogues: Mapping[str, Catalogue]) -> None:
        self._catalogues = catalogues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        families = {
            "videos": GaugeMetricFamily(
                "gateway_catalogue_videos", "Videos in the site's synced catalogue", labels=["site"]
            ),
            "age": GaugeMetricFamily(
                "gateway_catalogue_age_seconds",
                "Seconds since the site's catalogue was last synced completely",
                labels=["site"],
            ),
            "duration": GaugeMetricFamily(
                "gateway_catalogue_sync_seconds",
                "How long the last complete catalogue sync took",
                labels=["site"],
            ),
            "failures": GaugeMetricFamily(
                "gateway_catalogue_sync_failures",
                "Catalogue syncs failed in a row (0 after a success)",
                labels=["site"],
            ),
        }
        for name, catalogue in self._catalogues.items():
            state = catalogue.state()
            age = state.age(now)
            if age is not None:
                families["videos"].add_metric([name], state.videos)
                families["age"].add_metric([name], age)
                families["duration"].add_metric([name], state.duration)
            families["failures"].add_metric([name], state.failures)
        yield from families.values()
