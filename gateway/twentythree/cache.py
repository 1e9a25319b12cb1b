"""Photo-token cache: what minting needs to know about a video, read once from ``photo/list``.

TTL-bounded, shared through the Store (so pingbacks reach every worker), single-flight (many
concurrent mints of a cold photo make one upstream call, across workers too), and a short
negative cache for ``no_such_photo``. A warm lookup makes no upstream call.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from gateway import metrics
from gateway.errors import UpstreamBadResponse, UpstreamRejected
from gateway.store import Store
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.urls import FORMAT_RE
from gateway.twentythree.values import as_flag, as_int

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_STILLS = ("large", "standard", "portrait", "medium", "small", "original")
NO_SUCH_PHOTO = "no_such_photo"


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

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PhotoInfo:
        photo_id = as_int(obj.get("photo_id"))
        token = obj.get("token")
        if photo_id is None or not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            raise UpstreamBadResponse("The video site sent a photo without a usable id or token.")
        tree_id = as_int(obj.get("tree_id"))
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
            elif FORMAT_RE.fullmatch(kind) and (kind.startswith("video_") or kind == "audio"):
                name = parts[5] if len(parts) > 5 else ""
                files[kind] = name if _FILENAME_RE.fullmatch(name) else ""
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
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhotoInfo:
        return cls(**{k: v for k, v in data.items() if k != "version"})


_HITS = metrics.CACHE_EVENTS.labels("photo", "hit")
_MISSES = metrics.CACHE_EVENTS.labels("photo", "miss")


MEMO_LIMIT = 50_000


class PhotoCache:
    """One site's photo facts, keyed ``photo:<site>:<id>`` in the shared store."""

    def __init__(
        self,
        site: str,
        client: TwentyThreeClient,
        store: Store,
        *,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        fetch_wait: float = 12.0,
    ) -> None:
        self._site = site
        self._client = client
        self._store = store
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._fetch_wait = fetch_wait  # longest a follower waits for another worker's fetch
        self._inflight: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        # Decoded entries by photo id, reused while the stored entry keeps its version.
        self._decoded: dict[int, tuple[str, PhotoInfo]] = {}

    def _key(self, photo_id: int) -> str:
        return f"photo:{self._site}:{photo_id}"

    def get(self, photo_id: int) -> PhotoInfo:
        """The photo's facts; UpstreamRejected(no_such_photo) when 23 does not know it."""
        found = self.lookup(photo_id)
        if found is None:
            found = self._decode(photo_id, self._load(photo_id))
        if isinstance(found, UpstreamRejected):
            raise found
        return found

    def lookup(self, photo_id: int) -> PhotoInfo | UpstreamRejected | None:
        """What the cache knows without asking 23: facts, a remembered refusal, or None."""
        entry = self._store.get(self._key(photo_id))
        if entry is None:
            _MISSES.inc()
            return None
        _HITS.inc()
        return self._decode(photo_id, entry)

    def _decode(self, photo_id: int, entry: Mapping[str, Any]) -> PhotoInfo | UpstreamRejected:
        if "missing" in entry:
            return UpstreamRejected(entry["missing"], entry.get("message", ""))
        memo = self._decoded.get(photo_id)
        if memo is not None and memo[0] == entry["version"]:
            return memo[1]
        info = PhotoInfo.from_json(entry)
        if len(self._decoded) >= MEMO_LIMIT:
            self._decoded.clear()
        self._decoded[photo_id] = (entry["version"], info)
        return info

    def invalidate(self, photo_id: int) -> None:
        self._store.delete(self._key(photo_id))

    def _load(self, photo_id: int) -> dict[str, Any]:
        """Single flight within this process: one thread fetches, the others wait for it."""
        with self._lock:
            future = self._inflight.get(photo_id)
            leader = future is None
            if future is None:
                future = Future()
                self._inflight[photo_id] = future
        if not leader:
            return future.result()
        try:
            entry = self._load_shared(photo_id)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(entry)
            return entry
        finally:
            with self._lock:
                self._inflight.pop(photo_id, None)

    def _load_shared(self, photo_id: int) -> dict[str, Any]:
        """Single flight across workers: a short lock in the store; others poll for the result."""
        key = self._key(photo_id)
        lock_key = f"lock:{key}"
        holding = self._store.add(lock_key, 1, ttl=self._fetch_wait)
        if not holding:
            deadline = time.monotonic() + self._fetch_wait
            while time.monotonic() < deadline:
                time.sleep(0.02)
                entry = self._store.get(key)
                if entry is not None:
                    return dict(entry)
            # The other worker gave up or died: fetch ourselves rather than fail the visitor.
        try:
            entry = self._fetch(photo_id)
            ttl = self._negative_ttl if "missing" in entry else self._ttl
            self._store.set(key, entry, ttl=ttl)
            return entry
        finally:
            if holding:
                self._store.delete(lock_key)

    def _fetch(self, photo_id: int) -> dict[str, Any]:
        try:
            response = self._client.call(
                "photo/list", {"photo_id": photo_id, "include_unpublished_p": 1}
            )
        except UpstreamRejected as exc:
            if exc.upstream_code == NO_SUCH_PHOTO:
                return {"missing": NO_SUCH_PHOTO, "message": "The video does not exist."}
            raise
        for obj in response.items("photos"):
            if as_int(obj.get("photo_id")) == photo_id:
                # A fresh version per fetch tells every worker its decoded copy is stale.
                return {**PhotoInfo.from_api(obj).to_json(), "version": secrets.token_hex(8)}
        # An empty list is how 23 answers for an id it will not show: the same as unknown.
        return {"missing": NO_SUCH_PHOTO, "message": "The video does not exist."}
