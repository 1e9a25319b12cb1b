"""Photo facts (what minting needs to know about a video, read from ``photo/list``), in two
levels:

1. an in-process dict per site: a warm lookup takes no lock and touches no network, whatever
   the store;
2. the shared store (Redis with several workers or instances): what one worker fetched,
   every worker has; a batch's misses are read from it in one round trip.

What neither level knows comes from 23, once: one thread per process asks, and across
processes a store lock (redis-py's owner-token Lock) lets one fetch while the others wait for
its result. Pingbacks drop an entry from the store and tell every worker of every instance
(store pub/sub) to drop theirs; a subscriber that reconnects may have missed some, so its
whole first level is forgotten then. "No such photo" is remembered briefly. When the store
is down, the first level keeps serving and misses go straight to 23.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway import metrics, tracing
from gateway.errors import UpstreamBadResponse, UpstreamError, UpstreamRejected
from gateway.store import StateFull, Store, StoreUnavailable
from gateway.telemetry import Telemetry
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.coerce import as_flag, as_int, as_seconds
from gateway.twentythree.urls import FORMAT_RE

if TYPE_CHECKING:
    from gateway.twentythree.catalogue import Catalogue

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_STILLS = ("large", "standard", "portrait", "medium", "small", "original")
_NOT_PLAYABLE = frozenset({"video_frames", "video_hls"})
# The formats 23's OpenAPI file lists as files, asked for by name with ``fields``.
VIDEO_FORMATS = (
    "video_medium",
    "video_hd",
    "video_1080p",
    "video_4k",
    "video_mobile_high",
    "video_mobile_h263_amr",
    "video_mobile_h263_aac",
    "video_mobile_mpeg4_amr",
    "video_webm_360p",
    "video_webm_720p",
    "video_wmv",
    "audio",
)
# Only what PhotoInfo reads: a full photo object is ~6 KB, these fields a few hundred bytes.
PHOTO_FIELDS = ",".join(
    (
        "photo_id",
        "tree_id",
        "token",
        "protected_token",
        "published_p",
        "video_length",
        "album_id",
        "all_albums",
        "tags",
        *(f"{kind}_download" for kind in (*VIDEO_FORMATS, *_STILLS)),
    )
)
NO_SUCH_PHOTO = "no_such_photo"
INVALIDATIONS = "photo-invalidations"  # the pub/sub channel: "<site>:<photo id>"
LOCAL_LIMIT = 50_000  # entries per site in the first level
REJOIN_WITHIN = 1.0  # seconds: a joined fetch failing sooner is retried (see load)
MAX_LATER = 1000  # trailing pingback re-reads waiting at once, per site and process


def _downloads(
    obj: Mapping[str, Any], tree_id: int | None
) -> tuple[int | None, dict[str, str], list[str]]:
    """From a photo's ``*_download`` paths: its tree id (when the object lacks one), its
    files by format with their names, and the stills it has."""
    files: dict[str, str] = {}
    stills: list[str] = []
    for key, value in obj.items():
        if not key.endswith("_download") or not isinstance(value, str) or not value:
            continue
        kind = key[: -len("_download")]
        parts = value.split("/")  # "/<tree>/<photo>/<token>/<kind>[/<filename>]"
        if tree_id is None and len(parts) > 1:
            tree_id = as_int(parts[1])
        if kind in _STILLS:
            stills.append(kind)
        elif _playable(kind):
            name = parts[5] if len(parts) > 5 else ""
            files[kind] = name if _FILENAME_RE.fullmatch(name) else ""
    return tree_id, files, stills


def _playable(kind: str) -> bool:
    """A download 23 lists that plays as a file: ``video_<format>`` and ``audio``. Not
    ``video_frames`` (a JPEG of frames) nor ``video_hls`` (a playlist, not a file)."""
    if kind in _NOT_PLAYABLE or not FORMAT_RE.fullmatch(kind):
        return False
    return kind.startswith("video_") or kind == "audio"


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """The few facts about a video that minting and protection need. Never ``original_filename``."""

    photo_id: int
    tree_id: int
    token: str
    protected_token: str
    published: bool
    files: Mapping[str, str]  # format -> file name ("" when 23 gives none), existing formats only
    still: str  # a named thumbnail size the site lists
    length: int = 0  # video_length, seconds (0 when 23 gives none)
    albums: tuple[int, ...] = ()  # every channel the video is in
    tags: tuple[str, ...] = ()  # lower-cased

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PhotoInfo:
        photo_id = as_int(obj.get("photo_id"))
        token = obj.get("token")
        if photo_id is None or not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            raise UpstreamBadResponse("The video site sent a photo without a usable id or token.")
        tree_id, files, stills = _downloads(obj, as_int(obj.get("tree_id")))
        if tree_id is None:
            raise UpstreamBadResponse("The video site sent a photo without its tree_id.")
        protected = obj.get("protected_token")
        return cls(
            photo_id=photo_id,
            tree_id=tree_id,
            token=token,
            protected_token=protected if isinstance(protected, str) else "",
            published=as_flag(obj.get("published_p")) is not False,
            files=files,
            still=next((s for s in _STILLS if s in stills), "large"),
            length=as_seconds(obj.get("video_length")) or 0,
            albums=album_ids(obj),
            tags=tag_names(obj.get("tags")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "tree_id": self.tree_id,
            "token": self.token,
            "protected_token": self.protected_token,
            "published": self.published,
            "files": dict(self.files),
            "still": self.still,
            "length": self.length,
            "albums": list(self.albums),
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhotoInfo:
        return cls(
            **{
                **data,
                "albums": tuple(data.get("albums", ())),
                "tags": tuple(data.get("tags", ())),
            }
        )


_ID_RE = re.compile(r"[0-9]{1,16}")


def album_ids(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Every channel of a photo object: ``all_albums`` (a list, or ids in a string with any
    separator) and ``album_id``."""
    found: list[int] = []
    for value in (obj.get("all_albums"), obj.get("album_id")):
        parts = value if isinstance(value, list) else _ID_RE.findall(str(value or ""))
        found += [i for i in (as_int(part) for part in parts) if i]
    return tuple(dict.fromkeys(found))


