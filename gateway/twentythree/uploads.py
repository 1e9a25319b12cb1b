"""Browser uploads (seed 003): an upload token from ``photo/get-upload-token``, the form that
posts the file straight to 23, and the confirmation of 23's unsigned callback with a signed
``photo/list?upload_token=``. The file never passes through the gateway."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway.errors import UpstreamBadResponse
from gateway.twentythree.cache import PhotoInfo
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.coerce import as_int

REDEEM_PATH = "/api/photo/redeem-upload-token"  # where the browser posts the file (seed 003)


@dataclass(frozen=True)
class UploadRequest:
    """What the form (or a backend) asks 23 to expect."""

    title: str
    description: str = ""
    album_id: int | None = None
    tags: tuple[str, ...] = ()
    publish: bool = False
    valid_minutes: int = 60


@dataclass(frozen=True)
class UploadToken:
    value: str  # never logged, never in an audit line
    valid_until: int  # Unix seconds, as 23 says it
    form_action: str  # the site's redeem URL the browser posts the file to

    def __repr__(self) -> str:
        return f"UploadToken(valid_until={self.valid_until})"


@dataclass(frozen=True)
class Uploaded:
    """A video 23 confirms this upload token made: its facts and how the site names it."""

    info: PhotoInfo
    title: str
    url: str  # its page on the site


def upload_token(
    client: TwentyThreeClient, wanted: UploadRequest, return_url: str = ""
) -> UploadToken:
    """``photo/get-upload-token`` for one file (``max_uploads = 1``)."""
    params: dict[str, str | int] = {
        "title": wanted.title,
        "description": wanted.description,
        "tags": " ".join(wanted.tags),
        "publish": 1 if wanted.publish else 0,
        "valid_minutes": wanted.valid_minutes,
        "max_uploads": 1,
    }
    if wanted.album_id is not None:
        params["album_id"] = wanted.album_id
    if return_url:
        params["return_url"] = return_url
    data = client.call("photo/get-upload-token", params, read=False).payload("uploadtoken")
    value = data.get("upload_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.isalnum() or len(value) > 128:
        raise UpstreamBadResponse("The video site gave no upload token.", cause="no_token")
    until = as_int(data.get("valid_until"))
    valid_until = until if until else int(time.time()) + wanted.valid_minutes * 60
    return UploadToken(value, valid_until, client.site.url + REDEEM_PATH)


def uploaded_with(client: TwentyThreeClient, token: str) -> list[Uploaded]:
    """The videos 23 says this upload token made (a signed call: the callback is unsigned)."""
    response = client.call(
        "photo/list", {"upload_token": token, "include_unpublished_p": 1, "size": 10}
    )
    return [_uploaded(obj, client.site.url) for obj in response.items("photos")]


def _uploaded(obj: Any, site_url: str) -> Uploaded:
    info = PhotoInfo.from_api(obj)
    title = obj.get("title") if isinstance(obj.get("title"), str) else ""
    one = obj.get("one")
    path = one if isinstance(one, str) and one.startswith("/") else f"/video/{info.photo_id}"
    return Uploaded(info, title, site_url + path)
