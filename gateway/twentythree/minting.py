"""Minting: photo ids + an expiry -> time-limited tokens and the URLs that carry them.

One place for the API, ``gateway link``, ``/embed`` and ``/download``. Warm photos are served
from the cache with no upstream call; cold ones are fetched in parallel under one deadline.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import UpstreamTimeout
from gateway.settings import SiteSettings
from gateway.twentythree import urls
from gateway.twentythree.cache import (
    LOCAL_LIMIT,
    Found,
    Missing,
    PhotoCache,
    PhotoInfo,
    ids_in_order,
)
from gateway.twentythree.tokens import PhotoSigner, expiry

# Which file a "video" link plays and a "download" link fetches, best first.
VIDEO_FORMATS = (
    "video_hd",
    "video_medium",
    "video_1080p",
    "video_mobile_high",
    "video_4k",
    "video_webm_720p",
    "video_webm_360p",
)
DOWNLOAD_FORMATS = (
    "video_original",
    "video_4k",
    "video_1080p",
    "video_hd",
    "video_medium",
    "video_mobile_high",
    "audio",
)
COLD_FETCH_DEADLINE = 12.0  # seconds for all cold photos of one request, inside the 15 s promise
PLAYBACK_MARGIN = 600  # seconds beyond twice the video's length


def covering_playback(ttl: int, length: int, cap: int) -> int:
    """A lifetime of at least ``ttl`` that outlasts watching the video twice over (pauses,
    seeking, a second look) plus a margin, at most ``cap``."""
    return min(max(ttl, 2 * length + PLAYBACK_MARGIN), cap)


@dataclass(frozen=True, slots=True)
class Refused:
    """A photo the caller may not have a token for (a site's access rule)."""

    photo_id: int
    code: str
    message: str


# Whether a photo may be minted for this call: None, or why not.
Admission = Callable[[PhotoInfo], Refused | None]


def _first(formats: Sequence[str], info: PhotoInfo) -> str | None:
    return next((f for f in formats if f in info.files), None)


def photo_urls(site_url: str, info: PhotoInfo, token: str) -> dict[str, str]:
    """Every URL form for one photo and token; file URLs only for formats the photo has."""
    out = {"embed": urls.embed_url(site_url, info.photo_id, token)}
    download = _first(DOWNLOAD_FORMATS, info)
    if download:
        out["download"] = urls.file_url(
            site_url, info.tree_id, info.photo_id, token, download, info.files[download]
        )
    video = _first(VIDEO_FORMATS, info)
    if video:
        out["video"] = urls.file_url(
            site_url, info.tree_id, info.photo_id, token, video, info.files[video]
        )
    out["thumbnail"] = urls.thumbnail_url(site_url, info.tree_id, info.photo_id, token, info.still)
    out["api"] = urls.api_url(site_url, info.photo_id, token)
    return out


# Markers no origin, id, format or file name can contain, and that quoting leaves alone.
_SLOT = "~TLT~"
_EXPIRE_SLOT = "~EXP~"


class Mintable:
    """One photo ready to mint: the keyed HMAC, and its item (as a dict for callers and as
    JSON text for the API) split around the token's places.

    The URLs come from ``photo_urls`` itself, so the URL forms live in one place; minting then
    costs one HMAC and a join per token, with no per-item dict or JSON encoding.
    """

    __slots__ = ("_json_head", "_json_parts", "info", "photo_id", "signer", "templates")

    def __init__(self, site_url: str, info: PhotoInfo) -> None:
        self.info = info
        self.photo_id = info.photo_id
        self.signer = PhotoSigner(info.token, info.photo_id)
        urls_with_slot = photo_urls(site_url, info, _SLOT)
        self.templates = tuple(
            (name, *url.rpartition(_SLOT)[::2]) for name, url in urls_with_slot.items()
        )
        text = orjson.dumps(
            {
                "photo_id": info.photo_id,
                "expire": _EXPIRE_SLOT,
                "token": _SLOT,
                "urls": urls_with_slot,
            }
        ).decode()
        head, *parts = text.split(_SLOT)  # the expire comes before the first token place
        before, after = head.split(f'"{_EXPIRE_SLOT}"')
        self._json_head = before
        self._json_parts = [after, *parts]  # joined by the token: one C call per item

    def item(self, expire: int) -> dict[str, Any]:
        token = self.signer.token(expire)
        return {
            "photo_id": self.photo_id,
            "expire": expire,
            "token": token,
            "urls": {name: head + token + tail for name, head, tail in self.templates},
        }

    def item_json(self, expire: int) -> str:
        """``item(expire)`` as JSON text, byte for byte what orjson would make of it."""
        return f"{self._json_head}{expire}" + self.signer.token(expire).join(self._json_parts)


@dataclass(frozen=True, slots=True)
class Minted:
    """One call's outcome, in request order: a Mintable, 23's "no such photo" or a refusal per
    id. ``expires`` holds the photos whose token lives longer than ``expire`` (playback)."""

    expire: int
    entries: tuple[tuple[int, Mintable | Missing | Refused], ...]
    photo_ids: list[int]  # those minted
    refused: list[int]  # those 23 has no photo for, or the caller may not have
    expires: Mapping[int, int] = field(default_factory=dict)

    def expire_of(self, photo_id: int) -> int:
        return self.expires.get(photo_id, self.expire)

    def items(self) -> list[dict[str, Any]]:
        return [
            entry.item(self.expire_of(pid))
            if isinstance(entry, Mintable)
            else _error_item(pid, entry)
            for pid, entry in self.entries
        ]

    def json(self) -> bytes:
        """``{"tokens": items()}`` as JSON bytes, from each photo's prepared text. The batch
        hot path: the expiry's parts are built once, each token costs one HMAC and a join."""
        if self.expires:
            return orjson.dumps({"tokens": self.items()})
        expire_part, tail, expire_text = (
            b"expire%d" % self.expire,
            f"-{self.expire}",
            str(self.expire),
        )
        out = []
        for pid, entry in self.entries:
            if isinstance(entry, Mintable):  # PhotoSigner.signature, inlined: 100 per call
                mac = entry.signer.keyed.copy()
                mac.update(expire_part + entry.signer.suffix)
                token = mac.hexdigest() + tail
                out.append(entry._json_head + expire_text + token.join(entry._json_parts))
            else:
                out.append(orjson.dumps(_error_item(pid, entry)).decode())
        return ('{"tokens":[' + ",".join(out) + "]}").encode()


def _error_item(photo_id: int, error: Missing | Refused) -> dict[str, Any]:
    return {"photo_id": photo_id, "error": {"code": error.code, "message": error.message}}


class Minter:
    """Mints for one site."""

    def __init__(self, site: SiteSettings, cache: PhotoCache, pool: cf.ThreadPoolExecutor) -> None:
        self.site = site
        self.cache = cache
        self._pool = pool
        self._mintables: dict[int, Mintable] = {}

    def _mintable(self, info: PhotoInfo) -> Mintable:
        """The prepared photo, rebuilt only when the cache hands out a new PhotoInfo."""
        ready = self._mintables.get(info.photo_id)
        if ready is None or ready.info is not info:
            if len(self._mintables) >= LOCAL_LIMIT:
                self._mintables.clear()
            ready = self._mintables[info.photo_id] = Mintable(self.site.url, info)
        return ready

    def expire_after(self, ttl: int, now: float | None = None) -> int:
        return expiry(time.time() if now is None else now, ttl, self.site.expire_bucket)

    def photos(
        self, photo_ids: Sequence[int], spend_cold: Callable[[int], None] | None = None
    ) -> dict[int, Found]:
        """Facts for each id, or 23's "no such photo". The cache levels answer first (one
        store round trip for the lot); what only 23 knows is fetched in parallel under one
        deadline, after ``spend_cold`` (which may refuse) is told how many that is. Upstream
        outages, and 23 refusing the gateway itself, fail the whole call."""
        found, cold = self.cache.known(ids_in_order(photo_ids))
        if cold and spend_cold is not None:
            spend_cold(len(cold))
        if len(cold) == 1:
            found[cold[0]] = self.cache.load(cold[0])
        elif cold:
            futures = {self._pool.submit(self.cache.load, pid): pid for pid in cold}
            done, pending = cf.wait(
                futures, timeout=COLD_FETCH_DEADLINE, return_when=cf.FIRST_EXCEPTION
            )
            for future in done:
                found[futures[future]] = future.result()  # re-raises an outage
            if pending:
                raise UpstreamTimeout()
        return found

    def token(self, info: PhotoInfo, expire: int) -> str:
        """One time-limited token for a photo already looked up with ``photos``."""
        return self._mintable(info).signer.token(expire)

    def mint(
        self,
        photo_ids: Sequence[int],
        expire: int,
        *,
        admit: Admission | None = None,
        playback_cap: int | None = None,
        spend_cold: Callable[[int], None] | None = None,
        now: int | None = None,
    ) -> Minted:
        """A token with URLs for every requested id, in order, or the reason there is none
        (23's error, or ``admit``'s refusal). With ``playback_cap`` each token also outlasts
        its video's playback (``covering_playback``), up to that many seconds from now."""
        found = self.photos(photo_ids, spend_cold)
        now = int(time.time()) if now is None else now
        entries: list[tuple[int, Mintable | Missing | Refused]] = []
        minted: list[int] = []
        refused: list[int] = []
        expires: dict[int, int] = {}
        for pid in photo_ids:
            info = found[pid]
            refusal = info if isinstance(info, Missing) else admit(info) if admit else None
            if refusal is not None:
                entries.append((pid, refusal))
                refused.append(pid)
                continue
            assert isinstance(info, PhotoInfo)  # a Missing is always a refusal
            entries.append((pid, self._mintable(info)))
            minted.append(pid)
            if playback_cap is not None:
                longer = self.expire_after(
                    covering_playback(expire - now, info.length, playback_cap), now
                )
                if longer > expire:
                    expires[pid] = longer
        return Minted(expire, tuple(entries), minted, refused, expires)