def tag_names(value: Any) -> tuple[str, ...]:
    """Tags as 23 lists them: strings, ``{"tag": ...}`` objects, or one space-separated string."""
    items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    names = [item.get("tag") if isinstance(item, dict) else item for item in items]
    return tuple(
        dict.fromkeys(n.strip().lower() for n in names if isinstance(n, str) and n.strip())
    )


@dataclass(frozen=True, slots=True)
class Missing:
    """23's answer that there is no such photo (remembered for a short while)."""

    photo_id: int
    code: str = NO_SUCH_PHOTO
    message: str = "The video does not exist."


Found = PhotoInfo | Missing

_LOCAL_HITS = metrics.CACHE_EVENTS.labels("photo", "hit")
_STORE_HITS = metrics.CACHE_EVENTS.labels("photo", "shared_hit")
_MISSES = metrics.CACHE_EVENTS.labels("photo", "miss")


def encode(value: Found) -> dict[str, Any]:
    if isinstance(value, Missing):
        return {"missing": value.code, "message": value.message}
    return value.to_json()


def decode(photo_id: int, raw: Mapping[str, Any]) -> Found:
    if "missing" in raw:
        return Missing(photo_id, str(raw["missing"]), str(raw.get("message", "")))
    return PhotoInfo.from_json(raw)


