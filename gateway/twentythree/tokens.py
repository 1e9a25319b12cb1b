"""Time-limited tokens: ``hex(HMAC-SHA1(photo_token, "expire<E>photo_id<ID>")) + "-" + E``.

Pure functions, no I/O. This is the minting hot path, so it does the least work it can.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Any

_sha1 = hashlib.sha1
_new = hmac.new


def time_limited_token(photo_token: str, photo_id: int, expire: int) -> str:
    """The token 23 accepts for ``photo_id`` until the absolute UTC second ``expire``."""
    digest = _new(photo_token.encode(), b"expire%dphoto_id%d" % (expire, photo_id), _sha1)
    return f"{digest.hexdigest()}-{expire}"


def _keyed_hmac(key: bytes) -> Any:
    """A keyed HMAC-SHA1 state to copy per token: OpenSSL's own object when the interpreter
    has it (its copy, update and hexdigest are single C calls, about twice the rate of
    ``hmac.HMAC``, whose methods are Python), else the standard library's."""
    try:
        from _hashlib import hmac_new

        return hmac_new(key, digestmod="sha1")
    except (ImportError, ValueError):  # no OpenSSL, or SHA-1 refused (FIPS)
        return _new(key, None, _sha1)


class PhotoSigner:
    """Mints tokens for one photo. The keyed HMAC state is computed once and copied per token,
    which skips the key schedule that dominates a one-shot ``hmac.new``."""

    __slots__ = ("keyed", "photo_id", "suffix")

    def __init__(self, photo_token: str, photo_id: int) -> None:
        self.photo_id = photo_id
        self.keyed = _keyed_hmac(photo_token.encode())  # never updated: only copied
        self.suffix = b"photo_id%d" % photo_id

    def token(self, expire: int) -> str:
        return self.signature(b"expire%d" % expire) + f"-{expire}"

    def signature(self, expire_part: bytes) -> str:
        """The hex HMAC for ``expire_part`` (``b"expire<E>"``), for callers minting many
        tokens with one expiry: they build that part, and the ``-<E>`` tail, once."""
        mac = self.keyed.copy()
        mac.update(expire_part + self.suffix)
        digest: str = mac.hexdigest()
        return digest


def parse_token(token: str) -> tuple[str, int] | None:
    """Split ``<40 hex>-<expire>`` into its parts, or None when it is not of that form."""
    digest, sep, expire = token.partition("-")
    if not sep or len(digest) != 40 or not expire.isdigit() or len(expire) > 12:
        return None
    try:
        int(digest, 16)
    except ValueError:
        return None
    return digest, int(expire)


def verify_token(photo_token: str, photo_id: int, token: str, now: float | None = None) -> bool:
    """True when ``token`` is a valid, unexpired time-limited token for this photo."""
    parts = parse_token(token)
    if parts is None:
        return False
    _, expire = parts
    if expire < (time.time() if now is None else now):
        return False
    expected = time_limited_token(photo_token, photo_id, expire)
    return hmac.compare_digest(expected.encode(), token.encode())


def expiry(now: float, ttl: int, bucket: int = 0) -> int:
    """Absolute expiry ``ttl`` seconds after ``now``, rounded up to a multiple of ``bucket``.

    Rounding up lets links minted within one bucket be byte-identical (cacheable by a CDN);
    the price is that a link may live up to ``bucket`` seconds longer than asked.
    """
    expire = math.ceil(now + ttl)
    if bucket > 0:
        expire = -(-expire // bucket) * bucket
    return expire
