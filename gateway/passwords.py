"""Password hashes for ``static`` users: scrypt from the standard library, self-describing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N_LOG2, _R, _P = 15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$<log2 N>$<r>$<p>$<salt>$<hash>``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=2**_N_LOG2, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt${_N_LOG2}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n_log2, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt" or not 10 <= int(n_log2) <= 20:
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=2 ** int(n_log2),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
