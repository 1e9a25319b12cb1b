"""Minting: photo ids + an expiry -> time-limited tokens and the URLs that carry them.

One place for the API, ``gateway link``, ``/embed`` and ``/download``. Warm photos are served
from the cache with no upstream call; cold ones are fetched in parallel under one deadline.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Sequence
from typing import Any

from gateway.errors import UpstreamRejected, UpstreamTimeout
from gateway.settings import SiteSettings
from gateway.twentythree import urls
from gateway.twentythree.cache import MEMO_LIMIT, NO_SUCH_PHOTO, PhotoCache, PhotoInfo
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


# A marker no origin, id, format or file name can contain, and that quoting leaves alone.
_SLOT = "~TLT~"


class Mintable:
    """One photo ready to mint: the keyed HMAC and every URL split around the token's place.

    The URLs come from ``photo_urls`` itself, so the URL forms live in one place; minting then
    costs one HMAC and a few string joins per token.
    """

    __slots__ = ("info", "photo_id", "signer", "templates")

    def __init__(self, site_url: str, info: PhotoInfo) -> None:
        self.info = info
        self.photo_id = info.photo_id
        self.signer = PhotoSigner(info.token, info.photo_id)
        self.templates = tuple(
            (name, *url.rpartition(_SLOT)[::2])
            for name, url in photo_urls(site_url, info, _SLOT).items()
        )

    def item(self, expire: int) -> dict[str, Any]:
        token = self.signer.token(expire)
        return {
            "photo_id": self.photo_id,
            "expire": expire,
            "token": token,
            "urls": {name: head + token + tail for name, head, tail in self.templates},
        }


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
            if len(self._mintables) >= MEMO_LIMIT:
                self._mintables.clear()
            ready = self._mintables[info.photo_id] = Mintable(self.site.url, info)
        return ready

    def expire_after(self, ttl: int, now: float | None = None) -> int:
        return expiry(time.time() if now is None else now, ttl, self.site.expire_bucket)

    def photos(self, photo_ids: Sequence[int]) -> dict[int, PhotoInfo | UpstreamRejected]:
        """Facts for each id (or 23's refusal). Upstream outages raise for the whole call."""
        known: dict[int, PhotoInfo | UpstreamRejected] = {}
        cold: list[int] = []
        for photo_id in dict.fromkeys(photo_ids):
            found = self.cache.lookup(photo_id)
            if found is None:
                cold.append(photo_id)
            else:
                known[photo_id] = found
        if len(cold) == 1:
            known[cold[0]] = self._get(cold[0])
        elif cold:
            futures = {self._pool.submit(self._get, pid): pid for pid in cold}
            done, pending = cf.wait(
                futures, timeout=COLD_FETCH_DEADLINE, return_when=cf.FIRST_EXCEPTION
            )
            for future in done:
                known[futures[future]] = future.result()  # re-raises an outage
            if pending:
                raise UpstreamTimeout()
        return known

    def _get(self, photo_id: int) -> PhotoInfo | UpstreamRejected:
        """A photo's facts, or 23's "no such photo" for it. Any other refusal (23 refusing the
        gateway's own credentials) is no answer about this photo: it fails the whole call."""
        try:
            return self.cache.get(photo_id)
        except UpstreamRejected as exc:
            if exc.upstream_code == NO_SUCH_PHOTO:
                return exc
            raise

    def token(self, info: PhotoInfo, expire: int) -> str:
        """One time-limited token for a photo already looked up with ``photos``."""
        return self._mintable(info).signer.token(expire)

    def mint(self, photo_ids: Sequence[int], expire: int) -> list[dict[str, Any]]:
        """One item per requested id, in order: a token with URLs, or 23's error for that id."""
        known = self.photos(photo_ids)
        items: list[dict[str, Any]] = []
        for photo_id in photo_ids:
            info = known[photo_id]
            if isinstance(info, UpstreamRejected):
                error = {
                    "code": info.upstream_code,
                    "message": info.upstream_message or info.message,
                }
                items.append({"photo_id": photo_id, "error": error})
            else:
                items.append(self._mintable(info).item(expire))
        return items
