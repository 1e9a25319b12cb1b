"""URL builders for the forms a time-limited token travels in (reference §4.3-4.5). Pure functions.

``site_url`` is the site's origin without a trailing slash; ``token`` is a time-limited token
(or, for 23 itself, a photo's base token).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

FORMAT_RE = re.compile(r"^[a-z0-9_]{1,40}$")
THUMBNAIL_SIZES = (  # the named thumbnail sizes 23 documents
    "original",
    "quad16",
    "quad50",
    "quad75",
    "quad100",
    "small",
    "medium",
    "portrait",
    "standard",
    "large",
)
_CUSTOM_SIZE_RE = re.compile(r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")


def embed_url(site_url: str, photo_id: int, token: str) -> str:
    """The player page for an iframe: ``/v.ihtml?token=..&source=embed&photo_id=..``."""
    return f"{site_url}/v.ihtml?" + urlencode(
        {"token": token, "source": "embed", "photo_id": photo_id}
    )


def file_url(
    site_url: str, tree_id: int, photo_id: int, token: str, fmt: str, filename: str = ""
) -> str:
    """A video/audio file or download: ``/<tree_id>/<photo_id>/<token>/<format>[/<filename>]``."""
    if not FORMAT_RE.fullmatch(fmt):
        raise ValueError("format must be lower-case letters, digits and underscores")
    url = f"{site_url}/{tree_id}/{photo_id}/{quote(token, safe='-')}/{fmt}"
    return f"{url}/{quote(filename, safe='')}" if filename else url


def thumbnail_url(
    site_url: str, tree_id: int, photo_id: int, token: str, size: str = "large"
) -> str:
    """A still: a named size (``/large``) or a custom one (``/600x400/thumbnail.jpg``)."""
    base = f"{site_url}/{tree_id}/{photo_id}/{quote(token, safe='-')}"
    if size in THUMBNAIL_SIZES:
        return f"{base}/{size}"
    if _CUSTOM_SIZE_RE.fullmatch(size):
        return f"{base}/{size}/thumbnail.jpg"
    raise ValueError("size must be a named thumbnail size or WIDTHxHEIGHT")


def mobile_url(site_url: str, photo_id: int, token: str) -> str:
    """The mobile redirect: ``/m/d/<photo_id>/<token>``."""
    return f"{site_url}/m/d/{photo_id}/{quote(token, safe='-')}"


def api_url(site_url: str, photo_id: int, token: str) -> str:
    """The single-object API lookup: ``/api/photo/list?photo_id=..&token=..``."""
    return f"{site_url}/api/photo/list?" + urlencode({"photo_id": photo_id, "token": token})


def redeem_session_url(site_url: str, session_token: str) -> str:
    """Where the visitor's browser redeems a session token (never called server-side)."""
    return f"{site_url}/api/session/redeem-token?" + urlencode({"session_token": session_token})


def redeem_login_url(site_url: str, login_token: str) -> str:
    """Where the visitor's browser redeems a user login token."""
    return f"{site_url}/api/user/redeem-login-token?" + urlencode({"login_token": login_token})