class PhotoCache:
    """One site's photo facts, keyed ``photo:<site>:<id>`` in the shared store; on a site with
    a synced catalogue, the catalogue answers what the first level lacks."""

    def __init__(
        self,
        site: str,
        client: TwentyThreeClient,
        store: Store,
        *,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        fetch_wait: float = 12.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._site = site
        self._client = client
        self._store = store
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._fetch_wait = fetch_wait  # longest a follower waits for another's fetch
        self._local: dict[int, tuple[float, Found]] = {}  # photo id -> (fresh until, value)
        self._inflight: dict[int, Future[Found]] = {}
        self._lock = threading.Lock()  # only for the in-flight table, never on a hit
        self._later: set[int] = set()  # trailing pingback re-reads waiting
        self._later_lock = threading.Lock()
        # A fetch that overlapped an invalidation may hold stale facts: bumped by every
        # invalidation and gap (then nothing fetched meanwhile is kept here), and per photo
        # by pingbacks (then the store's copy goes too).
        self._generation = 0
        self._pings: dict[int, int] = {}
        self.catalogue: Catalogue | None = None
        store.subscribe(INVALIDATIONS, self._on_invalidation, self.forget_all)

    def use_catalogue(self, catalogue: Catalogue) -> None:
        """Answer from ``catalogue`` once it is synced; a new version replaces the first level."""
        self.catalogue = catalogue
        catalogue.on_new_version(self.forget_all)

    def _key(self, photo_id: int) -> str:
        return f"photo:{self._site}:{photo_id}"

    # ------------------------------------------------------------------ reading

    def in_first_level(self, photo_id: int) -> Found | None:
        """What this worker itself knows of one photo (no store, no lock), counted as a hit;
        None (and nothing counted) otherwise: ``known`` then asks the levels behind."""
        entry = self._local.get(photo_id)
        if entry is None or entry[0] <= time.monotonic():
            return None
        _LOCAL_HITS.inc()
        if self._telemetry is not None:
            self._telemetry.count(self._site, "cache_hits")
        return entry[1]

    def known(self, photo_ids: Iterable[int]) -> tuple[dict[int, Found], list[int]]:
        """What the two levels know (one store round trip for all the first level lacks),
        and the ids only 23 can answer."""
        found: dict[int, Found] = {}
        cold: list[int] = []
        now = time.monotonic()
        local = self._local
        for photo_id in photo_ids:
            entry = local.get(photo_id)
            if entry is not None and entry[0] > now:
                found[photo_id] = entry[1]
            else:
                cold.append(photo_id)
        if found:
            _LOCAL_HITS.inc(len(found))
            if self._telemetry is not None:
                self._telemetry.count(self._site, "cache_hits", len(found))
        if not cold:
            return found, cold
        generation = self._generation
        if self.catalogue is not None:
            cold = self._from_catalogue(self.catalogue, cold, found, now)
            if not cold:
                return found, cold
        try:
            stored = self._store.get_many([self._key(i) for i in cold])
        except StoreUnavailable:
            stored = [None] * len(cold)  # the first level still serves; 23 answers the rest
        keep = generation == self._generation  # no invalidation crossed the read
        missing: list[int] = []
        for photo_id, raw in zip(cold, stored, strict=True):
            if isinstance(raw, dict):
                value = decode(photo_id, raw)
                if keep:
                    self._remember(photo_id, value, now)
                found[photo_id] = value
            else:
                missing.append(photo_id)
        self._shared_hits(len(cold) - len(missing))
        return found, missing

    def _shared_hits(self, n: int) -> None:
        """Facts the store (or the catalogue in it) had and this worker did not."""
        if n:
            _STORE_HITS.inc(n)
            if self._telemetry is not None:
                self._telemetry.count(self._site, "cache_hits", n)

    def _from_catalogue(
        self, catalogue: Catalogue, cold: list[int], found: dict[int, Found], now: float
    ) -> list[int]:
        """What the catalogue answers goes into ``found``; the ids it cannot answer remain."""
        generation = self._generation
        answer = catalogue.lookup(cold)
        if answer is None:
            return cold  # no usable catalogue: the per-id path
        listed, unresolved = answer
        if generation == self._generation:  # no invalidation crossed the read
            for photo_id, value in listed.items():
                self._remember(photo_id, value, now)
        found.update(listed)
        self._shared_hits(len(listed))
        return unresolved

    def get(self, photo_id: int) -> Found:
        """One photo's facts, from 23 when no level has them (single flight)."""
        found, cold = self.known((photo_id,))
        if photo_id in found:
            return found[photo_id]
        return self.load(cold[0])

    def _remember(self, photo_id: int, value: Found, now: float) -> None:
        if len(self._local) >= LOCAL_LIMIT:
            self._local.clear()  # bounded memory; the store still has them
        ttl = self._negative_ttl if isinstance(value, Missing) else self._ttl
        self._local[photo_id] = (now + ttl, value)

    def close(self) -> None:
        """Stop hearing invalidations (this cache's runtime was replaced)."""
        self._store.unsubscribe(INVALIDATIONS, self._on_invalidation)

    def remember(self, info: PhotoInfo) -> None:
        """A video the gateway just saw 23 confirm (an upload): in the catalogue, the store
        and here, so its first mint needs no lookup."""
        if self.catalogue is not None:
            self.catalogue.put(info)
        with contextlib.suppress(StoreUnavailable, StateFull):
            self._store.set(self._key(info.photo_id), encode(info), ttl=self._ttl)
        self._remember(info.photo_id, info, time.time())

    # ------------------------------------------------------------------ invalidation

    def invalidate(self, photo_id: int, reread: bool = True) -> None:
        """A pingback: re-read the photo into the catalogue (one call to 23, on sites that sync
        one; with ``reread`` false it is marked "ask 23 on use" instead), and forget it here,
        in the store and in every other worker."""
        if self.catalogue is not None and reread:
            self.catalogue.refresh(photo_id)
        elif self.catalogue is not None:
            self.catalogue.mark_stale(photo_id)
        self._note_ping(photo_id)
        try:
            self._store.delete(self._key(photo_id))
            self._store.publish(INVALIDATIONS, f"{self._site}:{photo_id}")
        except StoreUnavailable:
            pass  # the first levels expire by themselves; the store is down anyway

    def invalidate_later(self, photo_id: int, delay: float) -> None:
        """``invalidate`` once ``delay`` seconds from now (a burst's trailing re-read). At
        most MAX_LATER of them wait at a time in this process; beyond that the video stays
        "ask 23 on use" until the next sync."""
        with self._later_lock:
            if photo_id in self._later or len(self._later) >= MAX_LATER:
                return
            self._later.add(photo_id)
        timer = threading.Timer(delay, self._invalidate_now, (photo_id,))
        timer.daemon = True
        timer.start()

    def _invalidate_now(self, photo_id: int) -> None:
        with self._later_lock:
            self._later.discard(photo_id)
        self.invalidate(photo_id)

    def _on_invalidation(self, message: str) -> None:
        site, _, raw_id = message.rpartition(":")
        if site == self._site and raw_id.isdigit():
            self._note_ping(int(raw_id))

    def _note_ping(self, photo_id: int) -> None:
        self._generation += 1
        if len(self._pings) >= LOCAL_LIMIT:
            self._pings.clear()
        self._pings[photo_id] = self._pings.get(photo_id, 0) + 1
        self._local.pop(photo_id, None)

    def forget_all(self) -> None:
        """Invalidations may have been missed (the subscription broke): trust nothing local."""
        self._generation += 1
        self._local.clear()

    # ------------------------------------------------------------------ loading from 23

    def load(self, photo_id: int, rejoin: bool = True) -> Found:
        """Single flight within this process: one thread fetches, the others wait for it.

        A fetch that fails soon after a caller joined it began before that caller arrived
        (an earlier request's, retrying against a 23 that was failing): the caller fetches
        once more for itself, so the first request after 23 recovers is served."""
        with self._lock:
            future = self._inflight.get(photo_id)
            leader = future is None
            if future is None:
                future = self._inflight[photo_id] = Future()
        if not leader:
            joined = time.monotonic()
            try:
                return future.result()
            except UpstreamError:
                if not rejoin or time.monotonic() - joined > REJOIN_WITHIN:
                    raise
            return self.load(photo_id, rejoin=False)
        generation = self._generation
        try:
            value = self._load_shared(photo_id)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(value)
            if self._generation == generation:  # else a pingback overtook the fetch
                self._remember(photo_id, value, time.monotonic())
            return value
        finally:
            with self._lock:
                self._inflight.pop(photo_id, None)

    def _load_shared(self, photo_id: int) -> Found:
        """Single flight across workers and instances, by a store lock. Whoever waited finds
        the holder's result in the store; after ``fetch_wait`` it fetches by itself."""
        key = self._key(photo_id)
        traced = tracing.span(
            "store single-flight lookup", client=False, **{"gateway.site": self._site}
        )
        try:
            with (
                traced,
                self._store.lock(f"lock:{key}", ttl=self._fetch_wait, wait=self._fetch_wait),
            ):
                raw = self._store.get(key)  # whoever held the lock before may have fetched it
                if isinstance(raw, dict):
                    return decode(photo_id, raw)
                pings = self._pings.get(photo_id, 0)
                value = self.fetch(photo_id)
                ttl = self._negative_ttl if isinstance(value, Missing) else self._ttl
                self._store.set(key, encode(value), ttl=ttl)
                if self._pings.get(photo_id, 0) != pings:
                    self._store.delete(key)  # a pingback came while 23 answered: don't keep it
                return value
        except StoreUnavailable:
            return self.fetch(photo_id)

    def fetch(self, photo_id: int) -> Found:
        """One photo from 23 (``photo/list`` with its id), whatever the levels hold."""
        _MISSES.inc()
        if self._telemetry is not None:
            self._telemetry.count(self._site, "cache_misses")
        try:
            response = self._client.call(
                "photo/list",
                {"photo_id": photo_id, "include_unpublished_p": 1, "fields": PHOTO_FIELDS},
            )
        except UpstreamRejected as exc:
            if exc.upstream_code in (NO_SUCH_PHOTO, "no_such_object"):  # api/2: HTTP 404
                return Missing(photo_id, NO_SUCH_PHOTO, "The video does not exist.")
            raise
        for obj in response.items("photos"):
            if as_int(obj.get("photo_id")) == photo_id:
                return PhotoInfo.from_api(obj)
        # An empty list is how 23 answers for an id it will not show: the same as unknown.
        return Missing(photo_id)


def ids_in_order(photo_ids: Sequence[int]) -> list[int]:
    """Each id once, first occurrence first."""
    return list(dict.fromkeys(photo_ids))
